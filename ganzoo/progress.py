"""The live progress display of ``ganzoo train``: a plugin of trainer events, registered for the run.

The trainer does not know it exists; it is an ordinary hook implementation, like the TensorBoard
logger, that the command (or ``ganzoo.train(progress=True)``) registers while a run trains.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .hookspecs import hookimpl


class RichProgress:
    """A run header (what trains where, in which precision and why), a live bar with D/G losses,
    images/s and the time left for the whole run, and a line per epoch naming its sample grid."""

    def __init__(self, console: Console | None = None, refresh_seconds: float = 0.25) -> None:
        self.console = console or Console(stderr=True)
        self.refresh_seconds = refresh_seconds
        self._progress: Progress | None = None
        self._task: Any = None
        self._last_refresh = 0.0
        self._rate = 0.0

    @hookimpl
    def on_train_start(self, trainer: Any) -> None:
        c, s = trainer.config, trainer.summary("running")
        why = s["auto"].get("precision")
        self.console.print(
            f"[bold]ganzoo[/] training [cyan]{escape(c.model.name)}[/] on [cyan]{escape(c.data.name)}[/] "
            f"({len(trainer.images):,} images, batch {trainer.batch_size}, loss {escape(c.loss.name)}) "
            f"-> {escape(str(trainer.run.path))}\n"
            f"  {escape(s['device_name'])}, {s['precision']}" + (f" ({escape(why)})" if why else "")
            + (", channels-last" if s["channels_last"] else "") + self._graphs(s)
            + f"; {trainer.total_steps:,} steps of {trainer.steps_per_epoch:,} per epoch"
        )
        self._progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("D {task.fields[d_loss]}  G {task.fields[g_loss]}  {task.fields[rate]} img/s"),
            TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self._task = self._progress.add_task(
            "train", total=trainer.total_steps, completed=trainer.state.step,
            epoch=self._epoch(trainer), d_loss="-", g_loss="-", rate="-",
        )
        self._progress.start()

    @staticmethod
    def _graphs(summary: dict[str, Any]) -> str:
        """On CUDA: whether steps replay from CUDA graphs, and if not, why (a part that does not
        declare it, such as an adaptive augmentation)."""
        if summary["cuda_graphs"]:
            return ", steps replayed from CUDA graphs"
        why = summary["auto"].get("cuda_graphs", "")
        if summary["device"].startswith("cuda") and why:
            return f", steps not graphed ({escape(why.removeprefix('auto: off, '))})"
        return ""

    @staticmethod
    def _epoch(trainer: Any) -> str:
        return f"{min(trainer.state.epoch + 1, trainer.config.train.epochs)}/{trainer.config.train.epochs}"

    @hookimpl
    def on_step_end(self, trainer: Any) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        fields: dict[str, Any] = {}
        if now - self._last_refresh >= self.refresh_seconds or trainer.state.step == trainer.total_steps:
            self._last_refresh = now
            last = trainer.last
            fields = {
                "epoch": self._epoch(trainer),
                "d_loss": f"{float(last['d_loss']):.3f}" if "d_loss" in last else "-",
                "g_loss": f"{float(last['g_loss']):.3f}" if "g_loss" in last else "-",
                "rate": f"{self._rate:,.0f}" if self._rate else "-",
            }
        self._progress.update(self._task, completed=trainer.state.step, **fields)

    @hookimpl
    def on_log(self, metrics: dict[str, Any]) -> None:
        self._rate = metrics.get("images_per_s", 0.0)

    @hookimpl
    def on_epoch_end(self, trainer: Any, epoch: int, metrics: dict[str, Any]) -> None:
        if self._progress is None:
            return
        last = trainer.last
        scores = f"  FID {metrics['fid']:.2f}" if "fid" in metrics else ""
        self._progress.console.print(
            f"epoch {epoch}: D {float(last.get('d_loss', float('nan'))):.3f}  "
            f"G {float(last.get('g_loss', float('nan'))):.3f}  {metrics['epoch_seconds']:.1f}s{scores}  "
            f"grid {trainer.run.path / metrics['grid']}", markup=False,
        )

    @hookimpl
    def on_train_end(self) -> None:
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
