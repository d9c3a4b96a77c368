"""Achieved FLOP/s of ganzoo's training step against this machine's measured matmul peak.

FLOPs per step are counted by PyTorch's FlopCounterMode over one real step (forward and backward
of G and D); steps/s is from the median step; the peak is the best of a few large square matmuls
in fp32 and bf16.

    python benchmarks/bench_flops.py
    python benchmarks/bench_flops.py --precision fp32 --batch-size 256
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def matmul_peak(dtype, size: int = 2048, repeats: int = 20) -> float:
    import torch

    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ganzoo.config import resolve_config
    from ganzoo.rundir import RunDir
    from ganzoo.trainer import Trainer

    images = torch.randint(0, 256, (args.batch_size * (args.steps + 3), 1, 28, 28), dtype=torch.uint8)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # write the random images as an IDX dataset so the real trainer runs unchanged
        raw = root / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        n = len(images)
        (raw / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + images.numpy().tobytes())
        (raw / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + bytes(n))
        config = resolve_config({"model": {"name": "dcgan"}, "data": {"root": str(root), "download": False},
                                 "train": {"batch_size": args.batch_size, "precision": args.precision,
                                           "max_steps": args.steps + 3, "log_every": 1, "keep_checkpoints": 0}})
        trainer = Trainer(config, RunDir(root / "run"), plugin_events=False)
        real = trainer.images[: args.batch_size].float() / 127.5 - 1
        with FlopCounterMode(display=False) as counter:
            trainer.train_step(real, None)
        flops_per_step = counter.get_total_flops()
        trainer.fit()
        records = [r for r in trainer.run.read_metrics() if "time" in r]
    # the median step after three warm-up steps (shared machines have slow moments)
    steps_per_s = 1 / statistics.median(b["time"] - a["time"] for a, b in zip(records[2:], records[3:]))
    achieved = flops_per_step * steps_per_s
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    precision = trainer.speed.precision
    print(f"dcgan training step, batch {args.batch_size}, precision {precision}, {torch.get_num_threads()} threads")
    print(f"  FLOPs per step (forward + backward, G and D): {flops_per_step / 1e9:.1f} GFLOP")
    print(f"  steps/s: {steps_per_s:.2f}  ({steps_per_s * args.batch_size:.0f} images/s)")
    print(f"  achieved: {achieved / 1e9:.0f} GFLOP/s")
    for name, peak in peaks.items():
        print(f"  {name} matmul peak: {peak / 1e9:.0f} GFLOP/s -> step achieves {achieved / peak:.0%} of it")


if __name__ == "__main__":
    main()
