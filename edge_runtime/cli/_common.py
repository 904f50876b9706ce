"""Small helpers shared by the subcommands: the command line as typed (recorded in manifests and benchmark results
next to measured numbers) and percentages."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Optional, Sequence, Union


def command_line(argv: "Union[Sequence[object], argparse.Namespace, None]" = None, prog: Optional[str] = None) -> str:
    """The command as the user would retype it. The ONE helper for this (CLI, trainer, benchmarks scripts).

    ``argv``: the arguments after the program name; an ``argparse.Namespace`` from :func:`edge_runtime.cli.main`
    (which records what it parsed, so ``main([...])`` from Python is quoted as given, not ``sys.argv``); None:
    ``sys.argv[1:]``. ``prog``: default ``edge-runtime`` for the console script and ``python -m edge_runtime``,
    else ``python SCRIPT`` (a script under benchmarks/, say)."""
    if isinstance(argv, argparse.Namespace):
        typed = getattr(argv, "_command_line", None)
        if typed:
            return str(typed)
        argv = None
    args = sys.argv[1:] if argv is None else list(argv)
    if prog is None:
        name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
        prog = "edge-runtime" if name in ("edge-runtime", "__main__.py", "") else "python %s" % sys.argv[0]
    return " ".join([prog] + [shlex.quote(str(a)) for a in args])


def pct(v: Optional[float]) -> str:
    return "-" if v is None else "%.2f %%" % v
