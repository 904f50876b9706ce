"""Pack the GPU suite's results for the trip back: per run its metrics, manifest, config, log and,
for models under ``--max-weights-mb``, a weights-only checkpoint (no optimizer state), which
``edge-runtime export`` and ``eval`` read like any checkpoint. Splits the archive into parts under
the size a transfer allows."""
from __future__ import annotations

import argparse
import io
import shutil
import tarfile
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--max-weights-mb", type=float, default=12.0)
    ap.add_argument("--weights-for", default="mobilenetv2_cifar,mobilenetv2_cifar_x0_5,mobilenetv2_paper,mobilenetv2_paper_kd",
                    help="runs whose best.pt comes back as weights (the others: results only)")
    ap.add_argument("--part-mb", type=int, default=15)
    a = ap.parse_args()
    stage = a.runs / "_pack"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir()
    for f in a.runs.glob("*.log"):
        shutil.copy(f, stage / f.name)
    for f in ("gpu.txt", "speed_mobilenetv2_cifar.wall"):
        if (a.runs / f).is_file():
            shutil.copy(a.runs / f, stage / f)
    for run in sorted(p for p in a.runs.iterdir() if p.is_dir() and p.name != "_pack"):
        dst = stage / run.name
        dst.mkdir()
        for f in ("metrics.csv", "manifest.json", "config.yaml", "curves.png"):
            if (run / f).is_file():
                shutil.copy(run / f, dst / f)
        for name in ("best.pt",) if run.name in a.weights_for.split(",") else ():
            src = run / name
            if not src.is_file():
                continue
            ck = torch.load(str(src), map_location="cpu", weights_only=True)
            slim = {k: ck[k] for k in ("format", "model", "manifest", "config", "history", "epoch", "best_acc") if k in ck}
            buf = io.BytesIO()
            torch.save(slim, buf)
            size_mb = len(buf.getvalue()) / 2**20
            print("%s/%s: %.1f MB weights-only" % (run.name, name, size_mb))
            if size_mb <= a.max_weights_mb:
                (dst / ("weights-" + name)).write_bytes(buf.getvalue())
    tar_path = a.runs / "results.tgz"
    with tarfile.open(tar_path, "w:gz") as tf:
        tf.add(stage, arcname="gpu-results")
    data = tar_path.read_bytes()
    a.out.mkdir(parents=True, exist_ok=True)
    step = a.part_mb * 2**20
    for i in range(0, len(data), step):
        (a.out / ("results.tgz.part%d" % (i // step))).write_bytes(data[i:i + step])
    print("packed %.1f MB into %d part(s)" % (len(data) / 2**20, -(-len(data) // step)))


if __name__ == "__main__":
    main()
