"""ResNet-34 with the CIFAR stem: 3x3 stride-1 first conv, no max-pool (torchvision's blocks)."""
from __future__ import annotations

import torch.nn as nn
from torchvision.models import resnet18, resnet34

from . import ModelEntry, register


def _cifar_stem(model: nn.Module) -> nn.Module:
    model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def resnet34_cifar(num_classes: int = 10) -> nn.Module:
    return _cifar_stem(resnet34(weights=None, num_classes=num_classes))


def resnet18_cifar(num_classes: int = 10) -> nn.Module:
    return _cifar_stem(resnet18(weights=None, num_classes=num_classes))


_STAGES = ("conv1", "bn1", "layer1", "layer2", "layer3", "layer4")
register(ModelEntry(name="resnet34", builder=resnet34_cifar, head="fc", stages=_STAGES,
                    description="ResNet-34, CIFAR stem (3x3 s1 conv, no max-pool)", paper="the paper's ResNet-34 (75.5 %)"))
register(ModelEntry(name="resnet18", builder=resnet18_cifar, head="fc", stages=_STAGES,
                    description="ResNet-18, CIFAR stem (3x3 s1 conv, no max-pool)"))
