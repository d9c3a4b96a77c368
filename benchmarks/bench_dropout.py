"""Dropout forward + backward: PyTorch's ``nn.Dropout`` against ``ganzoo.layers.Dropout``.

At the shapes of the dcgan discriminator's two dropout layers (batch 256), in bf16 and fp32:

    python benchmarks/bench_dropout.py
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from ganzoo.layers import Dropout


def per_call_ms(layer: nn.Module, x: torch.Tensor, repeats: int) -> float:
    grad = torch.ones_like(x)
    for _ in range(3):
        layer(x).backward(grad)
    start = time.perf_counter()
    for _ in range(repeats):
        layer(x).backward(grad)
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--p", type=float, default=0.3)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    native, fast = nn.Dropout(args.p), Dropout(args.p)
    fast.fast = True
    print(f"dropout p={args.p}, forward + backward per call, {torch.get_num_threads()} threads")
    print(f"{'shape':22} {'dtype':9} {'nn.Dropout':>11} {'ganzoo':>9} {'speed-up':>9}")
    for shape in [(args.batch_size, 64, 14, 14), (args.batch_size, 128, 7, 7)]:
        for dtype in (torch.bfloat16, torch.float32):
            x = torch.randn(shape, dtype=dtype, requires_grad=True)
            a, b = per_call_ms(native, x, args.repeats), per_call_ms(fast, x, args.repeats)
            print(f"{str(list(shape)):22} {str(dtype)[6:]:9} {a:9.1f} ms {b:6.1f} ms {a / b:8.1f}x")


if __name__ == "__main__":
    main()
