-- conf/abuse.conf's bot score: four request features in [0, 1] (request
-- rate bucket, has a cookie, browser user agent, sends Accept-Language)
-- to the probability that the client is a bot.
local nn = require "learn.nn"

return nn.model {
    net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1),
                        nn.Sigmoid()),
    loss = nn.BCELoss(),
    optim = nn.Adam { lr = 0.05 },
}
