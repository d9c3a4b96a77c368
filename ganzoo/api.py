"""The Python API of the commands: :func:`train` does exactly what ``ganzoo train`` does.

``ganzoo.train("dcgan", dataset="fashion_mnist", epochs=1)`` layers the same settings as the CLI
(recipe, ``config=`` file, keyword flags, ``overrides`` as ``--set``), checks everything, creates
the run directory only when training starts, trains, and returns a :class:`Run`;
``Run.open("runs/dcgan-fashion_mnist")`` opens a run the command line made.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config, Flag, compose, dump_toml, whole_number
from .errors import CheckpointError, ConfigError
from .rundir import RunDir, RunLock, check_writable, default_run_dir, find_checkpoint, prepare_new_run

__all__ = ["Run", "resolve_nproc", "train", "train_config"]


@dataclass
class Run:
    """A run directory and what training it produced."""

    path: Path
    config: Config
    summary: dict[str, Any] = field(default_factory=dict)
    note: str | None = None  # e.g. why nothing was trained

    @classmethod
    def open(cls, path: str | Path) -> Run:
        """The run in folder ``path`` (one ``ganzoo train`` made), to sample or evaluate from Python:
        its config as its last checkpoint recorded it, and its ``summary.json``. A folder without a
        checkpoint, or a damaged one, raises :class:`ganzoo.errors.CheckpointError` naming the file."""
        from .checkpoint import load_checkpoint
        from .sampling import checkpoint_config

        path = Path(path).expanduser()
        if not path.exists():
            raise CheckpointError(f"{path} is not a run folder: it does not exist")
        if not path.is_dir():
            raise CheckpointError(f"{path} is not a run folder (one holds config.toml and checkpoints/)")
        last = find_checkpoint(path)
        config = checkpoint_config(load_checkpoint(last)[1], last)
        run = RunDir(path)
        return cls(path=path, config=config, summary=run.read_json("summary.json"))

    @property
    def rundir(self) -> RunDir:
        return RunDir(self.path)

    @property
    def grids(self) -> list[Path]:
        """The per-epoch fixed-noise grids, oldest first (``samples/epoch_NNNN.png``)."""
        return self.rundir.epoch_grids()

    def sample(self, n: int = 64, *, seed: int = 0, labels: Any = None) -> Any:
        """``n`` float images in [-1, 1] from the run's last checkpoint (EMA weights when kept); a
        class-conditional run draws the classes in turn unless ``labels`` says which."""
        import torch

        from .sampling import generate, load_generator

        n = whole_number(n, "n", least=1)
        generator, _ = load_generator(self.path)
        if labels is None and generator.num_classes:
            labels = torch.arange(n) % generator.num_classes
        return generate(generator, n, seed=seed, labels=labels)

    def evaluate(self, n: int = 10000, *, seed: int = 0) -> dict[str, Any]:
        """What ``ganzoo eval RUN`` reports (FID, KID, floor, class coverage), written to ``eval.json``."""
        from .evaluation import MIN_N, evaluate, write_eval

        result = evaluate(self.path, n=whole_number(n, "n", least=MIN_N), seed=seed)
        write_eval(self.path, result)
        return result

    def _repr_html_(self) -> str:  # a notebook shows the latest grid
        import base64
        import html

        grid = self.grids[-1] if self.grids else None
        status = self.summary.get("status", "not trained")
        image = (f'<img src="data:image/png;base64,{base64.b64encode(grid.read_bytes()).decode()}" '
                 f'style="image-rendering:pixelated" alt="{html.escape(grid.name)}">' if grid else "")
        return f"<p>ganzoo run <code>{html.escape(str(self.path))}</code>: {html.escape(status)}</p>{image}"


def _flags(*, data_dir: str | Path | None, loss: str | None, epochs: int | None, batch_size: int | None,
           max_steps: int | None, seed: int | None, device: str | None, eval_every: int | None) -> list[Flag]:
    root = str(Path(data_dir).expanduser().resolve()) if data_dir else None  # stored; must work from elsewhere
    return [Flag("--data-dir", "data.root", root), Flag("--loss", "loss.name", loss),
            Flag("--epochs", "train.epochs", epochs), Flag("--batch-size", "train.batch_size", batch_size),
            Flag("--max-steps", "train.max_steps", max_steps), Flag("--seed", "train.seed", seed),
            Flag("--device", "train.device", device), Flag("--eval-every", "train.eval_every", eval_every)]


def resumed_run(resume: str | Path) -> RunDir:
    """The run ``--resume`` continues: a run folder, or the path of its last checkpoint. An epoch
    snapshot, or a checkpoint outside a run folder, is refused (training would carry on from the
    run's last checkpoint, or write beside a lone file)."""
    path = Path(resume)
    checkpoint = find_checkpoint(path)  # raises, naming the path, where there is none
    run = RunDir(path) if path.is_dir() else RunDir(checkpoint.absolute().parent.parent)
    if checkpoint.resolve() != run.last_checkpoint.resolve():
        where = (f"the run {run.path} continues from {run.last_checkpoint.name}; pass the run folder: --resume {run.path}"
                 if run.last_checkpoint.is_file() else
                 f"{path} is not in a run folder's checkpoints/; to train on from it, copy it to "
                 "RUN/checkpoints/last.safetensors beside the run's config.toml")
        raise ConfigError(f"--resume continues a run from its last checkpoint, and {path} is not one: {where}")
    return run


def train_config(model: str | None = None, *, dataset: str | None = None, recipe: str | None = None,
                 config: str | Path | None = None, resume: str | Path | None = None,
                 overrides: Sequence[str] | Mapping[str, Any] = (), **flags: Any) -> tuple[Config, list[str]]:
    """The config :func:`train` would use with the same arguments, and where it came from."""
    from .checkpoint import load_checkpoint

    resumed = None
    if resume is not None:
        last = resumed_run(resume).last_checkpoint
        resumed = load_checkpoint(last)[1].get("config")
        if not isinstance(resumed, dict):
            raise CheckpointError(f"{last} holds no training config: it is not a checkpoint of `ganzoo train`")
    flag_values = {k: flags.pop(k, None) for k in
                   ("data_dir", "loss", "epochs", "batch_size", "max_steps", "seed", "device", "eval_every")}
    if flags:
        raise TypeError(f"train() got unexpected keyword arguments: {', '.join(sorted(flags))}")
    composed = compose(model, dataset=dataset, recipe=recipe, config_file=config, flags=_flags(**flag_values),
                       overrides=overrides, resume=resumed)
    _check_utf8(composed[0].to_dict())
    return composed


def _check_utf8(values: Any, key: str = "") -> None:
    """Refuse a config a run could not record: config.toml is UTF-8, and a path given in bytes that
    are not (a folder named in Latin-1 on a USB stick) reaches Python as a string it cannot encode."""
    if isinstance(values, Mapping):
        for name, value in values.items():
            _check_utf8(value, f"{key}.{name}" if key else str(name))
    elif isinstance(values, (list, tuple)):
        for value in values:
            _check_utf8(value, key)
    elif isinstance(values, str):
        try:
            values.encode("utf-8")
        except UnicodeEncodeError:
            raise ConfigError(f"config key '{key}' holds a name that is not valid UTF-8 ({values!r}), which a run's "
                              "config.toml cannot record: rename that file or folder, or reach it through a "
                              "symbolic link whose name is") from None


def resolve_nproc(nproc: int | str | None, device: str = "auto") -> int:
    """How many processes ``--nproc`` asks for on this machine: ``auto`` is one per visible GPU
    (1 without one); on CUDA, more processes than GPUs is refused with how many there are."""
    if nproc is None:
        return 1
    import torch

    gpus = torch.cuda.device_count() if device in ("auto", "cuda") else 0
    if nproc == "auto":
        return max(gpus, 1)
    count = int(nproc)
    if count < 1:
        raise ConfigError(f"--nproc must be at least 1 (or auto), got {nproc}")
    if gpus and count > gpus:
        raise ConfigError(f"--nproc {count} asks for one GPU per process, but this machine has {gpus} visible GPU"
                          f"{'s' if gpus != 1 else ''}; use --nproc {gpus} (or auto), or --device cpu for CPU processes")
    return count


def train(model: str | None = None, *, dataset: str | None = None, recipe: str | None = None,
          config: str | Path | None = None, data_dir: str | Path | None = None, loss: str | None = None,
          epochs: int | None = None, batch_size: int | None = None, max_steps: int | None = None,
          seed: int | None = None, device: str | None = None, eval_every: int | None = None,
          overrides: Sequence[str] | Mapping[str, Any] = (), out: str | Path | None = None,
          overwrite: bool = False, resume: str | Path | None = None, progress: bool = False,
          log: Callable[[str], None] | None = None) -> Run:
    """Train a GAN as ``ganzoo train`` does and return the :class:`Run`.

    Arguments mirror the command's flags (``overrides`` is ``--set``: ``{"model.width": 32}`` or
    ``["model.width=32"]``). ``progress=True`` shows the live progress bar; ``log`` receives the
    lines the command prints besides it (where the config came from, notes).
    """
    from .distributed import from_env, setup, teardown

    flags = dict(data_dir=data_dir, loss=loss, epochs=epochs, batch_size=batch_size, max_steps=max_steps,
                 seed=seed, device=device, eval_every=eval_every)
    cfg, sources = train_config(model, dataset=dataset, recipe=recipe, config=config, resume=resume,
                                overrides=overrides, **flags)
    info = from_env()
    if resume is not None:
        run = resumed_run(resume)
        sources = [f"resumed from {run.path}"]
    else:
        from .registry import get_dataset_spec

        path = Path(out) if out else default_run_dir(cfg.model.name, get_dataset_spec(cfg.data.name).run_name(cfg.data.name))
        run = prepare_new_run(path, overwrite=overwrite) if info.is_main else RunDir(path)

    # torch is imported only now, after every cheap check has passed
    from .device import resolve_device

    info = setup(resolve_device(cfg.train.device).type)
    try:
        return _train(cfg, run, sources, info, resume=resume is not None, progress=progress, log=log)
    finally:
        teardown(info)


def _train(config: Config, run: RunDir, sources: list[str], info: Any, *, resume: bool, progress: bool,
           log: Callable[[str], None] | None) -> Run:
    with RunLock(run.path) if info.is_main else contextlib.nullcontext() as lock:
        return _train_locked(config, run, sources, info, lock, resume=resume, progress=progress, log=log)


def _train_locked(config: Config, run: RunDir, sources: list[str], info: Any, lock: RunLock | None, *,
                  resume: bool, progress: bool, log: Callable[[str], None] | None) -> Run:
    from .atomic import atomic_write_bytes
    from .progress import RichProgress
    from .registry import get_registry
    from .trainer import Trainer

    say = log if log is not None and info.is_main else (lambda text: None)
    trainer = Trainer(config, run, dist=info)  # loads data and builds everything: may raise, writes nothing
    if resume:
        trainer.restore(run.last_checkpoint)
        if trainer.done():
            limit = config.train.max_steps
            more = ("raise train.max_minutes" if trainer.out_of_time() else
                    "raise --max-steps" if limit and trainer.state.step >= limit else "raise --epochs")
            note = (f"{run.path} has already trained {trainer.state.epoch} epochs ({trainer.state.step} steps); "
                    f"{more} to train further")
            say(note)
            return Run(run.path, config, run.read_json("summary.json"), note)
        if info.is_main:
            check_writable(run.path)  # before any step: a run it could not save would be lost
    for source in sources:
        say(f"config: {source}")
    manager = get_registry().plugins.manager
    reporter = RichProgress() if progress and info.is_main else None
    if reporter is not None:
        manager.register(reporter, name=f"ganzoo-progress-{id(reporter)}")  # no plugin's name can clash
    try:
        if info.is_main:
            run.claim(lock, new=not resume)  # type: ignore[arg-type]  # the main process always holds one
            atomic_write_bytes(run.config, dump_toml(config.to_dict()).encode())
        summary = trainer.fit()
    finally:
        if reporter is not None:
            reporter.close()
            manager.unregister(reporter)
    return Run(run.path, config, summary)
