#!/usr/bin/python3
"""Traffic for conf/abuse.conf: people and bots, and feedback on some of it.

People send a request now and then, mostly from a browser with a cookie
and a language; bots send bursts, and some of them fake a browser and a
cookie, so the request rate is what finally tells them apart.  Each
simulated client names itself with X-Client (they all come from
127.0.0.1).  For a share of the requests the script posts the truth to
/feedback under the request's X-Request-Id, as an operator's review or a
solved CAPTCHA would.  It prints precision and recall of "blocked (429)
or scored >= 0.5" against the truth, for the traffic before any label and
for the traffic after the labels.

    examples/abuse_traffic.py [http://127.0.0.1:8082] [--seconds N]
"""

import argparse
import http.client
import json
import random
import sys
import time
import urllib.parse


class Client:
    def __init__(self, name, bot, rng):
        self.name = name
        self.bot = bot
        if bot:
            # a third of the bots pass for a browser with a session
            disguised = rng.random() < 0.35
            self.browser = disguised
            self.cookie = disguised
            self.language = disguised and rng.random() < 0.5
            self.rate = rng.uniform(6, 12)      # requests per second
        else:
            self.browser = rng.random() < 0.95
            self.cookie = rng.random() < 0.7    # first visits have none
            self.language = rng.random() < 0.9
            self.rate = rng.uniform(0.05, 0.3)

    def headers(self):
        h = {"X-Client": self.name}
        h["User-Agent"] = ("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
                           if self.browser else "python-requests/2.31")
        if self.cookie:
            h["Cookie"] = "session=" + self.name
        if self.language:
            h["Accept-Language"] = "en-GB,en;q=0.8"
        return h


def connect(url):
    u = urllib.parse.urlsplit(url)
    deadline = time.time() + 10
    while True:
        try:
            c = http.client.HTTPConnection(u.hostname, u.port or 80,
                                           timeout=10)
            c.request("GET", "/status")
            c.getresponse().read()
            return c, u
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def run(url, clients, seconds, label_share, rng, label=True):
    conn, _ = connect(url)
    seen = []          # (truth, flagged)
    pending = []       # (request id, truth) to label
    labelled = 0
    start = time.time()
    tick = 0.05
    next_tick = start

    while time.time() - start < seconds:
        for c in clients:
            if rng.random() >= c.rate * tick:
                continue
            conn.request("GET", "/page", headers=c.headers())
            r = conn.getresponse()
            r.read()
            score = r.getheader("X-Bot-Score") or ""
            flagged = r.status == 429 or (score != "" and float(score) >= 0.5)
            seen.append((c.bot, flagged, r.status == 429))
            if label and rng.random() < label_share:
                pending.append((r.getheader("X-Request-Id"), c.bot))

        if len(pending) >= 4:
            body = json.dumps({"ids": [i for i, _ in pending],
                               "y": [[1.0 if b else 0.0] for _, b in pending]})
            conn.request("POST", "/feedback", body=body,
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            answer = r.read()
            if r.status != 200:
                sys.exit("feedback answered %d: %s" % (r.status, answer))
            labelled += len(pending)
            pending = []

        next_tick += tick
        time.sleep(max(0, next_tick - time.time()))

    return seen, labelled


def report(name, seen):
    tp = sum(1 for bot, f, _ in seen if bot and f)
    fp = sum(1 for bot, f, _ in seen if not bot and f)
    fn = sum(1 for bot, f, _ in seen if bot and not f)
    people = sum(1 for bot, _, _ in seen if not bot)
    blocked_people = sum(1 for bot, _, b in seen if not bot and b)
    blocked_bots = sum(1 for bot, _, b in seen if bot and b)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    print("%-28s %5d requests (%4d by people): score >= 0.5 precision %.2f"
          " recall %.2f; 429 for %d%% of bot and %d%% of people's requests"
          % (name, len(seen), people, precision, recall,
             100 * blocked_bots / max(1, len(seen) - people),
             100 * blocked_people / max(1, people)))
    return precision, recall


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url", nargs="?", default="http://127.0.0.1:8082")
    ap.add_argument("--seconds", type=float, default=12)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    # one population throughout: the labels are about the same clients
    clients = ([Client("person%d" % i, False, rng) for i in range(60)]
               + [Client("bot%d" % i, True, rng) for i in range(8)])

    before, _ = run(args.url, clients, 3, 0, rng, label=False)
    report("before any label", before)

    during, n = run(args.url, clients, args.seconds, 0.5, rng)
    report("while labelling (%d labels)" % n, during)

    after, _ = run(args.url, clients, args.seconds, 0, rng, label=False)
    p, r = report("after the labels", after)

    conn, _ = connect(args.url)
    conn.request("GET", "/status")
    s = json.loads(conn.getresponse().read())["models"]["abuse"]
    print("learn_status: step %d, feedback steps %d on %d labels, %d "
          "evaluations" % (s["step"], s["feedback"]["steps"],
                           s["feedback"]["labels"], s["set_evals"]))
    return 0 if p >= 0.9 and r >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
