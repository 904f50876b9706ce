"""PyTorch runner for edge-runtime checkpoints (workstation only: imports torch and train lazily)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from ..errors import EdgeRuntimeError
from .base import Runner


class TorchRunner(Runner):
    """A checkpoint's manifest is inside it: ``manifest`` is read at construction (``torch.load`` with
    ``weights_only=True``), or the one given overrides it."""

    name = "torch"

    def __init__(self, path: Any, threads: Optional[int] = None, manifest: Optional[Dict[str, Any]] = None) -> None:
        super().__init__(manifest)
        self.path = Path(path)
        self.threads = threads
        self.model: Any = None
        self._ck: Any = None
        if manifest is None:
            self.manifest = self._load()["manifest"]

    def _load(self) -> Any:
        if self._ck is None:
            try:
                from train import checkpoint
            except ImportError:
                raise EdgeRuntimeError("a .pt checkpoint needs torch and the train package; on a workstation run: "
                                       "pip install 'edge-runtime[train]', or use the exported .onnx") from None
            self._ck = checkpoint.load(self.path)
        return self._ck

    def _activate(self) -> None:
        import torch

        from train.models import create_model

        ck = self._load()
        man = self.manifest or ck["manifest"]
        n_cls = len(man["dataset"]["class_names"])
        self.model = create_model(man["model"]["name"], num_classes=n_cls, **man["model"].get("kwargs", {}))
        got = ck["model"]
        want = self.model.state_dict()
        bad = [(k, tuple(v.shape), tuple(want[k].shape)) for k, v in got.items() if k in want and tuple(v.shape) != tuple(want[k].shape)]
        if bad:
            k, g, w = bad[0]
            raise EdgeRuntimeError("%s: the weights do not fit the manifest's model (%s with %d classes): %s is %s, the model "
                                   "needs %s; use the checkpoint's own manifest or retrain/export with the right classes"
                                   % (self.path, man["model"]["name"], n_cls, k, "x".join(map(str, g)), "x".join(map(str, w))))
        try:
            self.model.load_state_dict(got)
        except RuntimeError as exc:
            raise EdgeRuntimeError("%s: the weights do not fit %s (%s); use the checkpoint written by edge-runtime train"
                                   % (self.path, man["model"]["name"], str(exc).splitlines()[0][:160])) from None
        self.model.eval()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        h, w = man["preprocess"]["size"]
        self.input_shape = ["batch", 3, int(h), int(w)]

    def _infer(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model(torch.from_numpy(x)).float().numpy()

    def _deactivate(self) -> None:
        self.model = None
