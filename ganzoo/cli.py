"""The ``ganzoo`` command. Library errors become one-line messages here, and only here.

Exit codes: 0 success, 1 training diverged, 2 a user mistake (bad name, config, file, folder),
130 interrupted (a checkpoint was saved first).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__
from .errors import GanzooError, TrainingDiverged, TrainingInterrupted

EXIT_DIVERGED, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def _console(stderr: bool = False, quiet: bool = False) -> Any:
    from rich.console import Console

    # markup off: messages carry user text such as "[model]"; styled lines opt in and escape it
    return Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False, quiet=quiet)


def _warn_failures() -> None:
    from rich.markup import escape

    from .registry import get_registry

    failures = get_registry().failures
    if failures:
        err = _console(stderr=True)
        for failure in failures:
            err.print(f"[yellow]warning:[/] {escape(str(failure))}", markup=True)


# --- list ---------------------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> int:
    from .config import describe_options
    from .registry import get_registry

    registry = get_registry()
    pattern = args.pattern or "*"
    rows: dict[str, list[dict[str, Any]]] = {"models": [], "losses": [], "datasets": []}
    for kind, key in (("model", "models"), ("loss", "losses"), ("dataset", "datasets")):
        for name in registry.names(kind, pattern):
            spec = registry.get(kind, name)
            info = registry.plugins.infos.get(spec.plugin)
            row: dict[str, Any] = {
                "name": name, "plugin": spec.plugin,
                "package": info.distribution if info else None, "version": info.version if info else None,
                "description": spec.description,
            }
            if kind == "dataset":
                row["image_shape"] = list(spec.image_shape)
                row["num_classes"] = spec.num_classes
            else:
                row["options"] = {k: (list(d) if isinstance(d, tuple) else d) for k, _, d, _ in describe_options(spec.options)}
            rows[key].append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        _warn_failures()
        return 0

    from rich.table import Table

    console = _console()
    if not any(rows.values()):
        console.print(f"nothing matches {pattern!r}; `ganzoo list` shows everything")
    for key, title in (("models", "Models"), ("losses", "Losses"), ("datasets", "Datasets")):
        if not rows[key]:
            continue
        table = Table(title=title, title_justify="left", show_lines=False)
        table.add_column("name", style="cyan", no_wrap=True)
        table.add_column("plugin", overflow="fold")
        table.add_column("shape" if key == "datasets" else "options", overflow="fold")
        table.add_column("description", overflow="fold")
        for row in rows[key]:
            plugin = row["plugin"] if not row["package"] or row["package"] == "ganzoo" else f"{row['plugin']} ({row['package']} {row['version']})"
            extra = ("x".join(map(str, row["image_shape"])) if key == "datasets"
                     else ", ".join(row["options"]) or "-")
            table.add_row(row["name"], plugin, extra, row["description"])
        console.print(table)
    _warn_failures()
    return 0


# --- plugins ------------------------------------------------------------------------------------

def cmd_plugins(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from .registry import get_registry

    registry = get_registry()
    registered: dict[str, list[str]] = {}
    for kind in ("model", "loss", "dataset"):
        for name in registry.names(kind):
            registered.setdefault(registry.get(kind, name).plugin, []).append(f"{kind}:{name}")
    loaded = [
        {"name": info.name, "package": info.distribution, "version": info.version, "builtin": info.builtin,
         "module": info.module, "hooks": info.hooks, "registers": registered.get(info.name, [])}
        for info in sorted(registry.plugins.infos.values(), key=lambda i: (not i.builtin, i.name))
    ]
    failed = [{"name": f.name, "package": f.distribution, "error": f.error} for f in registry.failures]
    if args.json:
        print(json.dumps({"plugins": loaded, "failed": failed}, indent=2))
        return 0

    from rich.table import Table

    console = _console()
    table = Table(title="Plugins", title_justify="left")
    for column in ("name", "package", "version", "source", "hooks", "registers"):
        table.add_column(column, style="cyan" if column == "name" else None, overflow="fold")
    for row in loaded:
        table.add_row(row["name"], row["package"] or "-", row["version"] or "-",
                      "built-in" if row["builtin"] else "third-party", ", ".join(row["hooks"]),
                      ", ".join(row["registers"]) or "-")
    console.print(table)
    for row in failed:
        console.print(f"[red]failed:[/] {escape(row['name'])}" + (f" ({row['package']})" if row["package"] else "")
                      + f": {escape(row['error'])}", markup=True, highlight=False)
    return 0


# --- eval, compare, report ----------------------------------------------------------------------

def cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate, inception_fid, write_eval
    from .rundir import find_checkpoint

    if args.n < 10:
        raise GanzooError(f"--n must be at least 10, got {args.n}")
    checkpoint = find_checkpoint(args.run)
    err = _console(stderr=True)
    result = evaluate(checkpoint, n=args.n, seed=args.seed, log=err.print)
    if args.inception:
        result["inception_fid"] = inception_fid(checkpoint, n=args.n, seed=args.seed)
    run_dir = Path(args.run) if Path(args.run).is_dir() else None
    if run_dir is not None:
        write_eval(run_dir, result)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    from rich.table import Table

    floor = result["floor"]
    table = Table(title=f"{result['model']} on {result['dataset']}: {result['n']} samples, "
                        f"epoch {result['epoch']} ({result['sampled_from']})", title_justify="left")
    for column in ("score", "this run", "real-vs-real floor"):
        table.add_column(column)
    table.add_row("FID (classifier features)", f"{result['fid']:.3f}", f"{floor['fid']:.3f}")
    table.add_row("KID", f"{result['kid']:.4f} ± {result['kid_std']:.4f}", f"{floor['kid']:.4f}")
    if "inception_fid" in result:
        table.add_row("FID (Inception-v3)", f"{result['inception_fid']:.2f}", "-")
    if "class_shares" in result:
        table.add_row("classes covered", f"{result['classes_covered']} of {len(result['class_shares'])}", "-")
        table.add_row("coverage entropy (1 = uniform)", f"{result['coverage_entropy']:.3f}", "-")
    if "class_accuracy" in result:
        reference = result.get("feature_net", {}).get("test_accuracy")
        table.add_row("asked-for class recognised", f"{result['class_accuracy']:.1%}",
                      f"{reference:.1%} (real test images)" if reference is not None else "-")
    console = _console()
    console.print(table)
    net = result["feature_net"]
    console.print(f"features: a {net['num_features']}-d classifier trained {net['epochs']} epochs on "
                  f"{net['dataset']} (test accuracy {net['test_accuracy']:.2%})"
                  + (f"; written to {run_dir / 'eval.json'}" if run_dir else ""))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .report import run_facts

    runs = [run_facts(p) for p in args.runs]
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k not in ("run", "metrics", "path")} | {"path": str(r["path"])}
                          for r in runs], indent=2, default=str))
        return 0
    table = Table(title="ganzoo compare", title_justify="left")
    for column in ("run", "model", "loss", "dataset", "epochs", "train min", "images/s", "FID", "KID", "floor FID", "classes"):
        table.add_column(column, overflow="fold" if column == "run" else "ellipsis", no_wrap=column != "run")
    for r in runs:
        c, s, e = r["config"], r["summary"], r["eval"]
        table.add_row(
            r["name"], c.get("model", {}).get("name", "?"), c.get("loss", {}).get("name", "?"),
            c.get("data", {}).get("name", "?"), str(s.get("epochs", "-")),
            f"{s['train_seconds'] / 60:.1f}" if "train_seconds" in s else "-",
            f"{s['images_per_s']:,.0f}" if "images_per_s" in s else "-",
            f"{e['fid']:.3f}" if "fid" in e else "-", f"{e['kid']:.4f}" if "kid" in e else "-",
            f"{e['floor']['fid']:.3f}" if "floor" in e else "-",
            f"{e['classes_covered']}/{len(e['class_shares'])}" if "class_shares" in e else "-",
        )
    _console().print(table)
    if any(not r["eval"] for r in runs):
        _console().print("runs without scores: run `ganzoo eval RUN` first")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .checkpoint import atomic_write_bytes
    from .report import build_report

    page = build_report(args.runs)
    out = Path(args.out) if args.out else (Path(args.runs[0]) / "report.html" if len(args.runs) == 1 else Path("report.html"))
    try:
        atomic_write_bytes(out, page.encode())
    except OSError as exc:
        raise GanzooError(f"cannot write {out}: {exc.strerror or exc}") from None
    _console().print(f"wrote {out} ({len(page) / 1e6:.1f} MB, self-contained)")
    return 0


# --- doctor -------------------------------------------------------------------------------------

def cmd_doctor(args: argparse.Namespace) -> int:
    from .doctor import report

    info = report()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    console = _console()
    dev = info["device"]
    gpu = ", ".join(dev["cuda_devices"]) if dev["cuda"] else ("mps" if dev["mps"] else "none")
    lines = [
        f"python      {info['python']} on {info['platform']}",
        "packages    " + ", ".join(f"{k} {v}" for k, v in info["packages"].items() if v)
        + "".join(f", {k} (not installed)" for k, v in info["packages"].items() if not v),
        f"gpu         {gpu}",
        f"cpu         {dev['cpu']}, {dev['cpu_count']} cores, {dev['cpu_capability']}, torch threads {dev['torch_threads']}",
        f"plugins     {len(info['plugins']['loaded'])} loaded ({', '.join(info['plugins']['loaded'])}), "
        f"{len(info['plugins']['failed'])} failed",
        *(f"  failed    {f}" for f in info["plugins"]["failed"]),
        f"data root   {info['data']['root']} ({info['data']['source']}); holds: "
        f"{', '.join(info['data']['present']) or 'nothing yet'}; writable: {info['data']['writable']}",
        f"runs        {info['runs']['folder']}; writable: {info['runs']['writable']}",
    ]
    console.print("\n".join(lines))
    return 0


# --- new-plugin ---------------------------------------------------------------------------------

def cmd_new_plugin(args: argparse.Namespace) -> int:
    from .scaffold import new_plugin

    target = new_plugin(args.name, args.dir)
    _console().print(
        f"wrote {target}\nnext:\n  cd {target}\n  pip install -e \".[test]\"\n  python -m pytest\n"
        f"  ganzoo train {args.name} --dataset fashion_mnist"
    )
    return 0


# --- train --------------------------------------------------------------------------------------

def _abspath(path: str | None) -> str | None:
    # stored in the run's config, which must still work from another working directory
    return str(Path(path).expanduser().resolve()) if path else None


def _build_config(args: argparse.Namespace) -> Any:
    from .config import apply_override, find_recipe, load_toml, merge, parse_override, resolve_config

    raw: dict[str, Any] = {}
    source = None
    if args.config:
        raw = merge(raw, load_toml(args.config), str(args.config))
        source = str(args.config)
    model = args.model or raw.get("model", {}).get("name")
    if model is None:
        raise GanzooError("name a model (`ganzoo train dcgan`) or pass --config FILE; `ganzoo list` shows models")
    dataset = args.dataset or raw.get("data", {}).get("name") or "fashion_mnist"
    if not args.config:
        from .registry import get_dataset_spec

        get_dataset_spec(dataset)  # an unknown dataset is reported before looking for recipes
        found = find_recipe(model, dataset)
        if found:
            raw, source = merge(raw, found[0], found[1]), found[1]
    flags = {
        ("model", "name"): args.model, ("data", "name"): args.dataset, ("data", "root"): _abspath(args.data_dir),
        ("loss", "name"): args.loss, ("train", "epochs"): args.epochs, ("train", "batch_size"): args.batch_size,
        ("train", "seed"): args.seed, ("train", "device"): args.device, ("train", "max_steps"): args.max_steps,
        ("train", "eval_every"): args.eval_every,
    }
    for (section, key), value in flags.items():
        if value is not None:
            raw = merge(raw, {section: {key: value}}, f"--{key}")
    for text in args.set or ():
        key, value = parse_override(text)
        apply_override(raw, key, value)
    return resolve_config(raw), source


def _resume_config(args: argparse.Namespace) -> Any:
    from .checkpoint import load_checkpoint
    from .config import apply_override, merge, parse_override, resolve_config
    from .rundir import find_checkpoint

    _, meta = load_checkpoint(find_checkpoint(args.resume))
    raw = meta["config"]
    if args.model and args.model != raw["model"]["name"]:
        raise GanzooError(f"{args.resume} is a {raw['model']['name']} run; it cannot be resumed as {args.model}")
    for flag in ("dataset", "loss", "batch_size", "seed", "config"):
        if getattr(args, flag) is not None:
            raise GanzooError(f"--{flag.replace('_', '-')} cannot change when resuming; start a new run instead")
    flags = {("data", "root"): _abspath(args.data_dir), ("train", "epochs"): args.epochs,
             ("train", "device"): args.device, ("train", "max_steps"): args.max_steps,
             ("train", "eval_every"): args.eval_every}
    for (section, key), value in flags.items():
        if value is not None:
            raw = merge(raw, {section: {key: value}}, f"--{key}")
    for text in args.set or ():
        key, value = parse_override(text)
        if not key.startswith("train."):
            raise GanzooError(f"--set {key} cannot change when resuming; only train.* settings can")
        apply_override(raw, key, value)
    return resolve_config(raw)


def _launch(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``--nproc N``: re-run this command under torchrun with N processes on this machine."""
    import os
    import subprocess

    rest = list(argv)
    i = rest.index("--nproc") if "--nproc" in rest else next(j for j, a in enumerate(rest) if a.startswith("--nproc="))
    del rest[i: i + (2 if rest[i] == "--nproc" else 1)]
    if not args.out and not args.resume:  # every rank must agree on the folder: fix it here
        from .rundir import default_run_dir

        config, _ = _build_config(args)
        rest += ["--out", str(default_run_dir(config.model["name"], config.data.name))]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}",
           "-m", "ganzoo", *rest]
    return subprocess.call(cmd, env={**os.environ, "OMP_NUM_THREADS": os.environ.get(
        "OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.nproc)))})


def cmd_train(args: argparse.Namespace) -> int:
    from .distributed import from_env
    from .rundir import RunDir, default_run_dir, prepare_new_run

    info = from_env()
    if args.resume:
        config = _resume_config(args)
        run, source = RunDir(Path(args.resume)), f"resumed from {args.resume}"
    else:
        config, source = _build_config(args)
        out = Path(args.out) if args.out else default_run_dir(config.model["name"], config.data.name)
        if info.is_main:
            run = prepare_new_run(out, overwrite=args.overwrite)
        else:
            run = RunDir(out)

    # torch is imported only now, after every cheap check has passed
    from .distributed import setup, teardown
    from .trainer import resolve_device

    info = setup(resolve_device(config.train.device).type)
    try:
        return _train(args, config, run, source, info)
    finally:
        teardown(info)


def _train(args: argparse.Namespace, config: Any, run: Any, source: str | None, info: Any) -> int:
    from .checkpoint import atomic_write_bytes
    from .config import dump_toml
    from .distributed import barrier
    from .progress import RichProgress
    from .trainer import Trainer

    barrier(info)  # rank 0 has created the run directory
    console = _console() if info.is_main else _console(stderr=True, quiet=True)
    progress = RichProgress()
    trainer = Trainer(config, run, callbacks=[progress] if info.is_main else [], dist=info)
    if args.resume:
        trainer.restore(run.last_checkpoint)
        if trainer.state.step >= trainer.total_steps:
            console.print(f"{run.path} has already trained {trainer.state.epoch} epochs "
                          f"({trainer.state.step} steps); raise --epochs to train further")
            return 0
    if info.is_main:
        atomic_write_bytes(run.config, dump_toml(config.to_dict()).encode())
    if source:
        console.print(f"config: {source}", style="dim")
    try:
        summary = trainer.fit()
    finally:
        progress.close()
    console.print(
        f"done: {summary['epochs']} epochs, {summary['steps']} steps in {summary['train_seconds']:.0f}s "
        f"({summary['images_per_s']:,.0f} images/s). Samples in {run.samples}, checkpoint {run.last_checkpoint}.\n"
        f"next: ganzoo sample {run.path} --n 64 --out samples.png"
    )
    return 0


# --- sample -------------------------------------------------------------------------------------

def _sample_labels(args: argparse.Namespace, generator: Any, meta: dict[str, Any]) -> tuple[Any, int | None]:
    """Labels for a conditional generator: all one class with --class, else one row per class."""
    import math

    import torch

    from .errors import UnknownNameError

    classes = generator.num_classes
    if not classes:
        if args.class_ is not None:
            raise GanzooError(f"--class needs a class-conditional run (e.g. cgan, acgan); "
                              f"this {meta['model']} run's generator is unconditional")
        return None, None
    if args.class_ is None:
        per_row = math.ceil(args.n / classes)
        return torch.arange(args.n) // per_row, per_row
    names = list(meta.get("class_names") or [])
    if args.class_.isdigit():
        index = int(args.class_)
        if index >= classes:
            raise GanzooError(f"--class {index} is out of range: this run has classes 0..{classes - 1}")
    elif args.class_ in names:
        index = names.index(args.class_)
    else:
        raise UnknownNameError("class", args.class_, names or [str(i) for i in range(classes)])
    return torch.full((args.n,), index, dtype=torch.int64), None


def cmd_sample(args: argparse.Namespace) -> int:
    from .rundir import RunDir, find_checkpoint

    if args.n < 1:
        raise GanzooError(f"--n must be at least 1, got {args.n}")
    checkpoint = find_checkpoint(args.run)
    if args.out:
        out = Path(args.out)
    else:
        # a checkpoint lives in RUN/checkpoints/; its samples go to RUN/samples/
        root = checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
        out = RunDir(root).samples / f"sample_seed{args.seed}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
    # FILE.png: a grid; FILE.npy: uint8 [N, C, H, W]; FILE.gif: a latent walk; DIR/: one PNG per image
    to_folder = str(args.out or "").endswith(("/", "\\")) or out.is_dir()
    suffix = out.suffix.lower()
    if not to_folder and suffix not in (".png", ".npy", ".gif"):
        raise GanzooError(f"--out must be a .png (grid), .npy (uint8 array), .gif (latent interpolation) "
                          f"or a folder ending in '/', got {out.name!r}")
    parent = out if to_folder else out.parent
    if not (parent if not to_folder else out.parent).is_dir():
        raise GanzooError(f"folder {(parent if not to_folder else out.parent)} does not exist")

    from .images import save_grid, save_interpolation, save_npy, save_pngs
    from .sampling import generate, load_generator
    from .trainer import resolve_device

    generator, meta = load_generator(checkpoint, device=resolve_device(args.device))
    labels, nrow = _sample_labels(args, generator, meta)
    try:
        if suffix == ".gif" and not to_folder:
            save_interpolation(generator, out, seed=args.seed, labels=labels)
            what = "a latent interpolation"
        else:
            images = generate(generator, args.n, seed=args.seed, labels=labels)
            if to_folder:
                out.mkdir(exist_ok=True)
                save_pngs(images, out)
            elif suffix == ".png":
                save_grid(images, out, nrow=nrow)
            else:
                save_npy(images, out)
            what = f"{args.n} samples"
    except OSError as exc:
        raise GanzooError(f"cannot write {out}: {exc.strerror or exc}") from None
    _console().print(f"wrote {what} of {meta['model']} to {out}")
    return 0


# --- parser -------------------------------------------------------------------------------------

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganzoo", description="Train, sample and compare GANs; every variant is a plugin.",
        epilog="Start with: ganzoo list, then ganzoo train dcgan --dataset fashion_mnist",
    )
    parser.add_argument("--version", action="version", version=f"ganzoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("list", help="list models, losses and datasets with their plugins",
                       description="List registered models, losses and datasets.")
    p.add_argument("pattern", nargs="?", help="shell-style name pattern, e.g. 'dc*'")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("plugins", help="show loaded plugins, their hooks, and plugins that failed",
                       description="Show every loaded plugin (name, package, version, hooks, what it "
                                   "registers) and every plugin that failed to load, with its error.")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("eval", help="score a run: FID and KID on classifier features, class coverage",
                       description="Score a run against its dataset's test split with a dataset-specific "
                                   "feature network (trained once, cached), next to the real-vs-real floor.")
    p.add_argument("run", help="run directory or checkpoint")
    p.add_argument("--n", type=int, default=10000, help="samples to score (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--inception", action="store_true",
                   help="also Inception-v3 FID (needs torch-fidelity and its weights file locally)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("compare", help="a table of runs: configs, training time and scores")
    p.add_argument("runs", nargs="+", help="run directories")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("report", help="write a self-contained HTML report of one or more runs")
    p.add_argument("runs", nargs="+", help="run directories (several are shown side by side)")
    p.add_argument("--out", help="output .html (default RUN/report.html, or report.html for several runs)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("doctor", help="versions, devices, plugin health, data and output folders",
                       description="Report what ganzoo sees: package versions, GPU/CPU, threads, plugin "
                                   "health, the dataset folder and whether output folders are writable.")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("new-plugin", help="write a ready-to-install plugin package skeleton",
                       description="Write ganzoo-NAME/: pyproject with the entry point, a registered "
                                   "model on ganzoo's interfaces, a README and a test that passes.")
    p.add_argument("name", help="model name: lower-case letters, digits and '_'")
    p.add_argument("--dir", default=".", help="folder to write ganzoo-NAME/ into (default .)")
    p.set_defaults(func=cmd_new_plugin)

    p = sub.add_parser("train", help="train a GAN and write a run directory",
                       description="Train MODEL on a dataset. Settings come from the zoo recipe for "
                                   "(MODEL, dataset), then --config, then flags, then --set.")
    p.add_argument("model", nargs="?", help="registered model name (`ganzoo list`)")
    p.add_argument("--dataset", help="dataset name (default fashion_mnist)")
    p.add_argument("--data-dir", help="dataset root in torchvision's layout (default $GANZOO_DATA_DIR or ~/.cache/ganzoo/datasets)")
    p.add_argument("--epochs", type=_positive_int, help="total epochs; with --resume, the total to reach")
    p.add_argument("--batch-size", type=_positive_int, help="images per step")
    p.add_argument("--max-steps", type=_positive_int, help="stop after this many steps in total")
    p.add_argument("--loss", help="loss name (default nonsaturating)")
    p.add_argument("--config", help="TOML config file (replaces the zoo recipe)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set g_optimizer.lr=1e-4 (repeatable)")
    p.add_argument("--seed", type=int, help="random seed (default 0)")
    p.add_argument("--out", help="run directory (default runs/MODEL-DATASET, numbered if taken)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory at --out")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train (default auto)")
    p.add_argument("--nproc", type=_positive_int, help="data-parallel processes on this machine (runs torchrun)")
    p.add_argument("--eval-every", type=int, metavar="N", help="score FID/KID every N epochs, keep checkpoints/best")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate images from a trained run",
                       description="Generate images from a run directory or checkpoint file.")
    p.add_argument("run", help="run directory or .safetensors checkpoint")
    p.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    p.add_argument("--out", help="FILE.png (grid), FILE.npy (uint8 [N, C, H, W]), FILE.gif (latent interpolation) "
                                 "or DIR/ (one PNG per image); default RUN/samples/sample_seedS.png")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--class", dest="class_", metavar="CLASS",
                   help="conditional runs: only this class, by name (sneaker) or index (7)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="cpu", help="default cpu")
    p.set_defaults(func=cmd_sample)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from rich.markup import escape

    err = _console(stderr=True)
    try:
        if getattr(args, "nproc", None) and args.nproc > 1:
            return _launch(args, sys.argv[1:] if argv is None else argv)
        return args.func(args)
    except TrainingInterrupted as exc:
        err.print(f"[yellow]interrupted:[/] {escape(str(exc))}", markup=True)
        return EXIT_INTERRUPTED
    except TrainingDiverged as exc:
        err.print(f"[red]diverged:[/] {escape(str(exc))}", markup=True)
        return EXIT_DIVERGED
    except GanzooError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]", markup=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `ganzoo list --json | head`: the reader left, which is fine
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
