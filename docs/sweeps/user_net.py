"""A user's own network for the hardware-only sweep in docs/sweeps.md: a MobileNetV3-Small-style
network (inverted residual blocks, squeeze-and-excitation with hard-sigmoid, hard-swish, a 5x5
depthwise stage) built in PyTorch with seeded random weights and exported to ONNX at 224x224.

    python docs/sweeps/user_net.py user-net.onnx
"""
import sys
import warnings

import torch
from torch import nn


class SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.squeeze, self.excite = nn.Conv2d(c, c // 4, 1), nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        return x * nn.functional.hardsigmoid(self.excite(torch.relu(self.squeeze(x.mean((2, 3), keepdim=True)))))


class Block(nn.Module):
    def __init__(self, cin, mid, cout, k, stride, se, act):
        super().__init__()
        act = nn.Hardswish if act == "hs" else nn.ReLU
        self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), act()) \
            if mid != cin else nn.Identity()
        self.dw = nn.Sequential(nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False),
                                nn.BatchNorm2d(mid), act())
        self.se = SE(mid) if se else nn.Identity()
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.residual else y


BLOCKS = [(16, 16, 16, 3, 2, True, "relu"), (16, 72, 24, 3, 2, False, "relu"),
          (24, 88, 24, 3, 1, False, "relu"), (24, 96, 40, 5, 2, True, "hs"),
          (40, 240, 40, 5, 1, True, "hs"), (40, 120, 48, 5, 1, True, "hs"),
          (48, 288, 96, 5, 2, True, "hs"), (96, 576, 96, 5, 1, True, "hs")]


class UserNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.Hardswish())
        self.blocks = nn.Sequential(*(Block(*b) for b in BLOCKS))
        self.head = nn.Sequential(nn.Conv2d(96, 576, 1, bias=False), nn.BatchNorm2d(576), nn.Hardswish())
        self.fc = nn.Linear(576, 1000)

    def forward(self, x):
        return self.fc(self.head(self.blocks(self.stem(x))).mean((2, 3)))


if __name__ == "__main__":
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(UserNet().eval(), (torch.randn(1, 3, 224, 224),), sys.argv[1],
                          dynamo=False, opset_version=14)
