#!/usr/bin/python3
"""Train XOR over HTTP with msgpack-numpy, then print predictions.

Start the server first (`make run`), then:  /usr/bin/python3 examples/xor_client.py
"""
import sys
import urllib.request

import msgpack
import msgpack_numpy
import numpy as np

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
HEADERS = {"Content-Type": "application/msgpack"}


def post(path, obj):
    req = urllib.request.Request(BASE + path, msgpack_numpy.packb(obj),
                                 HEADERS)
    with urllib.request.urlopen(req) as resp:
        return msgpack.unpackb(resp.read(), object_hook=msgpack_numpy.decode)


def main():
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[-0.8], [0.8], [0.8], [-0.8]], dtype=np.float32)

    for i in range(1, 4001):
        r = post("/xor/train", {"x": x, "y": y})
        if i % 500 == 0:
            print(f"request {i:5d}  step {r['step']:6d}  loss {r['loss']:.5f}")

    pred = post("/xor/predict", {"x": x})["y"]
    for xi, pi in zip(x, pred):
        print(f"{xi} -> {pi[0]:+.3f}")


if __name__ == "__main__":
    main()
