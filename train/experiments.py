"""Experiment grids: many trainings from one YAML file, tabulated like the paper's Table 1.

Grid file format (YAML)::

    name: paper_table1                # optional; default: the file's stem
    defaults:                         # optional: TrainConfig keys applied to every run
      epochs: 30
      batch_size: 128
    runs:                             # an explicit list of rows ...
      - label: lenet5-sgd             #   optional: names the run (and its folder)
        paper_top1: 63.0              #   optional: the paper's reported top-1 (%) for this row, or null
        config: recipes/lenet5.yaml   #   optional: a TrainConfig YAML (relative to this file) under the row's keys
        model: lenet5                 #   any TrainConfig key (see train/config.py)
        optimizer: sgd
        lr: 0.05
    grid:                             # ... and/or a cartesian product: key -> list of values
      model: [lenet5, resnet34]
      optimizer: [sgd, adam]
      dataset: [cifar10]

Keys of a run, lowest precedence first: TrainConfig defaults < ``defaults`` < the row's ``config``
file < the row's (or grid combination's) own keys < the overrides given to :func:`run_grid`
(``epochs``, ``subset``, ``data_dir``, ``device``: budget overrides so a grid fits a CPU).
``out`` is not allowed anywhere: each run trains into ``<out_dir>/<slug>``, the slug coming from
the label, else from model, optimizer, lr and dataset (plus the other grid keys), made
filesystem-safe and unique. Unknown keys and wrong types fail with one line naming the row and key.

Resumable: a run whose folder holds ``done.json`` (written here when the run ends) or a
finished ``last.pt`` / ``manifest.json`` is skipped; a run with an unfinished ``last.pt`` is
resumed exactly (``fit(cfg, resume=True)``). A folder trained with a different config (say
other ``--epochs``) is refused rather than silently reused or mixed.

Outputs in ``out_dir``: ``results.json``, ``results.md`` (our top-1 beside the paper's, params,
MACs, epochs, minutes) and ``summary.png`` (ours vs paper per row; accuracy vs MACs), written by
:mod:`train.experiment_report`.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import itertools
import json
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from edge_runtime.errors import EdgeRuntimeError
from edge_runtime.fsio import write_json_atomic

from .config import TrainConfig, load_yaml, overlay
from .experiment_report import _fmt_value, write_results

GRID_KEYS = ("name", "defaults", "runs", "grid")
ROW_KEYS = ("label", "paper_top1", "config")        # row keys besides TrainConfig's
FORBIDDEN = ("out",)                                 # the grid decides each run's folder
#: config keys that may differ between a saved run and the grid without refusing to reuse it
MACHINE_KEYS = ("out", "device", "data_dir", "download", "compile", "distill_cache")
DONE_FORMAT = "edge-runtime.experiment-run/1"

PathLike = Union[str, Path]
EventHandler = Callable[[str, Dict[str, Any]], None]


@dataclass(frozen=True)
class PlannedRun:
    """One row of a grid, resolved: its config (``out`` not yet set), label, folder name, paper figure."""

    index: int                      # 1-based position in the grid
    label: str
    slug: str
    config: TrainConfig
    paper_top1: Optional[float]
    where: str                      # where the row came from, for error messages


@dataclass(frozen=True)
class Grid:
    """A parsed grid file: its name and its runs in order (explicit rows first, then the product)."""

    name: str
    path: Path
    runs: List[PlannedRun]


# ----------------------------------------------------------------------------------------------------------------------
# parsing


def slugify(text: str) -> str:
    """A filesystem-safe, lower-case folder name for ``text``."""
    s = re.sub(r"[^a-z0-9._=-]+", "-", text.lower()).strip("-.")
    return s[:80] or "run"


def _auto_label(cfg: TrainConfig, extra_keys: Sequence[str] = ()) -> str:
    parts = [cfg.model, cfg.optimizer, "lr" + _fmt_value(cfg.lr), cfg.dataset]
    for k in extra_keys:
        if k not in ("model", "optimizer", "lr", "dataset"):
            parts.append("%s=%s" % (k, _fmt_value(getattr(cfg, k))))
    return "-".join(parts)


def _resolve_row(base: TrainConfig, row: Mapping[str, Any], where: str, grid_dir: Path,
                 overrides: Mapping[str, Any]) -> Tuple[TrainConfig, Optional[str], Optional[float]]:
    """``base`` + the row's config file + its keys + overrides; the row's label and paper figure."""
    bad = [k for k in FORBIDDEN if k in row]
    if bad:
        raise EdgeRuntimeError("%s: key %r is not allowed in a grid (each run trains into OUT/<label>); remove it"
                               % (where, bad[0]))
    label = row.get("label")
    if label is not None and not (isinstance(label, (str, int, float)) and not isinstance(label, bool)):
        raise EdgeRuntimeError("%s: label %r must be a string" % (where, label))
    paper = row.get("paper_top1")
    if paper is not None and (isinstance(paper, bool) or not isinstance(paper, (int, float))):
        raise EdgeRuntimeError("%s: paper_top1 %r must be a number (percent) or null" % (where, paper))
    cfg = base
    ref = row.get("config")
    if ref is not None:
        if not isinstance(ref, str):
            raise EdgeRuntimeError("%s: config %r must be a path to a YAML file" % (where, ref))
        ref_path = Path(ref) if Path(ref).is_absolute() else grid_dir / ref
        values = load_yaml(ref_path)
        if "out" in values:
            values = {k: v for k, v in values.items() if k != "out"}
        cfg = overlay(cfg, values, "%s: config %s" % (where, ref_path))
    own = {k: v for k, v in row.items() if k not in ROW_KEYS}
    cfg = overlay(cfg, own, where)
    cfg = overlay(cfg, overrides, "overrides")
    try:
        cfg.validate()
        from .models import get_entry

        get_entry(cfg.model)
    except EdgeRuntimeError as exc:
        raise EdgeRuntimeError("%s: %s" % (where, exc)) from None
    return cfg, (None if label is None else str(label)), (None if paper is None else float(paper))


def load_grid(grid_path: PathLike, epochs: Optional[int] = None, subset: Optional[int] = None,
              data_dir: Optional[str] = None, device: Optional[str] = None) -> Grid:
    """Parse and validate a grid file into its runs (nothing is trained). Errors are one line."""
    path = Path(grid_path)
    doc = load_yaml(path)
    unknown = sorted(set(doc) - set(GRID_KEYS))
    if unknown:
        raise EdgeRuntimeError("%s: unknown top-level key(s) %s; a grid has %s" % (path, ", ".join(unknown), ", ".join(GRID_KEYS)))
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise EdgeRuntimeError("%s: name %r must be a non-empty string" % (path, name))
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise EdgeRuntimeError("%s: defaults must be a mapping of TrainConfig keys, got %s" % (path, type(defaults).__name__))
    if "out" in defaults:
        raise EdgeRuntimeError("%s defaults: key 'out' is not allowed in a grid (each run trains into OUT/<label>); "
                               "remove it" % path)
    base = overlay(TrainConfig(), defaults, "%s defaults" % path)
    overrides: Dict[str, Any] = {}
    for key, value in (("epochs", epochs), ("subset", subset), ("data_dir", data_dir), ("device", device)):
        if value is not None:
            overrides[key] = value

    rows = doc.get("runs")
    product = doc.get("grid")
    if rows is None and product is None:
        raise EdgeRuntimeError("%s: no runs; give `runs:` (a list of rows) and/or `grid:` (key -> list of values)" % path)
    resolved: List[Tuple[TrainConfig, Optional[str], Optional[float], str, Sequence[str]]] = []
    if rows is not None:
        if not isinstance(rows, list):
            raise EdgeRuntimeError("%s: runs must be a list of rows, got %s" % (path, type(rows).__name__))
        for i, row in enumerate(rows):
            tag = row.get("label") if isinstance(row, dict) else None
            where = "%s runs[%d]%s" % (path, i, "" if tag is None else " (%s)" % tag)
            if not isinstance(row, dict):
                raise EdgeRuntimeError("%s: a row must be a mapping of keys, got %r" % (where, row))
            cfg, label, paper = _resolve_row(base, row, where, path.parent, overrides)
            resolved.append((cfg, label, paper, where, ()))
    if product is not None:
        if not isinstance(product, dict) or not product:
            raise EdgeRuntimeError("%s: grid must be a mapping key -> list of values" % path)
        for key, values in product.items():
            if key in ROW_KEYS:
                raise EdgeRuntimeError("%s grid: key %r cannot vary in a product; use runs: rows for it" % (path, key))
            if not isinstance(values, list) or not values:
                raise EdgeRuntimeError("%s grid: key %r needs a non-empty list of values, got %r" % (path, key, values))
        keys = list(product)
        for j, combo in enumerate(itertools.product(*(product[k] for k in keys))):
            row = dict(zip(keys, combo))
            where = "%s grid[%d] (%s)" % (path, j, ", ".join("%s=%s" % (k, _fmt_value(v)) for k, v in row.items()))
            cfg, _, _ = _resolve_row(base, row, where, path.parent, overrides)
            resolved.append((cfg, None, None, where, keys))

    runs: List[PlannedRun] = []
    used: Dict[str, int] = {}
    for idx, (cfg, label, paper, where, keys) in enumerate(resolved, start=1):
        text = label if label is not None else _auto_label(cfg, keys)
        slug = slugify(text)
        if slug in used:
            used[slug] += 1
            slug = "%s-%d" % (slug, used[slug])
        used.setdefault(slug, 1)
        runs.append(PlannedRun(index=idx, label=text, slug=slug, config=cfg, paper_top1=paper, where=where))
    return Grid(name=name, path=path, runs=runs)


# ----------------------------------------------------------------------------------------------------------------------
# state of a run folder


def _read_json(path: Path) -> Optional[Dict[str, Any]]:
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise EdgeRuntimeError("%s is unreadable (%s); delete it to redo that run" % (path, str(exc)[:120])) from None
    if not isinstance(obj, dict):
        raise EdgeRuntimeError("%s is not a JSON object; delete it to redo that run" % path)
    return obj


def _comparable(values: Mapping[str, Any], where: str) -> Dict[str, Any]:
    """A saved config normalised like a fresh one (types, defaults), minus machine-only keys."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = overlay(TrainConfig(), {k: v for k, v in values.items() if k in known}, where)
    return {k: v for k, v in cfg.to_dict().items() if k not in MACHINE_KEYS}


def _check_same(saved: Mapping[str, Any], run: PlannedRun, cfg: TrainConfig, source: Path) -> None:
    old = _comparable(saved, str(source))
    new = {k: v for k, v in cfg.to_dict().items() if k not in MACHINE_KEYS}
    diff = [k for k in new if old.get(k) != new[k]]
    if diff:
        was = ", ".join("%s=%s" % (k, _fmt_value(old.get(k))) for k in diff)
        now = ", ".join("%s=%s" % (k, _fmt_value(new[k])) for k in diff)
        raise EdgeRuntimeError("run %s: %s was trained with %s but the grid now asks %s; rerun with the same overrides, "
                               "or use another --out (nothing was changed)" % (run.label, source.parent, was, now))


def _finished(ck: Mapping[str, Any], cfg: TrainConfig) -> bool:
    if int(ck.get("epoch", 0)) >= cfg.epochs:
        return True
    elapsed = float(ck.get("scheduler", {}).get("elapsed", 0.0))
    return bool(cfg.time_budget and elapsed >= cfg.time_budget)


def _write_done(out: Path, run: PlannedRun, cfg: TrainConfig, ck: Mapping[str, Any]) -> Dict[str, Any]:
    man = ck.get("manifest", {})
    done = {"format": DONE_FORMAT, "label": run.label, "config": cfg.to_dict(), "epochs_run": int(ck.get("epoch", 0)),
            "seconds": round(float(ck.get("scheduler", {}).get("elapsed", 0.0)), 2),
            "final_top1": man.get("accuracy", {}).get("top1"),
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    write_json_atomic(out / "done.json", done)
    return done


# ----------------------------------------------------------------------------------------------------------------------
# running


def _result_row(run: PlannedRun, cfg: TrainConfig, status: str, out: Path,
                done: Optional[Mapping[str, Any]], man: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    acc = (man or {}).get("accuracy", {})
    model = (man or {}).get("model", {})
    training = (man or {}).get("training", {})
    seconds = (done or {}).get("seconds", training.get("seconds"))
    return {
        "index": run.index, "label": run.label, "slug": run.slug, "out": str(out),
        "model": cfg.model, "model_kwargs": dict(cfg.model_kwargs), "optimizer": cfg.optimizer, "lr": cfg.lr,
        "schedule": cfg.schedule, "batch_size": cfg.batch_size, "dataset": cfg.dataset, "subset": cfg.subset,
        "epochs": cfg.epochs, "epochs_run": (done or {}).get("epochs_run", training.get("epochs_run")),
        "best_epoch": acc.get("epoch"), "top1": acc.get("top1"), "top1_first1000": acc.get("top1_first1000"),
        "final_top1": (done or {}).get("final_top1"), "test_images": acc.get("n"), "paper_top1": run.paper_top1,
        "params": model.get("params"), "macs": model.get("macs"), "seconds": seconds,
        "device": training.get("device"), "status": status,
    }


def _execute(run: PlannedRun, cfg: TrainConfig, progress: bool, emit: EventHandler) -> Dict[str, Any]:
    """Train, resume or skip one run; returns its result row."""
    from . import checkpoint
    from .trainer import fit

    out = Path(cfg.out)
    info = {"index": run.index, "label": run.label, "out": str(out), "epochs": cfg.epochs}
    done = _read_json(out / "done.json")
    if done is not None:
        _check_same(done.get("config", {}), run, cfg, out / "done.json")
        status = "skipped"
    else:
        last = out / "last.pt"
        man = _read_json(out / "manifest.json")
        if last.is_file():
            ck = checkpoint.load(last)
            _check_same(ck.get("config", {}), run, cfg, last)
            if _finished(ck, cfg):
                status = "skipped"
            else:
                status = "resumed"
                emit("resume", dict(info, from_epoch=int(ck.get("epoch", 0))))
                del ck
                fit(cfg, resume=True, progress=progress)
                ck = checkpoint.load(last)
            done = _write_done(out, run, cfg, ck)
        elif man is not None and man.get("training", {}).get("epochs_run") == cfg.epochs \
                and man.get("model", {}).get("name") == cfg.model:
            status = "skipped"   # finished earlier, last.pt since removed
            done = None
        else:
            status = "trained"
            emit("train", info)
            fit(cfg, resume=False, progress=progress)
            done = _write_done(out, run, cfg, checkpoint.load(last))
    man = _read_json(out / "manifest.json")
    if man is None:
        raise EdgeRuntimeError("run %s: %s has no manifest.json after training; delete the folder to redo it"
                               % (run.label, out))
    row = _result_row(run, cfg, status, out, done, man)
    emit("skip" if status == "skipped" else "done", row)
    return row


class _Eta:
    """Time left in the grid: the seconds per epoch measured on the runs trained so far (in this invocation)
    times the epochs still to train, each run weighted by its model's MACs per image and its images."""

    def __init__(self, configs: Sequence[TrainConfig]) -> None:
        self.configs = list(configs)
        self.weights = [self._weight(c) for c in self.configs]
        self.spent = 0.0     # seconds of training measured
        self.work = 0.0      # weighted epochs those seconds bought
        self.t0 = 0.0
        self.done_epochs: Dict[int, int] = {}

    @staticmethod
    def _weight(cfg: TrainConfig) -> float:
        try:
            from .models import create_model
            from .models.profile import count_macs

            macs = float(count_macs(create_model(cfg.model, **cfg.model_kwargs)))
        except Exception:  # an invalid row is reported by the run itself; here only a rough weight
            macs = 1.0
        return macs * float(cfg.subset or 50000)

    def _epochs_done(self, index: int) -> int:
        from . import checkpoint

        last = Path(self.configs[index - 1].out) / "last.pt"
        try:
            return int(checkpoint.load(last).get("epoch", 0)) if last.is_file() else 0
        except EdgeRuntimeError:
            return 0

    def start(self, index: int) -> None:
        self.t0 = time.perf_counter()
        self.done_epochs[index] = self._epochs_done(index)

    def left(self, index: int, kind: str) -> Optional[float]:
        """Seconds left after this event, or None while nothing was measured yet."""
        i = index - 1
        if kind in ("done", "skip"):
            if kind == "done":
                self.spent += time.perf_counter() - self.t0
                self.work += self.weights[i] * (self.configs[i].epochs - self.done_epochs.get(index, 0))
            todo = range(index, len(self.configs))
        else:
            todo = range(i, len(self.configs))
        if self.work <= 0:
            return None
        rest = sum(self.weights[j] * (self.configs[j].epochs - (self.done_epochs.get(j + 1) or 0)) for j in todo
                   if not (Path(self.configs[j].out) / "done.json").is_file())
        return self.spent / self.work * rest


def _default_command(grid_path: Path, out_dir: Path, overrides: Mapping[str, Any]) -> str:
    parts = ["edge-runtime", "experiment", str(grid_path), "--out", str(out_dir)]
    for key, value in overrides.items():
        if value is not None:
            parts += ["--" + key.replace("_", "-"), str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def run_grid(grid_path: PathLike, out_dir: PathLike, epochs: Optional[int] = None, subset: Optional[int] = None,
             data_dir: Optional[str] = None, device: Optional[str] = None, progress: bool = True,
             command: Optional[str] = None, on_event: Optional[EventHandler] = None) -> List[Dict[str, Any]]:
    """Train every run of the grid into ``out_dir/<slug>`` (skipping finished ones, resuming interrupted ones).

    Writes ``results.json``, ``results.md`` and ``summary.png`` in ``out_dir`` -- also when a run fails
    or is interrupted, with the rows not reached marked ``pending`` -- and returns the result rows.
    ``on_event(kind, info)`` is told of each run: ``train``, ``resume``, ``done`` or ``skip``.
    """
    grid = load_grid(grid_path, epochs=epochs, subset=subset, data_dir=data_dir, device=device)
    out = Path(out_dir)
    overrides = {"epochs": epochs, "subset": subset, "data_dir": data_dir, "device": device}
    cmd = command or _default_command(grid.path, out, overrides)
    user_emit: EventHandler = on_event or (lambda kind, info: None)
    results: List[Dict[str, Any]] = []
    eta = _Eta([dataclasses.replace(r.config, out=str(out / r.slug)) for r in grid.runs])

    def emit(kind: str, info: Dict[str, Any]) -> None:
        user_emit(kind, dict(info, total=len(grid.runs), eta_s=eta.left(info["index"], kind)))

    try:
        for run in grid.runs:
            cfg = dataclasses.replace(run.config, out=str(out / run.slug))
            eta.start(run.index)
            results.append(_execute(run, cfg, progress, emit))
    finally:
        reached = len(results)
        rows = results + [_result_row(r, dataclasses.replace(r.config, out=str(out / r.slug)), "pending",
                                      out / r.slug, None, None) for r in grid.runs[reached:]]
        write_results(out, grid.name, rows, cmd, overrides)
    return results
