"""Pictures of a run without a plotting library: a loss-curve PNG, a progression GIF, and SVG
curves for the HTML report. Pillow (already required by torchvision) draws the raster ones."""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path

from .checkpoint import atomic_write_bytes

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _bounds(series: dict[str, Sequence[tuple[float, float]]]) -> tuple[float, float, float, float]:
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x1 = x0 + 1
    if y1 == y0:
        y1 = y0 + 1
    return x0, x1, y0, y1


def curves_svg(series: dict[str, Sequence[tuple[float, float]]], *, title: str, xlabel: str = "step",
               width: int = 560, height: int = 260) -> str:
    """An inline SVG line chart of named (x, y) series."""
    series = {k: v for k, v in series.items() if v}
    if not series:
        return f'<svg width="{width}" height="40"><text x="4" y="24">{html.escape(title)}: no data</text></svg>'
    x0, x1, y0, y1 = _bounds(series)
    left, right, top, bottom = 52, 12, 26, 34
    pw, ph = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="{html.escape(title)}" font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>']
    for i in range(5):
        y = y0 + (y1 - y0) * i / 4
        parts.append(f'<text x="{left - 4}" y="{sy(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(y):.1f}" y2="{sy(y):.1f}" stroke="#eee"/>')
    parts.append(f'<text x="{left}" y="{height - 8}">{x0:.6g}</text>')
    parts.append(f'<text x="{left + pw}" y="{height - 8}" text-anchor="end">{x1:.6g} {html.escape(xlabel)}</text>')
    for i, (name, points) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        parts.append(f'<text x="{left + 8 + 90 * i}" y="{top + 14}" fill="{colour}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def curves_png(series: dict[str, Sequence[tuple[float, float]]], path: Path, *, title: str,
               width: int = 640, height: int = 320) -> Path:
    """The same chart as a PNG (for the run directory and image viewers)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    series = {k: v for k, v in series.items() if v}
    draw.text((8, 6), title, fill="black")
    if series:
        x0, x1, y0, y1 = _bounds(series)
        left, right, top, bottom = 56, 12, 28, 28
        pw, ph = width - left - right, height - top - bottom
        draw.rectangle((left, top, left + pw, top + ph), outline="#999999")
        for i in range(5):
            y = y0 + (y1 - y0) * i / 4
            yy = top + (1 - i / 4) * ph
            draw.line((left, yy, left + pw, yy), fill="#eeeeee")
            draw.text((4, yy - 6), f"{y:.3g}", fill="black")
        draw.text((left, height - 20), f"{x0:.6g}", fill="black")
        draw.text((left + pw - 80, height - 20), f"{x1:.6g} step", fill="black")
        for i, (name, points) in enumerate(series.items()):
            colour = COLOURS[i % len(COLOURS)]
            xy = [(left + (x - x0) / (x1 - x0) * pw, top + (1 - (y - y0) / (y1 - y0)) * ph) for x, y in points]
            if len(xy) > 1:
                draw.line(xy, fill=colour, width=2)
            else:
                draw.ellipse((xy[0][0] - 2, xy[0][1] - 2, xy[0][0] + 2, xy[0][1] + 2), fill=colour)
            draw.text((left + 8 + 90 * i, top + 6), name, fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def loss_series(records: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    steps = [r for r in records if "d_loss" in r]
    return {key: [(r["step"], r[key]) for r in steps if key in r] for key in ("d_loss", "g_loss")}


def score_series(records: Sequence[dict]) -> dict[str, list[tuple[float, float]]]:
    evals = [r for r in records if r.get("event") == "eval"]
    return {key: [(r["step"], r[key]) for r in evals if key in r] for key in ("fid",)}


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


def write_run_pictures(run_dir: Path, records: Sequence[dict]) -> list[Path]:
    """``loss.png`` and ``progress.gif`` for a run directory."""
    written = []
    series = loss_series(records)
    if any(series.values()):
        written.append(curves_png(series, run_dir / "loss.png", title=f"{run_dir.name}: losses"))
    gif = progression_gif(sorted((run_dir / "samples").glob("epoch_*.png")), run_dir / "progress.gif")
    if gif:
        written.append(gif)
    return written
