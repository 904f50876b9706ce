"""Small helpers shared by the artifact subcommands (export, calib, quantize, eval, build-engine)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import List, Optional


def command_line(argv: Optional[List[str]] = None) -> str:
    """The command as the user would retype it (recorded in manifests next to measured numbers)."""
    args = sys.argv[1:] if argv is None else argv
    prog = "edge-runtime" if Path(sys.argv[0]).name in ("edge-runtime", "__main__.py") else "edge-runtime"
    return " ".join([prog] + [shlex.quote(a) for a in args])


def pct(v: Optional[float]) -> str:
    return "-" if v is None else "%.2f %%" % v
