"""From a URI to a source: the scheme registry, :func:`create_source` / :func:`open_source`, :func:`is_camera`, and
:func:`source_options` (the options a source is opened with)."""
from __future__ import annotations

import dataclasses
import glob as _glob
import os
import re
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Union

from ..config import SourceConfig
from ..errors import EdgeRuntimeError
from .base import IMAGE_EXTENSIONS, SUPPORTED, Source
from .capture import CaptureSource
from .images import ImageFolderSource
from .synthetic import SyntheticSource

SchemeFactory = Callable[[str, SourceConfig], Source]
_SCHEMES: Dict[str, SchemeFactory] = {}


def register_source_scheme(scheme: str, factory: SchemeFactory) -> None:
    """Add a URI scheme (``factory(uri, options) -> Source``); a duplicate raises."""
    if scheme in _SCHEMES:
        raise ValueError("source scheme %r is already registered" % scheme)
    _SCHEMES[scheme] = factory


def _csi(uri: str, opts: SourceConfig) -> Source:
    rest = uri[len("csi://"):]
    if not rest.isdigit():
        raise EdgeRuntimeError("%s: expected csi://N with N the sensor id (csi://0)" % uri)
    return CaptureSource(uri, "csi", int(rest), opts)


def _v4l2(uri: str, opts: SourceConfig) -> Source:
    rest = uri[len("v4l2://"):]
    if rest.isdigit():
        return CaptureSource(uri, "v4l2", int(rest), opts)
    if not rest.startswith("/dev/video"):
        raise EdgeRuntimeError("%s: expected v4l2:///dev/videoN (or an index)" % uri)
    return CaptureSource(uri, "v4l2", _dev_target(rest), opts)


def _dev_target(path: str) -> Union[str, int]:
    """``/dev/video3`` -> 3 (OpenCV's V4L2 backend opens indices on every version), other paths as given."""
    tail = path[len("/dev/video"):]
    return int(tail) if tail.isdigit() else path


def _rtsp(uri: str, opts: SourceConfig) -> Source:
    return CaptureSource(uri, "rtsp", uri, opts)


def _file(uri: str, opts: SourceConfig) -> Source:
    return _path_source(uri[len("file://"):], opts, uri)


for _scheme, _factory in (("csi", _csi), ("v4l2", _v4l2), ("rtsp", _rtsp), ("rtsps", _rtsp), ("file", _file),
                          ("synthetic", SyntheticSource.from_uri)):
    register_source_scheme(_scheme, _factory)


def _path_source(path: str, opts: SourceConfig, uri: str) -> Source:
    if any(c in path for c in "*?["):
        paths = sorted(p for p in _glob.glob(path) if os.path.isfile(p))
        if not paths:
            raise EdgeRuntimeError("no files match %s; supported sources: %s" % (uri, SUPPORTED))
        return ImageFolderSource(uri, paths, opts)
    p = Path(path)
    if p.is_dir():
        paths = sorted(str(f) for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if not paths:
            raise EdgeRuntimeError("%s is a folder without images (%s); supported sources: %s"
                                   % (uri, " ".join(IMAGE_EXTENSIONS), SUPPORTED))
        return ImageFolderSource(uri, paths, opts)
    if p.is_file():
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            return ImageFolderSource(uri, [str(p)], opts)
        return CaptureSource(uri, "file", str(p), opts)
    if p.exists():  # /dev/null, a FIFO, a socket: it is there, but it is nothing frames come from
        raise EdgeRuntimeError("%s exists but is not a video file, an image folder or a camera (/dev/videoN); supported "
                               "sources: %s" % (uri, SUPPORTED))
    raise EdgeRuntimeError("source not found: %s (no such file or folder); supported sources: %s" % (uri, SUPPORTED))


def create_source(uri: Union[str, int, SourceConfig, None] = None, options: Optional[SourceConfig] = None) -> Source:
    """A Source for ``uri`` (default ``options.uri``), not yet opened. ``create_source(cfg.source)`` takes the
    URI and options from a config. Unknown schemes and missing files raise a one-line
    :class:`EdgeRuntimeError` naming the URI and what is supported."""
    if isinstance(uri, SourceConfig):
        uri, options = None, uri
    opts = options if options is not None else SourceConfig()
    target = opts.uri if uri is None else uri
    if target is None or (isinstance(target, str) and not target.strip()):
        raise EdgeRuntimeError("no source given: pass a SOURCE argument or set source.uri in the config; supported "
                               "sources: %s" % SUPPORTED)
    if isinstance(target, bool):
        raise EdgeRuntimeError("source %r: expected a URI, a path or a camera index" % target)
    if isinstance(target, int):
        return CaptureSource(str(target), "v4l2", target, opts)
    s = str(target).strip()
    if s.isdigit():
        return CaptureSource(s, "v4l2", int(s), opts)
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*)://", s)
    if m:
        scheme = m.group(1).lower()
        if scheme not in _SCHEMES:
            raise EdgeRuntimeError("unknown source scheme %r in %s; supported sources: %s" % (scheme, s, SUPPORTED))
        return _SCHEMES[scheme](s, opts)
    if s.startswith("/dev/video"):
        return CaptureSource(s, "v4l2", _dev_target(s), opts)
    return _path_source(s, opts, s)


def open_source(uri: Union[str, int, SourceConfig, None] = None, options: Optional[SourceConfig] = None) -> Source:
    """:func:`create_source` then :meth:`Source.open`: use as ``with open_source(cfg.source) as src:``."""
    src = create_source(uri, options)
    src.open()
    return src


_CAMERA = re.compile(r"^(csi|v4l2|rtsps?)://|^/dev/video|^\d+$")


def is_camera(uri: Union[str, int]) -> bool:
    """A camera or stream (csi://, v4l2://, /dev/videoN, an index, rtsp://), as opposed to a file, folder or
    synthetic:// source."""
    return isinstance(uri, int) or bool(_CAMERA.match(str(uri).strip()))


def source_options(opts: SourceConfig, uri: Union[str, int, None] = None, explicit: Sequence[str] = ()) -> SourceConfig:
    """The options a source is opened with: the one rule ``edge-runtime run`` and ``Runtime.from_config`` share.

    The config's ``width``/``height``/``rate`` describe the camera in its ``source.uri``. With ``uri`` None (or the
    config's own) the config applies as written; a camera given instead gets the same options. A file, image folder,
    glob or synthetic:// given instead plays at its own size, a video file paced at the config's rate like a camera,
    an image folder reading every image (no rate). ``explicit``: the ``source.*`` keys the caller set (CLI flags,
    ``overrides``), which always apply (``rate`` 0: every frame, as fast as taken)."""
    if uri is None or str(uri) == str(opts.uri) or is_camera(uri):
        return opts
    keep = set(explicit)
    changes: Dict[str, Any] = {}
    if "width" not in keep and "height" not in keep:
        changes.update(width=None, height=None)
    if "rate" not in keep:
        s = str(uri)
        path = s[len("file://"):] if s.startswith("file://") else s
        if any(c in path for c in "*?[") or os.path.isdir(path) or path.lower().endswith(IMAGE_EXTENSIONS):
            changes["rate"] = None
    return dataclasses.replace(opts, **changes)
