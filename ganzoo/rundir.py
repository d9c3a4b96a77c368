"""The run directory: everything needed to resume, sample or report a run lives here."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CheckpointError, ConfigError


@dataclass(frozen=True)
class RunDir:
    path: Path
    replace: bool = False  # create() first removes the ganzoo run that is there (--overwrite)

    @property
    def config(self) -> Path:
        return self.path / "config.toml"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.safetensors"

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / f"epoch_{epoch:04d}.safetensors"

    def grid(self, epoch: int) -> Path:
        return self.samples / f"epoch_{epoch:04d}.png"

    def step_grid(self, step: int) -> Path:
        """A grid written between epochs: early in the first one, or where a run was interrupted."""
        return self.samples / f"step_{step:07d}.png"

    def is_run(self) -> bool:
        return self.config.is_file() or self.checkpoints.is_dir()

    def create(self) -> None:
        """Make the folders, when training starts (a run that fails its checks leaves nothing behind)."""
        if self.replace and self.path.is_dir() and self.is_run():
            shutil.rmtree(self.path)
        try:
            for folder in (self.path, self.samples, self.checkpoints):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot write to output folder {self.path}: {exc.strerror or exc}") from None

    def prune_snapshots(self, keep: int) -> None:
        """Delete all but the newest ``keep`` per-epoch checkpoints (``last`` and ``best`` stay)."""
        snapshots = sorted(self.checkpoints.glob("epoch_*.safetensors"))
        for old in snapshots[: max(len(snapshots) - keep, 0)]:
            old.unlink(missing_ok=True)

    def remove_stale_temporaries(self) -> None:
        """Temporary files left by a write that was killed before its rename."""
        for stale in self.checkpoints.glob(".*.tmp-*"):
            stale.unlink(missing_ok=True)

    def append_metrics(self, record: dict[str, Any]) -> None:
        line = json.dumps(record) + "\n"
        with open(self.metrics, "a+b") as fh:  # appends go to the end whatever was read
            size = fh.seek(0, os.SEEK_END)
            if size:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":  # the last line was cut by a crash: start a line of our own
                    line = "\n" + line
            fh.write(line.encode("utf-8"))

    def read_json(self, name: str) -> dict[str, Any]:
        """One of the run's JSON files (``summary.json``, ``eval.json``) as a dict; ``{}`` when it
        is not there. A damaged one raises :class:`CheckpointError` naming the file."""
        path = self.path / name
        if not path.is_file():
            return {}
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{path} cannot be read ({type(exc).__name__}: {exc}); move it away "
                                  "to use the run without it") from None
        if not isinstance(value, dict):
            raise CheckpointError(f"{path} holds a JSON {type(value).__name__}, not the object ganzoo writes; "
                                  "move it away to use the run without it")
        return value

    def read_metrics(self) -> list[dict[str, Any]]:
        """The run's metrics records. A run resumed from a checkpoint after a crash or Ctrl-C
        trains the steps after that checkpoint again; its ``{"event": "resume", "step": S}``
        record drops the old records past step S, so a loss curve never doubles back."""
        if not self.metrics.is_file():
            return []
        out: list[dict[str, Any]] = []
        for line in self.metrics.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a crash; the rest is still good
            if not isinstance(record, dict):
                continue
            if record.get("event") == "resume" and isinstance(record.get("step"), int):
                out = [r for r in out if not (isinstance(r.get("step"), int) and r["step"] > record["step"])]
            out.append(record)
        return out


def default_run_dir(model: str, dataset: str, base: str | Path = "runs") -> Path:
    """``runs/<model>-<dataset>``, or the first free ``-2``, ``-3``, ... so no run is overwritten.

    ``dataset`` is a short, file-system-safe name (``DatasetSpec.run_name``: ``folder:~/cats`` -> ``cats``).
    """
    stem = Path(base) / f"{model}-{dataset}"
    candidate, n = stem, 1
    while candidate.exists():
        n += 1
        candidate = stem.with_name(f"{stem.name}-{n}")
    return candidate


def _nearest_existing(path: Path) -> Path:
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_writable(folder: Path) -> None:
    """Raise ConfigError unless ``folder`` could be created and written to; creates nothing."""
    probe = _nearest_existing(folder)
    if not probe.is_dir():
        raise ConfigError(f"cannot write to output folder {folder}: {probe} is not a folder")
    try:
        with tempfile.NamedTemporaryFile(dir=probe):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write to output folder {folder}: {exc.strerror or exc}") from None
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write to output folder {folder}: {probe} is not writable")


def prepare_new_run(path: str | Path, *, overwrite: bool = False) -> RunDir:
    """The run directory for a new run, checked but not created (:meth:`RunDir.create` does that
    when training starts); a folder that already holds something is refused."""
    run = RunDir(Path(path), replace=overwrite)
    if run.path.exists() and not run.path.is_dir():
        raise ConfigError(f"output path {run.path} exists and is not a folder")
    if run.path.is_dir() and any(run.path.iterdir()):
        if not overwrite:
            what = "a ganzoo run" if run.is_run() else "other files"
            raise ConfigError(
                f"output folder {run.path} already holds {what}; pass --resume {run.path} to continue it, "
                "--overwrite to replace it, or another --out"
            )
        if not run.is_run():
            raise ConfigError(f"refusing to --overwrite {run.path}: it holds files that are not a ganzoo run")
    check_writable(run.path)
    return run


def find_checkpoint(path: str | Path) -> Path:
    """A run directory -> its last checkpoint; a checkpoint file -> itself."""
    path = Path(path)
    if path.is_dir():
        last = RunDir(path).last_checkpoint
        if not last.is_file():
            raise CheckpointError(f"{path} holds no checkpoint ({last.relative_to(path)} is missing): is it a ganzoo run?")
        return last
    if path.is_file():
        return path
    raise CheckpointError(f"no run directory or checkpoint at {path}")
