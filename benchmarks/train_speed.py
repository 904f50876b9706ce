"""Training throughput per model on this machine: images/s of full SGD steps (forward, backward,
update) at a given batch size, through the trainer's own loader and augmentation.

    python benchmarks/train_speed.py --device cpu --batch-size 128 --steps 5 --out benchmarks/train_speed_cpu.json

Records the machine (CPU model, cores, threads, load average) with the numbers.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch
import torch.nn as nn

from train.data import Augment, Split, TensorLoader
from train.models import create_model
from train.models.profile import count_macs


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="lenet5,mobilenetv2,mobilenetv2_paper,mobilenetv2_cifar_x0_5,mobilenetv2_cifar,resnet34")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true", help="model and batches in channels_last memory format")
    ap.add_argument("--out")
    a = ap.parse_args()
    dev = torch.device(a.device)
    rng = np.random.default_rng(0)
    n = a.batch_size * (a.steps + a.warmup)
    split = Split(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n))
    rows = []
    for name in a.models.split(","):
        torch.manual_seed(0)
        fmt = torch.channels_last if a.channels_last else torch.contiguous_format
        model = create_model(name).to(dev, memory_format=fmt).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loader = TensorLoader(split, a.batch_size, (0.5,) * 3, (0.25,) * 3, dev, train=True, augment=Augment(), drop_last=True,
                              channels_last=a.channels_last)
        crit = nn.CrossEntropyLoss()
        times = []
        for i, (x, y) in enumerate(loader):
            t0 = time.perf_counter()
            loss = crit(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            if i >= a.warmup:
                times.append(time.perf_counter() - t0)
        ips = a.batch_size / float(np.median(times))
        row = {"model": name, "macs_M": round(count_macs(create_model(name)) / 1e6, 2), "images_per_s": round(ips, 1),
               "min_per_epoch_50k": round(50000 / ips / 60, 2)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    res = {"command": "python benchmarks/train_speed.py " + " ".join(
        "--%s %s" % (k.replace("_", "-"), v) for k, v in vars(a).items() if v is not None and k != "out"),
        "device": a.device, "cpu": cpu_name(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "torch": str(torch.__version__), "channels_last": a.channels_last, "loadavg_at_start": os.getloadavg(), "batch_size": a.batch_size, "results": rows}
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
