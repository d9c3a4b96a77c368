"""The plugin contract: the hooks a ganzoo plugin may implement.

Registration hooks receive a ``register`` callback instead of returning a list, so the registry can
attach the plugin's name to what it registers and reject a duplicate name, naming both plugins.
Every kind of pluggable thing (models, losses, datasets, optimizers, regularizers, augmentations)
is registered the same way:
``register(name, build, *, options=OptionsDataclass, description="", ...)``, where ``options`` is a
frozen dataclass made with :func:`ganzoo.option` whose fields are the component's config keys.
Hooks are only ever given new optional arguments, never renamed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from .trainer import Trainer

hookspec = pluggy.HookspecMarker("ganzoo")
hookimpl = pluggy.HookimplMarker("ganzoo")


class Register(Protocol):
    """The ``register`` callback a registration hook receives."""

    def __call__(self, name: str, build: Any, /, **kwargs: Any) -> None: ...


@hookspec
def register_models(register: Register) -> None:
    """Register GAN variants (a generator and discriminator pair).

    Call ``register(name, build, *, options=OptionsDataclass, description="", recipes=None,
    fixed=None)``. ``build(options, *, image_shape, num_classes)`` receives an instance of
    ``options`` and returns a :class:`ganzoo.interfaces.GAN`. ``recipes`` maps a dataset name to a
    tuned config (a dict of config sections or a TOML file), and ``"DATASET:NAME"`` to a named
    recipe (``"fashion_mnist:fast"``); :func:`ganzoo.recipes_in` reads a folder of them. ``fixed`` names the
    switches that make the variant what it is (``{"conditional": True}``): a config may repeat
    them but not change them. Import torch inside ``build``, not at module level, so that
    ``ganzoo list`` stays fast.
    """


@hookspec
def register_losses(register: Register) -> None:
    """Register adversarial objectives.

    Call ``register(name, build, *, options=OptionsDataclass, description="")``. ``build(options)``
    returns a :class:`ganzoo.interfaces.Loss`.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register training datasets.

    Call ``register(name, load, *, image_shape=(C, H, W), num_classes=None, class_names=(),
    options=OptionsDataclass, parametric=False, description="")``. ``load(root, *, train, download)``
    (plus ``options=`` when the dataset registered options, and ``argument=`` for a parametric
    dataset written ``NAME:ARGUMENT``) returns ``(images, labels)`` or ``(images, labels,
    class_names)``: a uint8 tensor ``[N, C, H, W]``, an int64 tensor ``[N]`` or ``None``, and a
    tuple of names. It raises :class:`ganzoo.errors.DatasetError` naming the folder and the files
    expected when data is missing.
    """


@hookspec
def register_optimizers(register: Register) -> None:
    """Register optimizers that ``g_optimizer.name`` / ``d_optimizer.name`` can select.

    Call ``register(name, build, *, options=OptionsDataclass, description="")``.
    ``build(options, *, params)`` returns a ``torch.optim.Optimizer`` over ``params``.
    """


@hookspec
def register_regularizers(register: Register) -> None:
    """Register terms for D's loss that compose with any model and loss (R1, gradient penalties, ...).

    Call ``register(name, build, *, options=OptionsDataclass, description="")``. ``build(options)``
    returns a :class:`ganzoo.interfaces.Regularizer`; ``train.regularizers = ["NAME"]`` (or
    ``[{name = "NAME", KEY = VALUE}]``) turns it on.
    """


@hookspec
def register_augmentations(register: Register) -> None:
    """Register differentiable augmentations applied to real and fake images before D (DiffAugment, ...).

    Call ``register(name, build, *, options=OptionsDataclass, description="")``. ``build(options)``
    returns a :class:`ganzoo.interfaces.Augmentation`; ``train.augmentations = ["NAME"]`` turns it on.
    """


# --- trainer events: a plugin adds a logger or callback without touching the trainer -------------
# Every event hook is optional and receives the trainer (``trainer.config``, ``trainer.run.path``,
# ``trainer.state``, ``trainer.gan``, ``trainer.device``). An exception in one is reported once and
# that plugin's event hooks are skipped for the rest of the run; training goes on. Under
# ``--nproc N`` events fire in the process of rank 0 only.


@hookspec
def on_train_start(trainer: Trainer) -> None:
    """Called once before the first step (also when a run is resumed)."""


@hookspec
def on_step_end(trainer: Trainer) -> None:
    """Called after every training step; ``trainer.state.step`` counts them. Keep it cheap."""


@hookspec
def on_log(trainer: Trainer, metrics: dict[str, Any]) -> None:
    """Called with each line appended to ``metrics.jsonl`` for training steps.

    That is every ``train.log_every`` steps and once more at the last step of the run, whatever
    its count. ``metrics`` holds ``step``, ``epoch`` (fractional), ``d_loss``, ``g_loss``,
    ``d_real``, ``d_fake`` (D's mean probability on real and fake images), any extra loss terms the
    model adds (``d_class``, ...), ``images_per_s`` and ``time``.
    """


@hookspec
def on_epoch_end(trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
    """Called after each epoch, once its sample grid and checkpoint are written.

    ``metrics`` holds ``epoch``, ``step``, ``epoch_seconds`` and ``grid`` (the grid's path relative
    to the run directory), and the scores (``fid``, ``kid``, ...) in epochs ``train.eval_every``
    scores. Losses are in the ``on_log`` records.
    """


@hookspec
def on_train_end(trainer: Trainer, summary: dict[str, Any]) -> None:
    """Called once after the last step with the dictionary written to ``summary.json``."""
