#!/usr/bin/python3
"""PyTorch eager baseline for bench/training_bench.cc.

Trains the McMahan CNN and the 784-200-200-10 MLP, defined with the same
layer shapes as models/builtin_nets.cc, on Fashion-MNIST-shaped random data
([1,28,28] uniform in [0,1), 10 classes), batch 32, plain SGD lr 0.05, one
intra-op thread and one OpenBLAS thread. Like Model::Train, one "call" is
one epoch over a client's 600 samples: shuffle, gather each batch from the
data, zero_grad, forward, cross_entropy, loss.item(), backward, step. One
untimed warm-up call, then `--cnn-calls` / `--mlp-calls` timed calls (the
same defaults as training_bench's --cnn_calls / --mlp_calls, so both sides
train the same number of samples).

Prints one JSON object per model on stdout, e.g.
  {"model": "cnn", "samples_per_s": 1234.5, "samples": 3000, ...}

Run with Debian's interpreter (the python3 first on PATH has no torch):
  /usr/bin/python3 bench/pytorch_training.py [--model cnn|mlp|all]
"""
import argparse
import json
import os
import time

# OpenBLAS reads this when libopenblas is loaded, i.e. on `import torch`.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

CLIENT_SAMPLES = 600
BATCH = 32
LR = 0.05


class Mlp(nn.Module):
    """McMahan et al. 2017's 2NN: 784-200-200-10 with ReLU."""

    def __init__(self, inputs: int = 784, classes: int = 10):
        super().__init__()
        self.fc1 = nn.Linear(inputs, 200)
        self.fc2 = nn.Linear(200, 200)
        self.fc3 = nn.Linear(200, classes)

    def forward(self, x):
        h = torch.relu(self.fc1(torch.flatten(x, 1)))
        h = torch.relu(self.fc2(h))
        return self.fc3(h)


class Cnn(nn.Module):
    """McMahan et al. 2017's CNN: conv5x5 32 (pad 2), maxpool 2, conv5x5 64
    (pad 2), maxpool 2, fc 3136-512, fc 512-10."""

    def __init__(self, channels: int = 1, height: int = 28, width: int = 28, classes: int = 10):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * (height // 4) * (width // 4), 512)
        self.fc2 = nn.Linear(512, classes)

    def forward(self, x):
        h = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        h = torch.max_pool2d(torch.relu(self.conv2(h)), 2)
        h = torch.relu(self.fc1(torch.flatten(h, 1)))
        return self.fc2(h)


def train_call(model, x, y, generator):
    """One local epoch, mirroring TorchModel::TrainLoop."""
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=LR)
    order = torch.randperm(x.shape[0], generator=generator)
    loss_sum = 0.0
    samples = 0
    for begin in range(0, x.shape[0], BATCH):
        idx = order[begin:begin + BATCH]
        inputs, labels = x[idx], y[idx]
        optimiser.zero_grad()
        loss = F.cross_entropy(model(inputs), labels)
        loss_sum += loss.item() * idx.numel()
        loss.backward()
        optimiser.step()
        samples += idx.numel()
    return samples, loss_sum / samples


def bench(name: str, calls: int) -> dict:
    torch.manual_seed(1)
    model = Cnn() if name == "cnn" else Mlp()
    params = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(7)
    x = torch.rand(CLIENT_SAMPLES, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (CLIENT_SAMPLES,), generator=g)
    train_call(model, x, y, g)  # warm-up, not timed
    samples = 0
    loss = 0.0
    start = time.perf_counter()
    cpu_start = time.process_time()
    for _ in range(calls):
        n, loss = train_call(model, x, y, g)
        samples += n
    cpu_seconds = time.process_time() - cpu_start
    seconds = time.perf_counter() - start
    return {
        "model": name,
        "samples_per_s": samples / seconds,
        "samples": samples,
        "seconds": seconds,
        "cpu_samples_per_s": samples / cpu_seconds,
        "loss": loss,
        "parameters": params,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["cnn", "mlp", "all"], default="all")
    parser.add_argument("--cnn-calls", type=int, default=5)
    parser.add_argument("--mlp-calls", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = ["cnn", "mlp"] if args.model == "all" else [args.model]
    for name in names:
        calls = args.cnn_calls if name == "cnn" else args.mlp_calls
        print(json.dumps(bench(name, calls)), flush=True)


if __name__ == "__main__":
    main()
