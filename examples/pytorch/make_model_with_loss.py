#!/usr/bin/python3
"""Writes a TorchScript model that brings its own loss (docs/tasks.md).

Samverka trains a scripted module with its `loss(self, output, target)`
method when it has one, instead of the task's built-in loss. This one is a
small regression network trained on the mean absolute error (robust to
outliers in the target):

    /usr/bin/python3 examples/pytorch/make_model_with_loss.py --features 10 --out mae.pt
    build/apps/samverka simulate --task regression --model mae.pt \
        --dataset csv:TABLE.csv:TARGET --clients 3 --clients-per-round 3 --out runs/mae

The contract: `target` is the int64 class ids [N] for classification and the
float32 targets [N, ...] otherwise (regression targets standardised,
survival [N, 2] = time, event); the result is a scalar, the batch mean.
"""
import argparse

import torch
from torch import nn


class MaeRegressor(nn.Module):
    def __init__(self, features: int, targets: int = 1, hidden: int = 16):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, targets))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.flatten(x, 1))

    @torch.jit.export
    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.abs(output - target.view_as(output)).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, required=True)
    parser.add_argument("--targets", type=int, default=1)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.jit.script(MaeRegressor(args.features, args.targets)).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
