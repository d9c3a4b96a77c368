"""Training throughput: ganzoo's trainer against a straightforward PyTorch reference loop.

Both train the same network (``dcgan`` with the source documents' defaults: dropout 0.3 in D, no
BatchNorm in D) on Fashion-MNIST at the same batch size with Adam. The reference is the usual loop:
a torchvision dataset with ToTensor + Normalize transforms, a shuffling DataLoader, and three
discriminator passes per step (D(real), D(G(z).detach()), D(G(z)) with D's weight gradients), in fp32.

Each configuration runs in its own process, so peak resident memory is measured per configuration.
Shared machines drift: the configurations run in turn for ``--rounds`` rounds, and a configuration's
images/s is its batch size over the median wall time of all its timed steps (the spread over rounds
is printed beside it).

    python benchmarks/bench_train.py --data-dir ../shared/datasets
    python benchmarks/bench_train.py --data-dir ../shared/datasets --ganzoo precision=fp32 --ganzoo precision=auto
    python benchmarks/bench_train.py --data-dir DIR --device cuda --batch-size 128   # on a GPU

Name the CPU (`lscpu`) or GPU beside every number you quote: the `auto` choices differ per kind.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_reference(args: argparse.Namespace) -> dict:
    import torch
    import torchvision.datasets as tvd
    import torchvision.transforms as T

    import ganzoo
    from ganzoo.layers import set_fast_dropout

    torch.manual_seed(0)
    dataset = tvd.FashionMNIST(args.data_dir, train=True, download=False,
                               transform=T.Compose([T.ToTensor(), T.Normalize((0.5,), (0.5,))]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True, drop_last=True)
    device = torch.device(args.device)
    gan = ganzoo.create_model("dcgan").to(device)
    set_fast_dropout(gan, False)  # the reference uses PyTorch's own dropout
    G, D = gan.generator, gan.discriminator
    loss = ganzoo.create_loss("nonsaturating")
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    seconds, last = [], time.perf_counter()
    for step, (real, _) in enumerate(loader):
        if step == args.warmup + args.steps:
            break
        real = real.to(device)
        z = torch.randn(real.shape[0], 100, device=device)
        fake = G(z)
        d_loss = loss.discriminator_loss(D(real), D(fake.detach()))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = loss.generator_loss(D(fake))
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        now = time.perf_counter()
        if step >= args.warmup:
            seconds.append(now - last)
        last = now
    return {"name": "reference", "step_seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def run_ganzoo(args: argparse.Namespace, overrides: list[str]) -> dict:
    from ganzoo.config import parse_override, resolve_config
    from ganzoo.rundir import RunDir
    from ganzoo.trainer import Trainer

    raw = {"model": {"name": "dcgan"}, "data": {"name": "fashion_mnist", "root": args.data_dir, "download": False},
           "train": {"batch_size": args.batch_size, "max_steps": args.warmup + args.steps, "log_every": 1,
                     "keep_checkpoints": 0, "early_grids": 0, "device": args.device}}
    for text in overrides:
        key, value = parse_override(text)
        raw["train"][key] = value
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(resolve_config(raw), RunDir(Path(tmp) / "run"), plugin_events=False)
        trainer.fit()
        lines = [json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()]
    # log_every = 1: each line's images/s is over the wall time since the previous step's line
    seconds = [args.batch_size / r["images_per_s"] for r in lines if "images_per_s" in r and r["step"] > args.warmup]
    return {"name": "ganzoo " + (" ".join(overrides) or "defaults"), "step_seconds": seconds,
            "peak_rss_mb": peak_rss_mb(), **{k: getattr(trainer.speed, k) for k in ("precision", "channels_last", "compile", "fast_dropout", "reuse_memory", "cuda_graphs")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder holding FashionMNIST/raw")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--steps", type=int, default=30, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=3, help="times each configuration is run, in turn")
    parser.add_argument("--ganzoo", action="append", default=None, metavar="KEY=VALUE[,KEY=VALUE]",
                        help="a ganzoo configuration of train.* speed keys to measure (repeatable); "
                             "default: the defaults and precision=fp32")
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()

    if args.only is not None:  # child process: one configuration
        result = run_reference(args) if args.only == "reference" else run_ganzoo(args, [o for o in args.only.split(",") if o])
        print(json.dumps(result))
        return

    configs = ["reference", *(args.ganzoo or ["", "precision=fp32"])]
    runs: dict[str, list[dict]] = {c: [] for c in configs}
    for round_ in range(args.rounds):
        for config in configs:
            cmd = [sys.executable, __file__, "--data-dir", args.data_dir, "--batch-size", str(args.batch_size),
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--device", args.device, "--only", config]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            runs[config].append(json.loads(out.strip().splitlines()[-1]))
            print(f"  round {round_ + 1}: measured {runs[config][-1]['name']}", file=sys.stderr)
    results = []
    for measured in runs.values():
        steps = [s for r in measured for s in r["step_seconds"]]
        per_round = [args.batch_size / statistics.median(r["step_seconds"]) for r in measured]
        results.append({**{k: v for k, v in measured[0].items() if k != "step_seconds"},
                        "images_per_s": args.batch_size / statistics.median(steps),
                        "rounds_images_per_s": per_round,
                        "peak_rss_mb": max(r["peak_rss_mb"] for r in measured)})
    base = results[0]["images_per_s"]
    for r in results:
        r["ratio"] = r["images_per_s"] / base
    if args.json:
        print(json.dumps(results, indent=2))
        return
    from ganzoo.device import cpu_capability, cpu_model, describe_device

    import torch

    where = describe_device(torch.device(args.device)) if args.device != "cpu" else \
        f"cpu ({cpu_model()}, {cpu_capability()}, {torch.get_num_threads()} threads)"
    print(f"dcgan, Fashion-MNIST, batch {args.batch_size}, {args.rounds} rounds of {args.steps} timed steps "
          f"after {args.warmup} warm-up on {where}; images/s from the median step")
    print(f"{'configuration':44} {'images/s':>10} {'rounds':>13} {'vs ref':>8} {'peak RSS':>10}")
    for r in results:
        spread = f"{min(r['rounds_images_per_s']):.0f}-{max(r['rounds_images_per_s']):.0f}"
        print(f"{r['name']:44} {r['images_per_s']:10.0f} {spread:>13} {r['ratio']:7.2f}x {r['peak_rss_mb']:8.0f} MB")


if __name__ == "__main__":
    main()
