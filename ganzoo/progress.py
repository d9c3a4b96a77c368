"""A rich progress display for the trainer (a trainer callback; the trainer does not know rich)."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .trainer import Callback, Trainer


class RichProgress(Callback):
    """Live bar with D/G losses and images/s; a line per epoch naming the new sample grid."""

    def __init__(self, console: Console | None = None, refresh_seconds: float = 0.25) -> None:
        self.console = console or Console(stderr=True)
        self.refresh_seconds = refresh_seconds
        self._progress: Progress | None = None
        self._task: Any = None
        self._last_refresh = 0.0
        self._rate = 0.0

    def on_train_start(self, trainer: Trainer) -> None:
        c = trainer.config
        self.console.print(
            f"[bold]ganzoo[/] training [cyan]{escape(c.model['name'])}[/] on [cyan]{escape(c.data.name)}[/] "
            f"({len(trainer.images):,} images, batch {trainer.batch_size}, loss {escape(c.loss['name'])}, "
            f"device {trainer.device}, {trainer.speed.precision}) -> {escape(str(trainer.run.path))}"
        )
        self._progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("D {task.fields[d_loss]}  G {task.fields[g_loss]}  {task.fields[rate]} img/s"),
            TimeElapsedColumn(), TimeRemainingColumn(),
            console=self.console, transient=False,
        )
        self._task = self._progress.add_task(
            "train", total=trainer.total_steps, completed=trainer.state.step,
            epoch=self._epoch(trainer), d_loss="-", g_loss="-", rate="-",
        )
        self._progress.start()

    @staticmethod
    def _epoch(trainer: Trainer) -> str:
        return f"{min(trainer.state.epoch + 1, trainer.config.train.epochs)}/{trainer.config.train.epochs}"

    def on_step_end(self, trainer: Trainer) -> None:
        assert self._progress is not None
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

    def on_log(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self._rate = metrics.get("images_per_s", 0.0)

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        assert self._progress is not None
        last = trainer.last
        self._progress.console.print(
            f"epoch {epoch}: D {float(last.get('d_loss', float('nan'))):.3f}  "
            f"G {float(last.get('g_loss', float('nan'))):.3f}  {metrics['epoch_seconds']:.1f}s  "
            f"grid {trainer.run.path / metrics['grid']}", markup=False,
        )

    def on_train_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        self.close()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
