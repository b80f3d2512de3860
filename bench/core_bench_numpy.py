#!/usr/bin/python3
"""The 784-256-10 ReLU + cross-entropy SGD step of bench/core_bench.c in
numpy: forward, log-softmax cross-entropy, backward, SGD update (lr 0.01),
at batch 1, 64 and 1024; and the 784-1024-1024-10 forward pass
(learn_batch's bench net) at batch 1 and 24.  Run with OPENBLAS_NUM_THREADS=1 so numpy's BLAS
uses one thread, as the C bench does.  Output: "name batch ms".

Written the way a careful numpy user would (float32 throughout, in-place
updates, no Python loops), so the comparison is against good numpy.
"""
import sys
import time

import numpy as np

REPEATS = 7
REPEAT_SECS = 0.2


def init_params(rng, sizes):
    """PyTorch's nn.Linear default: uniform(+-1/sqrt(fan_in))."""
    params = []
    for fan_in, fan_out in sizes:
        bound = 1.0 / np.sqrt(fan_in)
        w = rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32)
        b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
        params += [w, b]
    return params


def step(params, x, labels, lr):
    w1, b1, w2, b2 = params
    n = x.shape[0]

    # forward
    h = x @ w1.T
    h += b1
    np.maximum(h, 0, out=h)
    z = h @ w2.T
    z += b2

    # cross-entropy over logits: log-softmax, then NLL, mean over rows
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    loss = float(np.mean(np.log(s[:, 0]) - z[rows, labels]))

    # backward: dz = (softmax - onehot) / n
    dz = e
    dz /= s
    dz[rows, labels] -= 1.0
    dz /= n
    gw2 = dz.T @ h
    gb2 = dz.sum(axis=0)
    dh = dz @ w2
    dh *= h > 0
    gw1 = dh.T @ x
    gb1 = dh.sum(axis=0)

    # SGD, in place
    for p, g in ((w1, gw1), (b1, gb1), (w2, gw2), (b2, gb2)):
        g *= lr
        p -= g
    return loss


def big_forward(params, x, labels, lr):
    """The 784-1024-1024-10 forward pass learn_batch serves
    (bench/batch_bench.sh); labels and lr unused."""
    h = x
    for i in range(0, len(params), 2):
        h = h @ params[i].T
        h += params[i + 1]
        if i + 2 < len(params):
            np.maximum(h, 0, out=h)
    return h


def bench(batch, step=step, sizes=((784, 256), (256, 10))):
    rng = np.random.default_rng(1)
    params = init_params(rng, sizes)
    x = rng.random((batch, 784), dtype=np.float32)
    labels = rng.integers(0, 10, batch)

    iters = 1
    while True:
        t = time.perf_counter()
        for _ in range(iters):
            step(params, x, labels, 0.01)
        t = time.perf_counter() - t
        if t > REPEAT_SECS / 10:
            break
        iters *= 2
    iters = int(iters * REPEAT_SECS / t) + 1

    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        for _ in range(iters):
            step(params, x, labels, 0.01)
        best = min(best, (time.perf_counter() - t) / iters)
    return best


def main():
    for batch in (1, 64, 1024):
        print("mlp_784_256_10_sgd %d %.4f ms" % (batch, bench(batch) * 1e3))
        sys.stdout.flush()
    for batch in (1, 4, 24):
        print("mlp_784_1024_1024_forward %d %.4f ms"
              % (batch, bench(batch, big_forward,
                              ((784, 1024), (1024, 1024), (1024, 10)))
                 * 1e3))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
