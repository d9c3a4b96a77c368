"""How far fp32 rounding alone moves one training step, per tensor, by the CUDA-graph check's measure.

``ganzoo.testing.check_cuda_graph_step`` lets a replayed step differ from the eager step by 1% of
each tensor's change (on a GPU, where reductions may add up in another order). This script asks
whether a model's step is so sensitive to rounding that 1% is too tight for it: from the state the
check compares at (two SGD steps at lr 0.05 on batches of 8), it runs the third step in fp64 and in
fp32 on the CPU and prints, for the tensors that step changes (by more than 1e-4), the largest
difference between the two as a share of the change.

    python benchmarks/bench_step_rounding.py dcgan infogan sagan

Name the CPU beside the numbers you quote.
"""

from __future__ import annotations

import argparse
import copy
from typing import Any


def worst_share(model: str, *, n: int = 8) -> tuple[float, str, int]:
    """(the largest |fp32 - fp64| / |change| over the changed tensors, which tensor, how many)."""
    import torch

    from ganzoo.step import train_step
    from ganzoo.testing import SHAPES, _step_modules, build, compatible_losses, labels_for

    torch.manual_seed(0)
    gan = build(model, SHAPES[0]).train()
    losses = compatible_losses(gan)[0]
    loss = "nonsaturating" if "nonsaturating" in losses else losses[0]
    sgd = lambda params: torch.optim.SGD(params, lr=0.05)  # noqa: E731
    m = _step_modules(gan, loss, sgd, device_type="cpu")
    y = labels_for(gan, n)
    batches = [(torch.rand(n, *SHAPES[0]) * 2 - 1, gan.generator.sample_latent(n)) for _ in range(3)]
    for i, (real, z) in enumerate(batches[:2]):
        train_step(m, real, y, z, step=i)
    states: dict[Any, tuple[list[str], list[Any], list[Any]]] = {}
    for dtype in (torch.float64, torch.float32):
        copy_ = copy.deepcopy(gan).to(dtype)
        step = _step_modules(copy_, loss, sgd, device_type="cpu")
        step.ema = copy.deepcopy(m.ema).to(dtype)
        named = [(prefix + name, t) for module, prefix in ((copy_, ""), (step.ema, "ema."))
                 for name, t in [*module.named_parameters(), *module.named_buffers()] if t.is_floating_point()]
        before = [t.detach().clone() for _, t in named]
        real, z = batches[2]
        torch.manual_seed(5)  # dropout draws the same masks in both
        train_step(step, real.to(dtype), y, z.to(dtype), step=2)
        states[dtype] = ([name for name, _ in named], before, [t.detach().clone() for _, t in named])
    names, before64, after64 = states[torch.float64]
    _, _, after32 = states[torch.float32]
    shares = [(float((a32.double() - a64).norm()) / float((a64 - b).norm()), name)
              for name, b, a64, a32 in zip(names, before64, after64, after32) if float((a64 - b).norm()) > 1e-4]
    share, name = max(shares)
    return share, name, len(shares)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="models (default: every registered one)")
    args = parser.parse_args()

    import ganzoo

    print(f"{'model':12} {'worst share':>12}  {'of':>4}  tensor")
    for model in args.models or ganzoo.list_models():
        share, name, count = worst_share(model)
        print(f"{model:12} {share:11.3%}  {count:4}  {name}")


if __name__ == "__main__":
    main()
