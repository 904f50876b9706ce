"""Count what a model costs: parameters, multiply-adds (counted by torch's FLOP counter, not by
hand) and the depthwise-separable saving of the paper's Fig. 8. Latency is measured by ``edge-runtime models --latency``
with the benchmark's interleaved rounds (edge_runtime.bench.statistics), not here."""
from __future__ import annotations

from typing import Dict, List, Optional

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, size: int = 32) -> int:
    """Multiply-adds of one forward pass at ``size`` x ``size`` (FLOPs / 2, as torch counts them)."""
    was = model.training
    model.eval()
    with FlopCounterMode(display=False) as fc:
        model(torch.zeros(1, 3, size, size))
    model.train(was)
    return int(fc.get_total_flops() // 2)


@torch.no_grad()
def separable_ratio(model: nn.Module, size: int = 32) -> Optional[Dict[str, float]]:
    """Depthwise-separable vs standard convolution multiplies (paper Fig. 8: 1/N + 1/Dk^2).

    Each depthwise conv and the 1x1 conv that follows it are compared with the one standard
    Dk x Dk conv that maps the same M input channels to the same N outputs at the same size.
    ``measured`` sums those costs over the model; ``formula`` averages 1/N + 1/Dk^2 over the
    pairs. None for models without depthwise convs.
    """
    convs: List[tuple] = []

    def hook(mod: nn.Module, inp, out) -> None:
        convs.append((mod.in_channels, mod.out_channels, mod.kernel_size[0], mod.groups, out.shape[-2] * out.shape[-1]))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    was = model.training
    model.eval()
    try:
        model(torch.zeros(1, 3, size, size))
    finally:
        for h in handles:
            h.remove()
        model.train(was)
    sep = std = 0.0
    formula = []
    for i, (cin, cout, k, groups, hw) in enumerate(convs[:-1]):
        if groups == cin == cout and k > 1:
            n_cin, n_out, n_k, n_groups, n_hw = convs[i + 1]
            if n_k == 1 and n_groups == 1 and n_cin == cout:
                sep += k * k * cin * hw + cin * n_out * n_hw
                std += k * k * cin * n_out * hw
                formula.append(1.0 / n_out + 1.0 / (k * k))
    if not formula:
        return None
    return {"measured": sep / std, "formula": sum(formula) / len(formula), "pairs": float(len(formula))}
