"""The generic adversarial training loop. It knows interfaces, never a variant."""

from __future__ import annotations

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

from . import __version__
from .checkpoint import atomic_write_bytes, flatten_optimizer, load_checkpoint, load_module_state, save_checkpoint, split_prefix, unflatten_optimizer
from .config import Config, build_options
from .data import load_images, to_unit_range
from .errors import CheckpointError, ConfigError, TrainingDiverged, TrainingInterrupted
from .images import save_grid
from .optim import build_optimizer, get_optimizer
from .registry import create_loss, create_model, get_dataset_spec, get_registry
from .rundir import RunDir


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


def _epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    # A function of (seed, epoch) alone, so a resumed run sees the same data order.
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


class Trainer:
    """Trains the GAN a :class:`Config` describes, writing into ``run``."""

    def __init__(self, config: Config, run: RunDir, *, callbacks: Sequence[Callback] = (),
                 plugin_events: bool = True) -> None:
        self.config = config
        self.run = run
        self.callbacks = list(callbacks)
        if plugin_events:
            self.callbacks.append(PluginEvents(get_registry().plugins.manager))
        t = config.train
        self.device = resolve_device(t.device)
        torch.manual_seed(t.seed)

        self.dataset_spec = get_dataset_spec(config.data.name)
        images, labels = load_images(config.data.name, config.data.root, train=True,
                                     download=config.data.download, limit=config.data.limit)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device) if labels is not None else None
        self.batch_size = min(t.batch_size, len(self.images))
        self.steps_per_epoch = len(self.images) // self.batch_size
        total = t.epochs * self.steps_per_epoch
        self.total_steps = min(total, t.max_steps) if t.max_steps else total

        model_opts = {k: v for k, v in config.model.items() if k != "name"}
        self.gan = create_model(config.model["name"], image_shape=self.dataset_spec.image_shape,
                                num_classes=self.dataset_spec.num_classes, **model_opts).to(self.device)
        self.loss = create_loss(config.loss["name"], **{k: v for k, v in config.loss.items() if k != "name"})
        self.opt_g = self._optimizer(config.g_optimizer, self.gan.generator.parameters())
        self.opt_d = self._optimizer(config.d_optimizer, self.gan.discriminator.parameters())

        self.noise_rng = torch.Generator().manual_seed(t.seed + 1)
        self.fixed_noise = self.gan.generator.sample_latent(t.grid_size, generator=torch.Generator().manual_seed(t.seed + 2))
        self.state = TrainState()
        self.last: dict[str, torch.Tensor] = {}
        self._stop_signal: int | None = None

    @staticmethod
    def _optimizer(section: dict[str, Any], params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
        options_cls, _ = get_optimizer(section["name"])
        options = build_options(options_cls, {k: v for k, v in section.items() if k != "name"}, "optimizer")
        return build_optimizer(section["name"], params, options)

    # --- one step ------------------------------------------------------------------------------

    def train_step(self, real: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        G, D, loss = self.gan.generator, self.gan.discriminator, self.loss
        z = G.sample_latent(real.shape[0], generator=self.noise_rng, device=self.device)
        fake = G(z, y)

        real_logits = D(real, y)
        fake_logits = D(fake.detach(), y)
        d_loss = loss.discriminator_loss(real_logits, fake_logits)
        penalty = loss.penalty(D, real, fake.detach(), y)
        if penalty is not None:
            d_loss = d_loss + penalty
        self.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        self.opt_d.step()
        out = {"d_loss": d_loss.detach(), "d_real": torch.sigmoid(real_logits.detach()).mean(),
               "d_fake": torch.sigmoid(fake_logits.detach()).mean()}

        if (self.state.step + 1) % self.config.train.d_steps == 0:
            # The same fake batch serves the G update: one generator forward per step.
            D.requires_grad_(False)  # no weight gradients for D in G's backward pass
            try:
                g_loss = loss.generator_loss(D(fake, y))
                self.opt_g.zero_grad(set_to_none=True)
                g_loss.backward()
                self.opt_g.step()
            finally:
                D.requires_grad_(True)
            out["g_loss"] = g_loss.detach()
        return out

    # --- the loop --------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        t = self.config.train
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
                    idx = order[i * self.batch_size:(i + 1) * self.batch_size].to(self.device)
                    real = to_unit_range(self.images[idx])
                    y = self.labels[idx] if self.labels is not None else None
                    step_start = time.perf_counter()
                    out = self.train_step(real, y)
                    self.last = out
                    for key, value in out.items():
                        window[key] += float(value)
                        counts[key] += 1
                    self.state.step += 1
                    self.state.step_in_epoch += 1
                    self.state.train_seconds += time.perf_counter() - step_start
                    window_images += real.shape[0]
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
                    grid = self.save_grid(self.state.epoch)
                    self.save_checkpoint(epoch_snapshot=True)
                    metrics["grid"] = str(grid.relative_to(self.run.path))
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
            atomic_write_bytes(self.run.summary, (json.dumps(summary, indent=2) + "\n").encode())
            self._emit("on_train_end", summary)
        return summary

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
            "final": {k: float(v) for k, v in self.last.items()},
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
        G = self.gan.generator
        was_training = G.training
        G.eval()
        with torch.no_grad():
            images = G(self.fixed_noise.to(self.device), self._grid_labels())
        G.train(was_training)
        return save_grid(images, self.run.grid(epoch), scale=2 if images.shape[-1] <= 32 else 1)

    def _grid_labels(self) -> torch.Tensor | None:
        n = self.dataset_spec.num_classes
        if not n or not getattr(self.gan.generator, "num_classes", None):
            return None
        return (torch.arange(len(self.fixed_noise)) % n).to(self.device)

    def checkpoint_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"generator.{k}": v for k, v in self.gan.generator.state_dict().items()}
        tensors.update({f"discriminator.{k}": v for k, v in self.gan.discriminator.state_dict().items()})
        tensors["fixed_noise"] = self.fixed_noise
        tensors["rng.torch"] = torch.get_rng_state()
        tensors["rng.noise"] = self.noise_rng.get_state()
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        return tensors

    def save_checkpoint(self, *, epoch_snapshot: bool = False) -> Path:
        tensors = self.checkpoint_tensors()
        g_t, g_meta = flatten_optimizer("g_optimizer", self.opt_g.state_dict())
        d_t, d_meta = flatten_optimizer("d_optimizer", self.opt_d.state_dict())
        tensors.update(g_t)
        tensors.update(d_t)
        meta = {
            "ganzoo_version": __version__,
            "torch_version": torch.__version__,
            "model": self.config.model["name"],
            "image_shape": list(self.dataset_spec.image_shape),
            "num_classes": self.dataset_spec.num_classes,
            "class_names": list(self.dataset_spec.class_names),
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
        try:
            self.opt_g.load_state_dict(unflatten_optimizer("g_optimizer", tensors, meta["g_optimizer"]))
            self.opt_d.load_state_dict(unflatten_optimizer("d_optimizer", tensors, meta["d_optimizer"]))
        except (KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: optimizer state does not fit this config ({exc})") from None
        self.fixed_noise = tensors["fixed_noise"]
        torch.set_rng_state(tensors["rng.torch"])
        self.noise_rng.set_state(tensors["rng.noise"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.state = TrainState(**meta["state"])
