"""Where a run computes and how: the device, and what each ``auto`` speed switch resolves to there.

Every ``auto`` is decided from what the machine can do, not from the machine it was tuned on; the
measurements behind each rule are in docs/benchmarks.md, per CPU kind and GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .errors import ConfigError


def cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            line = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return set()
    return set(line.partition(":")[2].split())


def cpu_model() -> str:
    """The CPU's model name (``"AMD EPYC 7B13"``), or the machine type where the OS does not say."""
    import platform

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            line = next((line for line in fh if line.startswith("model name")), "")
    except OSError:
        line = ""
    return line.partition(":")[2].strip() or platform.processor() or platform.machine()


def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX), where bf16 autocast pays."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_capability() -> str:
    """PyTorch's vector instruction level for this CPU: ``"AVX512"``, ``"AVX2"``, ``"DEFAULT"``, ..."""
    return str(torch.backends.cpu.get_cpu_capability())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for, but this PyTorch build sees no CUDA GPU; use --device cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("--device mps was asked for, but MPS is not available here; use --device cpu")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """``"cuda (NVIDIA H100 80GB HBM3)"`` or ``"cpu (AVX2, 2 threads)"``, for run headers and summaries."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({cpu_model()}, {cpu_capability()}, {torch.get_num_threads()} threads)"
    return device.type


@dataclass(frozen=True)
class SpeedSettings:
    """What ``train.precision`` / ``channels_last`` / ``compile`` / ... resolved to, and why."""

    precision: str
    channels_last: bool
    compile: bool
    fast_dropout: bool
    reuse_memory: bool
    cuda_graphs: bool = False  # decided by the assembly, which knows the step's parts (ganzoo.graphs.resolve)
    reasons: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def resolve(cls, train: Any, device: torch.device, *, channels_last_ok: bool = False) -> SpeedSettings:
        """``channels_last_ok``: the model is written for channels-last memory (``GAN.channels_last``)."""
        reasons: dict[str, str] = {}
        precision = train.precision
        if precision == "auto":
            precision, reasons["precision"] = _auto_precision(device)
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError("train.precision = 'fp16' needs a CUDA device; use 'bf16' or 'fp32'")
        if train.channels_last == "auto":
            channels_last, reasons["channels_last"] = _auto_channels_last(device, channels_last_ok)
        else:
            channels_last = bool(train.channels_last)
        fast_dropout = device.type == "cpu" if train.fast_dropout == "auto" else bool(train.fast_dropout)
        reuse_memory = device.type == "cpu" if train.reuse_memory == "auto" else bool(train.reuse_memory)
        return cls(precision, channels_last, bool(train.compile), fast_dropout, reuse_memory, reasons=reasons)

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (nothing to wait for on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _auto_precision(device: torch.device) -> tuple[str, str]:
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: this GPU computes in bf16"
        return "fp16", "auto: this GPU has no bf16, fp16 with loss scaling"
    if device.type == "cpu":
        if cpu_has_bf16():
            return "bf16", "auto: this CPU has bf16 units (AVX512-BF16/AMX)"
        return "fp32", "auto: this CPU has no bf16 units (AVX512-BF16/AMX), so bf16 would be slower than fp32"
    return "fp32", f"auto: fp32 on {device.type}"


def _auto_channels_last(device: torch.device, model_ok: bool) -> tuple[bool, str]:
    if not model_ok:
        return False, "auto: the model does not declare channels-last support"
    if device.type == "cuda":
        return True, "auto: on for CUDA"
    if device.type == "cpu":
        # oneDNN's channels-last convolutions win with AVX-512 and lose slightly with AVX2 only
        if cpu_capability().startswith("AVX512"):
            return True, "auto: on for CPUs with AVX-512"
        return False, f"auto: off for CPUs without AVX-512 ({cpu_capability()})"
    return False, f"auto: off on {device.type}"
