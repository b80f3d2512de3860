-- A 784-1024-1024-10 MLP (1.86M parameters), for the checkpoint and
-- batching benchmarks.
local nn = require "learn.nn"

return nn.model {
    net = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(),
                        nn.Linear(1024, 1024), nn.ReLU(),
                        nn.Linear(1024, 10)),
    loss = nn.CrossEntropyLoss(),
    optim = nn.SGD { lr = 0.01, momentum = 0.9 },
}
