"""The ``ganzoo`` command. Library errors become one-line messages here, and only here.

Exit codes: 0 success, 1 training diverged, 2 a user mistake (bad name, config, file, folder),
130 interrupted (a checkpoint was saved first).
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .version import __version__
from .errors import (EXIT_DIVERGED, EXIT_INTERRUPTED, EXIT_USAGE, GanzooError, GanzooWarning, TrainingDiverged,
                     TrainingInterrupted)
from .rundir import json_safe


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

def _list_row(registry: Any, kind: str, name: str) -> dict[str, Any]:
    from .options import option_defaults
    from .recipes import load_recipe

    spec = registry.get(kind, name)
    info = registry.plugins.infos.get(spec.plugin)
    row: dict[str, Any] = {
        "name": name, "plugin": spec.plugin,
        "package": info.distribution if info else None, "version": info.version if info else None,
        "description": spec.description, "options": option_defaults(spec.options),
    }
    if spec.fixed:
        row["fixed"] = dict(spec.fixed)
    if kind == "dataset":
        row.update(image_shape=list(spec.image_shape), num_classes=spec.num_classes, parametric=spec.parametric)
    if kind == "model":  # what `ganzoo train NAME --dataset D [--recipe R]` starts from, beside the defaults
        row["recipes"] = {}
        for d, named in sorted(spec.recipes.items()):
            for r, src in sorted(named.items()):
                key = f"{d}:{r}" if r != "default" else d
                try:
                    row["recipes"][key] = load_recipe(src)
                except GanzooError as exc:  # one plugin's broken recipe file must not hide the list
                    row.setdefault("problems", []).append(f"plugin {spec.plugin!r}: model {name!r}: recipe {key}: {exc}")
    return row


def _warn_problems(rows: dict[str, list[dict[str, Any]]]) -> None:
    from rich.markup import escape

    err = _console(stderr=True)
    for problem in (p for group in rows.values() for row in group for p in row.get("problems", ())):
        err.print(f"[yellow]warning:[/] {escape(problem)}", markup=True)


def cmd_list(args: argparse.Namespace) -> int:
    from .registry import SPEC_TYPES, get_registry

    registry = get_registry()
    pattern = args.pattern or "*"
    rows = {spec.plural: [_list_row(registry, kind, name) for name in registry.names(kind, pattern)]
            for kind, spec in SPEC_TYPES.items()}
    if args.json:
        print(json.dumps(rows, indent=2))
        _warn_failures()
        _warn_problems(rows)
        return 0

    from rich.table import Table

    console = _console()
    if not any(rows.values()):
        console.print(f"nothing matches {pattern!r}; `ganzoo list` shows everything")
    for kind, spec in SPEC_TYPES.items():
        key = spec.plural
        if not rows[key]:
            continue
        table = Table(title=key.capitalize(), title_justify="left", show_lines=False)
        table.add_column("name", style="cyan", no_wrap=True)
        table.add_column("plugin", overflow="fold")
        table.add_column("shape" if kind == "dataset" else "options", overflow="fold")
        if kind == "model":
            table.add_column("recipes", overflow="fold")
        table.add_column("description", overflow="fold")
        for row in rows[key]:
            plugin = row["plugin"] if not row["package"] or row["package"] == "ganzoo" else f"{row['plugin']} ({row['package']} {row['version']})"
            extra = ("x".join(map(str, row["image_shape"])) if kind == "dataset"
                     else ", ".join(row["options"]) or "-")
            cells = [row["name"], plugin, extra]
            if kind == "model":
                cells.append(", ".join(row["recipes"]) or "-")
            table.add_row(*cells, row["description"])
        console.print(table)
    _warn_failures()
    _warn_problems(rows)
    return 0


# --- plugins ------------------------------------------------------------------------------------

def cmd_plugins(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from .registry import get_registry

    registry = get_registry()
    from .registry import KINDS

    registered: dict[str, list[str]] = {}
    for kind in KINDS:
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
    from .evaluation import check_inception, evaluate, inception_fid, write_eval
    from .rundir import find_checkpoint

    if args.n < 10:
        raise GanzooError(f"--n must be at least 10, got {args.n}")
    checkpoint = find_checkpoint(args.run)
    if args.inception:
        check_inception()
    err = _console(stderr=True)
    with _progress_bar(err, "feature network") as progress:
        result = evaluate(checkpoint, n=args.n, seed=args.seed, log=err.print, progress=progress)
    if args.inception:
        result["inception_fid"] = inception_fid(checkpoint, n=args.n, seed=args.seed)
    run_dir = Path(args.run) if Path(args.run).is_dir() else None
    written = None
    if run_dir is not None:
        try:
            written = write_eval(run_dir, result)
        except OSError as exc:  # a read-only run still gets its scores printed
            from rich.markup import escape

            err.print(f"[yellow]warning:[/] could not write {escape(str(run_dir / 'eval.json'))}: "
                      f"{escape(exc.strerror or str(exc))}", markup=True, highlight=False)
    if args.json:
        print(json.dumps(json_safe(result), indent=2))
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
                  + (f"; written to {written}" if written else ""))
    return 0


@contextmanager
def _progress_bar(console: Any, description: str) -> Iterator[Callable[[int, int], None]]:
    """``update(done, total)`` for a bar with the time left, shown from the first update on."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TextColumn("left"),
                   TimeRemainingColumn(), console=console, transient=True)
    task = None

    def update(done: int, total: int) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(description, total=total)
        bar.update(task, completed=done)

    try:
        yield update
    finally:
        bar.stop()


def _whole_off_a_terminal(console: Any, table: Any) -> None:
    """Off a terminal (a log file, a pipe, a long job under nohup) print `table` at its own width.

    rich lays tables out at 80 columns there and folds or elides cells; a file has no width to keep.
    """
    if not console.is_terminal:
        from rich.measure import Measurement

        console.width = max(console.width, Measurement.get(console, console.options.update_width(10_000), table).maximum)


def cmd_compare(args: argparse.Namespace) -> int:
    from rich import box
    from rich.table import Table

    from .report import covered, field, named, number, run_facts

    runs = [run_facts(p) for p in args.runs]
    if args.json:
        print(json.dumps(json_safe([{k: v for k, v in r.items() if k not in ("run", "metrics", "path")}
                                    | {"path": str(r["path"])} for r in runs]), indent=2, default=str))
        return 0
    console = _console()
    # (header, cell, shown on narrow terminals): 80 columns get the essentials, whole words; a file or
    # a pipe gets every column (as `ls` and `git` do), printed at the table's own width
    columns = [
        ("run", lambda r, c, s, e: r["name"], True),
        ("model", lambda r, c, s, e: named(c, "model"), True),
        ("loss", lambda r, c, s, e: named(c, "loss"), True),
        ("dataset", lambda r, c, s, e: named(c, "data"), False),
        ("epochs", lambda r, c, s, e: str(s.get("epochs", "-")), True),
        ("min", lambda r, c, s, e: number(s.get("train_seconds"), ".1f", scale=1 / 60), True),
        ("img/s", lambda r, c, s, e: number(s.get("images_per_s"), ",.0f"), False),
        ("FID", lambda r, c, s, e: number(e.get("fid"), ".2f") + ("*" if r["stale_eval"] and "fid" in e else ""), True),
        ("KID", lambda r, c, s, e: number(e.get("kid"), ".4f"), False),
        ("floor", lambda r, c, s, e: number(field(e.get("floor"), "fid"), ".2f"), False),
        ("classes", lambda r, c, s, e: covered(e, "/") or "-", True),
    ]
    wide = console.width >= 120 or not console.is_terminal
    datasets = {named(r["config"], "data") for r in runs}
    table = Table(title="ganzoo compare" + (f": {datasets.pop()}" if len(datasets) == 1 and not wide else ""),
                  title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    shown = [(h, cell) for h, cell, narrow in columns if wide or narrow or (h == "dataset" and len(datasets) > 1)]
    for header, _ in shown:
        table.add_column(header, justify="left" if header in ("run", "model", "loss", "dataset") else "right",
                         overflow="fold", no_wrap=header != "run")
    for r in runs:
        table.add_row(*(cell(r, r["config"], r["summary"], r["eval"]) for _, cell in shown))
    _whole_off_a_terminal(console, table)
    console.print(table)
    floors = {number(field(r["eval"].get("floor"), "fid"), ".2f") for r in runs} - {"-"}
    if not wide and floors:
        console.print(f"real-vs-real floor FID: {', '.join(sorted(floors))}; KID, images/s and more: --json "
                      "or a wider terminal")
    if any(not r["eval"] for r in runs):
        console.print("runs without scores: run `ganzoo eval RUN` first")
    if any(r["stale_eval"] for r in runs):
        console.print("* scores of another checkpoint than the run's last: it trained on after `ganzoo eval`; "
                      "run it again")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .atomic import atomic_write_bytes
    from .report import build_report

    page = build_report(args.runs)
    out = Path(args.out) if args.out else (Path(args.runs[0]) / "report.html" if len(args.runs) == 1 else Path("report.html"))
    try:
        atomic_write_bytes(out, page.encode())
    except OSError as exc:
        raise GanzooError(f"cannot write {out}: {exc.strerror or exc}") from None
    _console().print(f"wrote {out} ({len(page) / 1e6:.1f} MB, self-contained)")
    return 0


# --- bench --------------------------------------------------------------------------------------

def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import parse_budget, run_bench

    err = _console(stderr=True)
    result = run_bench(args.patterns, dataset=args.dataset, budget_minutes=parse_budget(args.budget) if args.budget else None,
                       epochs=args.epochs, recipes=[r.strip() for r in args.recipes.split(",") if r.strip()],
                       seeds=args.seeds, out=args.out, data_dir=args.data_dir, device=args.device, n=args.n,
                       overrides=args.set or (), log=lambda text: err.print(text, style="dim"))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    from rich import box
    from rich.table import Table

    s = result["settings"]
    budget = f"{s['budget_minutes']:g} min of training" if s["budget_minutes"] else f"{s['epochs']} epochs"
    table = Table(title=f"ganzoo bench: {s['dataset']}, {budget} per run", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    for header in ("#", "model", "recipe", "loss", "FID", "classes", "img/s", "min", "MB"):
        text = header in ("model", "recipe", "loss")
        # on a narrow terminal the names fold over lines so that the numbers keep their width; a
        # terminal too narrow even for the numbers shows an ellipsis rather than a silently cut number
        table.add_column(header, justify="left" if text else "right", no_wrap=not text,
                         overflow="fold" if text else "ellipsis")
    for row in result["leaderboard"]:
        fid = f"{row['fid']:.1f}±{row['fid_spread']:.1f}" if "fid" in row else "failed"
        table.add_row(str(row["rank"] or "-"), row["model"], row["recipe"], row.get("loss") or "-", fid,
                      str(row.get("classes_covered", "-")), f"{row['images_per_s']:,.0f}" if "images_per_s" in row else "-",
                      f"{row['train_minutes']:.1f}" if "train_minutes" in row else "-",
                      f"{row['peak_memory_mb']:,.0f}" if "peak_memory_mb" in row else "-")
    console = _console()
    _whole_off_a_terminal(console, table)
    console.print(table)
    floors = {row["floor_fid"] for row in result["leaderboard"] if "floor_fid" in row}
    for row in result["leaderboard"]:
        for problem in row.get("problems", []):
            console.print(f"{row['model']} ({row['recipe']}): {problem}")
    console.print(f"real-vs-real floor FID {', '.join(f'{f:.2f}' for f in sorted(floors)) or '-'}; "
                  f"written to {Path(args.out) / 'bench.json'} and bench.html")
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

def _train_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return dict(dataset=args.dataset, recipe=args.recipe, config=args.config, data_dir=args.data_dir, loss=args.loss,
                epochs=args.epochs, batch_size=args.batch_size, max_steps=args.max_steps, seed=args.seed,
                device=args.device, eval_every=args.eval_every, overrides=args.set or (), resume=args.resume)


def _launch(args: argparse.Namespace, argv: Sequence[str], nproc: int) -> int:
    """Run this same command under torchrun with ``nproc`` processes on this machine."""
    import os
    import subprocess

    from .api import train_config
    from .registry import get_dataset_spec
    from .rundir import default_run_dir

    rest = list(argv)  # without --nproc (torchrun would take it for its own), however it was spelt:
    for i, arg in enumerate(rest):  # argparse takes any unique prefix, down to --n
        name = arg.split("=", 1)[0]
        if len(name) >= 3 and "--nproc".startswith(name):
            del rest[i: i + (1 if "=" in arg else 2)]
            break
    if not args.out and not args.resume:  # every rank must agree on the folder: fix it here
        config, _ = train_config(args.model, **_train_kwargs(args))
        short = get_dataset_spec(config.data.name).run_name(config.data.name)
        rest += ["--out", str(default_run_dir(config.model.name, short))]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "ganzoo", *rest]
    return subprocess.call(cmd, env={**os.environ, "OMP_NUM_THREADS": os.environ.get(
        "OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))})


def cmd_train(args: argparse.Namespace, argv: Sequence[str] = ()) -> int:
    from .api import resolve_nproc, train, train_config
    from .distributed import from_env

    if args.print_config:
        from .tomlfile import dump_toml

        config, sources = train_config(args.model, **_train_kwargs(args))
        print("".join(f"# from {source}\n" for source in sources) + dump_toml(config.to_dict()), end="")
        return 0
    nproc = resolve_nproc(args.nproc, args.device or "auto")
    if nproc > 1 and not from_env().enabled:
        return _launch(args, argv, nproc)
    main_rank = from_env().is_main
    console = _console() if main_rank else _console(stderr=True, quiet=True)
    run = train(args.model, out=args.out, overwrite=args.overwrite, progress=main_rank,
                log=lambda text: console.print(text, style="dim"), **_train_kwargs(args))
    if run.note:
        return 0
    s = run.summary
    console.print(
        f"done: {s['epochs']} epochs, {s['steps']} steps in {s['train_seconds']:.0f}s "
        f"({s['images_per_s']:,.0f} images/s). Samples in {run.rundir.samples}, checkpoint {run.rundir.last_checkpoint}.\n"
        f"next: ganzoo sample {run.path} --n 64 --out samples.png"
    )
    return 0


# --- sample -------------------------------------------------------------------------------------

def _sample_labels(args: argparse.Namespace, generator: Any, meta: dict[str, Any], n: int) -> tuple[Any, int | None]:
    """``n`` labels for a conditional generator: all one class with --class (a class's name first,
    then its index: folders named 1, 2, ..., 10 sort as text), else one row per class."""
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
        per_row = math.ceil(n / classes)
        return torch.arange(n) // per_row, per_row
    names = list(meta.get("class_names") or [])
    if args.class_ in names:
        index = names.index(args.class_)
    elif args.class_.isdecimal() and args.class_.isascii():
        index = int(args.class_)
        if index >= classes:
            raise GanzooError(f"--class {index} is out of range: this run has classes 0..{classes - 1}")
    else:
        raise UnknownNameError("class", args.class_, names or [str(i) for i in range(classes)])
    return torch.full((n,), index, dtype=torch.int64), None


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
        chosen = f"_{args.class_}" if args.class_ is not None else f"_code{args.code}" if args.code is not None else ""
        out = RunDir(root).samples / f"sample_seed{args.seed}{chosen}.png"
    # FILE.png: a grid; FILE.npy: uint8 [N, C, H, W]; FILE.gif: a latent walk; DIR/: one PNG per image
    to_folder = str(args.out or "").endswith(("/", "\\")) or out.is_dir()
    suffix = out.suffix.lower()
    if not to_folder and suffix not in (".png", ".npy", ".gif"):
        raise GanzooError(f"--out must be a .png (grid), .npy (uint8 array), .gif (latent interpolation) "
                          f"or a folder ending in '/', got {out.name!r}")
    if args.out and not out.parent.is_dir():
        raise GanzooError(f"folder {out.parent} does not exist")
    if to_folder and out.is_dir():
        earlier = sorted(p.name for p in out.glob("[0-9][0-9][0-9][0-9][0-9][0-9].png"))
        if earlier:  # writing over some of them would leave a folder mixing two sets of samples
            raise GanzooError(f"{out} already holds samples ({earlier[0]} ... {earlier[-1]}); pass a new or empty "
                              "folder, or move those away")

    import torch

    from .device import resolve_device
    from .images import save_grid, save_interpolation, save_npy, save_pngs
    from .sampling import check_fits, generate, load_generator

    generator, meta = load_generator(checkpoint, device=resolve_device(args.device))
    draws_n = args.code is None and not (suffix == ".gif" and not to_folder)  # those draw grids of their own size
    if draws_n:
        check_fits(generator, args.n, meta["image_shape"])
    labels, nrow = _sample_labels(args, generator, meta, args.n if draws_n else 16)
    try:
        out.parent.mkdir(exist_ok=True)  # RUN/samples/ of a run that has none yet
        if args.code is not None:
            if to_folder or suffix != ".png":
                raise GanzooError(f"--code draws a grid: --out must be a .png, got {out.name!r}")
            codes = generator.latent_codes()
            if not codes:
                raise GanzooError(f"--code needs a generator with latent codes (e.g. infogan); this {meta['model']} "
                                  "run's has none")
            if not 0 <= args.code < len(codes):
                raise GanzooError(f"--code {args.code} is out of range: this run's codes are "
                                  + ", ".join(f"{i}: {c}" for i, c in enumerate(codes)))
            z, row = generator.traversal(args.code, generator=torch.Generator().manual_seed(args.seed))
            save_grid(generator.sample(z=z, device="cpu"), out, nrow=row)
            what = f"a traversal of code {args.code} ({codes[args.code]})"
        elif suffix == ".gif" and not to_folder:
            if labels is not None:  # one label per walk of the 4x4 grid
                labels = labels[:1].repeat(16) if args.class_ is not None else torch.arange(16) % generator.num_classes
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


def _seed(text: str) -> int:
    from .config import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be from 0 to {MAX_SEED}, got {value}")
    return value


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"expected seeds of 0 or more, got {text!r}")
    for seed in seeds:
        _seed(str(seed))
    return seeds


def _nproc(text: str) -> int | str:
    return "auto" if text == "auto" else _positive_int(text)


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
    p.add_argument("--seed", type=_seed, default=0, help="noise seed (default 0)")
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

    p = sub.add_parser("bench", help="train every matching model for the same budget, score and rank them",
                       description="A leaderboard by time to quality: every matching model (third-party ones "
                                   "included) trains with its recipe for the same budget, once per seed, is "
                                   "scored (FID/KID, floor, class coverage) and ranked by mean FID. Interrupted, "
                                   "it resumes where it stopped.")
    p.add_argument("patterns", nargs="*", metavar="PATTERN", help="shell-style model names (default: all)")
    p.add_argument("--dataset", help="dataset name (default: the default dataset, fashion_mnist)")
    budget = p.add_mutually_exclusive_group(required=True)
    budget.add_argument("--budget", metavar="TIME", help="minutes of training steps per run: 10m, 90s, 1.5h")
    budget.add_argument("--epochs", type=_positive_int, help="epochs per run")
    p.add_argument("--recipes", default="default", help="comma-separated recipe names, e.g. default,fast")
    p.add_argument("--seeds", type=_seeds, default=[0], help="comma-separated seeds, e.g. 1,2,3 (default 0)")
    p.add_argument("--n", type=_positive_int, default=10000, help="samples per score (default 10000)")
    p.add_argument("--out", default="bench", help="folder for the runs, bench.json and bench.html (default bench/)")
    p.add_argument("--data-dir", help="the folder that holds the dataset")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train (default auto)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key in every run")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(func=cmd_bench)

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
                       description="Train MODEL on a dataset. Settings are layered, later ones winning: the "
                                   "model's recipe for the dataset, then --config, then flags, then --set.")
    p.add_argument("model", nargs="?", help="registered model name (`ganzoo list`)")
    p.add_argument("--dataset", help="dataset name (default: the default dataset, fashion_mnist)")
    p.add_argument("--data-dir", help="dataset root in torchvision's layout (default $GANZOO_DATA_DIR or ~/.cache/ganzoo/datasets)")
    p.add_argument("--epochs", type=_positive_int, help="total epochs; with --resume, the total to reach")
    p.add_argument("--batch-size", type=_positive_int, help="images per step")
    p.add_argument("--max-steps", type=_positive_int, help="stop after this many steps in total")
    p.add_argument("--loss", help="loss name (default: the model's recipe's, else nonsaturating)")
    p.add_argument("--recipe", metavar="NAME", help="a named recipe of the model for the dataset, e.g. fast "
                                                    "(`ganzoo list MODEL` shows them; default: the default recipe)")
    p.add_argument("--config", help="TOML config file, layered over the recipe")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set g_optimizer.lr=1e-4 (repeatable)")
    p.add_argument("--seed", type=_seed, help="random seed (default 0)")
    p.add_argument("--out", help="run directory (default runs/MODEL-DATASET, numbered if taken)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run directory at --out")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), help="where to train (default auto)")
    p.add_argument("--nproc", type=_nproc, metavar="N|auto",
                   help="data-parallel processes on this machine (runs torchrun); auto: one per GPU")
    p.add_argument("--eval-every", type=int, metavar="N", help="score FID/KID every N epochs, keep checkpoints/best")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved config (and where it came from) as TOML and exit")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate images from a trained run",
                       description="Generate images from a run directory or checkpoint file.")
    p.add_argument("run", help="run directory or .safetensors checkpoint")
    p.add_argument("--n", type=int, default=64, help="number of images (default 64; a .gif or a --code grid has its own)")
    p.add_argument("--out", help="FILE.png (grid), FILE.npy (uint8 [N, C, H, W]), FILE.gif (latent interpolation) "
                                 "or DIR/ (one PNG per image); default RUN/samples/sample_seedS.png")
    p.add_argument("--seed", type=_seed, default=0, help="noise seed (default 0)")
    p.add_argument("--class", dest="class_", metavar="CLASS",
                   help="conditional runs: only this class, by name (sneaker) or index (7)")
    p.add_argument("--code", type=int, metavar="K",
                   help="runs with latent codes (infogan): a grid that varies code K along each row")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"), default="cpu", help="default cpu")
    p.set_defaults(func=cmd_sample)
    return parser


@contextmanager
def _warnings_as_lines(err: Any) -> Iterator[None]:
    """ganzoo's own warnings (a picture not written, a cache not kept) as one ``warning:`` line
    each, every time; other libraries' warnings as Python shows them."""
    import warnings

    from rich.markup import escape

    show = warnings.showwarning

    def line(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, GanzooWarning):
            err.print(f"[yellow]warning:[/] {escape(str(message))}", markup=True, highlight=False)
        else:
            show(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("always", GanzooWarning)
        warnings.showwarning = line
        yield


# an OSError on a path with one of these is the user's to fix, and gets one line; any other keeps its traceback
_PATH_ERRNOS = frozenset(getattr(errno, name) for name in ("ENAMETOOLONG", "EACCES", "EPERM", "EROFS", "ENOENT",
                                                          "ENOTDIR", "EISDIR", "ELOOP", "ENOSPC", "EDQUOT", "EEXIST")
                         if hasattr(errno, name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    from rich.markup import escape

    err = _console(stderr=True)
    try:
        with _warnings_as_lines(err):
            if args.func is cmd_train:
                return cmd_train(args, sys.argv[1:] if argv is None else argv)
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
    except OSError as exc:  # what the system refused on a path: permissions, a name too long, a full disk, ...
        if exc.filename is None or exc.errno not in _PATH_ERRNOS:
            raise  # not about a file, or not something the user can fix: a bug, whose traceback is wanted
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
        err.print(f"[red]error:[/] {escape(f'{where}: {exc.strerror or exc}')}", markup=True, highlight=False)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
