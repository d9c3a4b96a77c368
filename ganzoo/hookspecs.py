"""The plugin contract: the hooks a ganzoo plugin may implement.

Every hook receives a ``register`` callback instead of returning a list, so the registry can attach
the plugin's name to what it registers and reject a duplicate name, naming both plugins.
Hooks are only ever given new optional arguments, never renamed.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("ganzoo")
hookimpl = pluggy.HookimplMarker("ganzoo")


@hookspec
def register_models(register: Any) -> None:
    """Register GAN variants (a generator and discriminator pair).

    Call ``register(name, build, *, options=OptionsDataclass, description="", recipes=None)``.
    ``build(options, *, image_shape, num_classes)`` is called with an instance of ``options`` (a
    dataclass whose fields are the model's config keys) and must return a
    :class:`ganzoo.interfaces.GAN`. Import torch inside ``build``, not at module level, so that
    ``ganzoo list`` stays fast.
    """


@hookspec
def register_losses(register: Any) -> None:
    """Register adversarial objectives.

    Call ``register(name, build, *, options=OptionsDataclass, description="")``. ``build(options)``
    must return a :class:`ganzoo.interfaces.Loss`.
    """


@hookspec
def register_datasets(register: Any) -> None:
    """Register training datasets.

    Call ``register(name, load, *, image_shape=(C, H, W), num_classes=None, description="")``.
    ``load(root, *, train, download)`` returns ``(images, labels)``: a uint8 tensor of shape
    ``[N, C, H, W]`` and an int64 tensor of shape ``[N]`` (or ``None``). It raises
    :class:`ganzoo.errors.DatasetError` with the folder and files expected when data is missing.
    """


# --- trainer events: a plugin adds a logger or callback without touching the trainer -------------
# Every event hook is optional and receives the trainer (``trainer.config``, ``trainer.run.path``,
# ``trainer.state``, ``trainer.gan``). An exception in one is reported once and that plugin's
# event hooks are skipped for the rest of the run; training goes on.


@hookspec
def on_train_start(trainer: Any) -> None:
    """Called once before the first step (also when a run is resumed)."""


@hookspec
def on_log(trainer: Any, metrics: dict[str, Any]) -> None:
    """Called every ``train.log_every`` steps with the line just appended to ``metrics.jsonl``.

    ``metrics`` holds ``step``, ``epoch`` (fractional), ``d_loss``, ``g_loss``, ``d_real``,
    ``d_fake`` (D's mean probability on real and fake images), ``images_per_s`` and ``time``.
    """


@hookspec
def on_epoch_end(trainer: Any, epoch: int, metrics: dict[str, Any]) -> None:
    """Called after each epoch, once its sample grid and checkpoint are written.

    ``metrics`` holds ``epoch``, ``step``, ``epoch_seconds`` and ``grid`` (the grid's path relative
    to the run directory), and the scores (``fid``, ``kid``, ...) in epochs ``train.eval_every`` scores.
    """


@hookspec
def on_train_end(trainer: Any, summary: dict[str, Any]) -> None:
    """Called once after the last step with the dictionary written to ``summary.json``."""
