"""Regenerate the figures of docs/gans.md with ganzoo itself.

    python docs/figures.py --data-dir ../shared/datasets    # about 12 minutes on 2 CPU cores (AVX2, fp32)

It trains the dcgan recipe twice for the same short budget, once with the non-saturating
generator loss and once with the minimax one, scores both, and draws: G's gradient under each loss
(from the loss functions themselves), D(x) and D(G(z)) and the losses of a run, the two runs'
final grids, and the class coverage of each. The numbers it prints are the ones docs/gans.md quotes.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "images" / "gans"


def gradient_figure(path: Path) -> None:
    """|dL_G/dl| for a fake image whose logit is l, under each generator loss."""
    import torch

    import ganzoo
    from ganzoo.plots import curves_png

    series = {}
    for name in ("minimax", "nonsaturating"):
        loss = ganzoo.create_loss(name)
        points = []
        for i in range(121):
            logit = torch.tensor([-8.0 + i * 0.1], requires_grad=True)
            loss.generator_loss(logit).backward()
            points.append((logit.item(), abs(logit.grad.item())))
        series[f"{name}: |dL_G / d logit|"] = points
    curves_png(series, path, title="G's gradient against D's logit for a fake (left: D rejects it)", xlabel="logit")


def train_and_score(name: str, loss: str, args: argparse.Namespace) -> dict:
    import ganzoo

    run = ganzoo.train("dcgan", dataset="fashion_mnist", data_dir=args.data_dir, loss=loss, epochs=args.epochs,
                       out=args.runs / name, overwrite=True,
                       overrides={"data.limit": args.limit, "train.log_every": 5, "train.early_grids": 0})
    scores = run.evaluate(n=args.n)
    return {"run": run, "scores": scores}


def curves_figure(run_path: Path, path: Path) -> None:
    from ganzoo.plots import curves_png
    from ganzoo.rundir import RunDir

    records = [r for r in RunDir(run_path).read_metrics() if "d_real" in r]
    curves_png({"D(x): real judged real": [(r["step"], r["d_real"]) for r in records],
                "D(G(z)): fake judged real": [(r["step"], r["d_fake"]) for r in records]},
               path, title="what D says, averaged over 5 steps (0.5 = cannot tell)", xlabel="step")
    curves_png({"d_loss": [(r["step"], r["d_loss"]) for r in records],
                "g_loss": [(r["step"], r["g_loss"]) for r in records]},
               path.with_name(path.stem + "-losses.png"),
               title="losses (at D's equilibrium: d_loss = 2 log 2 = 1.39, g_loss = log 2 = 0.69)", xlabel="step")


def coverage_figure(results: dict[str, dict], names: tuple[str, ...], path: Path) -> None:
    """Bars: the share of each run's samples that the feature classifier puts in each class."""
    from PIL import Image, ImageDraw

    from ganzoo_plugins.datasets import FASHION_MNIST_CLASSES

    width, row, left = 720, 22, 90
    image = Image.new("RGB", (width, 40 + row * len(FASHION_MNIST_CLASSES)), "white")
    draw = ImageDraw.Draw(image)
    colours = ("#1f77b4", "#d62728")
    for j, key in enumerate(results):
        draw.text((left + 10 + 220 * j, 8), f"{key}: {results[key]['scores']['classes_covered']}/10 classes",
                  fill=colours[j])
    for i, cls in enumerate(names):
        y = 30 + i * row
        draw.text((6, y + 4), cls, fill="black")
        for j, key in enumerate(results):
            share = results[key]["scores"]["class_shares"][i]
            draw.rectangle((left, y + 2 + 9 * j, left + int(share * 4 * (width - left - 20)), y + 9 + 9 * j),
                           fill=colours[j])
        draw.line((left + (width - left - 20) * 0.4, y, left + (width - left - 20) * 0.4, y + row), fill="#bbbbbb")
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="the folder that holds FashionMNIST/")
    parser.add_argument("--runs", type=Path, default=Path("runs/figures"), help="where the two runs go")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--limit", type=int, default=60000, help="training images per epoch")
    parser.add_argument("--n", type=int, default=2000, help="samples per score")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    gradient_figure(OUT / "gradients.png")
    results = {loss: train_and_score(f"dcgan-{loss}", loss, args) for loss in ("nonsaturating", "minimax")}
    curves_figure(results["nonsaturating"]["run"].path, OUT / "d-outputs.png")
    for loss, result in results.items():
        shutil.copy(result["run"].grids[-1], OUT / f"grid-{loss}.png")
    from ganzoo_plugins.datasets import FASHION_MNIST_CLASSES

    coverage_figure(results, FASHION_MNIST_CLASSES, OUT / "coverage.png")
    print(json.dumps({loss: {k: r["scores"][k] for k in ("fid", "kid", "classes_covered", "coverage_entropy")}
                      | {"floor_fid": r["scores"]["floor"]["fid"], "minutes": round(r["run"].summary["train_seconds"] / 60, 1),
                         "final": r["run"].summary["final"]}
                      for loss, r in results.items()}, indent=2))


if __name__ == "__main__":
    main()
