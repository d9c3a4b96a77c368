"""``ganzoo bench``: a leaderboard by time to quality.

Every matching model (third-party ones included) trains with its recipe for the same budget (minutes
of training steps, or epochs), once per seed, each in a process of its own so that one failure or
one model's memory cannot touch the others; every run is scored (FID and KID against the floor,
class coverage), and the models are ranked by their mean FID. ``bench.json`` records each finished
entry as soon as it is scored, so an interrupted bench resumes where it stopped: Ctrl-C (or SIGTERM)
is passed on to the training under way, which finishes its step and writes its checkpoint, and the
same command run again continues that run from there.
"""

from __future__ import annotations

import html
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_write_bytes
from .errors import EXIT_INTERRUPTED, CheckpointError, ConfigError, GanzooError, TrainingInterrupted, UnknownNameError
from .plots import finite_number
from .recipes import DEFAULT
from .registry import get_dataset_spec, get_model_spec, list_models
from .rundir import RunDir, check_writable, json_safe

BENCH_VERSION = 1


@dataclass
class Entry:
    """One (model, recipe, seed) of a bench: where it ran and what it scored."""

    model: str
    recipe: str
    seed: int
    run: str
    status: str = "pending"  # done, failed, skipped, interrupted (resumed by the next bench call)
    error: str | None = None
    wall_seconds: float | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.model}:{self.recipe}:{self.seed}"


def parse_budget(text: str) -> float:
    """``"10m"`` / ``"90s"`` / ``"1.5h"`` / ``"10"`` (minutes) -> minutes."""
    units = {"s": 1 / 60, "m": 1.0, "h": 60.0}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "m")
    try:
        minutes = float(number) * units[unit]
    except ValueError:
        raise ConfigError(f"--budget must be minutes like 10m, 90s or 1.5h, got {text!r}") from None
    if not math.isfinite(minutes) or minutes <= 0:
        raise ConfigError(f"--budget must be positive, got {text!r}")
    return minutes


def _train_command(entry: Entry, *, dataset: str, budget_minutes: float | None, epochs: int | None,
                   data_dir: str | None, device: str | None, overrides: Sequence[str]) -> list[str]:
    run = Path(entry.run)
    if (run / "checkpoints" / "last.safetensors").is_file():  # an interrupted entry continues
        cmd = ["train", "--resume", str(run)]
    else:
        cmd = ["train", entry.model, "--dataset", dataset, "--seed", str(entry.seed), "--out", str(run),
               "--overwrite", *([] if entry.recipe == DEFAULT else ["--recipe", entry.recipe])]
        cmd += [f"--set={o}" for o in overrides]
        if data_dir:
            cmd += ["--data-dir", data_dir]
    if budget_minutes is not None:
        cmd += ["--set", f"train.max_minutes={budget_minutes}", "--epochs", "100000"]
    if epochs is not None:
        cmd += ["--epochs", str(epochs)]
    if device:
        cmd += ["--device", device]
    return [sys.executable, "-m", "ganzoo", *cmd]


_FLAGS = {"dataset": "--dataset", "budget_minutes": "--budget", "epochs": "--epochs", "n": "--n",
          "device": "--device", "overrides": "--set"}


def _differences(before: Any, now: dict[str, Any]) -> str:
    """How the settings of an earlier bench differ from these, as the flags that set them."""
    if not isinstance(before, dict):
        return "it records none"

    def show(key: str, value: Any) -> str:
        if value is None or value == []:
            return "not given"
        if key == "budget_minutes" and isinstance(value, (int, float)):
            return f"{value:g}m"
        return " ".join(map(str, value)) if isinstance(value, list) else str(value)

    changes = []
    for key in [*now, *(k for k in before if k not in now)]:
        if before.get(key) == now.get(key):
            continue
        if key in _FLAGS:
            changes.append(f"{_FLAGS[key]} {show(key, before.get(key))} there, {show(key, now.get(key))} now")
        else:
            changes.append(f"{key} {before.get(key)} there, {now.get(key)} now")
    return "; ".join(changes)


def _saved_step(run: Path) -> int | None:
    """The step an interrupted run's checkpoint holds (its summary says), if it got that far."""
    try:
        return int(RunDir(run).read_json("summary.json").get("steps") or 0) or None
    except (CheckpointError, ValueError, TypeError):
        return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _scores(result: dict[str, Any]) -> dict[str, Any]:
    keep = ("fid", "kid", "classes_covered", "coverage_entropy", "class_accuracy", "n")
    return {**{k: result[k] for k in keep if k in result}, "floor_fid": result["floor"]["fid"]}


def run_bench(patterns: Sequence[str] = (), *, dataset: str | None = None, budget_minutes: float | None = None,
              epochs: int | None = None, recipes: Sequence[str] = (DEFAULT,), seeds: Sequence[int] = (0,),
              out: str | Path = "bench", data_dir: str | Path | None = None, device: str | None = None,
              n: int = 10000, overrides: Sequence[str] = (),
              log: Callable[[str], None] = lambda text: None) -> dict[str, Any]:
    """Train, score and rank; returns what ``bench.json`` holds. Exactly one of ``budget_minutes``
    and ``epochs``. Entries already done in ``out/bench.json`` (same settings) are kept."""
    from .evaluation import evaluate, write_eval

    if (budget_minutes is None) == (epochs is None):
        raise ConfigError("give a budget: --budget 10m (minutes of training) or --epochs N, not both")
    from .config import default_name

    dataset = dataset or default_name("data")
    get_dataset_spec(dataset)  # an unknown dataset is named before anything about recipes
    models = _select_models(patterns)
    recipes = list(dict.fromkeys(recipes))  # default,default would train every run twice
    if not recipes:
        raise ConfigError("--recipes names no recipe: give e.g. --recipes default,fast")
    seeds = list(dict.fromkeys(seeds))  # 1,1 would score one run twice and count it twice
    if not seeds or any(not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"--seeds must be whole numbers of 0 or more, got {seeds!r}")
    if n < 10:
        raise ConfigError(f"--n must be at least 10 (FID and KID need a sample to compare), got {n}")
    problems = _preflight(models, dataset, recipes, overrides)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    check_writable(out)
    if (out / "bench.json").exists() and not (out / "bench.json").is_file():
        raise ConfigError(f"{out / 'bench.json'} is not a file; move it away, or pass another --out")
    out.mkdir(parents=True, exist_ok=True)
    data_dir = str(Path(data_dir).expanduser().resolve()) if data_dir else None
    settings = {"version": BENCH_VERSION, "dataset": dataset, "budget_minutes": budget_minutes, "epochs": epochs,
                "n": n, "device": device, "overrides": list(overrides)}
    path = out / "bench.json"
    done: dict[str, Entry] = {}
    if path.is_file():
        try:
            previous = json.loads(path.read_text())
            before, earlier = previous.get("settings"), previous.get("entries") or []
            if before != settings and (earlier or any((out / "runs").glob("*"))):
                # its runs would be continued (or found already trained) under the new settings,
                # and scored as if they had been trained with them
                raise ConfigError(f"{path} holds a bench with other settings: {_differences(before, settings)}. "
                                  "Its runs would be continued, not trained afresh: run the same command as "
                                  f"before, pass another --out, or move {out} away")
            done = {e.key: e for e in (Entry(**d) for d in earlier) if e.status == "skipped"
                    or (e.status == "done" and _complete(e))}
        except (ValueError, TypeError, AttributeError, UnicodeDecodeError, RecursionError) as exc:
            if isinstance(exc, ConfigError):
                raise
            raise ConfigError(f"{path} is not a bench.json this ganzoo can read ({type(exc).__name__}: {exc}); "
                              "move it away, or pass another --out") from None
    elif any((out / "runs").glob("*")):
        raise ConfigError(f"{out / 'runs'} holds runs but no bench.json says what settings trained them; "
                          f"they would be continued, not trained afresh: pass another --out, or move {out} away")
    _save(path, settings, list(done.values()))  # the settings first: a bench killed in its first run is still known
    entries: list[Entry] = []
    for model in models:
        for recipe in recipes:
            named = get_model_spec(model).recipes.get(dataset, {})
            for seed in seeds:
                entry = Entry(model, recipe, seed, str(out / "runs" / f"{model}-{recipe}-s{seed}"))
                if entry.key in done:
                    entries.append(done[entry.key])
                    continue
                stopped = None  # the name of a signal that stopped the bench during this entry
                if recipe != DEFAULT and recipe not in named:
                    entry.status, entry.error = "skipped", f"{model} has no {recipe!r} recipe for {dataset}"
                elif (model, recipe) in problems:
                    entry.status, entry.error = "failed", problems[(model, recipe)]
                    if seed == seeds[0]:
                        log(f"{model} ({recipe} recipe): failed: {entry.error}")
                else:
                    stopped = _run_entry(entry, settings, data_dir, log, evaluate, write_eval)
                entries.append(entry)
                _save(path, settings, entries)
                if stopped:
                    saved = _saved_step(Path(entry.run))
                    raise TrainingInterrupted(
                        f"{stopped} received: {entry.model} ({entry.recipe} recipe, seed {entry.seed}) stopped"
                        + (f" after step {saved}, its checkpoint saved" if saved else " before its first step")
                        + f"; finished entries are in {path}. Run the same command again to continue from there.")
    result = _save(path, settings, entries)
    atomic_write_bytes(out / "bench.html", leaderboard_html(result).encode())
    return result


def _select_models(patterns: Sequence[str]) -> list[str]:
    """The models the patterns name, in registry order; a plain name that is no model, or a
    pattern that matches none, is an error (with the nearest names) rather than silently dropped."""
    if not patterns:
        return list_models("*")
    for pattern in patterns:
        if not any(c in pattern for c in "*?["):
            get_model_spec(pattern)  # an unknown name: the error suggests the nearest ones
        elif not list_models(pattern):
            raise ConfigError(f"no model matches {pattern!r}; `ganzoo list` shows them")
    return list_models(list(patterns))


def _preflight(models: Sequence[str], dataset: str, recipes: Sequence[str],
               overrides: Sequence[str]) -> dict[tuple[str, str], str]:
    """Resolve every config the bench will train before anything is written. A mistake that no
    model can train with (a dataset, recipe or --set typo) fails here, at once; one that only some
    models refuse (``model.width`` for the MLP) is returned per (model, recipe) to be reported."""
    from .config import compose

    problems: dict[tuple[str, str], str] = {}
    first: GanzooError | None = None
    runnable = 0
    for model in models:
        named = get_model_spec(model).recipes.get(dataset, {})
        for recipe in recipes:
            if recipe != DEFAULT and recipe not in named:
                continue
            runnable += 1
            try:
                compose(model, dataset=dataset, recipe=None if recipe == DEFAULT else recipe, overrides=overrides)
            except GanzooError as exc:
                problems[(model, recipe)] = str(exc)
                first = first or exc
    known = sorted({r for m in models for r in get_model_spec(m).recipes.get(dataset, {})} | {DEFAULT})
    for recipe in recipes:
        if recipe not in known:  # a typo, not a recipe some models lack (those are skipped)
            raise UnknownNameError(f"recipe for {dataset}", recipe, known)
    if first is not None and len(problems) == runnable:
        raise first
    return problems


@contextmanager
def _on_stop_signals(act: Callable[[int], None]) -> Iterator[list[str]]:
    """While inside, Ctrl-C and SIGTERM are noted (by name, in the yielded list) and handed to
    ``act``; the previous handlers come back after. Signals are the main thread's: elsewhere
    nothing is installed."""
    seen: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen
        return

    def handler(signum: int, frame: Any) -> None:
        seen.append(signal.Signals(signum).name)
        act(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield seen
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _passed_on(proc: subprocess.Popen) -> Any:
    """Ctrl-C and SIGTERM to the bench go to the training ``proc`` (in a session of its own, so a
    terminal's Ctrl-C reaches it only this way, once): the first lets it finish the step and write
    its checkpoint, a second stops it at once (the trainer's rule). Yields the signals passed on."""
    return _on_stop_signals(lambda signum: proc.send_signal(signum) if proc.poll() is None else None)


def _stopping() -> Any:
    """Ctrl-C and SIGTERM stop the work in the bench's own process (scoring) with KeyboardInterrupt,
    so that the bench records the entry and says how to continue. Yields the signal's name."""
    def stop(signum: int) -> None:
        raise KeyboardInterrupt

    return _on_stop_signals(stop)


def _run_entry(entry: Entry, settings: dict[str, Any], data_dir: str | None, log: Callable[[str], None],
               evaluate: Callable[..., dict[str, Any]], write_eval: Callable[..., Any]) -> str | None:
    """Train and score one entry; the name of the signal that stopped the bench, if one did."""
    what = f"{entry.model} ({entry.recipe} recipe, seed {entry.seed})"
    log(f"training {what}")
    cmd = _train_command(entry, dataset=settings["dataset"], budget_minutes=settings["budget_minutes"],
                         epochs=settings["epochs"], data_dir=data_dir, device=settings["device"],
                         overrides=settings["overrides"])
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "120"}, start_new_session=True)
    with _passed_on(proc) as passed:
        _, stderr = proc.communicate()
    entry.wall_seconds = round(time.perf_counter() - start, 1)
    if passed or proc.returncode == EXIT_INTERRUPTED:  # stopped by a signal: resumable, not failed
        entry.status, entry.error = "interrupted", _last_line(stderr).removeprefix("interrupted: ")
        log(f"  interrupted: {entry.error}")
        return passed[0] if passed else None
    if proc.returncode != 0:
        entry.status, entry.error = "failed", _last_line(stderr)
        log(f"  failed: {entry.error}")
        return None
    run = Path(entry.run)
    try:
        entry.summary = RunDir(run).read_json("summary.json")
    except CheckpointError as exc:
        entry.status, entry.error = "failed", str(exc)
        log(f"  failed: {entry.error}")
        return None
    if not entry.summary:
        entry.status, entry.error = "failed", f"training ended without writing {run / 'summary.json'}"
        log(f"  failed: {entry.error}")
        return None
    log(f"  scoring {what}")
    try:
        with _stopping() as stopped:
            result = evaluate(run, n=settings["n"])
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while scoring: the run is trained; the next call scores it
        entry.status, entry.error = "interrupted", "stopped while scoring; the run is trained and is scored next time"
        log(f"  interrupted: {entry.error}")
        return stopped[0] if stopped else "SIGINT"
    except Exception as exc:  # a model that trains but cannot be scored is reported, and the bench goes on
        entry.status, entry.error = "failed", f"scoring failed: {type(exc).__name__}: {exc}"
        return None
    write_eval(run, result)
    entry.scores, entry.status = _scores(result), "done"
    if not all(finite_number(entry.scores.get(k)) for k in ("fid", "kid")):
        entry.status, entry.error = "failed", "its scores are not finite numbers: the samples hold NaN or inf"
    return None


def _mean_spread(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    return mean, (max(values) - min(values)) / 2 if len(values) > 1 else 0.0


def _complete(entry: Entry) -> bool:
    """Whether a run an earlier bench recorded as done has every number the leaderboard reads (a
    hand-edited bench.json may not): one that has not is trained or scored again."""
    numbers = [entry.scores.get(k) for k in ("fid", "kid", "floor_fid")]
    numbers += [entry.summary.get(k) for k in ("images_per_s", "train_seconds", "epochs")]
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers)


def leaderboard(entries: Sequence[Entry]) -> list[dict[str, Any]]:
    """One row per (model, recipe), ranked by mean FID; failed and skipped ones last."""
    groups: dict[tuple[str, str], list[Entry]] = {}
    for entry in entries:
        groups.setdefault((entry.model, entry.recipe), []).append(entry)
    rows = []
    for (model, recipe), group in groups.items():
        ok = [e for e in group if e.status == "done"]
        row: dict[str, Any] = {"model": model, "recipe": recipe, "seeds": [e.seed for e in group],
                               "done": len(ok), "runs": [e.run for e in group]}
        if ok:
            fid, spread = _mean_spread([e.scores["fid"] for e in ok])
            row.update(
                loss=ok[0].summary.get("loss"), fid=round(fid, 2), fid_spread=round(spread, 2),
                kid=round(sum(e.scores["kid"] for e in ok) / len(ok), 4),
                floor_fid=round(ok[0].scores["floor_fid"], 2),
                classes_covered=round(sum(e.scores.get("classes_covered", 0) for e in ok) / len(ok), 1),
                images_per_s=round(sum(e.summary["images_per_s"] for e in ok) / len(ok), 1),
                train_minutes=round(sum(e.summary["train_seconds"] for e in ok) / len(ok) / 60, 2),
                wall_minutes=round(sum(e.wall_seconds or 0 for e in ok) / len(ok) / 60, 2),
                epochs=round(sum(e.summary["epochs"] for e in ok) / len(ok), 2),
                peak_memory_mb=max(e.summary.get("peak_cuda_mb", e.summary.get("peak_rss_mb", 0)) for e in ok),
                device=ok[0].summary.get("device_name"), precision=ok[0].summary.get("precision"),
            )
        failed = [e for e in group if e.status != "done"]
        if failed:
            row["problems"] = sorted({f"{e.status}: {e.error}" for e in failed})
        rows.append(row)
    rows.sort(key=lambda r: (r.get("fid") is None, r.get("fid", math.inf)))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank if "fid" in row else None
    return rows


def _save(path: Path, settings: dict[str, Any], entries: Sequence[Entry]) -> dict[str, Any]:
    result = {"settings": settings, "leaderboard": leaderboard(entries), "entries": [asdict(e) for e in entries]}
    atomic_write_bytes(path, (json.dumps(json_safe(result), indent=2) + "\n").encode())
    return result


def leaderboard_html(result: dict[str, Any]) -> str:
    """A page with the leaderboard on top and every scored run's report below (``ganzoo report``)."""
    from .report import build_report

    s = result["settings"]
    budget = f"{s['budget_minutes']:g} minutes of training" if s["budget_minutes"] else f"{s['epochs']} epochs"
    head = ("rank", "model", "recipe", "loss", "FID", "classes", "img/s", "train min", "peak MB", "notes")
    cells = []
    for row in result["leaderboard"]:
        fid = f"{row['fid']:.2f} ± {row['fid_spread']:.2f}" if "fid" in row else "-"
        values = (row.get("rank") or "-", row["model"], row["recipe"], row.get("loss", "-"), fid,
                  row.get("classes_covered", "-"), row.get("images_per_s", "-"), row.get("train_minutes", "-"),
                  row.get("peak_memory_mb", "-"), "; ".join(row.get("problems", [])))
        cells.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in values) + "</tr>")
    table = (f"<h2>Leaderboard: {html.escape(s['dataset'])}, {html.escape(budget)} per run, "
             f"{s['n']} samples per score</h2><table class=kv><tr>"
             + "".join(f"<th>{h}</th>" for h in head) + "</tr>" + "".join(cells) + "</table>")
    runs = [e["run"] for e in result["entries"] if e["status"] == "done"]
    return build_report(runs, title="ganzoo bench", preamble=table) if runs else f"<!doctype html>{table}"
