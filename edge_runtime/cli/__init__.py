"""edge-runtime: train a CIFAR classifier, ship it to a Jetson, and make the robot act on it.

The path, one subcommand per step (each has its own --help):

  edge-runtime models                 the model zoo: params, multiply-adds, latency
  edge-runtime train --model NAME     train on CIFAR-10/100 (checkpoints, curves, manifest)
  edge-runtime experiment GRID.yaml   a grid of trainings -> a results table like the paper's
  edge-runtime eda --dataset cifar10  summary statistics, sample grid, PCA and t-SNE plots
  edge-runtime export CHECKPOINT      checkpoint -> ONNX + manifest, parity-checked against PyTorch
  edge-runtime calib make             a class-balanced INT8 calibration set from the train split
  edge-runtime quantize MODEL.onnx    INT8 (TensorRT or CPU layout) and FP16 ONNX, accuracy measured
  edge-runtime eval ARTIFACT          accuracy, per-class, confusion matrix and latency of .pt/.onnx/.engine
  edge-runtime build-engine MODEL.onnx  TensorRT FP32/FP16/INT8 engine on the device (or CPU artifacts)
  edge-runtime run [SOURCE]           the robot's loop: camera/file -> model -> STOP/SLOW/GO (no args: the demo)
  edge-runtime predict IMAGE          class, top-k and the policy's action per image (file, folder or glob)
  edge-runtime info                   this machine: Jetson/JetPack, TensorRT, CUDA, OpenCV; usable backends and sinks
  edge-runtime doctor                 check this machine once: ONNX Runtime vs TensorRT engines, tests, report
  edge-runtime bench MODE ...         latency, FPS, memory and accuracy on this hardware, with the evidence
  edge-runtime scenario OUT.mp4      a labelled scenario (CIFAR-10 test images 0-999, camera effects)
  edge-runtime score SCENARIO.json    how good the decisions are: reaction, missed STOPs, wrong-action time
  edge-runtime tune SCENARIO.json...  sweep the policy over scenarios: Pareto front and a tuned config
  edge-runtime calibrate MODEL        fit a temperature on a train slice: calibrated probabilities, ECE

Errors you can fix are printed as one line and exit with code 2.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from typing import TYPE_CHECKING, List, Optional, Sequence

if TYPE_CHECKING:
    from typing import NoReturn

from .. import __version__
from ..errors import EdgeRuntimeError
from . import signals
from ._common import command_line

#: subcommand -> module; each module has a docstring (its help), add_arguments(parser) and run(args) -> int.
COMMANDS = {
    "models": "edge_runtime.cli.models",
    "train": "edge_runtime.cli.train",
    "experiment": "edge_runtime.cli.experiment",
    "eda": "edge_runtime.cli.eda",
    "export": "edge_runtime.cli.export",
    "calib": "edge_runtime.cli.calib",
    "quantize": "edge_runtime.cli.quantize",
    "eval": "edge_runtime.cli.eval",
    "build-engine": "edge_runtime.cli.build_engine",
    "run": "edge_runtime.cli.run",
    "predict": "edge_runtime.cli.predict",
    "info": "edge_runtime.cli.info",
    "doctor": "edge_runtime.cli.doctor",
    "bench": "edge_runtime.cli.bench",
    "scenario": "edge_runtime.cli.scenario",
    "score": "edge_runtime.cli.score",
    "tune": "edge_runtime.cli.tune",
    "calibrate": "edge_runtime.cli.calibrate",
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line with a pointer to --help, exit code 2."""

    def error(self, message: str) -> "NoReturn":
        sys.stderr.write("%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))
        sys.exit(2)


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32, width=100)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="edge-runtime", description=__doc__, formatter_class=_formatter)
    parser.add_argument("--version", action="version", version="edge-runtime %s" % __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name, modname in COMMANDS.items():
        mod = importlib.import_module(modname)
        doc = (mod.__doc__ or "").strip()
        p = sub.add_parser(name, help=doc.splitlines()[0] if doc else "", description=doc,
                           formatter_class=_formatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def quiet_native_logs() -> None:
    """Keep OpenCV's, FFmpeg's and ONNX Runtime's own log lines off the terminal (the project's one line says
    what went wrong); ``--verbose`` skips this. Environment variables the user set win."""
    import os

    os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")  # read when cv2 is imported
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET, read at the first FFmpeg capture
    os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")
    os.environ.setdefault("GST_DEBUG", "0")
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and hasattr(cv2, "setLogLevel"):  # already imported (in-process callers)
        cv2.setLogLevel(0)
    ort = sys.modules.get("onnxruntime")
    if ort is not None and hasattr(ort, "set_default_logger_severity"):
        ort.set_default_logger_severity(3)  # sessions set their own (backends/onnxrt.py)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The console script and ``python -m edge_runtime``. Signal handlers come first, before any heavy import
    (:mod:`edge_runtime.cli.signals`): SIGINT/SIGTERM during start-up end with one line (``run``: exit 0 on SIGTERM,
    130 on SIGINT), during a run with its final STOP; SIGUSR1 never ends the process."""
    installed = signals.install()
    argv = list(argv) if argv is not None else sys.argv[1:]
    try:
        return _main(argv)
    except signals.Interrupted as exc:
        command = next((a for a in argv if not a.startswith("-")), None)
        sys.stderr.write("edge-runtime%s: %s received during start-up; stopped before anything ran\n"
                         % (" " + command if command in COMMANDS else "", exc))
        return signals.exit_code(command, exc.signum)
    finally:
        if installed:  # in-process callers (tests, notebooks) get their own handlers back
            signals.restore()


def _main(argv: List[str]) -> int:
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:
            # a command whose flags come from a package that is not installed (train's, from train/config.py, on a
            # robot's wheel install) says what to install, not that every flag is unknown
            needs = getattr(args, "_flags_need", None)
            if needs is not None:
                needs()
            parser.error("unrecognized arguments: %s" % " ".join(unknown))
    except SystemExit as exc:  # a usage error (one line already written), --help or --version: main() returns codes
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except EdgeRuntimeError as exc:
        sys.stderr.write("edge-runtime %s: error: %s\n" % (args.command, exc))
        return exc.exit_code
    if args.command != "run":  # only the robot's loop needs them; other commands keep Python's defaults
        signals.restore()
    if not getattr(args, "verbose", False):
        quiet_native_logs()
    args._command_line = command_line(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except EdgeRuntimeError as exc:
        sys.stderr.write("edge-runtime %s: error: %s\n" % (args.command, exc))
        return exc.exit_code
    except signals.Interrupted:
        raise
    except KeyboardInterrupt:
        sys.stderr.write("edge-runtime %s: interrupted\n" % args.command)
        return 130


def require_train_extras() -> None:
    """Fail with one line when the workstation extras (torch, torchvision) are missing."""
    missing: List[str] = []
    for mod in ("torch", "torchvision"):
        try:
            importlib.import_module(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        raise EdgeRuntimeError("this command needs %s, which is not installed; on a workstation run, in a checkout "
                               "of edge-runtime: pip install -e '.[train]'" % " and ".join(missing))
    if importlib.util.find_spec("train") is None:  # a wheel install has no workstation package (setup.py)
        raise EdgeRuntimeError("this command needs the workstation package train/, which the edge-runtime wheel does "
                               "not install; in a checkout of edge-runtime run: pip install -e '.[train,onnx]'")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
