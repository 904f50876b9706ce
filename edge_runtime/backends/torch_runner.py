"""PyTorch runner for edge-runtime checkpoints (workstation only: imports torch and train lazily)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from ..errors import EdgeRuntimeError
from .base import Runner


class TorchRunner(Runner):
    name = "pytorch"

    def __init__(self, path: Any, threads: Optional[int] = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.threads = threads
        self.model: Any = None
        self.manifest: Optional[Dict[str, Any]] = None

    def _activate(self) -> None:
        try:
            import torch

            from train import checkpoint
            from train.models import create_model
        except ImportError:
            raise EdgeRuntimeError("evaluating a .pt checkpoint needs torch and the train package; on a workstation run: "
                                   "pip install 'edge-runtime[train]', or evaluate the exported .onnx") from None
        ck = checkpoint.load(self.path)
        man = ck["manifest"]
        self.manifest = man
        self.model = create_model(man["model"]["name"], num_classes=man["dataset"]["num_classes"],
                                  **man["model"].get("kwargs", {}))
        self.model.load_state_dict(ck["model"])
        self.model.eval()
        if self.threads:
            torch.set_num_threads(int(self.threads))
        h, w = man["preprocess"]["size"]
        self.input_shape = ["batch", 3, int(h), int(w)]

    def _infer(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.model(torch.from_numpy(x)).float().numpy()
