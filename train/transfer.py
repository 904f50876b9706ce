"""Transfer learning (the paper's section IV.E): a parent checkpoint into a child model.

The parent (say CIFAR-100) and the child (say CIFAR-10) share the architecture; the child
gets a new classifier head, unless the parent was trained on exactly the child's classes (same
names, same order): then the head is kept too and the run continues training the parent (a
fine-tune: a longer schedule, or distillation on top of a finished run).

``--freeze backbone`` trains only the head, ``until:<stage>`` freezes every parameter up to and
including that stage (names from ``edge-runtime models``), and ``--unfreeze-at E`` lets everything
train from epoch E on, as the paper froze and then unfroze the last blocks. Frozen BatchNorm
layers stay in eval mode so their statistics hold.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import torch.nn as nn

from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import sha256_file

from . import checkpoint


def load_parent(model: nn.Module, path: Path, model_name: str, head: str,
                class_names: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Copy the parent's weights into ``model``; returns what the manifest records.

    The head is copied only when the parent's class names equal ``class_names`` (same order);
    otherwise the child keeps its freshly initialized head.
    """
    ck = checkpoint.load(path)
    pman = ck["manifest"]
    if pman["model"]["name"] != model_name:
        raise EdgeRuntimeError("parent %s is a %s, but this run trains a %s; transfer needs the same architecture "
                               "(use --model %s or another parent)" % (path, pman["model"]["name"], model_name,
                                                                       pman["model"]["name"]))
    keep_head = class_names is not None and list(pman["dataset"].get("class_names", [])) == list(class_names)

    def copied(k: str) -> bool:
        return keep_head or not (k == head or k.startswith(head + "."))

    state = {k: v for k, v in ck["model"].items() if copied(k)}
    own = model.state_dict()
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        raise EdgeRuntimeError("parent %s has other shapes for %s; it was built with other model options" % (path, ", ".join(mismatched[:3])))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if copied(k)]
    if missing or unexpected:
        raise EdgeRuntimeError("parent %s does not fit %s (missing %s, unexpected %s)" % (path, model_name, missing[:3], unexpected[:3]))
    return {"path": str(path), "sha256": sha256_file(path), "dataset": pman["dataset"]["name"],
            "num_classes": pman["dataset"]["num_classes"], "accuracy": pman.get("accuracy", {}).get("top1"),
            "head": "kept" if keep_head else "new"}


def _frozen_prefixes(model: nn.Module, spec: str, entry: Any) -> list:
    names = [n for n, _ in model.named_parameters()]
    if spec == "none":
        return []
    if spec == "backbone":
        return [n for n in names if not (n == entry.head or n.startswith(entry.head + "."))]
    stage = spec.split(":", 1)[1]
    if not any(n.startswith(stage + ".") for n in names):
        valid = list(entry.stages) or sorted({n.split(".")[0] for n in names})
        raise EdgeRuntimeError("--freeze until:%s: no stage %r in %s; valid stages: %s" % (stage, stage, entry.name, ", ".join(valid)))
    last = max(i for i, n in enumerate(names) if n.startswith(stage + "."))
    return names[: last + 1]


def apply_freeze(model: nn.Module, spec: str, entry: Any, set_mode_only: bool = False) -> int:
    """Freeze per ``spec``; with ``set_mode_only`` just put fully frozen norm layers in eval mode."""
    frozen = set(_frozen_prefixes(model, spec, entry))
    if not set_mode_only:
        for n, p in model.named_parameters():
            p.requires_grad_(n not in frozen)
    for mname, mod in model.named_modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            params = [mname + "." + pn for pn, _ in mod.named_parameters(recurse=False)]
            if params and all(p in frozen for p in params):
                mod.eval()
    return len(frozen)


def freeze_in_effect(cfg: Any, epoch: int) -> bool:
    """Whether ``cfg.freeze`` still holds in (1-based) ``epoch``: a freeze is set and ``unfreeze_at`` not reached."""
    return cfg.freeze != "none" and not (cfg.unfreeze_at is not None and epoch >= cfg.unfreeze_at)


def unfreeze_all(model: nn.Module) -> None:
    for p in model.parameters():
        p.requires_grad_(True)
