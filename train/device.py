"""Where training runs: the device, torchrun's process group, and the CUDA warm-up outside the timed run."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn as nn

from edge_runtime.errors import EdgeRuntimeError

from . import data
from .evaluation import autocast as _autocast


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=dist.get_rank(), world=dist.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def select_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise EdgeRuntimeError("--device cuda was asked for, but torch sees no CUDA GPU here (torch %s); use "
                                   "--device cpu or auto" % torch.__version__)
        local = int(os.environ.get("LOCAL_RANK", "0"))
        return torch.device("cuda", local)
    return torch.device("cpu")


def warm_up(model: nn.Module, train_loader: "data.TensorLoader", test_loader: "data.TensorLoader",
             criterion: nn.Module, device: torch.device, amp: bool, steps: int = 3) -> None:
    """Run cuDNN's autotuning (and CUDA's lazy initialization) on a throw-away copy of the model.

    On the H200 the first epoch of a MobileNetV2 took 21 s instead of 2 s, most of it choosing kernels
    (benchmarks/models.md). The tuned choices are cached per shape, so the real run starts fast and
    a --time-budget measures training. The copy keeps the model's weights, statistics and the RNG untouched.
    """
    import copy

    rng = torch.get_rng_state()
    shadow = copy.deepcopy(model).train()
    x, y = next(iter(train_loader))
    for _ in range(steps):
        with _autocast(device, amp):
            loss = criterion(shadow(x), y)
        loss.backward()
    shadow.eval()
    with torch.no_grad(), _autocast(device, amp):
        shadow(next(iter(test_loader))[0])
    del shadow
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    torch.set_rng_state(rng)
