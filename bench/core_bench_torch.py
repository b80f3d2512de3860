#!/usr/bin/env python3
"""The train steps and forward passes of bench/core_bench.c in PyTorch, on
one CPU thread (torch.set_num_threads(1)): the 784-256-10 ReLU MLP with
cross-entropy and SGD (batch 1, 64, 1024), LeNet-5 with cross-entropy and
SGD (batch 1, 64), and a Conv2d-heavy forward pass (two 3x3 convolutions,
3->32->32 channels on 32x32 images, batch 1 and 64).  Output: "name batch
ms", the best of 7 repeats of about 0.2 s each, as the numpy script does.

The step is what a PyTorch user writes: zero_grad, forward, loss,
backward, optimizer.step().  Needs torch; bench/core_bench.sh skips the
column when it cannot import it.
"""
import sys
import time

import torch
from torch import nn

REPEATS = 7
REPEAT_SECS = 0.2


def lenet():
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))


def mlp():
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def convnet():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
        nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())


def timed(fn):
    iters = 1
    while True:
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        t = time.perf_counter() - t
        if t > REPEAT_SECS / 10:
            break
        iters *= 2
    iters = int(iters * REPEAT_SECS / t) + 1
    best = float("inf")
    for _ in range(REPEATS):
        t = time.perf_counter()
        for _ in range(iters):
            fn()
        best = min(best, (time.perf_counter() - t) / iters)
    return best


def train_step_time(net, x, labels):
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(net(x), labels)
        loss.backward()
        opt.step()

    return timed(step)


def forward_time(net, x):
    def fwd():
        with torch.no_grad():
            net(x)

    return timed(fwd)


def main():
    torch.set_num_threads(1)
    torch.manual_seed(1)
    gen = torch.Generator().manual_seed(1)
    for batch in (1, 64, 1024):
        x = torch.rand(batch, 784, generator=gen)
        y = torch.randint(0, 10, (batch,), generator=gen)
        t = train_step_time(mlp(), x, y)
        print("mlp_784_256_10_sgd %d %.4f ms" % (batch, t * 1e3))
        sys.stdout.flush()
    for batch in (1, 64):
        x = torch.rand(batch, 1, 28, 28, generator=gen)
        y = torch.randint(0, 10, (batch,), generator=gen)
        t = train_step_time(lenet(), x, y)
        print("lenet5_sgd %d %.4f ms" % (batch, t * 1e3))
        sys.stdout.flush()
    for batch in (1, 64):
        x = torch.rand(batch, 3, 32, 32, generator=gen)
        t = forward_time(convnet(), x)
        print("conv_3_32_32_forward %d %.4f ms" % (batch, t * 1e3))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
