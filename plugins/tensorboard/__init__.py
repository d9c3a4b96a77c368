"""Logs every run to TensorBoard when the ``tensorboard`` package is installed.

``pip install 'ganzoo[tensorboard]'``, train, then ``tensorboard --logdir runs``. Losses, D's mean
outputs and images/s go under ``train/``; each epoch's fixed-noise grid under ``samples``. Without
tensorboard installed this plugin does nothing. It uses only the trainer-event hooks, as any
third-party logger would.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from ganzoo import hookimpl

SCALARS = ("d_loss", "g_loss", "d_real", "d_fake", "images_per_s")
_writers: dict[int, Any] = {}


def available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


@hookimpl
def on_train_start(trainer: Any) -> None:
    if not available():
        return
    from torch.utils.tensorboard import SummaryWriter

    # purge_step drops events a crashed run wrote past its last checkpoint
    _writers[id(trainer)] = SummaryWriter(
        log_dir=str(trainer.run.path / "tensorboard"), purge_step=trainer.state.step or None, flush_secs=10,
    )


@hookimpl
def on_log(trainer: Any, metrics: dict[str, Any]) -> None:
    writer = _writers.get(id(trainer))
    if writer is None:
        return
    for key in SCALARS:
        if key in metrics:
            writer.add_scalar(f"train/{key}", metrics[key], metrics["step"])


@hookimpl
def on_epoch_end(trainer: Any, epoch: int, metrics: dict[str, Any]) -> None:
    writer = _writers.get(id(trainer))
    if writer is None:
        return
    import numpy as np
    from PIL import Image

    with Image.open(trainer.run.path / metrics["grid"]) as grid:
        writer.add_image("samples", np.asarray(grid.convert("RGB")), metrics["step"], dataformats="HWC")
    writer.add_scalar("train/epoch_seconds", metrics["epoch_seconds"], metrics["step"])
    for key in ("fid", "kid", "classes_covered"):  # present when train.eval_every scored this epoch
        if key in metrics:
            writer.add_scalar(f"eval/{key}", metrics[key], metrics["step"])
    writer.flush()


@hookimpl
def on_train_end(trainer: Any, summary: dict[str, Any]) -> None:
    writer = _writers.pop(id(trainer), None)
    if writer is not None:
        writer.close()
