"""Batch-1 GPU latency of the zoo's models: PyTorch CUDA eager against a captured CUDA graph.

Same model, same input, same GPU, back to back: warm-up, then per-iteration CUDA-event timings
(median, p90, p99). Writes JSON with the device and versions. Needs a CUDA GPU.

    PYTHONPATH=. python3 benchmarks/gpu/latency_graphs.py --out latency.json
"""
from __future__ import annotations

import argparse
import json
import platform

import torch

from train.models import create_model


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


@torch.no_grad()
def measure(model, x, iters, warmup, graph):
    if graph:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                model(x)
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            model(x)
        fn = g.replay
    else:
        def fn():
            model(x)
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return {"median_ms": pct(times, 50), "p90_ms": pct(times, 90), "p99_ms": pct(times, 99), "iters": iters}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="lenet5,mobilenetv2_paper,mobilenetv2_cifar_x0_5,mobilenetv2_cifar,resnet34")
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    dev = torch.device("cuda")
    res = {"device": torch.cuda.get_device_name(0), "torch": str(torch.__version__), "cuda": torch.version.cuda,
           "python": platform.python_version(), "batch": 1, "input": [1, 3, 32, 32], "results": []}
    torch.backends.cudnn.benchmark = True
    for name in a.models.split(","):
        for dtype in (torch.float32, torch.float16):
            m = create_model(name).to(dev, dtype).eval()
            x = torch.randn(1, 3, 32, 32, device=dev, dtype=dtype)
            for graph in (False, True):
                r = measure(m, x, a.iters, a.warmup, graph)
                r.update(model=name, dtype=str(dtype).replace("torch.", ""), mode="cuda_graph" if graph else "eager")
                res["results"].append(r)
                print(json.dumps(r), flush=True)
    with open(a.out, "w") as fh:
        json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
