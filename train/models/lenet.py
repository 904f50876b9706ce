"""LeNet-5 as the paper describes it: two conv + average-pool blocks, sigmoid, three FC layers."""
from __future__ import annotations

import torch
import torch.nn as nn

from edge_runtime.errors import EdgeRuntimeError

from . import ModelEntry, register

_ACT = {"sigmoid": nn.Sigmoid, "relu": nn.ReLU, "tanh": nn.Tanh}
_POOL = {"avg": nn.AvgPool2d, "max": nn.MaxPool2d}


class LeNet5(nn.Module):
    """conv5x5(6) -> act -> pool2 -> conv5x5(16) -> act -> pool2 -> fc120 -> act -> fc84 -> act -> fc(classes)."""

    def __init__(self, num_classes: int = 10, activation: str = "sigmoid", pooling: str = "avg") -> None:
        super().__init__()
        if activation not in _ACT:
            raise EdgeRuntimeError("lenet5 activation %r unknown; choose %s" % (activation, ", ".join(_ACT)))
        if pooling not in _POOL:
            raise EdgeRuntimeError("lenet5 pooling %r unknown; choose %s" % (pooling, ", ".join(_POOL)))
        act, pool = _ACT[activation], _POOL[pooling]
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 5), act(), pool(2),
            nn.Conv2d(6, 16, 5), act(), pool(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), act(), nn.Linear(120, 84), act(), nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


register(ModelEntry(
    name="lenet5", builder=LeNet5, head="classifier.5", stages=("features.0", "features.3", "classifier.1", "classifier.3"),
    description="LeNet-5: 2 conv + avg-pool, sigmoid, 3 FC (activation/pooling selectable)",
    paper="the paper's LeNet (63 % CIFAR-10)",
))
