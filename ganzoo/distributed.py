"""Multi-process data-parallel training with PyTorch's own stack (torchrun; gloo on CPU, NCCL on GPU).

``torchrun --nproc-per-node N -m ganzoo train ...`` (or ``ganzoo train ... --nproc N``) starts N
processes. Each takes an equal slice of every global batch (``train.batch_size`` is the global
batch, so the schedule matches a single process), gradients are averaged, and only rank 0 writes
the run directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_env() -> DistInfo:
    """What torchrun set in the environment (a single process when nothing is set)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
    except ValueError:
        raise ConfigError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (as torchrun sets them)") from None
    return DistInfo(rank, world, local)


def setup(device_type: str) -> DistInfo:
    """Join the process group torchrun prepared; a no-op for a single process."""
    info = from_env()
    if not info.enabled:
        return info
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            import torch

            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return info


def barrier(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def teardown(info: DistInfo) -> None:
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            try:  # every rank done with its collectives before gloo's threads are torn down
                dist.barrier()
            except Exception:  # a rank that failed already; tear down anyway
                pass
            dist.destroy_process_group()


def average_over_ranks(out: dict[str, Any], stop_signal: int | None, device: Any) -> tuple[dict[str, Any], int | None]:
    """A step's metrics averaged over ranks, and a stop signal any rank received (one small all-reduce each)."""
    import torch
    import torch.distributed as dist

    world = dist.get_world_size()
    keys = sorted(out)
    values = torch.stack([out[k].float().to(device) for k in keys]) / world
    dist.all_reduce(values)
    stop = torch.tensor([float(stop_signal or 0)], device=device)
    dist.all_reduce(stop, op=dist.ReduceOp.MAX)
    if stop.item() and stop_signal is None:
        stop_signal = int(stop.item())
    return {k: values[i].cpu() for i, k in enumerate(keys)}, stop_signal


def gather_all(tensor: Any) -> Any:
    """Every rank's ``tensor`` (all of the same shape), concatenated in rank order, on every rank."""
    import torch
    import torch.distributed as dist

    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)
