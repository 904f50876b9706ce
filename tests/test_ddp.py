"""DistributedDataParallel through torchrun: 2 CPU processes on gloo."""
import csv
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_two_process_gloo_ddp(cifar10_dir, tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.getcwd())
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "edge_runtime", "train", "--model", "lenet5", "--data-dir", str(cifar10_dir), "--epochs", "2",
           "--subset", "256", "--batch-size", "64", "--device", "cpu", "--quiet", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with open(out / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    # 256 images, global batch 64 -> 32 per rank, 4 steps per rank per epoch: the two ranks saw 256 images
    assert float(rows[0]["images_per_s"]) > 0
    assert (out / "best.pt").is_file() and (out / "manifest.json").is_file()
    import json

    assert json.loads((out / "manifest.json").read_text())["training"]["world_size"] == 2
