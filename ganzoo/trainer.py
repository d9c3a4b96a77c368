"""The generic adversarial training loop. It knows interfaces, never a variant."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import signal
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from . import __version__
from .checkpoint import atomic_write_bytes, flatten_optimizer, load_checkpoint, load_module_state, save_checkpoint, split_prefix, unflatten_optimizer
from .config import Config, build_options
from .data import load_images, to_unit_range
from .distributed import DistInfo
from .errors import CheckpointError, ConfigError, TrainingDiverged, TrainingInterrupted
from .images import save_grid
from .layers import set_fast_dropout
from .malloc import retain_freed_memory
from .plots import write_run_pictures
from .optim import build_optimizer, get_optimizer
from .registry import create_loss, create_model, get_dataset_spec, get_registry
from .rundir import RunDir


def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX), where bf16 autocast pays."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


@dataclass(frozen=True)
class SpeedSettings:
    """What ``train.precision`` / ``channels_last`` / ``compile`` resolved to on this machine."""

    precision: str
    channels_last: bool
    compile: bool
    fast_dropout: bool
    reuse_memory: bool

    @classmethod
    def resolve(cls, train: Any, device: torch.device, *, channels_last_ok: bool = False) -> SpeedSettings:
        """``channels_last_ok``: the model is written for channels-last memory (``GAN.channels_last``)."""
        precision = train.precision
        if precision == "auto":
            if device.type == "cuda":
                precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
            elif device.type == "cpu" and cpu_has_bf16():
                precision = "bf16"
            else:
                precision = "fp32"
        if precision == "fp16" and device.type != "cuda":
            raise ConfigError("train.precision = 'fp16' needs a CUDA device; use 'bf16' or 'fp32'")
        # convolutions run 8-9% faster per step in channels-last here (bf16 and fp32) and on GPUs' tensor cores
        channels_last = (channels_last_ok and device.type in ("cpu", "cuda") if train.channels_last == "auto"
                         else bool(train.channels_last))
        fast_dropout = device.type == "cpu" if train.fast_dropout == "auto" else bool(train.fast_dropout)
        reuse_memory = device.type == "cpu" if train.reuse_memory == "auto" else bool(train.reuse_memory)
        return cls(precision, channels_last, bool(train.compile), fast_dropout, reuse_memory)

    @property
    def dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)


_IMPLEMENTATION_KEYS = ("fused", "foreach", "capturable", "differentiable")


def _load_optimizer_state(optimizer: torch.optim.Optimizer, state_dict: dict[str, Any]) -> None:
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


class Callback:
    """Receives trainer events. Every method is optional; the trainer passes itself."""

    def on_train_start(self, trainer: Trainer) -> None: ...
    def on_step_end(self, trainer: Trainer) -> None: ...
    def on_log(self, trainer: Trainer, metrics: dict[str, Any]) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None: ...
    def on_train_end(self, trainer: Trainer, summary: dict[str, Any]) -> None: ...


class PluginEvents(Callback):
    """Forwards trainer events to the plugins' ``on_*`` hooks, one plugin at a time, so a failing
    logger is reported once and switched off instead of stopping the run."""

    def __init__(self, manager: Any) -> None:
        self.manager = manager
        self.disabled: set[str] = set()

    def _call(self, event: str, **kwargs: Any) -> None:
        for impl in getattr(self.manager.hook, event).get_hookimpls():
            if impl.plugin_name in self.disabled:
                continue
            try:
                impl.function(**{name: kwargs[name] for name in impl.argnames if name in kwargs})
            except Exception as exc:
                self.disabled.add(impl.plugin_name)
                warnings.warn(
                    f"plugin {impl.plugin_name!r}: {event} raised {type(exc).__name__}: {exc}; "
                    "its trainer events are off for the rest of this run",
                    RuntimeWarning, stacklevel=2,
                )

    def on_train_start(self, trainer: Trainer) -> None:
        self._call("on_train_start", trainer=trainer)

    def on_log(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self._call("on_log", trainer=trainer, metrics=metrics)

    def on_epoch_end(self, trainer: Trainer, epoch: int, metrics: dict[str, Any]) -> None:
        self._call("on_epoch_end", trainer=trainer, epoch=epoch, metrics=metrics)

    def on_train_end(self, trainer: Trainer, summary: dict[str, Any]) -> None:
        self._call("on_train_end", trainer=trainer, summary=summary)


@dataclass
class TrainState:
    epoch: int = 0  # completed epochs
    step: int = 0  # discriminator steps so far, over all epochs
    step_in_epoch: int = 0
    train_seconds: float = 0.0
    best_fid: float | None = None


def _split(output: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A discriminator's output as (fp32 logits [N], fp32 class logits [N, K] or None)."""
    if isinstance(output, tuple):
        return output[0].float(), output[1].float()
    return output.float(), None


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    # A function of (seed, epoch) alone, so a resumed run sees the same data order.
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


class Trainer:
    """Trains the GAN a :class:`Config` describes, writing into ``run``."""

    def __init__(self, config: Config, run: RunDir, *, callbacks: Sequence[Callback] = (),
                 plugin_events: bool = True, dist: DistInfo | None = None) -> None:
        self.config = config
        self.run = run
        self.dist = dist or DistInfo()
        # only rank 0 reports and writes; the other ranks compute
        self.callbacks = list(callbacks) if self.dist.is_main else []
        if plugin_events and self.dist.is_main:
            self.callbacks.append(PluginEvents(get_registry().plugins.manager))
        t = config.train
        self.device = resolve_device(t.device)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        if t.batch_size % self.dist.world_size:
            raise ConfigError(f"train.batch_size {t.batch_size} is the global batch and must divide evenly "
                              f"over {self.dist.world_size} processes")
        torch.manual_seed(t.seed)

        self.dataset_spec = get_dataset_spec(config.data.name)
        images, labels = load_images(config.data.name, config.data.root, train=True,
                                     download=config.data.download, limit=config.data.limit,
                                     image_size=config.data.image_size, channels=config.data.channels)
        self.image_shape = tuple(images.shape[1:])  # folder:PATH datasets decide it at load time
        self.num_classes = int(labels.max()) + 1 if self.dataset_spec.parametric and labels is not None \
            else self.dataset_spec.num_classes
        self.images = images.to(self.device)
        self.labels = labels.to(self.device) if labels is not None else None
        self.batch_size = min(t.batch_size, len(self.images))
        self.class_names = self.dataset_spec.class_names or (
            tuple(sorted(p.name for p in Path(config.data.name.partition(":")[2]).expanduser().iterdir() if p.is_dir()))
            if self.dataset_spec.parametric and labels is not None else ())
        self.steps_per_epoch = len(self.images) // self.batch_size
        total = t.epochs * self.steps_per_epoch
        self.total_steps = min(total, t.max_steps) if t.max_steps else total

        model_opts = {k: v for k, v in config.model.items() if k != "name"}
        self.gan = create_model(config.model["name"], image_shape=self.image_shape,
                                num_classes=self.num_classes, **model_opts).to(self.device)
        self.speed = SpeedSettings.resolve(t, self.device, channels_last_ok=self.gan.channels_last)
        if self.speed.reuse_memory and not retain_freed_memory():
            self.speed = dataclasses.replace(self.speed, reuse_memory=False)  # not glibc: nothing to tune
        set_fast_dropout(self.gan, self.speed.fast_dropout)
        if self.speed.channels_last:
            self.gan.to(memory_format=torch.channels_last)
        # The step calls these; the modules themselves (and their state_dicts) stay plain.
        # _D_frozen serves G's update: D's weights take no gradient there, so it needs no DDP sync.
        self._G, self._D = self.gan.generator, self.gan.discriminator
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self._G, self._D = DDP(self._G, device_ids=ids), DDP(self._D, device_ids=ids)
            torch.manual_seed(t.seed + 7919 * self.dist.rank)  # each rank its own dropout masks
        self._D_frozen = self.gan.discriminator
        if self.speed.compile:
            self._G, self._D, self._D_frozen = (torch.compile(m) for m in (self._G, self._D, self._D_frozen))
        # fp16 needs loss scaling; bf16 and fp32 do not
        self.scalers = (
            [torch.amp.GradScaler("cuda") for _ in range(2)] if self.speed.precision == "fp16" else None
        )
        self.loss = create_loss(config.loss["name"], **{k: v for k, v in config.loss.items() if k != "name"})
        reason = self.loss.check(self.gan)
        if reason:
            raise ConfigError(f"loss {config.loss['name']!r} cannot train model {config.model['name']!r}: {reason}")
        self.conditional = bool(self.gan.generator.num_classes)
        if self.conditional and self.labels is None:
            raise ConfigError(f"model {config.model['name']!r} is class-conditional, but dataset "
                              f"{config.data.name!r} has no labels")
        # an exponential moving average of G's weights, used for grids and sampling when on
        self.ema = copy.deepcopy(self.gan.generator).requires_grad_(False) if t.ema_decay > 0 else None
        self.opt_g = self._optimizer(config.g_optimizer, self.gan.generator.parameters())
        self.opt_d = self._optimizer(config.d_optimizer, self.gan.discriminator.parameters())

        self.noise_rng = torch.Generator().manual_seed(t.seed + 1 + 7919 * self.dist.rank)
        # conditional runs: one row of 8 per class; otherwise grid_size samples
        grid_n = 8 * self.gan.generator.num_classes if self.conditional else t.grid_size
        self.fixed_noise = self.gan.generator.sample_latent(grid_n, generator=torch.Generator().manual_seed(t.seed + 2))
        self.state = TrainState()
        self.last: dict[str, torch.Tensor] = {}
        self._stop_signal: int | None = None

    @staticmethod
    def _optimizer(section: dict[str, Any], params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        options_cls, _ = get_optimizer(section["name"])
        options = build_options(options_cls, {k: v for k, v in section.items() if k != "name"}, "optimizer")
        return build_optimizer(section["name"], params, options)

    # --- one step ------------------------------------------------------------------------------

    def _autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=self.speed.dtype, enabled=self.speed.dtype is not None)

    def _update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer, index: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        if self.scalers is None:
            loss.backward()
            optimizer.step()
        else:
            self.scalers[index].scale(loss).backward()
            self.scalers[index].step(optimizer)
            self.scalers[index].update()

    def train_step(self, real: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        G, D, loss = self._G, self._D, self.loss
        if self.speed.channels_last:
            real = real.contiguous(memory_format=torch.channels_last)
        z = self.gan.generator.sample_latent(real.shape[0], generator=self.noise_rng, device=self.device)
        aux = self.config.train.aux_weight
        with self._autocast():
            fake = G(z, y)  # conditional G: fakes take the labels of the real batch
            real_logits, real_classes = _split(D(real, y))  # losses are computed in fp32
            fake_logits, fake_classes = _split(D(fake.detach(), y))
        d_loss = loss.discriminator_loss(real_logits, fake_logits)
        if real_classes is not None and y is not None:  # auxiliary classifier (ACGAN)
            d_loss = d_loss + aux * (F.cross_entropy(real_classes, y) + F.cross_entropy(fake_classes, y))
        penalty = loss.penalty(self.gan.discriminator, real, fake.detach().float(), y)
        if penalty is not None:
            d_loss = d_loss + penalty
        self._update(d_loss, self.opt_d, 0)
        out = {"d_loss": d_loss.detach(), "d_real": torch.sigmoid(real_logits.detach()).mean(),
               "d_fake": torch.sigmoid(fake_logits.detach()).mean()}

        if (self.state.step + 1) % self.config.train.d_steps == 0:
            # The same fake batch serves the G update: one generator forward per step.
            self.gan.discriminator.requires_grad_(False)  # no weight gradients for D in G's backward
            try:
                with self._autocast():
                    g_logits, g_classes = _split(self._D_frozen(fake, y))
                g_loss = loss.generator_loss(g_logits)
                if g_classes is not None and y is not None:
                    g_loss = g_loss + aux * F.cross_entropy(g_classes, y)
                self._update(g_loss, self.opt_g, 1)
            finally:
                self.gan.discriminator.requires_grad_(True)
            if self.ema is not None:
                self._update_ema()
            out["g_loss"] = g_loss.detach()
        return out

    def _all_reduce(self, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Average the step's metrics over ranks and agree on stopping (one small all-reduce)."""
        import torch.distributed as dist

        keys = sorted(out)
        values = torch.stack([out[k].float().to(self.device) for k in keys]) / self.dist.world_size
        dist.all_reduce(values)
        stop = torch.tensor([float(self._stop_signal or 0)], device=self.device)
        dist.all_reduce(stop, op=dist.ReduceOp.MAX)
        if stop.item() and self._stop_signal is None:
            self._stop_signal = int(stop.item())
        return {k: values[i].cpu() for i, k in enumerate(keys)}

    @torch.no_grad()
    def _update_ema(self) -> None:
        decay = self.config.train.ema_decay
        ema_params = list(self.ema.parameters())
        torch._foreach_lerp_(ema_params, list(self.gan.generator.parameters()), 1.0 - decay)
        for ema_buffer, buffer in zip(self.ema.buffers(), self.gan.generator.buffers()):
            ema_buffer.copy_(buffer)

    # --- the loop --------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        t = self.config.train
        if self.dist.is_main:
            self.run.create()
        self._emit("on_train_start")
        if self.state.step == 0:
            self.save_grid(0)
        handlers = self._install_signal_handlers()
        status = "failed"
        window = {"d_loss": 0.0, "g_loss": 0.0, "d_real": 0.0, "d_fake": 0.0}
        counts = {k: 0 for k in window}
        window_start, window_images = time.perf_counter(), 0
        epoch_start = time.perf_counter()
        try:
            while self.state.step < self.total_steps:
                epoch = self.state.epoch
                order = _epoch_order(len(self.images), t.seed, epoch)
                steps_this_epoch = min(self.steps_per_epoch, self.total_steps - epoch * self.steps_per_epoch)
                while self.state.step_in_epoch < steps_this_epoch:
                    i = self.state.step_in_epoch
                    idx = order[i * self.batch_size:(i + 1) * self.batch_size]
                    if self.dist.enabled:  # this rank's share of the global batch
                        share = self.batch_size // self.dist.world_size
                        idx = idx[self.dist.rank * share:(self.dist.rank + 1) * share]
                    idx = idx.to(self.device)
                    real = to_unit_range(self.images[idx])
                    y = self.labels[idx] if self.labels is not None else None
                    step_start = time.perf_counter()
                    out = self.train_step(real, y)
                    if self.dist.enabled:
                        out = self._all_reduce(out)
                    self.last = out
                    for key, value in out.items():
                        window[key] += float(value)
                        counts[key] += 1
                    self.state.step += 1
                    self.state.step_in_epoch += 1
                    self.state.train_seconds += time.perf_counter() - step_start
                    window_images += real.shape[0] * self.dist.world_size
                    self._check_finite(out)
                    self._emit("on_step_end")
                    if self.state.step % t.log_every == 0 or self.state.step == self.total_steps:
                        now = time.perf_counter()
                        record = {
                            "step": self.state.step,
                            "epoch": round(epoch + self.state.step_in_epoch / self.steps_per_epoch, 4),
                            **{k: window[k] / counts[k] for k in window if counts[k]},
                            "images_per_s": window_images / max(now - window_start, 1e-9),
                            "time": round(self.state.train_seconds, 3),
                        }
                        if self.dist.is_main:
                            self.run.append_metrics(record)
                        self._emit("on_log", record)
                        window = dict.fromkeys(window, 0.0)
                        counts = dict.fromkeys(counts, 0)
                        window_start, window_images = now, 0
                    if self._stop_signal is not None:
                        path = self.save_checkpoint()
                        name = signal.Signals(self._stop_signal).name
                        raise TrainingInterrupted(
                            f"{name} received: stopped after step {self.state.step}, checkpoint saved to {path}. "
                            f"Resume with: ganzoo train --resume {self.run.path}"
                        )
                if self.state.step_in_epoch == self.steps_per_epoch:
                    self.state.epoch += 1
                    self.state.step_in_epoch = 0
                    metrics = {"epoch": self.state.epoch, "step": self.state.step,
                               "epoch_seconds": round(time.perf_counter() - epoch_start, 3)}
                    self._check_weights()  # never write a checkpoint of broken weights
                    grid = self.save_grid(self.state.epoch)
                    self.save_checkpoint(epoch_snapshot=True)
                    if t.eval_every and self.state.epoch % t.eval_every == 0 and self.dist.is_main:
                        metrics.update(self.evaluate_now())
                    metrics["grid"] = str(grid.relative_to(self.run.path))
                    if self.dist.is_main:
                        self.run.append_metrics({"event": "epoch_end", **metrics})
                    self._emit("on_epoch_end", self.state.epoch, metrics)
                    epoch_start = time.perf_counter()
                elif self.state.step >= self.total_steps:  # max_steps ended mid-epoch
                    self.save_grid(self.state.epoch + 1)
                    self.save_checkpoint()
            status = "completed"
        except TrainingInterrupted:
            status = "interrupted"
            raise
        except TrainingDiverged:
            status = "diverged"
            raise
        finally:
            self._restore_signal_handlers(handlers)
            summary = self.summary(status)
            if self.dist.is_main:
                atomic_write_bytes(self.run.summary, (json.dumps(summary, indent=2) + "\n").encode())
                write_run_pictures(self.run.path, self.run.read_metrics())
            self._emit("on_train_end", summary)
        return summary

    def evaluate_now(self) -> dict[str, Any]:
        """Score the current generator (EMA if kept); keep ``checkpoints/best.safetensors``."""
        from .evaluation import evaluate

        meta = {"model": self.config.model["name"], "config": self.config.to_dict(), "state": vars(self.state),
                "sampled_from": "generator_ema" if self.ema is not None else "generator"}
        result = evaluate(self.run.path, n=self.config.train.eval_n, seed=self.config.train.seed,
                          generator=self.ema if self.ema is not None else self.gan.generator, meta=meta)
        record = {"event": "eval", "step": self.state.step, "epoch": self.state.epoch,
                  **{k: result[k] for k in ("fid", "kid", "classes_covered", "coverage_entropy") if k in result},
                  "floor_fid": result["floor"]["fid"]}
        if self.state.best_fid is None or result["fid"] < self.state.best_fid:
            self.state.best_fid = result["fid"]
            record["best"] = True
            self.save_checkpoint()  # records best_fid, then becomes the best checkpoint too
            atomic_write_bytes(self.run.checkpoints / "best.safetensors", self.run.last_checkpoint.read_bytes())
        self.run.append_metrics(record)
        return {k: v for k, v in record.items() if k not in ("event", "step", "epoch")}

    def summary(self, status: str = "completed") -> dict[str, Any]:
        return {
            "status": status,
            "model": self.config.model["name"],
            "dataset": self.config.data.name,
            "loss": self.config.loss["name"],
            "epochs": self.state.epoch,
            "steps": self.state.step,
            "train_seconds": round(self.state.train_seconds, 3),
            "images_per_s": round(self.state.step * self.batch_size / max(self.state.train_seconds, 1e-9), 1),
            "device": str(self.device),
            "processes": self.dist.world_size,
            "precision": self.speed.precision,
            "channels_last": self.speed.channels_last,
            "compile": self.speed.compile,
            "fast_dropout": self.speed.fast_dropout,
            "reuse_memory": self.speed.reuse_memory,
            "final": {k: float(v) for k, v in self.last.items()},
            "best_fid": self.state.best_fid,
        }

    def _emit(self, event: str, *args: Any) -> None:
        for callback in self.callbacks:
            method = getattr(callback, event, None)
            if method is not None:
                method(self, *args)

    def _check_finite(self, out: dict[str, torch.Tensor]) -> None:
        bad = [k for k, v in out.items() if k.endswith("loss") and not math.isfinite(float(v))]
        if bad:
            last = self.run.last_checkpoint
            kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint had been written yet"
            raise TrainingDiverged(
                f"{bad[0]} became {float(out[bad[0]])} at step {self.state.step}; training stopped and {kept}. "
                "Try a lower learning rate (--set g_optimizer.lr=... d_optimizer.lr=...), another loss, or batchnorm."
            )

    def _check_weights(self) -> None:
        for name, module in (("generator", self.gan.generator), ("discriminator", self.gan.discriminator)):
            for pname, param in module.named_parameters():
                if not torch.isfinite(param).all():
                    last = self.run.last_checkpoint
                    kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint had been written yet"
                    raise TrainingDiverged(
                        f"{name} weight {pname!r} holds NaN or inf after step {self.state.step}; training stopped "
                        f"and {kept}. Try a lower learning rate or another loss."
                    )

    # --- signals ------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> dict[int, Any]:
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handler(signum: int, frame: Any) -> None:
            if self._stop_signal is not None:  # a second Ctrl-C: stop now
                raise KeyboardInterrupt
            self._stop_signal = signum

        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict[int, Any]) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    # --- files --------------------------------------------------------------------------------

    def save_grid(self, epoch: int) -> Path:
        if not self.dist.is_main:
            return self.run.grid(epoch)
        G = self.ema if self.ema is not None else self.gan.generator
        was_training = G.training
        G.eval()
        labels = (torch.arange(len(self.fixed_noise)) // 8).to(self.device) if self.conditional else None
        with torch.no_grad():
            images = G(self.fixed_noise.to(self.device), labels)
        G.train(was_training)
        return save_grid(images, self.run.grid(epoch), nrow=8, scale=2 if images.shape[-1] <= 32 else 1)

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"generator.{k}": v for k, v in self.gan.generator.state_dict().items()}
        tensors.update({f"discriminator.{k}": v for k, v in self.gan.discriminator.state_dict().items()})
        if self.ema is not None:
            tensors.update({f"generator_ema.{k}": v for k, v in self.ema.state_dict().items()})
        tensors["fixed_noise"] = self.fixed_noise
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.noise"] = self.noise_rng.get_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        return tensors

    def save_checkpoint(self, *, epoch_snapshot: bool = False) -> Path:
        if not self.dist.is_main:
            return self.run.last_checkpoint
        tensors = self.checkpoint_tensors()
        g_t, g_meta = flatten_optimizer("g_optimizer", self.opt_g.state_dict())
        d_t, d_meta = flatten_optimizer("d_optimizer", self.opt_d.state_dict())
        tensors.update(g_t)
        tensors.update(d_t)
        meta = {
            "ganzoo_version": __version__,
            "torch_version": torch.__version__,
            "model": self.config.model["name"],
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "config": self.config.to_dict(),
            "state": vars(self.state),
            "g_optimizer": g_meta,
            "d_optimizer": d_meta,
        }
        path = self.run.last_checkpoint
        try:
            save_checkpoint(path, tensors, meta)
            if epoch_snapshot and self.config.train.keep_checkpoints > 0:
                save_checkpoint(self.run.epoch_checkpoint(self.state.epoch), tensors, meta)
        except OSError as exc:
            kept = f"the previous checkpoint {path} is intact" if path.is_file() else "no earlier checkpoint exists"
            raise CheckpointError(
                f"could not write a checkpoint at step {self.state.step} in {self.run.checkpoints}: "
                f"{exc.strerror or exc}; {kept}. Free some space and resume with: "
                f"ganzoo train --resume {self.run.path}"
            ) from None
            snapshots = sorted(self.run.checkpoints.glob("epoch_*.safetensors"))
            for old in snapshots[: -self.config.train.keep_checkpoints]:
                old.unlink(missing_ok=True)
        return path

    def restore(self, path: str | Path) -> None:
        """Continue from a checkpoint: weights, optimizer state, RNG state, counters and data order."""
        path = Path(path)
        tensors, meta = load_checkpoint(path)
        for stale in self.run.checkpoints.glob(".*.tmp-*"):  # left by a write that was killed
            stale.unlink(missing_ok=True)
        if meta.get("model") != self.config.model["name"]:
            raise CheckpointError(f"{path} holds model {meta.get('model')!r}, not {self.config.model['name']!r}")
        load_module_state(self.gan.generator, split_prefix(tensors, "generator"), "generator", path)
        load_module_state(self.gan.discriminator, split_prefix(tensors, "discriminator"), "discriminator", path)
        if self.ema is not None:
            ema_state = split_prefix(tensors, "generator_ema")
            if ema_state:
                load_module_state(self.ema, ema_state, "generator EMA", path)
            else:  # EMA switched on for a run that had none: start it from the current weights
                self.ema.load_state_dict(self.gan.generator.state_dict())
        try:
            for optimizer, prefix in ((self.opt_g, "g_optimizer"), (self.opt_d, "d_optimizer")):
                _load_optimizer_state(optimizer, unflatten_optimizer(prefix, tensors, meta[prefix]))
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not fit this config ({exc})") from None
        self.fixed_noise = tensors["fixed_noise"]
        torch.set_rng_state(tensors["rng.torch"])
        self.noise_rng.set_state(tensors["rng.noise"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.state = TrainState(**meta["state"])
