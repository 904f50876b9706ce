"""The runtime configuration: typed, frozen dataclasses read from one YAML file.

A config has five sections; only ``policy`` is required::

    source:  where frames come from (a URI in jetson-inference's scheme, size, rate, flip, loop)
    model:   the artifact (``.engine``, ``.onnx``, ``.pt``) and the backend; the CLI may override both
    policy:  rules (class or superclass -> STOP/SLOW/GO, each with a minimum confidence), the default
             action, debouncing, the latch, and the fail-safe timeouts
    sinks:   where decisions go (console, jsonl, udp, gpio, ros2, callback), each with its own options
    run:     options of one run (frame/time limits, display, recording, snapshots)

Each section is declared beside what it configures: the policy's in :mod:`edge_runtime.policy_config`, each
sink's options in :mod:`edge_runtime.sinks`, source/model/run here (this module re-exports them all). This
module parses them with the one typed parser (:class:`edge_runtime.schema.Parser`): :func:`load_config` reads with a ``yaml.SafeLoader`` that also refuses a key
given twice, and checks every key and type here, at the edge, so the loop only ever sees typed values; a
numeric CLI flag is checked by the same rule as its key (:func:`flag_type`). Every mistake is one line that
names the key path and what was expected, e.g.::

    vehicle.yaml: policy.rules[2].min_confidence: expected a number in [0, 1], got 'high'

Class names are only known once the model's manifest is read: :meth:`PolicyConfig.validate_against`
(or :meth:`RuntimeConfig.validate_against`) checks every rule against the model's class and superclass
names and lists the valid ones when a name is unknown.

Times in the YAML are in milliseconds (``*_ms``) or seconds (``*_s``), as the key says.
"""
from __future__ import annotations

import dataclasses
import enum
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple, Union, get_type_hints

from .errors import EdgeRuntimeError
from .fsio import PathLike, write_text_atomic
from .policy import Action
from .policy_config import DebounceConfig, LatchConfig, PolicyConfig, Rule, TimeoutsConfig
from .schema import ConfigError, Parser, check_range, describe, opt, range_text
from .regions import Region, check_rule_names, expand, regions_as_list

__all__ = [
    "Action", "ConfigError", "SourceConfig", "CameraConfig", "ModelConfig", "Rule", "DebounceConfig", "LatchConfig",
    "TimeoutsConfig", "PolicyConfig", "SinkConfig", "RunConfig", "RuntimeConfig", "ConsoleSinkOptions",
    "JsonlSinkOptions", "UdpSinkOptions", "GpioSinkOptions", "Ros2SinkOptions", "CallbackSinkOptions",
    "load_config", "parse_config", "config_to_dict", "apply_overrides", "save_config",
    "register_sink_options", "sink_option_types", "FLIP_METHODS", "read_yaml", "flag_type",
]


_opt = opt  # the field helper, under the name the sections below use


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
    rate: Optional[float] = _opt(None, lo=0)  # 0 is the same as unset: read every frame as fast as it is taken
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
    #: decoding off the core inference runs on (FFmpeg's default puts a decoder thread there and slows each
    #: inference on a 2-core CPU; no committed timing). (Streams keep FFmpeg's default: a high-resolution camera
    #: stream may need more than one decoder thread to keep up.)
    decode_threads: int = _opt(1, lo=0)

    def __post_init__(self) -> None:
        if self.rate == 0:  # `rate: 0` (YAML, --rate 0, overrides) means unpaced, as None does
            object.__setattr__(self, "rate", None)
        if (self.width is None) != (self.height is None):
            raise ConfigError("width" if self.width is None else "height", "give both width and height, or neither")
        if self.reconnect_max_ms < self.reconnect_initial_ms:
            raise ConfigError("reconnect_max_ms", "%g is less than reconnect_initial_ms (%g)"
                              % (self.reconnect_max_ms, self.reconnect_initial_ms))


@dataclasses.dataclass(frozen=True)
class CameraConfig(SourceConfig):
    """One entry of ``sources:`` (several cameras, batched into one inference): a :class:`SourceConfig` with a
    ``name`` (in events and reports) and its own ``regions`` (default: the config's top-level ``regions:``)."""

    name: Optional[str] = None
    regions: Optional[Tuple[Region, ...]] = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.name:
            raise ConfigError("name", "missing: every entry of sources needs a name (front, rear, ...)")
        if not self.uri:
            raise ConfigError("uri", "missing: the camera's URI (csi://0, /dev/video1, rtsp://..., a file)")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The artifact to run. ``manifest`` overrides the sidecar ``<artifact>.json`` when given."""

    path: Optional[str] = None
    backend: str = "auto"
    manifest: Optional[str] = None


# ---------------------------------------------------------------------------------------------- policy
# The policy's section lives beside the policy (policy_config.py), each sink's options beside the sink
# (edge_runtime/sinks/); this module re-exports them and parses them.

# ----------------------------------------------------------------------------------------------- sinks
#: sink type -> its options dataclass, filled by sinks.register_sink (the built-in sinks register when
#: edge_runtime.sinks is imported: _sink_options() imports it).
_SINK_OPTIONS: Dict[str, type] = {}
_SINK_OPTION_NAMES = ("ConsoleSinkOptions", "JsonlSinkOptions", "UdpSinkOptions", "GpioSinkOptions",
                      "Ros2SinkOptions", "CallbackSinkOptions")


def __getattr__(name: str) -> Any:
    """The sinks' option classes, re-exported from :mod:`edge_runtime.sinks` (imported on first use: sinks
    imports this module)."""
    if name in _SINK_OPTION_NAMES:
        from . import sinks

        return getattr(sinks, name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def _sink_options() -> Dict[str, type]:
    from . import sinks  # noqa: F401 - registers the built-in sink types

    return _SINK_OPTIONS


def register_sink_options(name: str, options_type: type) -> None:
    """Declare the options dataclass of a sink type (``sinks.register_sink`` calls this)."""
    if not dataclasses.is_dataclass(options_type):
        raise TypeError("options_type for sink %r must be a dataclass, got %r" % (name, options_type))
    if name in _SINK_OPTIONS and _SINK_OPTIONS[name] is not options_type:
        raise ValueError("sink type %r is already registered" % name)
    _SINK_OPTIONS[name] = options_type


def sink_option_types() -> Dict[str, type]:
    """The known sink types and their options dataclasses."""
    return dict(_sink_options())


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
    #: several cameras: after the first new frame of a step, wait up to this long for the other cameras' next frames
    #: so they share the step's one inference (0: take what is there; unsynchronized cameras then mostly alternate)
    batch_window_ms: float = _opt(0.0, lo=0, hi=1000)


@dataclasses.dataclass(frozen=True)
class RuntimeConfig:
    """The whole runtime YAML, parsed."""

    policy: PolicyConfig
    source: SourceConfig = _opt(SourceConfig)
    model: ModelConfig = _opt(ModelConfig)
    sinks: Tuple[SinkConfig, ...] = ()
    run: RunConfig = _opt(RunConfig)
    #: Regions of interest of ``source`` (and of every camera in ``sources`` without its own): named rectangles
    #: or a grid, each classified on its own (:mod:`edge_runtime.regions`); none: the whole frame.
    regions: Tuple[Region, ...] = ()
    #: Several named cameras, batched into one inference per step; instead of ``source``.
    sources: Tuple[CameraConfig, ...] = ()
    #: Where it was read from (for messages); not a YAML key.
    origin: str = dataclasses.field(default="config", compare=False)

    def __post_init__(self) -> None:
        expand(self.regions)  # duplicate names
        check_rule_names(self.policy, self.regions, "regions")
        names = [c.name for c in self.sources]
        for i, cam in enumerate(self.sources):
            if names.index(cam.name) != i:
                raise ConfigError("sources[%d].name" % i, "%r is used twice; give every camera its own name" % cam.name)
            expand(cam.regions or (), "sources[%d].regions" % i)
            check_rule_names(self.policy, cam.regions or (), "sources[%d].regions" % i)
        if self.sources and self.source.uri:
            raise ConfigError("sources", "give source (one camera) or sources (several), not both; move source.uri "
                                         "into a sources entry with a name")

    def validate_against(self, class_names: Sequence[str], superclass_names: Optional[Sequence[str]] = None) -> None:
        """Check the policy's rules against the model's names (see :meth:`PolicyConfig.validate_against`)."""
        try:
            self.policy.validate_against(class_names, superclass_names)
        except EdgeRuntimeError as exc:
            raise EdgeRuntimeError("%s: %s" % (self.origin, exc))


# ---------------------------------------------------------------------------------------------- parsing
# The parser itself is schema.Parser (shared with the training config and the manifest); the runtime config adds
# one rule: a sink's options sit beside its ``type`` and are checked against that type's options dataclass.
_describe, _range_text, _check_range = describe, range_text, check_range  # their former names here


def _parse_sink(parser: Parser, data: Any, path: str) -> SinkConfig:
    if not isinstance(data, Mapping):
        raise parser.error(path, "a mapping with a 'type' key", data)
    registry = _sink_options()
    kinds = sorted(registry)
    kind = data.get("type")
    if kind not in registry:
        raise parser.error(path + ".type", "one of " + ", ".join(kinds), kind)
    queue_size = 64
    if "queue_size" in data:
        queue_size = parser.value(int, data["queue_size"], path + ".queue_size", {"lo": 1})
    rest = {k: v for k, v in data.items() if k not in ("type", "queue_size")}
    try:
        options = parser.dataclass(registry[kind], rest, path)
    except EdgeRuntimeError as exc:
        text = str(exc)
        if "unknown key; expected one of " in text:  # add the keys every sink has
            text = text.replace(" (fix its spelling", ", type, queue_size (fix its spelling", 1)
            raise EdgeRuntimeError(text)
        raise
    return SinkConfig(type=str(kind), options=options, queue_size=queue_size)


def _parser() -> Parser:
    return Parser(special={SinkConfig: _parse_sink})


def parse_config(data: Any, origin: str = "config") -> RuntimeConfig:
    """Plain data (as from ``yaml.safe_load``) -> :class:`RuntimeConfig`; errors name ``origin`` and the key path."""
    if data is None:
        raise EdgeRuntimeError("%s: the config is empty; it needs at least a policy section with rules" % origin)
    try:
        cfg = _parser().dataclass(RuntimeConfig, regions_as_list(data), "")
    except EdgeRuntimeError as exc:
        raise EdgeRuntimeError("%s: %s" % (origin, exc)) from None
    return dataclasses.replace(cfg, origin=origin)


_LOADER: Any = None


def _unique_key_loader() -> Any:
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (at any level): plain YAML keeps the
    last one silently, so a second ``policy:`` would replace the first. Merge keys (``<<: *base``) may still be
    overridden, as YAML means them to."""
    global _LOADER
    if _LOADER is None:
        import yaml

        class UniqueKeyLoader(yaml.SafeLoader):
            def construct_mapping(self, node: Any, deep: bool = False) -> Any:
                if isinstance(node, yaml.MappingNode):
                    first: Dict[Any, Any] = {}
                    for key_node, _ in node.value:
                        if key_node.tag == "tag:yaml.org,2002:merge":
                            continue
                        key = self.construct_object(key_node, deep=True)
                        try:
                            earlier = first.setdefault(key, key_node.start_mark)
                        except TypeError:  # an unhashable key: SafeLoader's own error
                            break
                        if earlier is not key_node.start_mark:
                            raise yaml.constructor.ConstructorError(
                                None, None, "key %r given twice (first on line %d); keep one" % (key, earlier.line + 1),
                                key_node.start_mark)
                return super().construct_mapping(node, deep=deep)

        _LOADER = UniqueKeyLoader
    return _LOADER


def read_yaml(path: PathLike, hint: str = "see deploy/configs/ for examples") -> Any:
    """``yaml.safe_load`` of a file (no Python objects from YAML tags; a key given twice is an error), with
    one-line errors.

    Shared by every YAML the project reads (runtime configs here, training configs and grids in train/).
    """
    import yaml

    p = Path(path)
    if not p.is_file():
        raise EdgeRuntimeError("config not found: %s; %s" % (p, hint))
    try:
        return yaml.load(p.read_text(), Loader=_unique_key_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = " (line %d, column %d)" % (mark.line + 1, mark.column + 1) if mark is not None else ""
        raise EdgeRuntimeError("%s: not valid YAML%s: %s" % (p, where, getattr(exc, "problem", None) or exc))
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgeRuntimeError("%s: cannot read the config (%s)" % (p, exc))


#: the config section of each dataclass a CLI flag may be checked against (for the message)
_SECTION_NAMES: Dict[str, str] = {"SourceConfig": "source", "RunConfig": "run", "ModelConfig": "model"}


def flag_type(section: Any, key: Optional[str] = None, lo: Optional[float] = None, hi: Optional[float] = None,
              lo_open: bool = False, hi_open: bool = False) -> Callable[[str], Any]:
    """An argparse ``type=`` that checks a numeric CLI flag by the same rule as its config key, so
    ``--max-frames -1`` fails like ``run.max_frames: -1`` but names the flag (argparse prefixes it)::

        p.add_argument("--max-frames", type=flag_type(RunConfig, "max_frames"))
        p.add_argument("--threads", type=flag_type(int, lo=0))        # a flag without a config key

    The error is argparse's one line, exit 2, before any work.
    """
    if key is not None:
        field = {f.name: f for f in dataclasses.fields(section)}[key]
        tp, meta = get_type_hints(section)[key], dict(field.metadata)
        where = " (as %s.%s in a config)" % (_SECTION_NAMES.get(section.__name__, section.__name__), key)
    else:
        tp, meta, where = section, {"lo": lo, "hi": hi, "lo_open": lo_open, "hi_open": hi_open}, ""
    base = tp
    if getattr(tp, "__origin__", None) is Union:
        base = [a for a in tp.__args__ if a is not type(None)][0]
    if base not in (int, float):
        raise TypeError("flag_type: %r is not an int or float field" % (tp,))  # a bug in the caller

    def parse(text: str) -> Any:
        import argparse

        try:
            value = base(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError("expected %s%s, got %r%s" % (
                "an integer" if base is int else "a number", range_text(meta), text, where)) from None
        try:
            return Parser().value(base, value, "flag", meta)
        except EdgeRuntimeError as exc:
            raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1] + where) from None

    parse.__name__ = base.__name__
    return parse


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

    ``None`` sets a key to null (``{"run.duration_s": None}`` removes the config's limit); ``source.width`` or
    ``source.height`` set to None clears both (the source's own size). Unknown keys are one-line errors.
    """
    data = config_to_dict(cfg)
    for dotted, value in overrides.items():
        if value is None and dotted in ("source.width", "source.height"):
            data["source"]["width"] = data["source"]["height"] = None
            continue
        node: Any = data
        keys = dotted.split(".")
        for key in keys[:-1]:
            if not isinstance(node, dict) or key not in node:
                raise EdgeRuntimeError("override %s: unknown section %r" % (dotted, key))
            node = node[key]
        node[keys[-1]] = value
    return parse_config(data, origin=cfg.origin)

