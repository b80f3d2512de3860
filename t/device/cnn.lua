-- t/110-device.t's convolutional net on the (fake) device: every kind of
-- layer op the CUDA backend gained with the layers, beside a CPU twin.
local nn = require "learn.nn"

return nn.model {
    input = {1, 8, 8},
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(),
        nn.MaxPool2d(2), nn.Dropout(0.25), nn.Flatten(),
        nn.Linear(64, 16), nn.LayerNorm(16), nn.GELU(), nn.Linear(16, 10)),
    loss = nn.CrossEntropyLoss(),
    optim = nn.Adam { lr = 0.01 },
}
