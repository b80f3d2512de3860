-- A 784-256-10 MLP (MNIST-sized), as bench/core_bench.c times it: ReLU,
-- cross-entropy, SGD lr 0.01.  bench/jobs_bench.sh trains it by a job.
local nn = require "learn.nn"

return nn.model {
    net = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10)),
    loss = nn.CrossEntropyLoss(),
    optim = nn.SGD { lr = 0.01 },
}
