"""Each model's training step, eager against replayed from a CUDA graph (without a GPU: the CPU's checks).

For every registered model (third-party ones too) at its default options on 1x28x28 images:
whether its step, captured, changes the weights as the eager step does (the conformance check
``ganzoo.testing.check_cuda_graph_step``, run here whether or not the model declares
``cuda_graphs=True``, to tell a plugin author whether it could), and the images/s of
``ganzoo.step.train_step`` eagerly and through ``ganzoo.graphs.GraphedStep`` (bf16 autocast, fused
Adam, one synthetic batch, the device synchronised around the timed steps). The trainer adds its
own per-step work on top; ``ganzoo train ... --set train.cuda_graphs=false`` against the default
measures a whole run.

    python benchmarks/bench_cuda_graphs.py
    python benchmarks/bench_cuda_graphs.py dcgan sngan --batch-size 64 --steps 200 --json

Name the GPU (and the host's CPU, which launches the eager kernels) beside every number you quote.

Without a GPU it runs, for each model, the three checks of the promise a CPU can (those of the
conformance suite, whether or not the model declares it): does a step read nothing back to the
host (``ganzoo.testing.host_reads``), rebind no tensor attribute (``rebound_state``), and replay
from a recorded trace as it runs eagerly (``check_cuda_graph_step(..., device="cpu")``)?
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def measure(model: str, *, batch_size: int, steps: int, warmup: int) -> dict[str, Any]:
    import torch

    from ganzoo.graphs import GraphedStep
    from ganzoo.step import train_step
    from ganzoo.testing import SHAPES, _step_modules, build, check_cuda_graph_step, compatible_losses

    row: dict[str, Any] = {"model": model}
    gan = build(model, SHAPES[0])
    row["declared"] = gan.cuda_graphs
    losses, _ = compatible_losses(gan)
    row["loss"] = "nonsaturating" if "nonsaturating" in losses else losses[0]
    gan.cuda_graphs = True
    try:
        check_cuda_graph_step(gan, row["loss"])
        row["replays_as_eagerly"] = True
    except AssertionError as exc:
        row["replays_as_eagerly"] = False
        row["why"] = str(exc).split("\n\nWhat to fix")[0][:300]
    torch.manual_seed(0)
    gan = build(model, SHAPES[0]).cuda().train()
    m = _step_modules(gan, row["loss"], lambda p: torch.optim.Adam(p, lr=2e-4, betas=(0.5, 0.999), fused=True),
                      dtype=torch.bfloat16)
    y = torch.arange(batch_size, device="cuda") % gan.generator.num_classes if gan.generator.num_classes else None
    real = torch.rand(batch_size, *SHAPES[0], device="cuda") * 2 - 1
    z = gan.generator.sample_latent(batch_size, device="cuda")
    graphed = GraphedStep(m)
    for name, step in (("eager", lambda i: train_step(m, real, y, z, step=i)),
                       ("graphed", lambda i: graphed(real, y, z, step=i))):
        for i in range(warmup):  # for the graph: its eager warm-up steps and the capture
            step(i)
        torch.cuda.synchronize()
        start = time.perf_counter()
        for i in range(warmup, warmup + steps):
            step(i)
        torch.cuda.synchronize()
        row[f"{name}_images_per_s"] = round(steps * batch_size / (time.perf_counter() - start))
    row["speedup"] = round(row["graphed_images_per_s"] / row["eager_images_per_s"], 1)
    return row


def cpu_checks(model: str) -> dict[str, Any]:
    """The three checks of the CUDA-graph promise a CPU can run, on ``model`` as if it declared it."""
    from ganzoo.testing import SHAPES, build, cuda_graph_cpu_findings

    found = cuda_graph_cpu_findings(model)
    why = found["reads_back"][:1] + [f"a step rebinds {found['rebinds']}"] * bool(found["rebinds"]) + found["replay"]
    return {"model": model, "declared": build(model, SHAPES[0]).cuda_graphs,
            "reads_nothing_back": not found["reads_back"], "keeps_state_in_place": not found["rebinds"],
            "replays_as_eagerly": not found["replay"], "why": "; ".join(w[:300] for w in why)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="models to measure (default: every registered one)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=100, help="timed steps of each kind")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()

    import torch

    import ganzoo

    if not torch.cuda.is_available():
        rows = [cpu_checks(m) for m in (args.models or ganzoo.list_models())]
        if args.json:
            print(json.dumps(rows, indent=2))
            return
        print("no CUDA GPU: the checks of the promise a CPU can run (no speed-up measured)")
        print(f"{'model':12} {'declared':>9} {'reads nothing back':>19} {'keeps state in place':>21} "
              f"{'replays as eagerly':>19}")
        for r in rows:
            print(f"{r['model']:12} {str(r['declared']):>9} {str(r['reads_nothing_back']):>19} "
                  f"{str(r['keeps_state_in_place']):>21} {str(r['replays_as_eagerly']):>19}")
        for r in rows:
            if r["why"]:
                print(f"{r['model']}: {r['why']}")
        return
    rows = [measure(m, batch_size=args.batch_size, steps=args.steps, warmup=args.warmup)
            for m in (args.models or ganzoo.list_models())]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{torch.cuda.get_device_name()}, batch {args.batch_size}, bf16, {args.steps} timed steps")
    print(f"{'model':12} {'declared':>9} {'replays as eagerly':>19} {'eager img/s':>12} {'graphed img/s':>14} {'speed-up':>9}")
    for r in rows:
        print(f"{r['model']:12} {str(r['declared']):>9} {str(r['replays_as_eagerly']):>19} "
              f"{r['eager_images_per_s']:12,} {r['graphed_images_per_s']:14,} {r['speedup']:8.1f}x")
    for r in rows:
        if not r["replays_as_eagerly"]:
            print(f"{r['model']}: {r['why']}")


if __name__ == "__main__":
    main()
