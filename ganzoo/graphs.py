"""The training step replayed from CUDA graphs (``train.cuda_graphs``).

A step of a small GAN is a few hundred short kernels; on a fast GPU the CPU that launches them is
the bottleneck, not the GPU. Captured once in a CUDA graph, a step is replayed with one launch.
A replayed graph does the same work on the same memory every time, so:

- each kind of step gets its own graph: G updated or not (``train.d_steps``), which lazy
  regularizers are due, the batch's shape, labels or none;
- the batch, its labels and the noise are copied into buffers that the graph reads;
- the EMA's decay, which changes every step, is read from a device tensor;
- the first ``WARMUP`` steps of each kind run eagerly on a side stream (cuDNN chooses its
  kernels, the optimizers make their state), as PyTorch's documentation asks before a capture;
- the optimizers are switched to their ``capturable`` form (their step counts on the device).

Every part of the step must be capturable, and says so (``cuda_graphs = True`` on the ``GAN``, the
loss, each regularizer and augmentation): :func:`refusal` names the first that does not.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

import torch

from .errors import ConfigError, PluginError
from .step import StepModules, ema_decay_at, train_step

WARMUP = 3
Replay = Callable[[], None]
Capture = Callable[[Callable[[], dict[str, torch.Tensor]]], tuple[Replay, dict[str, torch.Tensor]]]


def refusal(gan: Any, loss: Any, regularizers: list[tuple[str, Any]], augmentations: list[tuple[str, Any]],
            *, model: str, loss_name: str) -> str | None:
    """Why this run's step cannot be captured in a CUDA graph (the first part that does not declare
    ``cuda_graphs = True``), or None."""
    if not getattr(gan, "cuda_graphs", False):
        return f"model {model!r} does not declare that its step can be captured (GAN(..., cuda_graphs=True))"
    parts = [("loss", loss_name, loss), *(("regularizer", n, r) for n, r in regularizers),
             *(("augmentation", n, a) for n, a in augmentations)]
    for kind, name, part in parts:
        if not getattr(part, "cuda_graphs", False):
            return (f"{kind} {name!r} does not declare that it can be captured (cuda_graphs = True); "
                    "state it keeps by rebinding attributes would not advance in a replayed graph")
    return None


def resolve(setting: str | bool, *, device: torch.device, precision: str, compile: bool, distributed: bool,
            why_not: str | None) -> tuple[bool, str | None]:
    """``train.cuda_graphs`` resolved: (on?, the reason ``auto`` decided as it did). ``why_not``
    is :func:`refusal`'s answer for the run's parts. ``true`` where it cannot work is a ConfigError."""
    blockers = [why for blocked, why in [
        (device.type != "cuda", f"it needs a CUDA device (this run is on {device.type})"),
        (precision == "fp16", "fp16's loss scaling reads a value back to the host every step; use bf16 or fp32"),
        (compile, "train.compile is on (compile, or replay from graphs, not both)"),
        (distributed, "it runs in one process only (DistributedDataParallel synchronises outside the graph)"),
        (why_not is not None, why_not or ""),
    ] if blocked]
    if setting == "auto":
        if blockers:
            return False, f"auto: off, {blockers[0]}"
        return True, "auto: on for CUDA, every part of the step declares it can be captured"
    if setting and blockers:
        raise ConfigError(f"train.cuda_graphs = true cannot be used: {blockers[0]}; "
                          "set train.cuda_graphs = false (or auto)")
    return bool(setting), None


def make_capturable(optimizer: torch.optim.Optimizer) -> None:
    """Turn on ``capturable`` where the optimizer has it (Adam, RMSprop, ...), and move the step
    counts it already keeps (a resumed run's) to their parameters' device."""
    for group in optimizer.param_groups:
        if "capturable" not in group:
            continue
        group["capturable"] = True
        for param in group["params"]:
            step = optimizer.state.get(param, {}).get("step")
            if isinstance(step, torch.Tensor) and step.device != param.device:
                optimizer.state[param]["step"] = step.to(param.device, torch.float32)


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (or its type's name, when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def cuda_capture(fn: Callable[[], dict[str, torch.Tensor]]) -> tuple[Replay, dict[str, torch.Tensor]]:
    """Capture ``fn`` (which runs no work while captured) in a CUDA graph of its own memory pool;
    return the graph's replay and the tensors ``fn`` returned, which each replay rewrites."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = fn()
    return graph.replay, outputs


class GraphedStep:
    """:func:`ganzoo.step.train_step`, replayed from a CUDA graph for each kind of step.

    Called as ``train_step`` is (less the modules); returns fresh tensors, as ``train_step`` does.
    ``capture`` is :func:`cuda_capture`; the tests pass one that reruns the function, on the CPU.
    """

    def __init__(self, m: StepModules, *, warmup: int = WARMUP, capture: Capture = cuda_capture) -> None:
        self.m = m
        self.warmup = warmup
        self.capture = capture
        self.graphs: dict[tuple[Any, ...], tuple[Replay, dict[str, torch.Tensor], tuple[torch.Tensor, ...]]] = {}
        self.eager_steps: Counter[tuple[Any, ...]] = Counter()
        self._ready = False

    def _prepare(self, device: torch.device) -> None:
        """Once, on the first step (after a resume has loaded the optimizers' state)."""
        if device.type == "cuda":  # (the tests' stand-in capture runs on the CPU, where capturable is not)
            for optimizer in (self.m.opt_g, self.m.opt_d):
                make_capturable(optimizer)
        self.m.autocast_cache = False
        if self.m.ema is not None:
            self.m.ema_decay_tensor = torch.zeros((), device=device)
        self._ready = True

    def key(self, real: torch.Tensor, y: torch.Tensor | None, *, update_g: bool, step: int) -> tuple[Any, ...]:
        due = tuple(step % reg.every == 0 for _, reg in self.m.regularizers)
        return (update_g, due, tuple(real.shape), y is not None)

    def __call__(self, real: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor, *, update_g: bool = True,
                 step: int = 0, g_step: int | None = None) -> dict[str, torch.Tensor]:
        if not self._ready:
            self._prepare(real.device)
        g_step = step if g_step is None else g_step
        if self.m.ema_decay_tensor is not None:
            self.m.ema_decay_tensor.fill_(ema_decay_at(g_step, self.m.ema_decay, warmup=self.m.ema_warmup))
        key = self.key(real, y, update_g=update_g, step=step)
        if key not in self.graphs:
            if self.eager_steps[key] < self.warmup:
                self.eager_steps[key] += 1
                return self._eager(real, y, z, update_g=update_g, step=step, g_step=g_step)
            self.graphs[key] = self._record(real, y, z, update_g=update_g, step=step, g_step=g_step)
        replay, outputs, inputs = self.graphs[key]
        for buffer, value in zip(inputs, (real, z, y)):
            buffer.copy_(value)
        replay()
        return {name: value.clone() for name, value in outputs.items()}

    def _eager(self, real: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor, **kwargs: Any) -> dict[str, torch.Tensor]:
        if real.device.type != "cuda":
            return train_step(self.m, real, y, z, **kwargs)
        side, main = torch.cuda.Stream(real.device), torch.cuda.current_stream(real.device)
        side.wait_stream(main)
        with torch.cuda.stream(side), warnings.catch_warnings():
            # PyTorch warns that a capturable optimizer stepping outside a capture is slower: these
            # few warm-up steps are meant to be
            warnings.filterwarnings("ignore", message="This instance was constructed with capturable=True")
            out = train_step(self.m, real, y, z, **kwargs)
        main.wait_stream(side)
        return out

    def _record(self, real: torch.Tensor, y: torch.Tensor | None, z: torch.Tensor,
                **kwargs: Any) -> tuple[Replay, dict[str, torch.Tensor], tuple[torch.Tensor, ...]]:
        inputs = tuple(t.clone() for t in (real, z) + ((y,) if y is not None else ()))
        static_real, static_z = inputs[0], inputs[1]
        static_y = inputs[2] if y is not None else None
        try:
            replay, outputs = self.capture(lambda: train_step(self.m, static_real, static_y, static_z, **kwargs))
        except RuntimeError as exc:  # a part declared cuda_graphs but reads back to the host, or the like
            raise PluginError(
                "capturing the training step in a CUDA graph failed, although every part of it declares "
                f"cuda_graphs = True: {first_line(exc)}. "
                "Train with --set train.cuda_graphs=false, and tell the author of the model, loss, "
                "regularizer or augmentation that reads a value back or builds a tensor on the CPU") from exc
        return replay, outputs, inputs
