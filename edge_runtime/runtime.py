"""The Runtime: source -> preprocess -> Runner -> Policy -> sinks, with a watchdog and a timing report.

It is what ``edge-runtime run`` runs and the Python API for a robot's own code::

    from edge_runtime.runtime import Runtime

    with Runtime.from_config("deploy/configs/vehicle.yaml", model="engines/bundled/mobilenetv2_cifar_x0_5.onnx",
                             source="csi://0") as rt:
        for decision in rt.decisions():      # one Decision per frame, and one per empty poll of the source
            if decision.changed:
                robot.set_speed_limit(decision.action)
    print(rt.format_report())

``source`` may also be a :class:`~edge_runtime.sources.Source` object (a ``PushSource`` your ROS image
callback pushes into), ``model`` a :class:`~edge_runtime.backends.Runner` (with ``manifest=``).
``rt.stop()`` ends the loop with a final STOP (thread- and signal-safe); ``rt.reset_latch()`` releases a
latched STOP (``latch.stop``/``latch.faults``) at the next frame, also from any thread or a signal handler.

The loop never names a backend or a camera type: :func:`~edge_runtime.backends.load`,
:func:`~edge_runtime.sources.open_source` and :func:`~edge_runtime.sinks.build_sinks` do.

Fail-safe behaviour (besides what :class:`~edge_runtime.policy.Policy` does per frame)

- Startup: the first output is STOP (``startup``) until a valid frame has been decided.
- Source silent: the loop waits ``policy.poll_interval_s`` per read and calls ``policy.tick``, which
  turns STOP (``source_timeout``) ``source_timeout_ms`` after the last decided frame.
- Watchdog (a hung or very slow inference): a daemon thread wakes every ``poll_interval_s``; while the
  loop has been inside one frame for longer than that, it calls ``policy.tick(now)`` and emits the result
  to the sinks, exactly as the loop does when the source is silent. The policy therefore turns STOP
  (``source_timeout``, with ``watchdog: ...`` in its detail) ``source_timeout_ms`` after the last decided
  frame, within one poll interval, even if ``Runner.infer`` never returns. Until then the watchdog emits
  nothing (a tick that is not fail-safe would repeat the last frame's decision, maybe a stale GO): heartbeats
  pause for at most ``source_timeout_ms``, then they carry the STOP. A slow inference that does
  return before that gets the policy's ``deadline_miss`` with the configured ``deadline_action``.
  Policy and sinks are called under one lock, so the two threads never interleave inside them.
- Stop: :meth:`Runtime.stop` only sets a flag (no lock: signal handlers call it) and returns at once. Every
  backend call (``activate``, ``infer``, ``deactivate``) runs on the runner's own daemon thread
  (:mod:`edge_runtime.runner_thread`) and the loop waits for it in 20 ms slices, so the loop ends with the final
  STOP within about 20 ms of ``stop()`` even while ``infer`` hangs: the hung call is *abandoned* (the frame gets
  a fail-safe STOP ``inference_error`` saying so, then the final STOP ``shutdown``). The abandoned call keeps
  its daemon thread until it returns, if it ever does; the runner is then not deactivated (that would race with
  the call inside it) and :attr:`Runtime.backend_hung` is True; daemon threads do not keep the process alive
  (``edge-runtime run`` leaves with ``os._exit`` after flushing its sinks, so no interpreter finalizer touches
  the backend under the hung call).
- systemd (``deploy/edge-runtime.service``, ``Type=notify``): with ``$NOTIFY_SOCKET`` set the loop sends
  ``READY=1`` at its first valid decision, ``WATCHDOG=1`` on its iterations (at most every half
  ``WatchdogSec``; from the loop, not the watchdog thread, so a hung loop gets the service restarted) and
  ``STOPPING=1`` with the final STOP (:mod:`edge_runtime.sdnotify`).
- End: the source ends -> STOP ``end_of_stream``; it fails -> STOP ``source_failed``; ``stop()``, the
  frame/time limits or leaving the ``with`` block (also on an exception) -> STOP ``shutdown``. Sinks are
  then flushed and closed (the JSONL log is fsynced).

Pipelining: the grabber thread preprocesses each frame it captures (``Source.transform``), so frame N+1 is
decoded and preprocessed on one core while frame N is in inference on the other; the loop's thread runs only
inference, the policy and the hand-over to sinks. The preprocess stage is still timed (in the grabber) and
still counts in capture->decision.

Metrics (:mod:`edge_runtime.metrics`): per-stage times (capture->read, preprocess, infer, policy, sinks), decision latency from capture
to decision (p50/p90/p99), FPS, stale and dropped frames, deadline misses; kept in fixed-size ring
buffers (the last 65536 frames), so memory does not grow with run time.
"""
from __future__ import annotations

import dataclasses
import gc
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import manifest as mf
from . import backends, resources
from .backends import Runner
from .config import RuntimeConfig, apply_overrides, load_config
from .errors import EdgeRuntimeError
from .fsio import PathLike
from .metrics import STAGES, Metrics, RingBuffer, RingTable  # noqa: F401 - re-exported for old imports
from .calibration import probabilities, temperature_of
from .policy import Decision, Policy, Reason, softmax
from .preprocess import Preprocessor
from .sdnotify import Notifier
from .sinks import Sink, SinkGroup, build_sinks
from .regions import WHOLE, Camera, RegionCropper, RegionPolicies, expand
from .runner_thread import Abandoned, RunnerThread, StopFlag
from .cameras import SourceGroup, camera_configs
from .sources import Frame, Source, create_source, source_options

__all__ = ["Runtime", "load_model", "engine_for_onnx", "RingBuffer", "RingTable", "Metrics", "STAGES", "BACKENDS"]

log = logging.getLogger(__name__)

#: ``--backend`` names (``auto``: by the artifact's type); the registry is :data:`edge_runtime.backends.BACKENDS`
BACKENDS = ("auto",) + tuple(backends.BACKENDS)

FrameObserver = Callable[[Frame, Decision], None]


# ------------------------------------------------------------------------------------------------- models
def load_model(path: PathLike, backend: str = "auto", manifest: Optional[PathLike] = None,
               mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
               labels: Optional[Sequence[str]] = None, threads: Optional[int] = 1,
               engines_dir: Union[str, Path] = "engines", precision: Optional[str] = None) -> Tuple[Runner, Dict[str, Any]]:
    """(Runner, manifest) for an artifact: a thin shim over :func:`edge_runtime.backends.load`, the one loader.
    ``threads``: CPU threads for ONNX Runtime / PyTorch, 1 by default (a batch-1 frame of a CIFAR-sized model gains
    nothing from more); 0 or None leaves the backend's default."""
    runner = backends.load(path, backend, manifest, mean, std, labels, threads, engines_dir, precision)
    assert runner.manifest is not None
    return runner, runner.manifest


def engine_for_onnx(*args: Any, **kwargs: Any) -> Tuple[Path, Dict[str, Any]]:
    """Moved to :func:`edge_runtime.backends.tensorrt.engine_for_onnx` (kept for old imports)."""
    from .backends.tensorrt import engine_for_onnx as impl

    return impl(*args, **kwargs)


# ------------------------------------------------------------------------------------------------ runtime
class Runtime:
    """One run of the loop. Build it with :meth:`from_config`, enter it, iterate :meth:`decisions`. :meth:`stop` ends
    it with a final STOP within about 20 ms even while the backend hangs: the hung call is abandoned on the runner's
    daemon thread, the runner is left active under it and :attr:`backend_hung` says so ("Stop" in the module docstring).

    ``runner``/``manifest``: the model (the manifest gives class names and preprocessing). ``source``: a
    URI or a :class:`Source` (default: ``config.source``, or the cameras of ``config.sources``), or a list of them
    for several cameras (URIs as ``name=uri``; :func:`~edge_runtime.cameras.camera_configs`). ``sinks``: a
    :class:`SinkGroup` (default: built from ``config.sinks``); ``extra_sinks`` are added to it (e.g. a
    ``CallbackSink`` of your own).

    Cameras and regions (:mod:`edge_runtime.regions`): each camera's grabber thread crops and preprocesses all of
    its regions into one ``(R, 3, H, W)`` batch; each step of the loop takes the newest frame of every camera that
    has one and runs ONE ``Runner.infer`` on all their regions (a model with a fixed batch, e.g. 1, is called
    batch-size slices at a time by :meth:`Runner.infer`); every (camera, region) has its own pure
    :class:`Policy` and the output is the most severe (:class:`~edge_runtime.regions.RegionPolicies`). A camera
    without a frame is ticked: when it stays silent for ``source_timeout_ms`` its decision, and so the output,
    turns STOP (``source_timeout``, naming the camera) while the others go on; it reconnects by itself.
    """

    def __init__(self, config: RuntimeConfig, runner: Runner, manifest: Mapping[str, Any],
                 source: Union[str, Source, Sequence[Union[str, Source]], None] = None,
                 sinks: Optional[SinkGroup] = None, extra_sinks: Sequence[Sink] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        ds = manifest["dataset"]
        config.validate_against(ds["class_names"], (ds.get("superclasses") or {}).get("names"))
        self.config = config
        self.runner = runner
        self.manifest = dict(manifest)
        self.cameras, sources = self._open_cameras(config, source)
        #: one pure Policy per (camera, region); ``policy`` is the first (the only one without regions/cameras)
        self.policies = RegionPolicies(self.cameras, config.policy, manifest)
        self.policy: Policy = self.policies.first
        self.sources = SourceGroup(sources)
        self.source = sources[0]
        for src in sources:
            if src.stale_after_s is None:
                src.stale_after_s = config.policy.timeouts.max_frame_age_ms / 1e3
        self.sinks = sinks if sinks is not None else build_sinks(config.sinks)
        for s in extra_sinks:
            self.sinks.add(s)
        self.metrics = Metrics()
        self.observers: List[FrameObserver] = []
        self.final: Optional[Decision] = None
        self._pp = self.manifest["preprocess"]
        self._prep = Preprocessor(self._pp, bgr=True)
        #: the manifest's calibration temperature (1.0 without one): probabilities are softmax(logits / T)
        self._temperature = temperature_of(self.manifest)
        #: each camera's grabber-thread transform: all its regions -> one (R, 3, H, W) batch
        self.croppers = [RegionCropper(self._pp, cam.rects) for cam in self.cameras]
        self.steps = 0
        self.images = 0
        self._cpu: List[float] = []
        self._clock = clock
        self._lock = threading.Lock()
        self._stop = StopFlag()  # lock-free: stop() is called from signal handlers
        #: every backend call (activate, infer, deactivate) runs here, so a hung one can be abandoned
        self._rthread = RunnerThread()
        self._stop_detail = ""
        self._busy_since: Optional[float] = None
        self._entered = False
        self._frozen = False
        self._watchdog: Optional[threading.Thread] = None
        self._watch_stop = threading.Event()
        #: systemd's link (a no-op without $NOTIFY_SOCKET): READY=1 at the first valid decision, WATCHDOG=1 from
        #: the loop (never from the watchdog thread: a hung loop must stop the pings), STOPPING=1 at the final STOP
        self.notifier = Notifier()

    @staticmethod
    def _open_cameras(config: RuntimeConfig, source: Any) -> Tuple[List[Camera], List[Source]]:
        """(cameras, their sources, not yet opened) for ``source`` as :meth:`__init__` takes it."""
        def rects(regions: Any) -> Tuple[Any, ...]:
            return expand(regions if regions is not None else config.regions) or (WHOLE,)

        by_name = {c.name: c for c in config.sources}
        if isinstance(source, (list, tuple)) and len(source) == 1:
            source = source[0]
        if isinstance(source, Source):
            cam = by_name.get(source.name)
            return [Camera(source.name, rects(cam.regions if cam is not None else None))], [source]
        if isinstance(source, (list, tuple)):
            if all(isinstance(s, Source) for s in source):
                cams, srcs = [], []
                for i, s in enumerate(source):
                    s.name = s.name or "cam%d" % i
                    cam = by_name.get(s.name)
                    cams.append(Camera(s.name, rects(cam.regions if cam is not None else None)))
                    srcs.append(s)
                return cams, srcs
            if not all(isinstance(s, (str, Path)) for s in source):
                raise EdgeRuntimeError("source: expected URIs (name=uri) or Source objects, not a mix of both")
            cfgs = camera_configs(config, [str(s) for s in source])
        elif config.sources:
            cfgs = camera_configs(config, [] if source is None else [str(source)])
        else:
            return [Camera(None, rects(None))], [create_source(source, config.source)]
        cams, srcs = [], []
        try:
            for c in cfgs:
                src = create_source(c)
                src.name = getattr(c, "name", None)
                cams.append(Camera(src.name, rects(getattr(c, "regions", None))))
                srcs.append(src)
        except BaseException:
            for s in srcs:
                s.close()
            raise
        return cams, srcs

    @classmethod
    def from_config(cls, path_or_cfg: Union[str, Path, RuntimeConfig], model: Union[str, Path, Runner, None] = None,
                    source: Union[str, Source, Sequence[Union[str, Source]], None] = None,
                    overrides: Optional[Mapping[str, Any]] = None, backend: Optional[str] = None, manifest: Optional[Mapping[str, Any]] = None,
                    extra_sinks: Sequence[Sink] = (), threads: Optional[int] = 1,
                    mean: Optional[Sequence[float]] = None, std: Optional[Sequence[float]] = None,
                    labels: Optional[Sequence[str]] = None, engines_dir: Union[str, Path] = "engines",
                    precision: Optional[str] = None) -> "Runtime":
        """A Runtime from a YAML path (or a parsed config). ``model``: an artifact path (default
        ``config.model.path``) or a :class:`Runner` with ``manifest``. ``overrides``: dotted keys as in
        :func:`~edge_runtime.config.apply_overrides`. ``source`` (a URI or path) is opened with
        :func:`~edge_runtime.sources.source_options`, the rule ``edge-runtime run`` uses: a file or folder in place of
        the config's camera plays at its own size (a folder: every image), unless ``overrides`` set ``source.*``.
        Errors are one line (:class:`EdgeRuntimeError`)."""
        cfg = path_or_cfg if isinstance(path_or_cfg, RuntimeConfig) else load_config(resources.resolve(path_or_cfg))
        if overrides:
            cfg = apply_overrides(cfg, overrides)
        if isinstance(source, (list, tuple)) and len(source) == 1:
            source = source[0]
        if source is not None and not isinstance(source, (Source, list, tuple)) and not cfg.sources:
            source = str(resources.bundled_for(str(source)) or source)  # deploy/demo/... from any directory
            explicit = [k.split(".", 1)[1] for k in (overrides or {}) if k.startswith("source.")]
            cfg = dataclasses.replace(cfg, source=source_options(cfg.source, source, explicit))
        if isinstance(model, Runner):
            man = manifest if manifest is not None else model.manifest
            if man is None:
                raise EdgeRuntimeError("a Runner passed as model needs manifest= (class names and preprocessing)")
            runner, man = model, mf.validate(dict(man), "manifest")
        else:
            path = model if model is not None else cfg.model.path
            if path is None:
                raise EdgeRuntimeError("%s: no model: pass --model ARTIFACT or set model.path" % cfg.origin)
            path = resources.resolve(path)  # engines/bundled/... from any directory
            runner, man = load_model(path, backend or cfg.model.backend, cfg.model.manifest, mean, std, labels, threads,
                                     engines_dir, precision)
        try:
            return cls(cfg, runner, man, source=source, extra_sinks=extra_sinks)
        except BaseException:
            runner.deactivate()
            raise

    # ------------------------------------------------------------------------------------------- control
    def stop(self, detail: str = "stop requested") -> None:
        """End the loop with a final STOP (``shutdown``) at its next step, within about 20 ms even while
        ``Runner.infer`` hangs (the loop stops waiting for it: see "Stop" in the module docstring). Returns at once;
        takes no lock, so it is safe from any thread or a signal handler."""
        self._stop_detail = detail
        self._stop.set()

    def reset_latch(self) -> None:
        """Release a latched STOP at the next frame (:meth:`Policy.reset`, every region's). Safe from any thread or a
        signal handler."""
        self.policies.reset()

    def region_boxes(self) -> Dict[Optional[str], Tuple[Any, ...]]:
        """Camera name (None: the single source) -> its regions (:class:`~edge_runtime.regions.Rect`, normalized), for
        :class:`~edge_runtime.overlay.FrameOutputs`."""
        return {c.name: c.rects for c in self.cameras}

    def __enter__(self) -> "Runtime":
        try:
            self._backend(self.runner.activate, what="Runner.activate")
        except Abandoned as exc:  # stop() during activation: the loop ends at once with the final STOP
            log.warning("%s", exc)
        h, w = self._prep.size
        self._prep(np.zeros((2 * h, 2 * w, 3), np.uint8))  # imports OpenCV now, not on frame 1
        for n in sorted({self.policies.batch} | {len(c) for c in self.croppers}):
            try:  # one warm-up call per batch size (allocations, kernel selection) so the first frame is not late
                self._infer(np.zeros((n, 3, h, w), np.float32))
            except Exception as exc:  # noqa: BLE001 - the loop reports a failing backend per frame, as a STOP
                log.warning("warm-up inference failed (%s: %s); frames will show whether it keeps failing",
                            type(exc).__name__, exc)
                break
        for src, crop in zip(self.sources.sources, self.croppers):
            src.transform = crop  # crop + preprocess in the grabber thread, overlapped with inference here
        gc.collect()  # before the sources open (it can take 0.5 s with torch loaded): no frame waits for it
        try:
            self.sources.open()  # after the warm-up: its first frame must not wait for it
        except BaseException as exc:
            for src in self.sources.sources:
                src.transform = None
            self._deactivate()
            # the sinks exist: their last word is a STOP saying why (a controller on UDP hears it), then closed
            self._finish(Reason.SOURCE_FAILED if isinstance(exc, Exception) else Reason.SHUTDOWN,
                         " ".join(str(exc).split()) or type(exc).__name__)
            self.sinks.close()
            raise
        # Everything allocated so far (modules, the model, the config) is long-lived: move it out of the
        # collector's generations so a full collection during the run has only the loop's own objects to scan
        # (milliseconds otherwise, on the loop's thread, in the middle of a frame). Process-wide: close()
        # unfreezes, which also ends a freeze made by other code in the process. (Collected above, before the
        # sources opened; freezing is instant.)
        gc.freeze()
        self._frozen = True
        self._entered = True
        self.metrics.t_start = self._clock()
        self._cpu = [time.process_time()]
        self._watchdog = threading.Thread(target=self._watch, name="edge-runtime:watchdog", daemon=True)
        self._watchdog.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Final STOP if none was emitted, then stop the watchdog, flush and close sinks, source and runner."""
        self._watch_stop.set()
        if self.final is None:
            self._finish(Reason.SHUTDOWN, self._stop_detail or "runtime closed")
        if self._watchdog is not None:
            self._watchdog.join(timeout=1.0)
        if len(self._cpu) == 1:
            self._cpu.append(time.process_time())
        self.sinks.close()
        self.sources.close()
        for src in self.sources.sources:
            src.transform = None
        self._deactivate()
        if self._frozen:
            self._frozen = False
            gc.unfreeze()  # what __enter__ froze is collectable again (a process may run many Runtimes)

    # -------------------------------------------------------------------------------------------- the loop
    def decisions(self) -> Iterator[Decision]:
        """Run the loop, yielding every decision (one per step, one per empty poll), until the sources end,
        :meth:`stop` is called or a ``run`` limit is reached; the last one is the final STOP. A step is one frame of
        the single source, or the newest frame of every camera that has one (their regions in one inference)."""
        if not self._entered:
            raise RuntimeError("use the Runtime in a `with` block before iterating decisions()")
        grp, pols, m, clock, run = self.sources, self.policies, self.metrics, self._clock, self.config.run
        several = len(grp) > 1
        sizes = [len(c) for c in self.croppers]
        window = run.batch_window_ms / 1e3  # several cameras: wait this long for the others to join a step's batch
        t_end = None if run.duration_s is None else clock() + run.duration_s
        yield self._locked(lambda: pols.tick_all(clock()))  # STOP (startup) until the first valid frame
        while self.final is None:
            self.notifier.watchdog()  # rate-limited; every iteration, frame or empty poll, proves the loop alive
            if self._stop.is_set() or (run.max_frames is not None and m.frames >= run.max_frames) or \
                    (t_end is not None and clock() >= t_end):
                yield self._finish(Reason.SHUTDOWN, self._stop_detail if self._stop.is_set() else "run limit reached")
                return
            got = grp.read(pols.poll_interval_s, window)
            t_read = clock()
            if not got:
                if grp.finished:
                    yield self._finish(Reason.SOURCE_FAILED if grp.failed else Reason.END_OF_STREAM, grp.failure)
                    return
                m.polls += 1
                yield self._locked(lambda: pols.tick_all(t_read))
                continue
            self._busy_since = t_read  # the watchdog ticks the policies while this step takes too long
            errs: List[Optional[str]] = [None] * len(got)
            xs: List[np.ndarray] = []
            for k, (cam, frame) in enumerate(got):
                if frame.error is not None:  # the grabber could not preprocess it: a fail-safe STOP for its camera
                    errs[k] = "preprocessing failed: %s" % frame.error
                    continue
                x = frame.tensor
                if x is None:  # a source that was not given our transform (a frame from before __enter__)
                    try:
                        x = self.croppers[cam](frame.image)
                    except Exception as exc:  # noqa: BLE001 - as in the grabber
                        errs[k] = "preprocessing failed: %s" % " ".join(("%s: %s" % (type(exc).__name__, exc)).split())
                        continue
                xs.append(x)
            t_pre = clock()
            probs, err = None, None
            if xs:
                n = sum(len(x) for x in xs)
                try:
                    logits = self._infer(xs[0] if len(xs) == 1 else np.concatenate(xs))
                    if n == 1:
                        probs = probabilities(np.reshape(logits, (1, -1)), self._temperature)
                    elif np.ndim(logits) == 2 and len(logits) == n:
                        probs = probabilities(logits, self._temperature)
                    else:
                        err = "the model returned shape %s for a batch of %d" % (np.shape(logits), n)
                except Exception as exc:  # noqa: BLE001 - any backend failure becomes a fail-safe STOP; loop goes on
                    err = " ".join(("%s: %s" % (type(exc).__name__, exc)).split())  # one line
                self.steps += 1
                self.images += n
            t_inf = clock()
            with self._lock:
                self._busy_since = None
                row = 0
                for k, (cam, frame) in enumerate(got):
                    e = errs[k] or err
                    p = None
                    if errs[k] is None:
                        p = None if probs is None else probs[row:row + sizes[cam]]
                        row += sizes[cam]
                    pols.decide(cam, p, t_inf, frame_age_s=t_read - frame.t_capture, latency_s=t_inf - frame.t_capture,
                                error=e, frame_index=frame.index, media_time_s=frame.media_time_s)
                if several and len(got) < len(grp):  # the silent cameras: STOP once silent for source_timeout_ms
                    seen = {cam for cam, _ in got}
                    for cam in range(len(grp)):
                        if cam not in seen:
                            pols.tick(cam, t_inf)
                d = pols.output(t_inf)
                t_pol = clock()
                self.sinks.emit(d)
            t_sink = clock()
            for cam, frame in got:
                # preprocessing ran either in the producer thread (frame.transform_s, part of capture->read's span)
                # or here (t_pre - t_read); capture->read is the rest: grab, hand-over and waiting to be read
                m.table.add((t_read - frame.t_capture - frame.transform_s, frame.transform_s + (t_pre - t_read),
                             t_inf - t_pre, t_pol - t_inf, t_sink - t_pol, t_pol - frame.t_capture))  # STAGES, c->d
            m.frames += len(got)
            m.t_first_frame = t_read if m.t_first_frame is None else m.t_first_frame
            m.t_last_frame = t_read
            if self.observers:
                for _cam, frame in got:
                    self._observe(frame, d)
            if not self.notifier.is_ready and self.notifier.enabled and not d.reason.failsafe:
                self.notifier.ready("deciding: %s" % d.summary())
            yield d

    def run(self, on_decision: Optional[Callable[[Decision], None]] = None) -> Decision:
        """Iterate :meth:`decisions` to the end (calling ``on_decision`` for each); returns the final STOP."""
        last: Optional[Decision] = None
        for last in self.decisions():
            if on_decision is not None:
                on_decision(last)
        assert last is not None
        return last

    # ------------------------------------------------------------------------------------------- helpers
    def _locked(self, make: Callable[[], Decision]) -> Decision:
        with self._lock:
            d = make()
            self.sinks.emit(d)
        return d

    def _finish(self, reason: Reason, detail: str = "") -> Decision:
        with self._lock:
            if self.final is None:
                self.final = self.policies.shutdown(self._clock(), reason, detail)
                self.sinks.emit(self.final)
                self.sinks.flush(timeout=2.0)
                self.notifier.stopping("final %s" % self.final.summary())
            return self.final

    def _backend(self, fn: Callable[..., Any], *args: Any, what: str = "Runner.infer") -> Any:
        """``fn(*args)`` on the runner's thread; :meth:`stop` ends the wait (:class:`Abandoned`)."""
        return self._rthread.call(fn, *args, should_stop=self._stop.is_set, slice_s=0.02, what=what)

    def _infer(self, x: np.ndarray) -> Any:
        return self._backend(self.runner.infer, x)

    def _deactivate(self) -> None:
        """Deactivate the runner on its thread, unless a call abandoned there is still inside it (then the runner is
        left as it is: deactivating it under that call could crash the backend; the process's exit ends it)."""
        rt = self._rthread
        if rt.busy:
            log.warning("the backend has not returned from a call abandoned %.1f s ago: the runner is left active on "
                        "its daemon thread", time.monotonic() - (rt.busy_since or time.monotonic()))
            rt.close()
            return
        t_end = time.monotonic() + 5.0
        try:
            rt.call(self.runner.deactivate, should_stop=lambda: time.monotonic() > t_end, what="Runner.deactivate")
        except Abandoned as exc:
            log.warning("%s", exc)
        finally:
            rt.close()

    @property
    def backend_hung(self) -> bool:
        """True while a backend call abandoned by :meth:`stop` is still running on the runner's daemon thread."""
        return self._rthread.busy and self._stop.is_set()

    def _observe(self, frame: Frame, d: Decision) -> None:
        for fn in self.observers:
            try:
                fn(frame, d)
            except Exception as exc:  # noqa: BLE001 - a display or recorder failing must not stop the machine's loop
                self.metrics.observer_errors += 1
                if self.metrics.observer_errors == 1:
                    log.warning("frame observer %r failed (the loop goes on): %s", fn, exc, exc_info=exc)

    def _watch(self) -> None:
        period = self.policies.poll_interval_s
        while not self._watch_stop.wait(period):
            since = self._busy_since  # a lock-free look first: most wake-ups find the loop idle or on time
            if since is None or self._clock() - since < period:
                continue
            with self._lock:
                since = self._busy_since
                now = self._clock()
                if since is None or self.final is not None or now - since < period:
                    continue
                d = self.policies.tick_all(now)
                if not d.reason.failsafe:  # still the last frame's decision: never repeat a stale GO as a heartbeat
                    continue
                if d.reason is Reason.SOURCE_TIMEOUT:
                    d = dataclasses.replace(d, detail="%s; watchdog: the loop has been on one frame for %.0f ms"
                                            % (d.detail, (now - since) * 1e3))
                self.metrics.watchdog_ticks += 1
                self.sinks.emit(d)
            if d.changed:
                log.warning("watchdog: %s", d.summary())

    # -------------------------------------------------------------------------------------------- report
    def report(self) -> Dict[str, Any]:
        """The run's numbers: per-stage ms, decision latency, FPS, frames, stale/dropped frames, decisions by reason,
        source and sink counters."""
        m = self.metrics
        pol = self.policies.stats()
        ss = self.source.stats

        def per_frame(reason: Reason) -> int:  # frames, not regions: a camera's regions share each frame's fate
            if self.policies.single:
                return pol.get(reason.value, 0)
            return sum(max(p.stats().get(reason.value, 0) for p in row) for row in self.policies.policies)

        cpu = self._cpu + ([time.process_time()] if len(self._cpu) == 1 else [])
        out = {
            "frames": m.frames, "fps": round(m.fps, 2), "polls_without_frame": m.polls,
            "stages_ms": {s: m.stages[s].summary() for s in STAGES},
            "decision_latency_ms": m.latency.summary(),
            "deadline_ms": self.config.policy.timeouts.deadline_ms,
            "deadline_misses": per_frame(Reason.DEADLINE_MISS),
            "stale_frames": per_frame(Reason.STALE_FRAME),
            "dropped_frames": sum(s.stats.dropped for s in self.sources.sources),
            "source": dataclasses.asdict(ss),
            "decisions": pol,
            "watchdog_ticks": m.watchdog_ticks,
            "sinks": {k: dataclasses.asdict(v) for k, v in self.sinks.stats().items()},
            "backend": self.runner.name, "model": self.manifest["model"]["name"],
            # one Runner.infer per step with every region of every camera that had a frame
            "steps": self.steps, "mean_batch": round(self.images / self.steps, 3) if self.steps else None,
            "model_batch": self.runner.fixed_batch,
            #: process CPU time (every thread: grabbers, loop, sinks) per step, from __enter__ to close or now
            "cpu_ms_per_step": round((cpu[1] - cpu[0]) * 1e3 / self.steps, 4) if self.steps and len(cpu) == 2 else None,
        }
        if not self.policies.single:
            out["cameras"] = {str(c.name): {"regions": [r.name for r in c.rects], "source": dataclasses.asdict(s.stats)}
                              for c, s in zip(self.cameras, self.sources.sources)}
        return out

    def format_report(self) -> str:
        """The timing report, as jetson-inference prints it at exit (one line per stage, in ms)."""
        r = self.report()
        lines = ["-" * 72, "Timing Report  %s (%s, %s), %d frames, %.1f FPS" % (
            r["model"], r["backend"], self.sources.describe(), r["frames"], r["fps"]), "-" * 72,
            "%-16s %8s %8s %8s %8s %8s" % ("stage (ms)", "mean", "p50", "p90", "p99", "max")]
        rows = [(s, r["stages_ms"][s]) for s in STAGES] + [("capture->decision", r["decision_latency_ms"])]
        for name, st in rows:
            if st:
                lines.append("%-16s %8.3f %8.3f %8.3f %8.3f %8.3f" % (name, st["mean_ms"], st["p50_ms"], st["p90_ms"],
                                                                     st["p99_ms"], st["max_ms"]))
        lines.append("deadline misses %d (deadline_ms %g) | stale frames %d | dropped frames %d | source timeouts %d | "
                     "inference errors %d" % (r["deadline_misses"], r["deadline_ms"], r["stale_frames"],
                                              r["dropped_frames"], r["decisions"].get("source_timeout", 0),
                                              r["decisions"].get("inference_error", 0)
                                              + r["decisions"].get("non_finite", 0)))
        sink_err = sum(s["errors"] for s in r["sinks"].values())
        sink_drop = sum(s["dropped"] for s in r["sinks"].values())
        if "cameras" in r:
            lines.append("cameras %s | %d steps, mean batch %.2f%s | CPU %.2f ms per step (process, all threads)" % (
                ", ".join("%s (%d regions)" % (k, len(v["regions"])) for k, v in r["cameras"].items()), r["steps"],
                r["mean_batch"] or 0, "" if r["model_batch"] is None else " (model batch %d: sliced)" % r["model_batch"],
                r["cpu_ms_per_step"] or 0))
        lines.append("decisions %d | sinks: %d errors, %d dropped | final: %s" % (
            r["decisions"].get("decisions", 0), sink_err, sink_drop, self.final.summary() if self.final else "-"))
        lines.append("-" * 72)
        return "\n".join(lines)
