-- The WebTorch XOR net: 2-20-1 with tanh, MSE, plain SGD.
local nn = require "learn.nn"

return nn.model {
    net = nn.Sequential(nn.Linear(2, 20), nn.Tanh(), nn.Linear(20, 1),
                        nn.Tanh()),
    loss = nn.MSELoss(),
    optim = nn.SGD { lr = 0.01 },
}
