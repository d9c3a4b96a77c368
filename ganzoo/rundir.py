"""The run directory: everything needed to resume, sample or report a run lives here."""

from __future__ import annotations

import errno
import json
import math
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import CheckpointError, ConfigError, GanzooWarning


LOCK_FILE = ".lock"  # RunLock's; the one file of a run folder that outlives --overwrite
# What ganzoo itself writes at the top of a run folder: all --overwrite removes (and their
# temporaries, ".NAME.tmp-PID"). A plugin's files and the user's own are kept, and named.
OWN_ENTRIES = ("config.toml", "metrics.jsonl", "summary.json", "eval.json", "loss.png", "progress.gif",
               "report.html", "samples", "checkpoints", "tensorboard")  # the last: the built-in tensorboard plugin's
_UNNAMED = (".DS_Store", "Thumbs.db", "desktop.ini")  # what file browsers add: kept, not named in the warning
_CHECKPOINT_NAME = re.compile(r"(last|best|epoch_[0-9]+)\.safetensors|\..+\.tmp-[0-9]+")


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities as ``null``: Python writes them as ``NaN``/``Infinity``,
    which is not JSON, and jq, JavaScript and the like refuse the whole file (a diverged run's
    last losses are NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


_EPOCH_NAME = re.compile(r"epoch_([0-9]+)")


def _numbered(paths: Any) -> list[Path]:
    """The ``epoch_NNNN.*`` files among ``paths``, in the order of their numbers: past epoch 9999
    the names outgrow their zero padding, and ``epoch_10000`` would sort before ``epoch_9999`` by
    name. Anything else (``epoch_0005 (copy).safetensors``) is left out, so never pruned."""
    found = [(int(match[1]), path) for path in paths if (match := _EPOCH_NAME.fullmatch(path.stem))]
    return [path for _, path in sorted(found, key=lambda item: (item[0], item[1].name))]


@dataclass(frozen=True)
class RunDir:
    path: Path
    replace: bool = False  # claim() first clears the ganzoo run that is there (--overwrite)

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

    def epoch_grids(self) -> list[Path]:
        """The per-epoch fixed-noise grids, oldest first."""
        return _numbered(self.samples.glob("epoch_*.png"))

    def epoch_snapshots(self) -> list[Path]:
        """The per-epoch checkpoints kept, oldest first."""
        return _numbered(self.checkpoints.glob("epoch_*.safetensors"))

    def is_run(self) -> bool:
        """Whether the folder may hold a run (a config.toml or a checkpoints/): enough to refuse to
        start a new run in it; :meth:`is_ganzoo_run` decides whether ``--overwrite`` may clear it."""
        return self.config.is_file() or self.checkpoints.is_dir()

    def is_ganzoo_run(self) -> bool:
        """Whether ganzoo made this folder, so that ``--overwrite`` may clear what ganzoo wrote in
        it: its last checkpoint is a ganzoo checkpoint; or its config.toml has ganzoo's shape (a
        ``[model]`` with a name, a ``[train]``) and its checkpoints/, if any, holds only ganzoo's
        checkpoint names; or it holds nothing but the empty folders of a run that never started. A
        project folder that merely has a config.toml or a checkpoints/ of its own is not one."""
        if checkpoint_step(self.last_checkpoint) is not None:
            return True
        try:
            entries = {entry.name for entry in self.path.iterdir()}
            stored = [entry.name for entry in self.checkpoints.iterdir()] if self.checkpoints.is_dir() else []
            started = self.samples.is_dir() and not any(self.samples.iterdir())
        except OSError:
            return False
        if not self.config.is_file():  # a start that failed before config.toml was written: empty folders
            return started and not stored and entries <= {"samples", "checkpoints", LOCK_FILE}
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        try:
            config = tomllib.loads(self.config.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
            return False
        model = config.get("model")
        return (isinstance(model, dict) and isinstance(model.get("name"), str) and isinstance(config.get("train"), dict)
                and all(_CHECKPOINT_NAME.fullmatch(name) for name in stored))

    def clear(self) -> list[str]:
        """Remove what ganzoo wrote here (:data:`OWN_ENTRIES`) for ``--overwrite``; return the names
        of the entries kept (the lock file aside): a plugin's files, or the user's."""
        kept = []
        for entry in sorted(self.path.iterdir(), key=lambda e: e.name):
            name = entry.name
            if name == LOCK_FILE:
                continue
            own = name in OWN_ENTRIES or any(name.startswith(f".{own}.tmp-") for own in OWN_ENTRIES)
            if not own:
                if name not in _UNNAMED:
                    kept.append(name)
            elif entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        return kept

    def claim(self, lock: RunLock, *, new: bool) -> None:
        """Make the folder and lock it before anything in it is touched, when training starts: of
        two processes told to train one folder at once, one trains and the other is refused, however
        their steps interleave. For a ``new`` run, the run that is there is then cleared if
        ``replace`` (``--overwrite``; the lock file stays, being what the processes agree on), and
        refused if not (another process made it since this one's checks)."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot write to output folder {self.path}: {exc.strerror or exc}") from None
        lock.acquire()
        if new and self.is_run():
            if not self.replace:
                raise ConfigError(f"output folder {self.path} now holds a ganzoo run, made by another process since "
                                  "this one checked it; pass another --out, or --overwrite to replace it")
            if not self.is_ganzoo_run():  # changed since prepare_new_run checked it
                raise ConfigError(_not_a_run(self.path))
            try:
                kept = self.clear()
            except OSError as exc:
                raise ConfigError(f"cannot replace the run in {self.path}: {exc.strerror or exc}") from None
            if kept:
                warnings.warn(f"--overwrite replaced the run in {self.path} and kept what ganzoo did not write there: "
                              f"{', '.join(kept)} (a plugin's or yours; delete them if they belong to the old run)",
                              GanzooWarning, stacklevel=2)
        object.__setattr__(self, "replace", False)  # spent; frozen so that a RunDir stays hashable
        self.create()

    def create(self) -> None:
        """Make the folders, when training starts (a run that fails its checks leaves nothing behind)."""
        if self.replace:
            raise ValueError(f"{self.path}: a RunDir that replaces a run is cleared by claim(lock, new=True), "
                             "under the lock, before create()")
        try:
            for folder in (self.path, self.samples, self.checkpoints):
                folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot write to output folder {self.path}: {exc.strerror or exc}") from None

    def prune_snapshots(self, keep: int) -> None:
        """Delete all but the newest ``keep`` per-epoch checkpoints (``last`` and ``best`` stay)."""
        snapshots = self.epoch_snapshots()
        for old in snapshots[: max(len(snapshots) - keep, 0)]:
            old.unlink(missing_ok=True)

    def remove_stale_temporaries(self) -> None:
        """Temporary files left by a write that was killed before its rename."""
        for stale in self.checkpoints.glob(".*.tmp-*"):
            try:
                stale.unlink(missing_ok=True)
            except OSError:
                pass  # a read-only run: the check for a writable run says so, in words

    def append_metrics(self, record: dict[str, Any]) -> None:
        line = json.dumps(json_safe(record)) + "\n"
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
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
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
        # bytes a crash or a damaged disk left are replaced, not fatal: the lines around them are good
        for line in self.metrics.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue  # a line cut by a crash (or nested past reason); the rest is still good
            if not isinstance(record, dict):
                continue
            if record.get("event") == "resume" and isinstance(record.get("step"), int):
                out = [r for r in out if not (isinstance(r.get("step"), int) and r["step"] > record["step"])]
            out.append(record)
        return out


class RunLock:
    """An exclusive lock on a run folder while a process trains it, so that a job started twice
    (or `--resume`/`--overwrite` of a run still training) is refused instead of two processes
    writing one checkpoint. It is ``flock`` on the folder's ``.lock`` file, opened for writing (NFS
    emulates ``flock`` with byte-range locks, which need that); the system releases it when the
    process ends, however it ends. Where ``flock`` does not exist (Windows) nothing is locked."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held: list[int] = []
        self._warned = False

    def acquire(self) -> None:
        """Lock the folder if it exists; refuse if another process holds it. Again and again is fine."""
        try:
            import fcntl
        except ImportError:
            return
        if not self.path.is_dir():
            return
        lock_file = self.path / LOCK_FILE
        try:  # 0o666 and the umask: in a group-shared folder the group's members can all open it
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                self._warn(exc)
                return
            try:  # another user's lock file: a local flock needs only read access (NFS's then says EBADF)
                fd = os.open(lock_file, os.O_RDONLY)
            except OSError:
                self._warn(exc)  # silent for a run this process cannot write to: it cannot train it either
                return
        if any(os.path.samestat(os.fstat(fd), os.fstat(held)) for held in self._held):
            os.close(fd)  # flock on a second descriptor of the same file would conflict with our own
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if not isinstance(exc, BlockingIOError):  # NFS without lockd, Lustre without -o flock
                self._warn(exc)
                return
            raise ConfigError(f"{self.path} is being trained by another process; wait for it to finish, or stop "
                              f"it (Ctrl-C saves its checkpoint) and resume with: ganzoo train --resume {self.path}"
                              ) from None
        self._held.append(fd)

    def _warn(self, exc: OSError) -> None:
        if not self._warned and os.access(self.path, os.W_OK):
            self._warned = True
            warnings.warn(f"{self.path} is not locked against a second training ({exc.strerror or exc}); "
                          "do not train it from two processes at once", GanzooWarning, stacklevel=3)

    def release(self) -> None:
        while self._held:
            os.close(self._held.pop())

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def checkpoint_step(path: Path) -> int | None:
    """The step a ganzoo checkpoint was saved at, read from its safetensors header alone (no torch,
    no tensors: `compare` stays fast); None when the file is missing or is not one."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            text = (fh.metadata() or {})["ganzoo"]  # checkpoint.META_KEY; checkpoint.py imports torch
        step = json.loads(text)["state"]["step"]
    except (OSError, SafetensorError, ValueError, KeyError, TypeError, RecursionError):
        return None
    return step if isinstance(step, int) and not isinstance(step, bool) else None


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


def _not_a_run(path: Path) -> str:
    return (f"refusing to --overwrite {path}: it holds files that are not a ganzoo run (a run folder has the "
            "config.toml, samples/ and checkpoints/ that `ganzoo train` wrote); pass another --out")


def prepare_new_run(path: str | Path, *, overwrite: bool = False) -> RunDir:
    """The run directory for a new run, checked but not created (:meth:`RunDir.claim` does that
    when training starts); a folder that already holds something is refused."""
    run = RunDir(Path(path), replace=overwrite)
    if run.path.exists() and not run.path.is_dir():
        raise ConfigError(f"output path {run.path} exists and is not a folder")
    if run.path.is_dir() and any(entry.name != LOCK_FILE for entry in run.path.iterdir()):
        if not run.is_ganzoo_run():
            raise ConfigError(_not_a_run(run.path) if overwrite else
                              f"output folder {run.path} already holds files that are not a ganzoo run; "
                              "pass another --out")
        if not overwrite:
            resume = (f"pass --resume {run.path} to continue it, " if run.last_checkpoint.is_file()
                      else "it has no checkpoint to resume from; ")
            raise ConfigError(f"output folder {run.path} already holds a ganzoo run; {resume}"
                              "--overwrite to replace it, or another --out")
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
