#!/usr/bin/python3
"""Train sklearn's digits through the job API (conf/jobs.conf), then
measure accuracy on a held-out split with a predict job.

Start the server first (`make run-jobs`), then:

    /usr/bin/python3 examples/digits_jobs.py [URL] [DATA_ROOT]

DATA_ROOT is the server's learn_data_root (build/run-jobs/data by
default): the script writes digits_train.npz and digits_test_x.npy there,
and reads the predictions the server writes next to them.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
ROOT = (sys.argv[2] if len(sys.argv) > 2
        else os.path.join(HERE, "..", "build", "run-jobs", "data"))


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(BASE + path, data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def wait(job_id, show):
    last = None
    while True:
        _, st = call("GET", "/status?jobId=" + job_id)
        if show and st.get("epoch") != last and st.get("history"):
            h = st["history"][-1]
            print("  epoch %3d  loss %.4f  val_loss %.4f  val_accuracy %.3f"
                  % (h["epoch"], h["loss"], h["val_loss"] or float("nan"),
                     h["val_accuracy"] or float("nan")))
            last = st.get("epoch")
        if st["status"] not in ("queued", "running"):
            return st
        time.sleep(0.1)


def main():
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)        # 64 features in [0, 1]
    y = digits.target.astype(np.int64)                 # 10 classes
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25,
                                              random_state=0, stratify=y)

    tag = "%d" % os.getpid()
    train_file = "digits_train_%s.npz" % tag
    test_file = "digits_test_x_%s.npy" % tag
    out_file = "digits_pred_%s.npy" % tag
    np.savez_compressed(os.path.join(ROOT, train_file), x=x_tr, y=y_tr)
    np.save(os.path.join(ROOT, test_file), x_te)

    code, r = call("POST", "/train", {"Files": [train_file], "epochs": 30,
                                      "batch_size": 32, "shuffle": True,
                                      "validation": 0.1, "seed": 1})
    assert code == 202, (code, r)
    print("train job", r["jobId"])
    st = wait(r["jobId"], True)
    assert st["status"] == "done", st
    print("done: step %d, kept version %s, %.0f samples/s"
          % (st["step"], st["version"], st["samples_per_s"]))

    code, r = call("POST", "/input", {"Files": [test_file],
                                      "output": out_file})
    assert code == 202, (code, r)
    st = wait(r["jobId"], False)
    assert st["status"] == "done", st
    logits = np.load(os.path.join(ROOT, st["output"]))
    acc = float((logits.argmax(axis=1) == y_te).mean())

    # the synchronous form answers the seed's /output directly
    code, r = call("POST", "/output", {"x": x_te[:5].tolist()})
    assert code == 200, (code, r)
    sync = np.array(r["outputVector"]).argmax(axis=1)

    print("test accuracy %.4f on %d held-out digits" % (acc, len(y_te)))
    print("first five: predicted %s, true %s" % (sync.tolist(),
                                                 y_te[:5].tolist()))
    for f in (train_file, test_file, out_file):
        try:
            os.unlink(os.path.join(ROOT, f))
        except OSError:
            pass
    return 0 if acc > 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
