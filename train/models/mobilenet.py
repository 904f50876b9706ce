"""MobileNetV2 variants, all built with torchvision's MobileNetV2 and its inverted residual blocks.

- ``mobilenetv2``: torchvision's ImageNet configuration, unchanged, as the paper ran it at 32x32
  (its five stride-2 stages leave a 1x1 feature map).
- ``mobilenetv2_paper``: the paper's modified blocks (its Fig. 9), exactly as tabulated:
  t,c,n,s = [1,16,1,1], [6,24,2,2], [6,32,1,2], [6,96,2,1], [6,160,2,2], [6,320,1,1].
- ``mobilenetv2_cifar[_x0_5|_x0_75|_x1_0|_x1_4]``: the common CIFAR adaptation: stem and the
  24-channel stage at stride 1, so the last stage still sees 4x4; width multiplier as named.
- ``mobilenetv2_custom``: any (t, c, n, s) block table, stem stride and width from a config.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

import torch.nn as nn
from torchvision.models import MobileNetV2

from edge_runtime.errors import EdgeRuntimeError

from . import ModelEntry, register

IMAGENET_BLOCKS = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
PAPER_BLOCKS = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 1, 2], [6, 96, 2, 1], [6, 160, 2, 2], [6, 320, 1, 1]]
CIFAR_BLOCKS = [[1, 16, 1, 1], [6, 24, 2, 1], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]


def _check_blocks(blocks: Sequence[Sequence[Any]]) -> List[List[int]]:
    out = []
    for i, row in enumerate(blocks):
        if not isinstance(row, (list, tuple)) or len(row) != 4 or not all(isinstance(v, int) and v > 0 for v in row):
            raise EdgeRuntimeError("blocks[%d] is %r; expected [t, c, n, s], four positive integers" % (i, row))
        out.append([int(v) for v in row])
    if not out:
        raise EdgeRuntimeError("blocks is empty; expected a list of [t, c, n, s] rows")
    return out


def mobilenetv2_custom(num_classes: int = 10, blocks: Optional[Sequence[Sequence[int]]] = None, width_mult: float = 1.0,
                       stem_stride: int = 2, dropout: float = 0.2) -> nn.Module:
    table = _check_blocks(blocks if blocks is not None else IMAGENET_BLOCKS)
    model = MobileNetV2(num_classes=num_classes, width_mult=width_mult, inverted_residual_setting=table, dropout=dropout)
    if stem_stride != 2:
        model.features[0][0].stride = (stem_stride, stem_stride)
    return model


def mobilenetv2(num_classes: int = 10, dropout: float = 0.2) -> nn.Module:
    return MobileNetV2(num_classes=num_classes, dropout=dropout)


def mobilenetv2_paper(num_classes: int = 10, dropout: float = 0.2) -> nn.Module:
    return mobilenetv2_custom(num_classes, PAPER_BLOCKS, stem_stride=2, dropout=dropout)


def _cifar(width: float):
    def build(num_classes: int = 10, dropout: float = 0.2) -> nn.Module:
        return mobilenetv2_custom(num_classes, CIFAR_BLOCKS, width_mult=width, stem_stride=1, dropout=dropout)
    return build


def _stages(n_features: int) -> tuple:
    return tuple("features.%d" % i for i in range(n_features))


register(ModelEntry(name="mobilenetv2", builder=mobilenetv2, head="classifier.1", stages=_stages(19),
                    description="MobileNetV2, torchvision's ImageNet config unchanged (1x1 map at 32x32)",
                    paper="MobileNetV2 as the paper ran it"))
register(ModelEntry(name="mobilenetv2_paper", builder=mobilenetv2_paper, head="classifier.1",
                    stages=_stages(2 + sum(n for _, _, n, _ in PAPER_BLOCKS)),  # stem, one block per n, last conv
                    description="MobileNetV2 with the paper's Fig. 9 block table",
                    paper="the paper's best model (83.27 %)"))
register(ModelEntry(name="mobilenetv2_custom", builder=mobilenetv2_custom, head="classifier.1", stages=(),
                    description="MobileNetV2 from any (t,c,n,s) table: blocks=, width_mult=, stem_stride="))
register(ModelEntry(name="mobilenetv2_cifar", builder=_cifar(1.0), head="classifier.1", stages=_stages(19),
                    description="MobileNetV2 with CIFAR strides (stem and 24-ch stage at s1), width 1.0"))
for _w, _suffix in ((0.5, "x0_5"), (0.75, "x0_75"), (1.0, "x1_0"), (1.4, "x1_4")):
    register(ModelEntry(name="mobilenetv2_cifar_" + _suffix, builder=_cifar(_w), head="classifier.1", stages=_stages(19),
                        description="MobileNetV2 with CIFAR strides, width %.2g" % _w))
