-- A small CNN for 8x8 one-channel images (sklearn's digits, say) into 10
-- classes: two conv blocks with BatchNorm, nested as PyTorch nests them,
-- so a state_dict saved from this PyTorch model loads as it is:
--
--   net = torch.nn.Sequential(
--       torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1),
--                           torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
--                           torch.nn.MaxPool2d(2)),
--       torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1,
--                                           bias=False),
--                           torch.nn.BatchNorm2d(16), torch.nn.ReLU(),
--                           torch.nn.AdaptiveAvgPool2d(2)),
--       torch.nn.Flatten(), torch.nn.Dropout(0.25),
--       torch.nn.Linear(64, 10))
--
-- x is [N, 1, 8, 8]; targets are class indices.
local nn = require "learn.nn"

return nn.model {
    input = { 1, 8, 8 },
    net = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 8, 3, { padding = 1 }), nn.BatchNorm2d(8),
                      nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Conv2d(8, 16, 3, { padding = 1, bias = false }),
                      nn.BatchNorm2d(16), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(2)),
        nn.Flatten(), nn.Dropout(0.25),
        nn.Linear(64, 10)),
    loss = nn.CrossEntropyLoss(),
    optim = nn.Adam { lr = 0.01 },
}
