#!/usr/bin/python3
"""Writes a PyTorch model as TorchScript for `samverka simulate --model FILE.pt`.

Any module that maps a float batch [N, *sample_shape] to class scores
[N, num_classes] works; Samverka trains its parameters (and averages float
buffers such as batch-norm statistics) in C++ and saves the result back as
TorchScript. Run with Debian's interpreter, which has python3-torch:

    /usr/bin/python3 examples/pytorch/make_scripted_model.py tabular-mlp \
        --features 30 --classes 2 --out mlp.pt
    /usr/bin/python3 examples/pytorch/make_scripted_model.py small-cnn --out cnn.pt
"""
import argparse

import torch
from torch import nn


class TabularMlp(nn.Module):
    def __init__(self, features: int, classes: int, hidden: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.flatten(x, 1))


class SmallCnn(nn.Module):
    """A small CNN for 1x28x28 images with batch normalisation."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 5, padding=2)
        self.bn = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 14 * 14, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.max_pool2d(torch.relu(self.bn(self.conv(x))), 2)
        return self.fc(torch.flatten(h, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["tabular-mlp", "small-cnn"])
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--classes", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    if args.kind == "tabular-mlp":
        model = TabularMlp(args.features, args.classes)
    else:
        model = SmallCnn(args.classes)
    torch.jit.script(model).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
