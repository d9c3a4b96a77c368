"""Pictures of a run without a plotting library: a loss-curve PNG, a progression GIF, and SVG
curves for the HTML report. Pillow (already required by torchvision) draws the raster ones."""

from __future__ import annotations

import html
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import atomic_write_bytes

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


@dataclass
class Chart:
    """A line chart laid out once, in pixels, for both renderers: the plot box, the y ticks, the x
    range labels and one polyline and legend entry per series."""

    width: int
    height: int
    title: str
    box: tuple[float, float, float, float] = (0, 0, 0, 0)  # left, top, width, height
    yticks: list[tuple[float, str]] = field(default_factory=list)  # (pixel y, label)
    xlabels: tuple[str, str] = ("", "")
    lines: list[tuple[str, str, list[tuple[float, float]]]] = field(default_factory=list)  # (name, colour, points)


def layout(series: dict[str, Sequence[tuple[float, float]]], *, title: str, xlabel: str, width: int,
           height: int) -> Chart:
    chart = Chart(width, height, title)
    series = {k: v for k, v in series.items() if v}
    if not series:
        return chart
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    x1, y1 = (x0 + 1 if x1 == x0 else x1), (y0 + 1 if y1 == y0 else y1)
    left, right, top, bottom = 56, 12, 28, 32
    pw, ph = width - left - right, height - top - bottom
    chart.box = (left, top, pw, ph)

    def px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * pw, top + (1 - (y - y0) / (y1 - y0)) * ph

    chart.yticks = [(px(x0, y0 + (y1 - y0) * i / 4)[1], f"{y0 + (y1 - y0) * i / 4:.3g}") for i in range(5)]
    chart.xlabels = (f"{x0:.6g}", f"{x1:.6g} {xlabel}")
    chart.lines = [(name, COLOURS[i % len(COLOURS)], [px(x, y) for x, y in points])
                   for i, (name, points) in enumerate(series.items())]
    return chart


def curves_svg(series: dict[str, Sequence[tuple[float, float]]], *, title: str, xlabel: str = "step",
               width: int = 560, height: int = 260) -> str:
    """An inline SVG line chart of named (x, y) series."""
    c = layout(series, title=title, xlabel=xlabel, width=width, height=height)
    if not c.lines:
        return f'<svg width="{width}" height="40"><text x="4" y="24">{html.escape(title)}: no data</text></svg>'
    left, top, pw, ph = c.box
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title)}" font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for y, label in c.yticks:
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
    parts.append(f'<text x="{left}" y="{height - 8}">{c.xlabels[0]}</text>')
    parts.append(f'<text x="{left + pw}" y="{height - 8}" text-anchor="end">{html.escape(c.xlabels[1])}</text>')
    for i, (name, colour, points) in enumerate(c.lines):
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        parts.append(f'<text x="{left + 8}" y="{top + 14 + 13 * i}" fill="{colour}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def curves_png(series: dict[str, Sequence[tuple[float, float]]], path: Path, *, title: str, xlabel: str = "step",
               width: int = 640, height: int = 320) -> Path:
    """The same chart as a PNG (for the run directory and image viewers)."""
    from PIL import Image, ImageDraw

    c = layout(series, title=title, xlabel=xlabel, width=width, height=height)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((8, 6), title, fill="black")
    if c.lines:
        left, top, pw, ph = c.box
        draw.rectangle((left, top, left + pw, top + ph), outline="#999999")
        for y, label in c.yticks:
            draw.line((left, y, left + pw, y), fill="#eeeeee")
            draw.text((4, y - 6), label, fill="black")
        draw.text((left, height - 20), c.xlabels[0], fill="black")
        draw.text((left + pw - 6 * len(c.xlabels[1]), height - 20), c.xlabels[1], fill="black")
        for i, (name, colour, points) in enumerate(c.lines):
            if len(points) > 1:
                draw.line(points, fill=colour, width=2)
            else:
                (x, y), = points
                draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
            draw.text((left + 8, top + 6 + 13 * i), name, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def finite_number(value: object) -> bool:
    """An int or float that is not NaN or infinite (and not a bool): what a chart or a table can show."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _points(records: Sequence[dict], key: str) -> list[tuple[float, float]]:
    """(step, value) of the records that hold both as finite numbers: a window that saw an inf
    (fp16 before the scaler skipped it), a diverged run's null or a hand-edited line is left out,
    not drawn as a line through infinity."""
    return [(r["step"], r[key]) for r in records if finite_number(r.get("step")) and finite_number(r.get(key))]


def loss_series(records: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    steps = [r for r in records if "d_loss" in r]
    return {key: _points(steps, key) for key in ("d_loss", "g_loss")}


def score_series(records: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    evals = [r for r in records if r.get("event") == "eval"]
    return {key: _points(evals, key) for key in ("fid",)}


def progression_gif(frames: Sequence[Path], path: Path, *, ms_per_frame: int = 400) -> Path | None:
    """An animated GIF of the per-epoch grids, holding the last frame a little longer."""
    from PIL import Image

    if not frames:
        return None
    images = []
    for frame in frames:
        with Image.open(frame) as img:
            images.append(img.convert("P", palette=Image.ADAPTIVE) if img.mode == "RGB" else img.convert("L"))
    durations = [ms_per_frame] * (len(images) - 1) + [ms_per_frame * 4]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=durations, loop=0)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def write_run_pictures(run_dir: Path, records: Sequence[dict], grids: Sequence[Path] = ()) -> list[Path]:
    """``loss.png`` and ``progress.gif`` (of ``grids``, oldest first: ``RunDir.epoch_grids()``) for a run directory."""
    written = []
    series = loss_series(records)
    if any(series.values()):
        written.append(curves_png(series, run_dir / "loss.png", title=f"{run_dir.name}: losses"))
    gif = progression_gif(grids, run_dir / "progress.gif")
    if gif:
        written.append(gif)
    return written
