-- A digits classifier: 8x8 images (64 features) into 10 classes.
-- Targets are class indices; CrossEntropyLoss applies log-softmax itself.
local nn = require "learn.nn"

return nn.model {
    net = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10)),
    loss = nn.CrossEntropyLoss(),
    optim = nn.Adam { lr = 0.01 },
}
