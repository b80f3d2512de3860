-- LeNet-5 (LeCun et al., 1998) as PyTorch's tutorials write it: 28x28
-- one-channel images (MNIST) into 10 classes.  x is [N, 1, 28, 28];
-- targets are class indices.  The same torch.nn.Sequential's state_dict
-- loads into it through learn_weights.
local nn = require "learn.nn"

return nn.model {
    input = { 1, 28, 28 },
    net = nn.Sequential(
        nn.Conv2d(1, 6, 5, { padding = 2 }), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10)),
    loss = nn.CrossEntropyLoss(),
    optim = nn.Adam { lr = 0.001 },
}
