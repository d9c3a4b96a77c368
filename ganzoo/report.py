"""``ganzoo report``: one self-contained HTML page for one or more runs (no network, no scripts
needed to read it; images are inlined). ``ganzoo compare`` reads the same facts."""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any

from .errors import GanzooError
from .plots import curves_svg, finite_number, loss_series, score_series
from .rundir import RunDir, checkpoint_step
from .tomlfile import load_toml


def run_facts(path: str | Path) -> dict[str, Any]:
    """What a run directory says about itself: config, summary, eval, metrics."""
    run = RunDir(Path(path))
    if not run.path.is_dir() or not run.is_run():
        raise GanzooError(f"{run.path} is not a ganzoo run directory (no config.toml or checkpoints/)")
    config = load_toml(run.config) if run.config.is_file() else {}
    summary, scores = run.read_json("summary.json"), run.read_json("eval.json")
    name = Path(os.path.abspath(run.path)).name  # `compare .` names the folder, not ""
    scores_of = checkpoint_step(run.last_checkpoint) if scores else None
    return {"path": run.path, "name": name, "config": config, "summary": summary, "eval": scores,
            "stale_eval": stale_scores(scores, scores_of), "checkpoint_step": scores_of,
            "metrics": run.read_metrics(), "run": run}


def stale_scores(scores: dict[str, Any], checkpoint_step: int | None) -> bool:
    """True when eval.json scored another checkpoint than the run's last (it trained on after
    `ganzoo eval`, or while it ran): its FID is not the run's now."""
    step = scores.get("step")
    return isinstance(step, int) and isinstance(checkpoint_step, int) and step != checkpoint_step


def number(value: Any, spec: str, *, scale: float = 1.0) -> str:
    """``value`` formatted, or ``-`` where a hand-edited or older file holds no finite number there."""
    return format(value * scale, spec) if finite_number(value) else "-"


def named(config: Any, section: str) -> str:
    """The ``name`` of a config section as text, or ``?`` where a hand-edited config.toml has no
    table there, or no name, or a name that is not a string."""
    name = field(field(config, section), "name")
    return name if isinstance(name, str) else "?"


def field(mapping: Any, key: str) -> Any:
    """``mapping[key]``, or None where a hand-edited file has something else than a table there."""
    return mapping.get(key) if isinstance(mapping, dict) else None


def covered(scores: dict[str, Any], of: str = " of ") -> str | None:
    """"7 of 10" classes covered, or None where eval.json holds no such counts."""
    count, shares = scores.get("classes_covered"), scores.get("class_shares")
    if isinstance(count, int) and not isinstance(count, bool) and isinstance(shares, list):
        return f"{count}{of}{len(shares)}"
    return None


def shown(value: Any, spec: str, unit: str = "", *, scale: float = 1.0) -> str | None:
    text = number(value, spec, scale=scale)
    return None if text == "-" else text + unit


def _img(path: Path, alt: str, width: int | None = None) -> str:
    mime = {".png": "image/png", ".gif": "image/gif"}[path.suffix.lower()]
    data = base64.b64encode(path.read_bytes()).decode()
    size = f' width="{width}"' if width else ""
    return f'<img src="data:{mime};base64,{data}" alt="{html.escape(alt)}"{size}>'


def _config_table(config: dict[str, Any]) -> str:
    rows = []
    for section, values in config.items():
        if not isinstance(values, dict):  # a hand-edited config.toml with a top-level key
            rows.append(f"<tr><td>{html.escape(section)}</td><td>{html.escape(json.dumps(values, default=str))}</td></tr>")
            continue
        for key, value in values.items():
            rows.append(f"<tr><td>{html.escape(section)}.{html.escape(key)}</td><td>{html.escape(json.dumps(value, default=str))}</td></tr>")
    return "<table class=kv>" + "".join(rows) + "</table>"


def _scores(facts: dict[str, Any]) -> str:
    s, e = facts["summary"], facts["eval"]
    items = [
        ("status", s.get("status")), ("epochs", s.get("epochs")), ("steps", s.get("steps")),
        ("training time", shown(s.get("train_seconds"), ".1f", " min", scale=1 / 60)),
        ("images/s", s.get("images_per_s")), ("device", s.get("device")), ("precision", s.get("precision")),
        ("scores", f"of step {e['step']}, but the last checkpoint is of step {facts['checkpoint_step']}: "
                   "run `ganzoo eval` again" if facts.get("stale_eval") else None),
        ("FID (classifier features)", shown(e.get("fid"), ".3f")),
        ("KID", shown(e.get("kid"), ".4f")),
        ("real-vs-real floor FID", shown(field(e.get("floor"), "fid"), ".3f")),
        ("classes covered", covered(e)),
        ("asked-for class recognised", shown(e.get("class_accuracy"), ".1%")),
    ]
    return "<table class=kv>" + "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>" for k, v in items if v is not None) + "</table>"


def _section(facts: dict[str, Any]) -> str:
    run: RunDir = facts["run"]
    grids = run.epoch_grids()
    parts = [f"<section><h2>{html.escape(facts['name'])}</h2>",
             f"<p class=path>{html.escape(str(facts['path']))}</p>", _scores(facts),
             curves_svg(loss_series(facts["metrics"]), title="losses")]
    scores = score_series(facts["metrics"])
    if any(scores.values()):
        parts.append(curves_svg(scores, title="FID during training"))
    if grids:
        parts.append(f"<h3>Final samples ({html.escape(grids[-1].stem)})</h3>" + _img(grids[-1], "final samples", 420))
        parts.append("<h3>Fixed-noise grid per epoch</h3><div class=grids>" + "".join(
            f"<figure>{_img(g, g.stem, 160)}<figcaption>{html.escape(g.stem.replace('_', ' '))}</figcaption></figure>"
            for g in grids) + "</div>")
    parts.append("<details><summary>config</summary>" + _config_table(facts["config"]) + "</details></section>")
    return "".join(parts)


STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
h1{font-size:22px} h2{font-size:18px;margin:0} .path{color:#777;font-size:12px;margin:2px 0 8px}
.runs{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
section{border:1px solid #ddd;border-radius:6px;padding:12px;flex:1 1 560px}
table.kv td,table.kv th{padding:1px 10px 1px 0;font-size:13px;text-align:left} table.kv td:first-child{color:#555}
.grids{display:flex;flex-wrap:wrap;gap:6px} figure{margin:0} figcaption{font-size:11px;text-align:center}
img{image-rendering:pixelated}
"""

def build_report(paths: list[str | Path], *, title: str | None = None, preamble: str = "") -> str:
    """The page: ``preamble`` (HTML, e.g. a leaderboard), then one section per run, side by side."""
    if not paths:
        raise GanzooError("name at least one run directory")
    runs = [run_facts(p) for p in paths]
    title = title or "ganzoo report: " + ", ".join(r["name"] for r in runs)
    return ("<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{preamble}<div class=runs>" + "".join(_section(r) for r in runs) +
            "</div></body></html>")
