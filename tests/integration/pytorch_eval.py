#!/usr/bin/python3
"""Evaluates a TorchScript classifier on raw test data, in PyTorch.

Usage: pytorch_eval.py MODEL.pt FEATURES.f32 LABELS.i64 SAMPLE_DIM...
Prints "CORRECT TOTAL". Used by the integration test that checks a model
trained and exported by Samverka scores in PyTorch what Samverka reported.
"""
import sys

import numpy as np
import torch


def main() -> None:
    model_path, features_path, labels_path = sys.argv[1:4]
    sample_shape = [int(d) for d in sys.argv[4:]]
    labels = torch.from_numpy(np.fromfile(labels_path, dtype="<i8"))
    features = torch.from_numpy(np.fromfile(features_path, dtype="<f4"))
    features = features.reshape([labels.numel()] + sample_shape)
    model = torch.jit.load(model_path)
    model.eval()
    with torch.no_grad():
        correct = int((model(features).argmax(1) == labels).sum())
    print(correct, labels.numel())


if __name__ == "__main__":
    main()
