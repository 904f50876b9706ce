"""The runtime configuration: typed, frozen dataclasses read from one YAML file.

A config has five sections; only ``policy`` is required::

    source:  where frames come from (a URI in jetson-inference's scheme, size, rate, flip, loop)
    model:   the artifact (``.engine``, ``.onnx``, ``.pt``) and the backend; the CLI may override both
    policy:  rules (class or superclass -> STOP/SLOW/GO, each with a minimum confidence), the default
             action, debouncing, the latch, and the fail-safe timeouts
    sinks:   where decisions go (console, jsonl, udp, gpio, ros2, callback), each with its own options
    run:     options of one run (frame/time limits, display, recording, snapshots)

:func:`load_config` parses with ``yaml.safe_load`` and checks every key and type here, at the edge, so
the loop only ever sees typed values. Every mistake is one line that names the key path and what was
expected, e.g.::

    vehicle.yaml: policy.rules[2].min_confidence: expected a number in [0, 1], got 'high'

Class names are only known once the model's manifest is read: :meth:`PolicyConfig.validate_against`
(or :meth:`RuntimeConfig.validate_against`) checks every rule against the model's class and superclass
names and lists the valid ones when a name is unknown.

Times in the YAML are in milliseconds (``*_ms``) or seconds (``*_s``), as the key says.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Type, Union, get_type_hints

from .errors import EdgeRuntimeError
from .fsio import PathLike, write_text_atomic
from .policy import Action

__all__ = [
    "Action", "ConfigError", "SourceConfig", "ModelConfig", "Rule", "DebounceConfig", "LatchConfig",
    "TimeoutsConfig", "PolicyConfig", "SinkConfig", "RunConfig", "RuntimeConfig", "ConsoleSinkOptions",
    "JsonlSinkOptions", "UdpSinkOptions", "GpioSinkOptions", "Ros2SinkOptions", "CallbackSinkOptions",
    "load_config", "parse_config", "config_to_dict", "apply_overrides", "save_config",
    "register_sink_options", "sink_option_types", "FLIP_METHODS",
]


class ConfigError(EdgeRuntimeError):
    """A config value is wrong. Raised with the field name; the parser prefixes the full key path."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__("%s: %s" % (key, message) if key else message)
        self.key = key
        self.detail = " ".join(str(message).split())


def _opt(default: Any = dataclasses.MISSING, lo: Optional[float] = None, hi: Optional[float] = None,
         lo_open: bool = False, choices: Optional[Sequence[str]] = None) -> Any:
    """A dataclass field carrying the constraints the YAML parser checks (range, allowed strings).

    ``default`` may be a value, ``dataclasses.MISSING`` (the key is required) or a dataclass type
    (its default instance).
    """
    meta = {"lo": lo, "hi": hi, "lo_open": lo_open, "choices": tuple(choices) if choices else None}
    if isinstance(default, type) and dataclasses.is_dataclass(default):
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ---------------------------------------------------------------------------------------------- source
#: jetson-inference's ``--input-flip`` names, in nvvidconv ``flip-method`` order (0..7).
FLIP_METHODS = ("none", "counterclockwise", "rotate-180", "clockwise", "horizontal", "upper-right-diagonal",
                "vertical", "upper-left-diagonal")


@dataclasses.dataclass(frozen=True)
class SourceConfig:
    """Where frames come from. See :mod:`edge_runtime.sources` for the URI forms.

    ``width``/``height`` are the size the loop receives (a CSI camera scales to it in hardware; other
    sources are resized in the grabber thread). ``rate`` is frames per second: for cameras the rate
    asked of the device; for files and image folders it paces playback like a live camera (newest
    frame only, drops when the consumer is slow); unset, files are read as fast as they are consumed,
    losing no frame.
    """

    uri: Optional[str] = None
    width: Optional[int] = _opt(None, lo=1)
    height: Optional[int] = _opt(None, lo=1)
    rate: Optional[float] = _opt(None, lo=0, lo_open=True)
    flip: str = _opt("none", choices=FLIP_METHODS)
    loop: bool = False
    #: CSI sensor mode asked of nvarguscamerasrc before nvvidconv scales down to width x height.
    capture_width: int = _opt(1280, lo=1)
    capture_height: int = _opt(720, lo=1)
    #: RTSP jitter buffer (GStreamer rtspsrc latency); 0 = lowest latency.
    latency_ms: int = _opt(0, lo=0)
    open_timeout_ms: float = _opt(5000.0, lo=0, lo_open=True)
    #: Reconnect backoff for cameras and streams: doubles from initial to max after each failure.
    reconnect_initial_ms: float = _opt(250.0, lo=0, lo_open=True)
    reconnect_max_ms: float = _opt(5000.0, lo=0, lo_open=True)
    #: FFmpeg decoder threads for video files; 0 = FFmpeg's default, one per core. 1 (the default) keeps
    #: decoding off the core inference runs on: with FFmpeg's default, the bundled INT8 model's inference slowed
    #: from 0.54 to 0.75 ms per frame on a 2-core CPU, with 1 thread to 0.60. (Streams keep FFmpeg's default:
    #: a high-resolution camera stream may need more than one decoder thread to keep up.)
    decode_threads: int = _opt(1, lo=0)

    def __post_init__(self) -> None:
        if (self.width is None) != (self.height is None):
            raise ConfigError("width" if self.width is None else "height", "give both width and height, or neither")
        if self.reconnect_max_ms < self.reconnect_initial_ms:
            raise ConfigError("reconnect_max_ms", "%g is less than reconnect_initial_ms (%g)"
                              % (self.reconnect_max_ms, self.reconnect_initial_ms))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The artifact to run. ``manifest`` overrides the sidecar ``<artifact>.json`` when given."""

    path: Optional[str] = None
    backend: str = "auto"
    manifest: Optional[str] = None


# ---------------------------------------------------------------------------------------------- policy
@dataclasses.dataclass(frozen=True)
class Rule:
    """Frames whose probability MASS on ``classes`` plus the fine classes of ``superclasses`` is at least
    ``min_confidence`` ask for ``action``.

    Mass, not argmax: a CIFAR-100 model looking at a fox may spread 0.7 over wolf, fox and raccoon while
    its argmax is "lawn_mower" at 0.3; the rule asks "is this one of those?", and the mass answers it.
    """

    action: Action
    classes: Tuple[str, ...] = ()
    superclasses: Tuple[str, ...] = ()
    min_confidence: float = _opt(0.5, lo=0, hi=1)
    #: A short label for logs and sinks ("animals"); defaults to ``rules[i]``.
    name: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.classes and not self.superclasses:
            raise ConfigError("", "a rule needs classes or superclasses (or both)")


@dataclasses.dataclass(frozen=True)
class DebounceConfig:
    """Trigger a more restrictive action when ``trigger_k`` of the last ``trigger_n`` frames ask for it (or
    for something stricter); release it after ``release_m`` consecutive frames that ask for less, and not
    before it has been held ``min_hold_ms``."""

    trigger_k: int = _opt(2, lo=1)
    trigger_n: int = _opt(3, lo=1)
    release_m: int = _opt(5, lo=1)
    min_hold_ms: float = _opt(1000.0, lo=0)

    def __post_init__(self) -> None:
        if self.trigger_k > self.trigger_n:
            raise ConfigError("trigger_k", "%d is more than trigger_n (%d)" % (self.trigger_k, self.trigger_n))


@dataclasses.dataclass(frozen=True)
class LatchConfig:
    """``stop``: a STOP from a rule stays until :meth:`Policy.reset` (for machines that must not restart by
    themselves). ``faults``: fail-safe STOPs (lost camera, inference error, ...) latch too."""

    stop: bool = False
    faults: bool = False


@dataclasses.dataclass(frozen=True)
class TimeoutsConfig:
    """Fail-safe limits, in milliseconds.

    ``source_timeout_ms``: no fresh frame for this long -> STOP. ``max_frame_age_ms``: a frame older
    than this when the loop takes it -> STOP (its content is history). ``deadline_ms``: a decision later
    than this after capture -> ``deadline_action`` (STOP or SLOW).
    """

    source_timeout_ms: float = _opt(500.0, lo=0, lo_open=True)
    max_frame_age_ms: float = _opt(200.0, lo=0, lo_open=True)
    deadline_ms: float = _opt(250.0, lo=0, lo_open=True)
    deadline_action: Action = _opt(Action.STOP, choices=("STOP", "SLOW"))


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """Rules, the default action for frames no rule claims, debouncing, latch and fail-safe timeouts."""

    rules: Tuple[Rule, ...]
    default_action: Action = Action.GO
    debounce: DebounceConfig = _opt(DebounceConfig)
    latch: LatchConfig = _opt(LatchConfig)
    timeouts: TimeoutsConfig = _opt(TimeoutsConfig)

    def rule_label(self, i: int) -> str:
        """The label a rule reports: its ``name`` or ``rules[i]``."""
        return self.rules[i].name or "rules[%d]" % i

    def validate_against(self, class_names: Sequence[str], superclass_names: Optional[Sequence[str]] = None,
                         path: str = "policy") -> None:
        """Check every rule's names against the model's; unknown names raise one line listing the valid ones."""
        known = set(class_names)
        known_super = set(superclass_names or ())
        for i, rule in enumerate(self.rules):
            for name in rule.classes:
                if name not in known:
                    raise EdgeRuntimeError("%s.rules[%d].classes: unknown class %r; the model's classes are: %s"
                                           % (path, i, name, ", ".join(class_names)))
            if rule.superclasses and not superclass_names:
                raise EdgeRuntimeError("%s.rules[%d].superclasses: the model has no superclasses (its manifest lists "
                                       "none; CIFAR-100 models have 20); use classes, one of: %s"
                                       % (path, i, ", ".join(class_names)))
            for name in rule.superclasses:
                if name not in known_super:
                    raise EdgeRuntimeError("%s.rules[%d].superclasses: unknown superclass %r; the model's superclasses "
                                           "are: %s" % (path, i, name, ", ".join(superclass_names or ())))


# ----------------------------------------------------------------------------------------------- sinks
@dataclasses.dataclass(frozen=True)
class ConsoleSinkOptions:
    """One line per change of action to stdout (or stderr)."""

    stream: str = _opt("stdout", choices=("stdout", "stderr"))
    heartbeat_s: Optional[float] = _opt(None, lo=0, lo_open=True)


@dataclasses.dataclass(frozen=True)
class JsonlSinkOptions:
    """Every change and a periodic heartbeat as one JSON object per line; flushed per line, fsynced on STOP,
    rotated by size (``path`` -> ``path.1`` ... ``path.<backups>``)."""

    path: str
    heartbeat_s: Optional[float] = _opt(5.0, lo=0, lo_open=True)
    max_bytes: int = _opt(10000000, lo=1024)
    backups: int = _opt(5, lo=0)
    fsync_on_stop: bool = True


@dataclasses.dataclass(frozen=True)
class UdpSinkOptions:
    """JSON datagrams to ``host:port``: every change and a heartbeat; a receiver should stop the machine
    when datagrams cease for a few heartbeat periods. Sends only: opens no listening socket."""

    port: int = _opt(dataclasses.MISSING, lo=1, hi=65535)
    host: str = "127.0.0.1"
    heartbeat_s: Optional[float] = _opt(0.2, lo=0, lo_open=True)


@dataclasses.dataclass(frozen=True)
class GpioSinkOptions:
    """A Jetson GPIO line, energized only while motion is allowed (de-energized = STOP): ``pin`` is
    energized for GO and SLOW, ``slow_pin`` (optional) only for GO. Pins are ``mode`` numbers.
    ``heartbeat_s`` applies only with a ``watchdog_pin``."""

    pin: int = _opt(dataclasses.MISSING, lo=0)
    slow_pin: Optional[int] = _opt(None, lo=0)
    mode: str = _opt("BOARD", choices=("BOARD", "BCM", "CVM", "TEGRA_SOC"))
    active_high: bool = True
    #: toggled on every heartbeat, for an external watchdog relay that drops out when the toggling stops
    watchdog_pin: Optional[int] = _opt(None, lo=0)
    heartbeat_s: Optional[float] = _opt(0.1, lo=0, lo_open=True)


@dataclasses.dataclass(frozen=True)
class Ros2SinkOptions:
    """A std_msgs/String (JSON) on ``topic`` for every change and a heartbeat."""

    topic: str = "/edge_runtime/decision"
    node_name: str = "edge_runtime"
    heartbeat_s: Optional[float] = _opt(1.0, lo=0, lo_open=True)
    qos_depth: int = _opt(10, lo=1)


@dataclasses.dataclass(frozen=True)
class CallbackSinkOptions:
    """A Python callable ``module:function`` taking a Decision; every decision or only changes."""

    target: str
    every_decision: bool = False
    heartbeat_s: Optional[float] = _opt(None, lo=0, lo_open=True)


_SINK_OPTIONS: Dict[str, type] = {
    "console": ConsoleSinkOptions, "jsonl": JsonlSinkOptions, "udp": UdpSinkOptions,
    "gpio": GpioSinkOptions, "ros2": Ros2SinkOptions, "callback": CallbackSinkOptions,
}


def register_sink_options(name: str, options_type: type) -> None:
    """Declare the options dataclass of a sink type (``sinks.register_sink`` calls this)."""
    if not dataclasses.is_dataclass(options_type):
        raise TypeError("options_type for sink %r must be a dataclass, got %r" % (name, options_type))
    if name in _SINK_OPTIONS and _SINK_OPTIONS[name] is not options_type:
        raise ValueError("sink type %r is already registered" % name)
    _SINK_OPTIONS[name] = options_type


def sink_option_types() -> Dict[str, type]:
    """The known sink types and their options dataclasses."""
    return dict(_SINK_OPTIONS)


@dataclasses.dataclass(frozen=True)
class SinkConfig:
    """One sink: its ``type`` (a registered name), its typed ``options``, and its queue size.

    In YAML the options sit beside ``type``: ``{type: udp, port: 5005, heartbeat_s: 0.2}``.
    """

    type: str
    options: Any = None
    #: The sink's bounded queue: when full, the oldest non-STOP item is dropped (and counted).
    queue_size: int = 64


# ------------------------------------------------------------------------------------------------- run
@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Options of one run; the CLI flags of ``edge-runtime run`` override them."""

    max_frames: Optional[int] = _opt(None, lo=1)
    duration_s: Optional[float] = _opt(None, lo=0, lo_open=True)
    display: bool = False
    record: Optional[str] = None
    snapshots: Optional[str] = None
    report: bool = True


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """The whole runtime YAML, parsed."""

    policy: PolicyConfig
    source: SourceConfig = _opt(SourceConfig)
    model: ModelConfig = _opt(ModelConfig)
    sinks: Tuple[SinkConfig, ...] = ()
    run: RunConfig = _opt(RunConfig)
    #: Where it was read from (for messages); not a YAML key.
    origin: str = dataclasses.field(default="config", compare=False)

    def validate_against(self, class_names: Sequence[str], superclass_names: Optional[Sequence[str]] = None) -> None:
        """Check the policy's rules against the model's names (see :meth:`PolicyConfig.validate_against`)."""
        try:
            self.policy.validate_against(class_names, superclass_names)
        except EdgeRuntimeError as exc:
            raise EdgeRuntimeError("%s: %s" % (self.origin, exc))


# ---------------------------------------------------------------------------------------------- parsing
def _describe(value: Any) -> str:
    """How a received value is shown in an error: strings quoted, YAML spellings for the rest."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)


def _range_text(meta: Mapping[str, Any]) -> str:
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and hi is not None:
        return " in [%g, %g]" % (lo, hi)
    if lo is not None:
        return " %s %g" % (">" if meta.get("lo_open") else ">=", lo)
    if hi is not None:
        return " <= %g" % hi
    return ""


def _check_range(value: float, meta: Mapping[str, Any]) -> bool:
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        return False
    return hi is None or value <= hi


class _Parser:
    """Turns plain YAML data into the dataclasses above, naming the key path of every mistake."""

    def value(self, tp: Any, data: Any, path: str, meta: Mapping[str, Any]) -> Any:
        origin = getattr(tp, "__origin__", None)
        args: Tuple[Any, ...] = tuple(getattr(tp, "__args__", ()) or ())
        if origin is Union:  # Optional[X]
            if data is None:
                return None
            inner = [a for a in args if a is not type(None)]
            return self.value(inner[0], data, path, meta)
        if origin in (tuple, Tuple):
            item_tp = args[0]
            if not isinstance(data, (list, tuple)):
                raise EdgeRuntimeError("%s: expected a list, got %s" % (path, _describe(data)))
            return tuple(self.value(item_tp, x, "%s[%d]" % (path, i), meta) for i, x in enumerate(data))
        if tp is Any:
            return data
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            return self.enum(tp, data, path, meta)
        if tp is bool:
            if not isinstance(data, bool):
                raise EdgeRuntimeError("%s: expected true or false, got %s" % (path, _describe(data)))
            return data
        if tp is int:
            if isinstance(data, bool) or not isinstance(data, int) or not _check_range(data, meta):
                raise EdgeRuntimeError("%s: expected an integer%s, got %s" % (path, _range_text(meta), _describe(data)))
            return data
        if tp is float:
            ok = isinstance(data, (int, float)) and not isinstance(data, bool)
            if not ok or not math.isfinite(float(data)) or not _check_range(float(data), meta):
                raise EdgeRuntimeError("%s: expected a number%s, got %s" % (path, _range_text(meta), _describe(data)))
            return float(data)
        if tp is str:
            if not isinstance(data, str) or not data:
                raise EdgeRuntimeError("%s: expected a non-empty string, got %s" % (path, _describe(data)))
            choices = meta.get("choices")
            if choices and data not in choices:
                raise EdgeRuntimeError("%s: expected one of %s, got %s" % (path, ", ".join(choices), _describe(data)))
            return data
        if dataclasses.is_dataclass(tp):
            return self.dataclass(tp, data, path)
        raise TypeError("config parser: unsupported type %r at %s" % (tp, path))  # a bug in this module

    def enum(self, tp: Type[enum.Enum], data: Any, path: str, meta: Mapping[str, Any]) -> Any:
        names = list(meta.get("choices") or [m.name for m in tp])
        if isinstance(data, str) and data.upper() in names:
            return tp[data.upper()]
        raise EdgeRuntimeError("%s: expected one of %s, got %s" % (path, ", ".join(names), _describe(data)))

    def dataclass(self, cls: Any, data: Any, path: str) -> Any:
        if cls is SinkConfig:
            return self.sink(data, path)
        if not isinstance(data, Mapping):
            raise EdgeRuntimeError("%s: expected a mapping, got %s" % (path or "config", _describe(data)))
        fields = [f for f in dataclasses.fields(cls) if f.init and f.name != "origin"]
        names = [f.name for f in fields]
        for key in data:
            if key not in names:
                raise EdgeRuntimeError("%s: unknown key; valid keys here: %s" % (_join(path, str(key)), ", ".join(names)))
        hints = get_type_hints(cls)
        kwargs: Dict[str, Any] = {}
        for f in fields:
            sub = _join(path, f.name)
            if f.name not in data:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
                    raise EdgeRuntimeError("%s: missing (required)" % sub)
                continue
            kwargs[f.name] = self.value(hints[f.name], data[f.name], sub, f.metadata)
        try:
            return cls(**kwargs)
        except ConfigError as exc:
            raise EdgeRuntimeError("%s: %s" % (_join(path, exc.key) if exc.key else (path or "config"), exc.detail))

    def sink(self, data: Any, path: str) -> SinkConfig:
        if not isinstance(data, Mapping):
            raise EdgeRuntimeError("%s: expected a mapping with a 'type' key, got %s" % (path, _describe(data)))
        kinds = sorted(_SINK_OPTIONS)
        kind = data.get("type")
        if kind not in _SINK_OPTIONS:
            raise EdgeRuntimeError("%s.type: expected one of %s, got %s" % (path, ", ".join(kinds), _describe(kind)))
        queue_size = 64
        if "queue_size" in data:
            queue_size = self.value(int, data["queue_size"], path + ".queue_size", {"lo": 1})
        rest = {k: v for k, v in data.items() if k not in ("type", "queue_size")}
        try:
            options = self.dataclass(_SINK_OPTIONS[kind], rest, path)
        except EdgeRuntimeError as exc:
            if "unknown key" in str(exc):  # add the keys every sink has
                raise EdgeRuntimeError("%s, type, queue_size" % exc)
            raise
        return SinkConfig(type=str(kind), options=options, queue_size=queue_size)


def _join(path: str, key: str) -> str:
    return "%s.%s" % (path, key) if path else key


def parse_config(data: Any, origin: str = "config") -> RuntimeConfig:
    """Plain data (as from ``yaml.safe_load``) -> :class:`RuntimeConfig`; errors name ``origin`` and the key path."""
    if data is None:
        raise EdgeRuntimeError("%s: the config is empty; it needs at least a policy section with rules" % origin)
    try:
        cfg = _Parser().dataclass(RuntimeConfig, data, "")
    except EdgeRuntimeError as exc:
        raise EdgeRuntimeError("%s: %s" % (origin, exc))
    return dataclasses.replace(cfg, origin=origin)


def read_yaml(path: PathLike, hint: str = "see deploy/configs/ for examples") -> Any:
    """``yaml.safe_load`` of a file (no Python objects from YAML tags), with one-line errors.

    Shared by every YAML the project reads (runtime configs here, training configs and grids in train/).
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise EdgeRuntimeError("config not found: %s; %s" % (p, hint))
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " (line %d, column %d)" % (mark.line + 1, mark.column + 1) if mark is not None else ""
        raise EdgeRuntimeError("%s: not valid YAML%s: %s" % (p, where, getattr(exc, "problem", None) or exc))
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeRuntimeError("%s: cannot read the config (%s)" % (p, exc))


def load_config(path: PathLike) -> RuntimeConfig:
    """Read and check a runtime YAML file."""
    return parse_config(read_yaml(path), origin=str(path))


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if isinstance(value, SinkConfig):
            out: Dict[str, Any] = {"type": value.type}
            out.update(_plain(value.options) if value.options is not None else {})
            out["queue_size"] = value.queue_size
            return out
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.name != "origin"}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_to_dict(cfg: RuntimeConfig) -> Dict[str, Any]:
    """The config as plain data that :func:`parse_config` reads back to an equal config."""
    return _plain(cfg)


def save_config(cfg: RuntimeConfig, path: PathLike) -> None:
    """Write the resolved config (after CLI overrides) beside a run, atomically."""
    import yaml

    write_text_atomic(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


def apply_overrides(cfg: RuntimeConfig, overrides: Mapping[str, Any]) -> RuntimeConfig:
    """Set dotted keys (``{"source.uri": "clip.mp4", "run.max_frames": 100}``), checked like the YAML.

    ``None`` values are skipped, so CLI flags that were not given can be passed straight through.
    """
    data = config_to_dict(cfg)
    for dotted, value in overrides.items():
        if value is None:
            continue
        node: Any = data
        keys = dotted.split(".")
        for key in keys[:-1]:
            if not isinstance(node, dict) or key not in node:
                raise EdgeRuntimeError("override %s: unknown section %r" % (dotted, key))
            node = node[key]
        node[keys[-1]] = value
    return parse_config(data, origin=cfg.origin)

