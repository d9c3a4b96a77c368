"""The generic adversarial training loop. It knows interfaces, never a variant.

:meth:`Trainer.fit` is the loop: for each epoch, slice batches in a seeded order, step, log,
and at the epoch's end write a grid and a checkpoint (and score, when asked). The step itself
(``step.py``), the run's parts (``assembly.py``), checkpoint files (``checkpoint.py``) and devices
(``device.py``) live elsewhere. Trainer events go to plugins' ``on_*`` hooks.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path
from typing import Any

import torch

from .version import __version__
from .assembly import assemble, stateful_parts
from .atomic import atomic_write_bytes
from .checkpoint import load_checkpoint, pack_training_state, save_checkpoint, split_prefix, unpack_training_state
from .config import Config
from .data import to_unit_range
from .device import describe_device, synchronize
from .distributed import DistInfo, average_over_ranks
from .errors import CheckpointError, GanzooWarning, TrainingDiverged, TrainingInterrupted
from .images import save_grid
from .metrics import MetricsWindow
from .plots import write_run_pictures
from .plugins import Events
from .registry import get_registry
from .rundir import RunDir, json_safe
from .step import train_step


@dataclass
class TrainState:
    epoch: int = 0  # completed epochs
    step: int = 0  # discriminator steps so far, over all epochs
    step_in_epoch: int = 0
    train_seconds: float = 0.0
    best_fid: float | None = None


def _train_state(path: Path, meta: dict[str, Any]) -> TrainState:
    """The counters a checkpoint holds; a checkpoint with other ones cannot be continued exactly."""
    state = meta.get("state")
    known = {f.name for f in fields(TrainState)}
    if not isinstance(state, dict) or not set(state) <= known:
        other = sorted(set(state) - known) if isinstance(state, dict) else []
        why = f"training state {', '.join(other)} unknown to ganzoo {__version__}" if other else "no training state"
        raise CheckpointError(f"{path} holds {why} (written by ganzoo {meta.get('ganzoo_version', '?')}): "
                              "continue it with that version, or sample and eval it with this one")
    try:
        return TrainState(**state)
    except TypeError as exc:
        raise CheckpointError(f"{path}: its training state is damaged ({exc})") from None


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The data order of an epoch: a function of (seed, epoch) alone, so a resumed run sees the same."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


def _vm_hwm_kib() -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_memory(device: torch.device) -> dict[str, float]:
    """The process's peak resident memory, and on CUDA the peak memory its tensors took, in MB."""
    import sys

    out: dict[str, float] = {}
    hwm = _vm_hwm_kib()
    if hwm is not None:
        # Linux: this process image's own high-water mark. ru_maxrss is not: Linux carries the parent's
        # resident size across fork and exec into it, so a run started by a big process (ganzoo bench
        # after scoring) would report the parent's memory.
        out["peak_rss_mb"] = round(hwm / 1024, 1)
    else:
        try:
            import resource
        except ImportError:  # Windows
            pass
        else:
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # bytes on macOS
            out["peak_rss_mb"] = round(rss / (1 << 20) if sys.platform == "darwin" else rss / 1024, 1)
    if device.type == "cuda":
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated(device) / (1 << 20), 1)
    return out


def early_grid_steps(count: int, steps_per_epoch: int, first: int = 25) -> set[int]:
    """Steps of the first epoch that get a grid besides the epoch's own: 25, 50, 100, ... (``count`` of them)."""
    steps, step = set(), first
    for _ in range(count):  # stops at the epoch's end, however many were asked for
        if step >= steps_per_epoch:
            break
        steps.add(step)
        step <<= 1
    return steps


class Trainer:
    """Trains the GAN a :class:`Config` describes, writing into ``run`` once :meth:`fit` starts.

    Building a trainer loads the data and builds every part, so any mistake in the config surfaces
    here, before a file is written. Plugins see ``config``, ``run``, ``state``, ``gan`` and ``device``.
    """

    def __init__(self, config: Config, run: RunDir, *, plugin_events: bool = True, dist: DistInfo | None = None) -> None:
        self.config, self.run, self.dist = config, run, dist or DistInfo()
        self.parts = assemble(config, self.dist)
        self.device, self.gan, self.loss, self.speed = self.parts.device, self.parts.gan, self.parts.loss, self.parts.speed
        self.images, self.labels, self.class_names = self.parts.data
        self.image_shape, self.num_classes = self.parts.data.image_shape, self.parts.data.num_classes
        self.batch_size = self.parts.batch_size
        t = config.train
        self.steps_per_epoch = len(self.images) // self.batch_size
        total = t.epochs * self.steps_per_epoch
        self.total_steps = min(total, t.max_steps) if t.max_steps else total
        # only rank 0 reports and writes; the other ranks compute
        manager = get_registry().plugins.manager if plugin_events and self.dist.is_main else None
        self.events = Events(manager)
        self.noise_rng = torch.Generator().manual_seed(t.seed + 1 + 7919 * self.dist.rank)
        # conditional runs: a row of 8 per class; otherwise grid_size samples
        classes = self.gan.generator.num_classes
        self.grid_labels = torch.arange(8 * classes) // 8 if classes else None
        self.fixed_noise = self.gan.generator.sample_latent(
            8 * classes if classes else t.grid_size, generator=torch.Generator().manual_seed(t.seed + 2))
        self.state = TrainState()
        self.last: dict[str, torch.Tensor] = {}
        self.window = MetricsWindow()
        self._early_grids = early_grid_steps(t.early_grids, self.steps_per_epoch)
        self._stop_signal: int | None = None
        self._epoch_start = time.perf_counter()

    @property
    def ema(self) -> torch.nn.Module | None:
        return self.parts.ema

    # --- the loop --------------------------------------------------------------------------------

    def fit(self) -> dict[str, Any]:
        t = self.config.train
        if self.dist.is_main:
            self.run.create()
            if self.state.step > 0:  # read_metrics drops what the interrupted run logged past this step
                self.run.append_metrics({"event": "resume", "step": self.state.step, "epoch": self.state.epoch})
        self.events.emit("on_train_start", trainer=self)
        if self.state.step == 0:
            self.save_grid(self.run.grid(0))
        self._epoch_start = time.perf_counter()
        status = "failed"
        try:
            with self._signals_stop_after_the_step():
                while not self.done():
                    order = epoch_order(len(self.images), t.seed, self.state.epoch)
                    while self.state.step_in_epoch < self._steps_this_epoch() and not self.out_of_time():
                        self._step(order)
                    self._end_epoch()
            status = "completed"
        except TrainingInterrupted:
            status = "interrupted"
            raise
        except TrainingDiverged:
            status = "diverged"
            raise
        finally:
            summary = self.summary(status)
            if self.dist.is_main:
                self._write_summary(summary)
                if status == "completed":
                    try:
                        self.save_traversals()
                    except OSError as exc:
                        warnings.warn(f"could not write the latent traversals of {self.run.path}: "
                                      f"{exc.strerror or exc}", GanzooWarning, stacklevel=2)
            self.events.emit("on_train_end", trainer=self, summary=summary)
        return summary

    def _write_summary(self, summary: dict[str, Any]) -> None:
        """summary.json, loss.png and progress.gif. When the run stopped with an error (a full disk,
        Ctrl-C) a failed write here is a warning, so that the error which says what happened is the
        one the user sees; the checkpoints were written before."""
        try:
            atomic_write_bytes(self.run.summary, (json.dumps(json_safe(summary), indent=2) + "\n").encode())
        except OSError as exc:
            message = f"could not write {self.run.summary}: {exc.strerror or exc}"
            if summary["status"] == "completed":
                raise CheckpointError(f"{message}; the run's checkpoints are written, its summary "
                                      "(read by compare and bench) is not. Free some space") from None
            warnings.warn(message, GanzooWarning, stacklevel=2)
        try:
            write_run_pictures(self.run.path, self.run.read_metrics(), self.run.epoch_grids())
        except OSError as exc:
            warnings.warn(f"could not write the loss curve or progress.gif of {self.run.path}: "
                          f"{exc.strerror or exc}", GanzooWarning, stacklevel=2)

    def out_of_time(self) -> bool:
        """True once ``train.max_minutes`` of training steps are spent (resumed runs count theirs)."""
        budget = self.config.train.max_minutes
        return budget is not None and self.state.train_seconds >= 60 * budget

    def done(self) -> bool:
        return self.state.step >= self.total_steps or self.out_of_time()

    def train_step(self, real: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """One step on a batch in [-1, 1]; G learns every ``train.d_steps``-th step."""
        z = self.gan.generator.sample_latent(real.shape[0], generator=self.noise_rng, device=self.device)
        d_steps = self.config.train.d_steps
        update_g = (self.state.step + 1) % d_steps == 0
        step = self.parts.graphed or partial(train_step, self.parts.step)
        return step(real, y, z, update_g=update_g, step=self.state.step,
                    g_step=self.state.step // d_steps)  # G's updates so far, when update_g

    def _steps_this_epoch(self) -> int:
        return min(self.steps_per_epoch, self.total_steps - self.state.epoch * self.steps_per_epoch)

    def _batch(self, order: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        i = self.state.step_in_epoch
        idx = order[i * self.batch_size:(i + 1) * self.batch_size]
        if self.dist.enabled:  # this rank's share of the global batch
            share = self.batch_size // self.dist.world_size
            idx = idx[self.dist.rank * share:(self.dist.rank + 1) * share]
        idx = idx.to(self.device)
        return to_unit_range(self.images[idx]), (self.labels[idx] if self.labels is not None else None)

    def _step(self, order: torch.Tensor) -> None:
        # the clock covers the batch's slicing too: on a GPU, copying its indices over waits for
        # the step before, so that step's device time is counted here, as training
        start = time.perf_counter()
        real, y = self._batch(order)
        out = self.train_step(real, y)
        if self.dist.enabled:
            out, self._stop_signal = average_over_ranks(out, self._stop_signal, self.device)
        self.last = out
        self.state.step += 1
        self.state.step_in_epoch += 1
        log_now = self.state.step % self.config.train.log_every == 0 or self.state.step == self.total_steps
        self.state.train_seconds += time.perf_counter() - start
        if self.device.type != "cpu" and (log_now or self._untimed_work_follows() or self.out_of_time()):
            # a GPU computes behind the host: before a log line, a grid, a checkpoint or the
            # budget's end, wait for it, so that this step's device time counts as training
            start = time.perf_counter()
            synchronize(self.device)
            self.state.train_seconds += time.perf_counter() - start
        self.window.add(out, real.shape[0] * self.dist.world_size)
        if self.device.type == "cpu" or log_now:  # elsewhere reading a loss back waits for the device
            self._check_finite(out)
        self.events.emit("on_step_end", trainer=self)
        if log_now:
            self._log()
        if self.state.epoch == 0 and self.state.step in self._early_grids:
            self.save_grid(self.run.step_grid(self.state.step))
        if self._stop_signal is not None:
            self._log()
            self._check_weights()  # off the CPU, losses are read back only on log steps
            path = self.save_checkpoint()
            self.save_grid(self.run.step_grid(self.state.step))  # a picture of where it stopped
            name = signal.Signals(self._stop_signal).name
            raise TrainingInterrupted(
                f"{name} received: stopped after step {self.state.step}, checkpoint saved to {path}. "
                f"Resume with: ganzoo train --resume {self.run.path}"
            )

    def _untimed_work_follows(self) -> bool:
        """A grid, a checkpoint or a stop comes after this step (each waits for the device)."""
        return (self.state.step_in_epoch >= self._steps_this_epoch() or self._stop_signal is not None
                or (self.state.epoch == 0 and self.state.step in self._early_grids))

    def _log(self) -> None:
        if not self.window:
            return
        record = self.window.flush(
            step=self.state.step, epoch=round(self.state.epoch + self.state.step_in_epoch / self.steps_per_epoch, 4),
            time=round(self.state.train_seconds, 3))
        if self.dist.is_main:
            self.run.append_metrics(record)
        self.events.emit("on_log", trainer=self, metrics=record)

    def _end_epoch(self) -> None:
        if self.state.step_in_epoch < self.steps_per_epoch:  # max_steps or max_minutes ended the run mid-epoch
            if self.state.step_in_epoch == 0:
                return  # the budget ran out exactly at an epoch's end: that epoch is written already
            self._check_weights()
            self.save_checkpoint()
            self.save_grid(self.run.grid(self.state.epoch + 1))
            return
        self.state.epoch += 1
        self.state.step_in_epoch = 0
        metrics: dict[str, Any] = {"epoch": self.state.epoch, "step": self.state.step,
                                   "epoch_seconds": round(time.perf_counter() - self._epoch_start, 3)}
        self._check_weights()  # never write a checkpoint of broken weights
        self.save_checkpoint(epoch_snapshot=True)  # the work first, then its picture
        grid = self.save_grid(self.run.grid(self.state.epoch))
        t = self.config.train
        if t.eval_every and self.state.epoch % t.eval_every == 0 and self.dist.is_main:
            metrics.update(self.evaluate_now())
        metrics["grid"] = str(grid.relative_to(self.run.path))
        if self.dist.is_main:
            self.run.append_metrics({"event": "epoch_end", **metrics})
        self.events.emit("on_epoch_end", trainer=self, epoch=self.state.epoch, metrics=metrics)
        self._epoch_start = time.perf_counter()

    # --- checks ----------------------------------------------------------------------------------

    def _kept(self) -> str:
        last = self.run.last_checkpoint
        return f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint had been written yet"

    def _check_finite(self, out: dict[str, torch.Tensor]) -> None:
        bad = [k for k, v in out.items() if k.endswith("loss") and not math.isfinite(float(v))]
        if bad:
            raise TrainingDiverged(
                f"{bad[0]} became {float(out[bad[0]])} at step {self.state.step}; training stopped and {self._kept()}. "
                "Try a lower learning rate (--set g_optimizer.lr=... d_optimizer.lr=...), another loss, or batchnorm."
            )

    def _check_weights(self) -> None:
        for name, module in (("generator", self.gan.generator), ("discriminator", self.gan.discriminator)):
            for pname, param in module.named_parameters():
                if not torch.isfinite(param).all():
                    raise TrainingDiverged(
                        f"{name} weight {pname!r} holds NaN or inf after step {self.state.step}; training stopped "
                        f"and {self._kept()}. Try a lower learning rate or another loss."
                    )

    @contextmanager
    def _signals_stop_after_the_step(self) -> Iterator[None]:
        """SIGINT/SIGTERM let the current step finish, then a checkpoint is written; a second one stops at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self._stop_signal is not None:
                raise KeyboardInterrupt
            self._stop_signal = signum

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    # --- scores and summary ----------------------------------------------------------------------

    def evaluate_now(self) -> dict[str, Any]:
        """Score the current generator (EMA if kept); keep ``checkpoints/best.safetensors``."""
        from .evaluation import evaluate

        meta = {"model": self.config.model.name, "config": self.config.to_dict(), "state": asdict(self.state),
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
            best = self.run.checkpoints / "best.safetensors"
            try:
                atomic_write_bytes(best, self.run.last_checkpoint.read_bytes())
            except OSError as exc:
                raise CheckpointError(f"could not write {best}: {exc.strerror or exc}; {self._kept()}. Free some "
                                      f"space and resume with: ganzoo train --resume {self.run.path}") from None
        self.run.append_metrics(record)
        return {k: v for k, v in record.items() if k not in ("event", "step", "epoch")}

    def summary(self, status: str = "completed") -> dict[str, Any]:
        return {
            "status": status,
            "model": self.config.model.name,
            "dataset": self.config.data.name,
            "loss": self.config.loss.name,
            "epochs": self.state.epoch,
            "steps": self.state.step,
            "train_seconds": round(self.state.train_seconds, 3),
            "images_per_s": round(self.state.step * self.batch_size / max(self.state.train_seconds, 1e-9), 1),
            "device": str(self.device),
            "device_name": describe_device(self.device),
            "processes": self.dist.world_size,
            "precision": self.speed.precision,
            "channels_last": self.speed.channels_last,
            "compile": self.speed.compile,
            "cuda_graphs": self.speed.cuda_graphs,
            "fast_dropout": self.speed.fast_dropout,
            "reuse_memory": self.speed.reuse_memory,
            "auto": dict(self.speed.reasons),
            "regularizers": [c.name for c in self.config.regularizers],
            "augmentations": [c.name for c in self.config.augmentations],
            "final": {k: float(v) for k, v in self.last.items()},
            "best_fid": self.state.best_fid,
            **peak_memory(self.device),
        }

    # --- files -----------------------------------------------------------------------------------

    def save_grid(self, path: Path) -> Path:
        """The fixed-noise grid of the generator (its EMA when kept) as it is now."""
        if not self.dist.is_main:
            return path
        G = self.ema if self.ema is not None else self.gan.generator
        images = G.sample(z=self.fixed_noise, y=self.grid_labels)
        try:  # a picture not written costs no work: the checkpoint is written before it
            path.parent.mkdir(parents=True, exist_ok=True)  # samples/ removed while training
            return save_grid(images, path, nrow=8)
        except OSError as exc:
            warnings.warn(f"could not write {path}: {exc.strerror or exc}", GanzooWarning, stacklevel=2)
            return path

    def save_traversals(self) -> list[Path]:
        """A latent-traversal grid per code, for generators with interpretable codes (InfoGAN)."""
        G = self.ema if self.ema is not None else self.gan.generator
        paths = []
        for code in range(len(G.latent_codes())):
            z, nrow = G.traversal(code, generator=torch.Generator().manual_seed(self.config.train.seed + 3))
            paths.append(save_grid(G.sample(z=z), self.run.samples / f"traversal_code{code}.png", nrow=nrow))
        return paths

    def _checkpoint_parts(self) -> tuple[dict[str, torch.nn.Module], dict[str, torch.optim.Optimizer]]:
        modules: dict[str, torch.nn.Module] = {"generator": self.gan.generator, "discriminator": self.gan.discriminator}
        if self.ema is not None:
            modules["generator_ema"] = self.ema
        return modules, {"g_optimizer": self.parts.step.opt_g, "d_optimizer": self.parts.step.opt_d}

    def save_checkpoint(self, *, epoch_snapshot: bool = False) -> Path:
        """Write ``last.safetensors`` (and at an epoch's end, a snapshot; older snapshots are pruned)."""
        path = self.run.last_checkpoint
        if not self.dist.is_main:
            return path
        extra = {"fixed_noise": self.fixed_noise, "rng.torch": torch.get_rng_state(), "rng.noise": self.noise_rng.get_state()}
        if self.device.type == "cuda":
            extra["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        for prefix, part in stateful_parts(self.parts).items():
            extra.update({f"{prefix}.{k}": v for k, v in part.state_dict().items()})
        tensors, optimizer_meta = pack_training_state(*self._checkpoint_parts(), extra)
        meta = {
            "ganzoo_version": __version__, "torch_version": torch.__version__, "model": self.config.model.name,
            "image_shape": list(self.image_shape), "num_classes": self.num_classes,
            "class_names": list(self.class_names), "config": self.config.to_dict(), "state": asdict(self.state),
            **optimizer_meta,
        }
        if self.parts.step.scalers:
            meta["scalers"] = [scaler.state_dict() for scaler in self.parts.step.scalers]
        keep = self.config.train.keep_checkpoints
        try:
            save_checkpoint(path, tensors, meta)
            if epoch_snapshot and keep > 0:
                save_checkpoint(self.run.epoch_checkpoint(self.state.epoch), tensors, meta)
        except OSError as exc:
            kept = f"the previous checkpoint {path} is intact" if path.is_file() else "no earlier checkpoint exists"
            raise CheckpointError(
                f"could not write a checkpoint at step {self.state.step} in {self.run.checkpoints}: "
                f"{exc.strerror or exc}; {kept}. Free some space and resume with: "
                f"ganzoo train --resume {self.run.path}"
            ) from None
        if epoch_snapshot:
            self.run.prune_snapshots(keep)
        return path

    def restore(self, path: str | Path) -> None:
        """Continue from a checkpoint: weights, optimizer state, RNG state, counters and data order."""
        path = Path(path)
        tensors, meta = load_checkpoint(path)
        self.run.remove_stale_temporaries()
        if meta.get("model") != self.config.model.name:
            raise CheckpointError(f"{path} holds model {meta.get('model')!r}, not {self.config.model.name!r}")
        modules, optimizers = self._checkpoint_parts()
        if "generator_ema" in modules and not any(k.startswith("generator_ema.") for k in tensors):
            # EMA switched on for a run that had none: it starts from the restored weights
            del modules["generator_ema"]
            unpack_training_state(path, tensors, meta, modules, optimizers)
            self.ema.load_state_dict(self.gan.generator.state_dict())  # type: ignore[union-attr]
        else:
            unpack_training_state(path, tensors, meta, modules, optimizers, names={"generator_ema": "generator EMA"})
        self.fixed_noise = tensors["fixed_noise"]
        for prefix, part in stateful_parts(self.parts).items():
            part.load_state_dict({k: v.to(self.device) for k, v in split_prefix(tensors, prefix).items()})
        torch.set_rng_state(tensors["rng.torch"])
        self.noise_rng.set_state(tensors["rng.noise"])
        if "rng.cuda" in tensors and self.device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], self.device)
        self.state = _train_state(path, meta)
        scalers = self.parts.step.scalers or ()
        for scaler, saved in zip(scalers, meta.get("scalers", [])):  # fp16 loss scales continue where they were
            scaler.load_state_dict(saved)
        if self.dist.enabled:
            # the checkpoint holds rank 0's random state; every rank draws its own streams again,
            # from (seed, rank, step), so that the ranks' batches of fakes and masks stay different
            key = self.config.train.seed + 7919 * self.dist.rank + 1_000_003 * self.state.step
            torch.manual_seed(key)
            self.noise_rng.manual_seed(key + 1)
