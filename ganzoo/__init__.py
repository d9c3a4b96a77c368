"""ganzoo: a plugin-based zoo of Generative Adversarial Networks for PyTorch.

Importing ganzoo does not import torch; building a model or training does. A plugin needs only
what this module exports: ``hookimpl`` to mark its hooks, ``option`` to declare its options and
``recipes_in`` to register a folder of recipe files.
"""

from __future__ import annotations

from .api import Run, train, train_config
from .hookspecs import hookimpl
from .options import option
from .recipes import recipes_in
from .registry import (
    add_plugin,
    create_augmentation,
    create_loss,
    create_model,
    create_optimizer,
    create_regularizer,
    get_dataset_spec,
    get_loss_spec,
    get_model_spec,
    get_optimizer_spec,
    lazy,
    list_augmentations,
    list_datasets,
    list_losses,
    list_models,
    list_optimizers,
    list_regularizers,
)
from .version import __version__

__all__ = [
    "Run",
    "add_plugin",
    "__version__",
    "create_augmentation",
    "create_loss",
    "create_model",
    "create_optimizer",
    "create_regularizer",
    "get_dataset_spec",
    "get_loss_spec",
    "get_model_spec",
    "get_optimizer_spec",
    "hookimpl",
    "lazy",
    "list_datasets",
    "list_augmentations",
    "list_losses",
    "list_models",
    "list_optimizers",
    "list_regularizers",
    "option",
    "recipes_in",
    "train",
    "train_config",
]
