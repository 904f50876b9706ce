"""Run the on-robot loop: frames from a camera or a file -> the model -> STOP / SLOW / GO to the sinks.

SOURCE is a URI as jetson-inference has them: csi://0, /dev/video0 (or v4l2:///dev/video0, or 0),
rtsp://host/path, a video file, an image folder or glob, synthetic://?rate=30. Without SOURCE the
config's source.uri is used; with neither --config nor SOURCE, the bundled demo clip
(deploy/demo/cifar10-demo.mp4, 25 s of CIFAR-10 test images at 30 FPS). The config's width/height
are its camera's: a file or folder SOURCE plays at its own size, a video paced at the config's rate
(--rate overrides, 0: as fast as taken), an image folder or glob reading every image (the Python API,
Runtime.from_config, applies the same rule: edge_runtime.sources.source_options).

Paths: SOURCE, --model, --config and --record are relative to the working directory; the defaults
(the bundled model, configs and clip) come with the package and work from any directory, and so do
their repository paths (deploy/configs/vehicle.yaml, engines/bundled/..., deploy/demo/...) where
no such file is in the working directory. Outputs go where the config's sinks say, relative to the
working directory: the bundled vehicle.yaml writes its JSONL log to ./runs/vehicle/events.jsonl and
sends UDP datagrams to 127.0.0.1:5005. Each run prints where its outputs go when it starts.

Defaults: --config deploy/configs/vehicle.yaml, and the bundled MobileNetV2 x0.5 in the build for the
backend: ONNX Runtime (CPU, the default) runs engines/bundled/mobilenetv2_cifar_x0_5.int8-cpu.onnx
(INT8, 88.43 % CIFAR-10 test top-1; 88.55 % in FP32, slower on a CPU; both accuracies measured with ONNX
Runtime and recorded in the INT8 file's manifest, the speeds in benchmarks/runtime.md),
--backend tensorrt builds an FP16 engine from engines/bundled/mobilenetv2_cifar_x0_5.onnx (FP32),
--backend torch loads engines/checkpoints/mobilenetv2_cifar_x0_5.pt. The backend follows the artifact
(.onnx ONNX Runtime, .engine TensorRT, .pt PyTorch) unless --backend says otherwise; an .onnx with
--backend tensorrt is built into an engine on the first run and cached in --engines-dir, reused while
its manifest matches the ONNX sha256, the TensorRT version and the GPU.

Headless by default: decisions go to the config's sinks (console: one line per change; JSONL log;
UDP; GPIO; ROS 2). --display and --record draw an overlay (class, confidence, action, FPS,
latency); --snapshots DIR saves each frame that turned the output to STOP. At exit: a timing
report (per stage in ms, capture-to-decision p50/p90/p99, FPS, stale and dropped frames).

Signals: SIGINT/SIGTERM end the run with a final STOP (reason shutdown), flush the logs, exit 0,
also while the backend hangs (it is abandoned on its daemon thread). During start-up, before the
sinks exist, SIGTERM exits 0 and SIGINT 130 with one line. SIGUSR1 releases a latched STOP
(latch.stop / latch.faults in the config): kill -USR1 <pid>; it never ends the process.
Exit codes: 0 the run ended (limit, end of file, signal); 1 the source failed (a truncated file);
2 a usage or config error (one line).

Examples:
  edge-runtime run                                            # the demo: bundled model and clip
  edge-runtime run csi://0 --model engines/mnv2.fp16.trt10.3.orin-sm87.engine
  edge-runtime run /dev/video0 --model engines/bundled/mobilenetv2_cifar_x0_5.onnx --backend tensorrt
  edge-runtime run clip.mp4 --config deploy/configs/vehicle.yaml --record runs/out.mp4 --snapshots runs/stops
  edge-runtime run synthetic://?rate=30 --duration 600 --quiet
  edge-runtime run csi://0 --config deploy/configs/vehicle-regions.yaml        # path + left/right regions
  edge-runtime run front=csi://0 rear=csi://1 --config deploy/configs/two-cameras.yaml

Regions and cameras: the config's regions: (named rectangles or a grid) are classified each on its own;
sources: (or several SOURCE arguments, NAME=URI) are several cameras; all regions of all cameras' newest
frames go through one batched inference per step, each (camera, region) has its own debounce, the output
is the most severe and names the camera and region that decided (edge_runtime/regions.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from .. import resources
from ..config import RunConfig, SourceConfig, flag_type
from ..errors import EdgeRuntimeError
from . import signals
from ..overlay import FrameOutputs  # noqa: F401 - the overlay lives in the library; kept importable from here

#: the default artifact per backend, as (resources kind, file name) (measured in benchmarks/runtime.md and
#: benchmarks/quantization.md): on a CPU the INT8 build made for it (0.12 points below FP32 on ONNX Runtime,
#: capture->decision p99 2.67 ms against 3.11 ms for FP32 on the 2-core test machine, runtime-results/latency*.json,
#: before the INT8 build's re-quantization); TensorRT builds its own FP16 engine from the FP32 ONNX; PyTorch needs the checkpoint (a checkout only). Bundled files resolve through edge_runtime.resources, so
#: the defaults are the same from any working directory and from an installed wheel.
DEFAULT_MODELS = {"onnxruntime": ("bundled", "mobilenetv2_cifar_x0_5.int8-cpu.onnx"),
                  "tensorrt": ("bundled", "mobilenetv2_cifar_x0_5.onnx"),
                  "torch": ("checkpoints", "mobilenetv2_cifar_x0_5.pt")}
DEFAULT_CONFIG = ("configs", "vehicle.yaml")
DEFAULT_CLIP = ("demo", "cifar10-demo.mp4")

log = logging.getLogger("edge_runtime.run")


#: the INT8 CPU build with a symbolic batch axis (benchmarks/regions.py dynbatch): what ONNX Runtime runs by default
#: when a config has regions or several cameras (one call per step instead of one per region)
BATCHED_ONNX = ("bundled", "mobilenetv2_cifar_x0_5.int8-cpu.dynbatch.onnx")


def default_model(backend: Optional[str], batched: bool = False) -> Path:
    """The bundled artifact for ``backend`` (``auto``/None: ONNX Runtime, the default); ``batched`` (regions or several
    cameras): on ONNX Runtime the dynamic-batch copy of the INT8 CPU build, where this install has it."""
    if batched and str(backend) in ("auto", "None", "onnxruntime"):
        dyn = resources.find(*BATCHED_ONNX)
        if dyn is not None:
            return dyn
    return resources.path(*DEFAULT_MODELS.get(str(backend), DEFAULT_MODELS["onnxruntime"]))


def default_config() -> Path:
    """The bundled deploy/configs/vehicle.yaml."""
    return resources.path(*DEFAULT_CONFIG)


def output_summary(cfg: Any, cameras: Sequence[Optional[str]] = (None,)) -> str:
    """Where a run's outputs go (absolute paths), for the start line: JSONL log, UDP, recording(s: one per camera
    with several, ``cameras``), snapshots."""
    from ..overlay import record_path

    outs = []
    for s in cfg.sinks:
        o = s.options
        if s.type == "jsonl":
            outs.append("events %s" % Path(o.path).absolute())
        elif s.type == "udp":
            outs.append("udp %s:%d" % (o.host, o.port))
        elif s.type not in ("console", "callback"):
            outs.append(s.type)
    if cfg.run.record:
        outs.append("recording %s" % ", ".join(str(Path(record_path(cfg.run.record, c)).absolute()) for c in cameras))
    if cfg.run.snapshots:
        outs.append("snapshots %s" % Path(cfg.run.snapshots).absolute())
    return ", ".join(outs) or "console only"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="*", default=[], metavar="SOURCE",
                   help="camera, stream, file, folder or synthetic:// URI; several (NAME=URI allowed) for several "
                        "cameras batched into one inference (the config's sources: names them)")
    p.add_argument("--model", default=None, help="artifact: .onnx, .engine or .pt (default: the bundled model's build for "
                   "the backend, %s)" % DEFAULT_MODELS["onnxruntime"][1])
    p.add_argument("--config", default=None, help="runtime YAML (default: the bundled vehicle.yaml, %s; its outputs: "
                   "./runs/vehicle/events.jsonl and UDP to 127.0.0.1:5005)" % (resources.find(*DEFAULT_CONFIG) or "missing"))
    p.add_argument("--backend", choices=["auto", "onnxruntime", "tensorrt", "torch"], default=None)
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], default=None,
                   help="engine precision when building from an ONNX (default: the ONNX's; fp16 for FP32)")
    p.add_argument("--engines-dir", default="engines", help="where built engines are cached (default engines/)")
    p.add_argument("--manifest", default=None, help="manifest JSON to use instead of the sidecar")
    p.add_argument("--mean", type=flag_type(float), nargs=3, default=None, help="R G B mean, for a model without manifest")
    p.add_argument("--std", type=flag_type(float, lo=0, lo_open=True), nargs=3, default=None, help="R G B std, for a model without manifest")
    p.add_argument("--labels", type=lambda s: [c for c in s.split(",") if c], default=None,
                   help="comma-separated class names, for a model without manifest")
    p.add_argument("--threads", type=flag_type(int, lo=0), default=1,
                   help="CPU threads for ONNX Runtime / PyTorch (default 1: more only spin at batch 1; 0: theirs)")
    p.add_argument("--display", action="store_true", default=None, help="show frames with the overlay (needs a desktop)")
    p.add_argument("--record", default=None, metavar="OUT.mp4", help="write frames with the overlay to a video")
    p.add_argument("--snapshots", default=None, metavar="DIR", help="save frames that turned the output to STOP")
    p.add_argument("--force", action="store_true",
                   help="let --record replace an existing file and --snapshots an earlier run's (never the SOURCE)")
    p.add_argument("--max-frames", type=flag_type(RunConfig, "max_frames"), default=None, metavar="N",
                   help="end after N frames")
    p.add_argument("--duration", type=flag_type(RunConfig, "duration_s"), default=None, metavar="S",
                   help="end after S seconds")
    p.add_argument("--loop", action="store_true", default=None, help="replay a file or folder at its end")
    p.add_argument("--rate", type=flag_type(SourceConfig, "rate"), default=None, metavar="FPS",
                   help="pace a file like a camera at FPS (0: as fast as the loop takes frames)")
    p.add_argument("--quiet", action="store_true", help="no per-change console lines; a one-line summary at exit")
    p.add_argument("--verbose", action="store_true", help="log at INFO level (engine cache, reconnects)")


#: containers OpenCV's FFmpeg writer takes with the mp4v codec --record uses
RECORD_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv")


def check_outputs(record: Optional[str], snapshots: Optional[str], sources: Union[None, str, Sequence[Optional[str]]],
                  force: bool, names: Sequence[str] = ("--record", "--snapshots"),
                  cameras: Sequence[Optional[str]] = (None,)) -> None:
    """Refuse, before any work, a recording or snapshot folder that would fail on frame 1 or destroy a file:
    not writable, not a video name, a SOURCE (always), an existing file or an earlier run's snapshots
    (unless ``force``). ``names``: what the messages call the two (the flags, or the config keys they came from).
    ``sources``: every camera's URI; ``cameras``: their names when there are several (each records its own
    ``out.<camera>.mp4``, :func:`edge_runtime.overlay.record_path`), else ``(None,)``: ``record`` itself."""
    from ..fsio import check_writable
    from ..overlay import record_path

    srcs: List[Optional[str]] = [sources] if sources is None or isinstance(sources, str) else list(sources)

    def source_of(a: str) -> Optional[int]:
        for i, b in enumerate(srcs):
            try:
                if b is not None and Path(a).exists() and Path(b).exists() and Path(a).samefile(b):
                    return i
            except OSError:
                pass
        return None

    def camera(i: Optional[int]) -> str:
        return "" if i is None or len(srcs) < 2 or len(cameras) != len(srcs) else " of camera %s" % cameras[i]

    if record:
        what = names[0]
        if Path(record).suffix.lower() not in RECORD_SUFFIXES:
            raise EdgeRuntimeError("%s %s: expected a video file name ending in %s" % (what, record, ", ".join(RECORD_SUFFIXES)))
        for cam in cameras:
            path = record_path(record, cam)
            head = "%s %s: " % (what, record) if cam is None else "%s %s: %s (camera %s's recording) " % (
                what, record, path, cam)
            i = source_of(path)
            if i is not None:
                raise EdgeRuntimeError("%sis the SOURCE%s itself; recording would destroy it; choose another file"
                                       % (head, camera(i)))
            if Path(path).exists() and not force:
                raise EdgeRuntimeError("%sexists (%d bytes); pass --force to replace it, or choose another file"
                                       % (head, Path(path).stat().st_size))
            check_writable(path, what)
    if snapshots:
        what = names[1]
        i = source_of(snapshots)
        if i is not None:
            raise EdgeRuntimeError("%s %s: is the SOURCE%s itself; snapshots would be written among its images; choose "
                                   "another folder" % (what, snapshots, camera(i)))
        check_writable(snapshots, what, directory=True)
        if Path(snapshots).is_dir() and not force and any(Path(snapshots).glob("[0-9][0-9][0-9][0-9][0-9][0-9]_*.jpg")):
            raise EdgeRuntimeError("%s %s: holds an earlier run's snapshots, which this run would overwrite; pass --force, "
                                   "or choose another folder" % (what, snapshots))


def _overrides(args: argparse.Namespace) -> Dict[str, Any]:
    """The flags that were given, as config overrides (a flag not given leaves the config's value)."""
    given = {"run.max_frames": args.max_frames, "run.duration_s": args.duration, "run.display": args.display,
             "run.record": args.record, "run.snapshots": args.snapshots, "source.loop": args.loop,
             "source.rate": args.rate, "model.manifest": args.manifest}
    return {k: v for k, v in given.items() if v is not None}


def _install_signals(rt: Any) -> Callable[[], None]:
    """From now on SIGINT/SIGTERM -> ``rt.stop()`` (a final STOP), SIGUSR1 -> ``rt.reset_latch()``
    (:mod:`edge_runtime.cli.signals`; installed by ``main`` before any heavy import). Returns what undoes it."""
    installed = signals.install()  # a no-op when main() or __main__ already did (the usual case)

    def reset() -> None:
        rt.reset_latch()
        log.warning("SIGUSR1: latch reset requested; it takes effect at the next frame")

    signals.attach(rt.stop, reset)
    return signals.restore if installed else signals.detach


def run(args: argparse.Namespace) -> int:
    from ..cameras import camera_configs
    from ..config import load_config
    from ..runtime import Runtime

    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_config(resources.resolve(args.config) if args.config else default_config())
    srcs = list(args.source or [])
    source: Any = srcs[0] if len(srcs) == 1 else (srcs or None)
    if source is None and args.config is None and not cfg.sources:
        clip = resources.find(*DEFAULT_CLIP)
        if clip is None:
            raise EdgeRuntimeError("no SOURCE given and the bundled demo clip deploy/demo/cifar10-demo.mp4 is missing "
                                   "(%s); make it with: python deploy/make_demo_clip.py, or pass a SOURCE"
                                   % resources.describe())
        source = str(clip)
    if args.quiet:
        cfg = dataclasses.replace(cfg, sinks=tuple(s for s in cfg.sinks if s.type != "console"))
    cams = camera_configs(cfg, [str(s) for s in srcs] if srcs else ([] if source is None else [str(source)]))
    check_outputs(args.record if args.record is not None else cfg.run.record,
                  args.snapshots if args.snapshots is not None else cfg.run.snapshots,
                  [c.uri for c in cams], args.force,
                  ["--%s" % k if getattr(args, k) is not None else "%s: run.%s" % (cfg.origin, k)
                   for k in ("record", "snapshots")],
                  cameras=[getattr(c, "name", None) for c in cams] if len(cams) > 1 else (None,))
    batched = bool(cfg.regions or cfg.sources or len(srcs) > 1)
    model = str(resources.resolve(args.model or cfg.model.path or default_model(args.backend or cfg.model.backend,
                                                                                  batched)))
    rt = Runtime.from_config(cfg, model=model, source=source, overrides=_overrides(args), backend=args.backend,
                             threads=args.threads, mean=args.mean, std=args.std, labels=args.labels,
                             engines_dir=args.engines_dir, precision=args.precision)
    restore_signals = _install_signals(rt)  # as soon as the sinks exist: a signal now ends with a final STOP
    run_cfg = rt.config.run
    outputs = None
    if run_cfg.display or run_cfg.record or run_cfg.snapshots:
        try:
            outputs = FrameOutputs(run_cfg.display, run_cfg.record, run_cfg.snapshots, rt.config.source.rate or 30.0,
                                   rt.stop, regions=rt.region_boxes())
        except BaseException:  # e.g. --display without a desktop: the sinks exist, so they end with a STOP
            restore_signals()
            rt.close()
            raise
        rt.observers.append(outputs)
    if not args.quiet:
        print("edge-runtime run: %s on %s (%s), policy %s; Ctrl-C or SIGTERM stops with a final STOP" % (
            rt.sources.describe(), model, rt.runner.name, rt.config.origin), flush=True)
    names = list(rt.region_boxes())
    print("edge-runtime run: outputs: %s" % output_summary(rt.config, names if len(names) > 1 else (None,)), flush=True)
    t0 = time.monotonic()
    try:
        with rt:
            final = rt.run()
    finally:
        restore_signals()
        if outputs is not None:
            outputs.close()
    sys.stdout.flush()
    if args.quiet:
        r = rt.report()
        lat = r["decision_latency_ms"]
        print("%d frames in %.1f s, %.1f FPS, capture->decision p99 %.2f ms; final: %s" % (
            r["frames"], time.monotonic() - t0, r["fps"], lat.get("p99_ms", float("nan")), final.summary()))
    elif run_cfg.report:
        print(rt.format_report())
    if outputs is not None and outputs.snapshots:
        print("%d STOP snapshot(s) in %s" % (outputs.saved, outputs.snapshots))
    code = 0
    if final.reason.value == "source_failed":
        sys.stderr.write("edge-runtime run: the source failed: %s\n" % (final.detail or "unknown error"))
        code = 1
    if rt.backend_hung:  # stopped while the backend hung: leave now, no interpreter finalizer under the hung call
        sys.stderr.write("edge-runtime run: the backend had not returned when the run stopped (final STOP sent); "
                         "exiting without waiting for it\n")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
