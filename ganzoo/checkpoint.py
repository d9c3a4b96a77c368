"""Checkpoints: safetensors for every tensor, JSON metadata for the rest; nothing is ever unpickled.

Writes are atomic (``atomic.py``: temporary file, fsync, rename), so a crash at any moment leaves
the previous checkpoint intact.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as _st_save

from .atomic import atomic_write_bytes
from .errors import CheckpointError

FORMAT = "ganzoo-checkpoint"
FORMAT_VERSION = 1
META_KEY = "ganzoo"


def flatten_optimizer(prefix: str, state_dict: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state_dict into tensors (for safetensors) and JSON (param groups, scalars)."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in state_dict["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.state.{idx}.{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer(prefix: str, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    head = f"{prefix}.state."
    for name, value in tensors.items():
        if name.startswith(head):
            idx, key = name[len(head):].split(".", 1)
            state.setdefault(int(idx), {})[key] = value
    for idx, values in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(values)
    groups = [dict(g, betas=tuple(g["betas"])) if "betas" in g else dict(g) for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def save_checkpoint(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, Any]) -> None:
    """Atomically write ``tensors`` with ``metadata`` (JSON-serialisable) to a safetensors file."""
    payload = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, **metadata}
    atomic_write_bytes(Path(path), _st_save(payload, metadata={META_KEY: json.dumps(meta)}))


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_checkpoint`; one clear error for any bad file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}" if not path.exists() else f"{path} is not a file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            text = (fh.metadata() or {}).get(META_KEY)
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
        meta = json.loads(text) if text is not None else None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    except (SafetensorError, ValueError, UnicodeDecodeError, OverflowError, RecursionError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or corrupt: {str(exc).splitlines()[0][:120]})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a ganzoo checkpoint (no ganzoo metadata)")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{path}: its ganzoo metadata is damaged (format_version {version!r})")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer ganzoo (checkpoint format {meta['format_version']}); upgrade ganzoo"
        )
    return tensors, meta


def split_prefix(tensors: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    head = prefix + "."
    return {k[len(head):]: v for k, v in tensors.items() if k.startswith(head)}


def load_module_state(module: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str, path: Path) -> None:
    """``module.load_state_dict`` with a one-line error naming the file and the first mismatch."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        detail = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise CheckpointError(
            f"{path}: the {what} weights do not match this model ({detail}; "
            f"{len(missing)} missing, {len(unexpected)} unexpected) - was it written for another model or config?"
        )
    for key, value in state.items():
        if own[key].shape != value.shape:
            raise CheckpointError(
                f"{path}: {what} weight {key!r} has shape {tuple(value.shape)} in the file but "
                f"{tuple(own[key].shape)} in the model - was it written with another config?"
            )
    module.load_state_dict(state)


# --- a training run's state ---------------------------------------------------------------------

_IMPLEMENTATION_KEYS = ("fused", "foreach", "capturable", "differentiable")


def load_optimizer_state(optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> None:
    """``optimizer.load_state_dict`` that keeps this run's implementation and its parameters' layout.

    The file's param groups would also bring back how the update was computed (``fused``,
    ``foreach``): this run's choice is kept instead. Each state tensor takes its parameter's memory
    layout: safetensors stores them contiguous, and PyTorch's fused Adam computes wrong updates when
    a channels-last parameter meets a contiguous state tensor (it walks both as flat memory).
    """
    chosen = [{k: g[k] for k in _IMPLEMENTATION_KEYS if k in g} for g in optimizer.param_groups]
    optimizer.load_state_dict(state_dict)
    for group, keep in zip(optimizer.param_groups, chosen):
        group.update(keep)
        for param in group["params"]:
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if isinstance(value, torch.Tensor) and value.shape == param.shape and value.stride() != param.stride():
                    state[key] = torch.empty_like(param, dtype=value.dtype).copy_(value)


def pack_training_state(modules: Mapping[str, torch.nn.Module], optimizers: Mapping[str, torch.optim.Optimizer],
                        extra: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Modules, optimizers and extra tensors as one flat ``{name: tensor}`` plus the JSON the
    optimizers need besides tensors (their param groups and scalar state), by optimizer name."""
    tensors = {f"{prefix}.{k}": v for prefix, module in modules.items() for k, v in module.state_dict().items()}
    meta: dict[str, Any] = {}
    for prefix, optimizer in optimizers.items():
        opt_tensors, meta[prefix] = flatten_optimizer(prefix, optimizer.state_dict())
        tensors.update(opt_tensors)
    tensors.update(extra)
    return tensors, meta


def unpack_training_state(path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any],
                          modules: Mapping[str, torch.nn.Module], optimizers: Mapping[str, torch.optim.Optimizer],
                          names: Mapping[str, str] | None = None) -> None:
    """Load what :func:`pack_training_state` wrote into ``modules`` and ``optimizers``; errors name ``path``."""
    names = names or {}
    for prefix, module in modules.items():
        load_module_state(module, split_prefix(tensors, prefix), names.get(prefix, prefix), path)
    try:
        for prefix, optimizer in optimizers.items():
            load_optimizer_state(optimizer, unflatten_optimizer(prefix, tensors, meta[prefix]))
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: optimizer state does not fit this config ({exc})") from None
