"""ganzoo: a plugin-based zoo of Generative Adversarial Networks for PyTorch.

Importing ganzoo does not import torch; building a model does.
"""

from __future__ import annotations

from .hookspecs import hookimpl
from .registry import (
    create_loss,
    create_model,
    get_dataset_spec,
    get_loss_spec,
    get_model_spec,
    list_datasets,
    list_losses,
    list_models,
)

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "create_loss",
    "create_model",
    "get_dataset_spec",
    "get_loss_spec",
    "get_model_spec",
    "hookimpl",
    "list_datasets",
    "list_losses",
    "list_models",
]
