"""ganzoo bench: every matching model trains for the same budget, is scored and ranked; a failure
is reported and the rest go on; an interrupted bench resumes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_mnist_like
from ganzoo.bench import parse_budget
from ganzoo.cli import main
from ganzoo.errors import ConfigError, TrainingInterrupted


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE_DIR", str(tmp_path / "cache"))
    root = make_mnist_like(tmp_path / "data", n=64)
    return make_mnist_like(root, n=40, train=False)


def test_bench_ranks_the_models_and_reports_a_failure(data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "bench"
    argv = ["bench", "dcgan", "sngan", "vanilla", "--epochs", "1", "--seeds", "1,2", "--n", "30", "--data-dir",
            str(data), "--out", str(out), "--set", "model.width=4", "--device", "cpu"]
    monkeypatch.setenv("COLUMNS", "100")
    assert main(argv) == 0
    printed = capsys.readouterr().out
    result = json.loads((out / "bench.json").read_text())
    board = result["leaderboard"]
    assert [row["model"] for row in board][:2] == sorted(["dcgan", "sngan"], key=lambda m: next(
        r["fid"] for r in board if r["model"] == m))  # ranked by mean FID
    assert [row["rank"] for row in board] == [1, 2, None]
    dcgan = next(r for r in board if r["model"] == "dcgan")
    assert dcgan["done"] == 2 and dcgan["seeds"] == [1, 2] and dcgan["fid"] > 0 and dcgan["fid_spread"] >= 0
    assert dcgan["images_per_s"] > 0 and dcgan["peak_memory_mb"] > 0 and dcgan["loss"] == "nonsaturating"
    vanilla = board[-1]
    assert "fid" not in vanilla and "unknown config key in [model] 'width'" in vanilla["problems"][0]
    assert "dcgan" in printed and "vanilla (default): failed" in printed
    page = (out / "bench.html").read_text()
    assert "Leaderboard: fashion_mnist, 1 epochs" in page and page.count("<section>") == 4

    # a second call finds every entry done and trains nothing; a lost entry is trained again
    entries = result["entries"]
    result["entries"] = [e for e in entries if not (e["model"] == "sngan" and e["seed"] == 2)]
    hand_edited = next(e for e in result["entries"] if e["model"] == "dcgan" and e["seed"] == 1)
    hand_edited = {**hand_edited, "summary": {k: v for k, v in hand_edited["summary"].items() if k != "images_per_s"}}
    result["entries"] = [hand_edited if e["model"] == "dcgan" and e["seed"] == 1 else e for e in result["entries"]]
    (out / "bench.json").write_text(json.dumps(result))
    stamps = {e["model"] + str(e["seed"]): _stamp(e) for e in entries if e["status"] == "done"}
    assert main([*argv, "--seeds", "1,2,1"]) == 0  # a seed given twice is one entry, scored once
    rerun = json.loads((out / "bench.json").read_text())["entries"]
    assert len(rerun) == 6 and next(r for r in json.loads((out / "bench.json").read_text())["leaderboard"]
                                    if r["model"] == "dcgan")["seeds"] == [1, 2]
    again = {e["model"] + str(e["seed"]): e for e in rerun}
    assert {k for k, e in again.items() if e["status"] == "done"} == {"dcgan1", "dcgan2", "sngan1", "sngan2"}
    # only the lost entry and the one missing a number were scored again; their runs had finished,
    # so they were kept, not trained again
    assert {k for k in stamps if _stamp(again[k]) != stamps[k]} == {"sngan2", "dcgan1"}
    assert again["dcgan1"]["summary"]["images_per_s"] > 0
    assert again["sngan2"]["summary"]["steps"] == 1

    # other settings in the same --out would continue its runs and score them as if trained with
    # them: refused before anything trains, naming what changed
    before = (out / "bench.json").read_text()
    capsys.readouterr()
    changed = [*argv[:argv.index("--epochs")], "--epochs", "2", *argv[argv.index("--epochs") + 2:], "--n", "40"]
    assert main(changed) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "holds a bench with other settings: --epochs 1 there, 2 now; --n 30 there, 40 now." in err
    assert "pass another --out" in err and (out / "bench.json").read_text() == before
    from ganzoo.bench import _differences

    assert _differences({"epochs": 1, "seeds": [1]}, {"epochs": 1}) == "seeds [1] there, None now"
    # runs with no bench.json to say what trained them (deleted, or a bench killed in its first run
    # by an older ganzoo) are not continued under settings nobody can check
    (out / "bench.json").unlink()
    assert main(argv) == 2
    assert "holds runs but no bench.json says what settings trained them" in " ".join(capsys.readouterr().err.split())


def _stamp(entry):
    from pathlib import Path

    return (Path(entry["run"]) / "eval.json").stat().st_mtime_ns


def test_budgets_are_minutes():
    assert parse_budget("10m") == 10 and parse_budget("90s") == 1.5 and parse_budget("1.5h") == 90
    assert parse_budget("7") == 7
    for bad in ("ten", "-3m", "0"):
        with pytest.raises(ConfigError, match="--budget"):
            parse_budget(bad)


def test_a_time_budget_stops_training(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--data-dir", str(data), "--epochs", "1000", "--set", "model.width=4",
                 "--set", "train.max_minutes=0.02", "--out", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and 1.2 <= summary["train_seconds"] < 10 and summary["epochs"] < 1000
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 0
    assert "raise train.max_minutes to train further" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["dcgann"], "unknown model 'dcgann'; did you mean 'dcgan'?"),
    (["dcgan", "--dataset", "mnistt"], "unknown dataset 'mnistt'; did you mean 'mnist'"),
    (["dcgan", "dcgann"], "unknown model 'dcgann'; did you mean 'dcgan'?"),  # not dropped beside a good name
    (["dc*", "zz*"], "no model matches 'zz*'"),
    (["dcgan", "--dataset", "mnistt", "--recipes", "fast"], "unknown dataset 'mnistt'; did you mean 'mnist'"),
    (["dcgan", "--recipes", "default,fats"],
     "unknown recipe for fashion_mnist 'fats'; did you mean 'fast'? Known: default, fast."),
    (["vanilla", "--recipes", "fast"], "unknown recipe for fashion_mnist 'fast'. Known: default."),
    (["dcgan", "--recipes", ","], "--recipes names no recipe"),
    (["dcgan", "vanilla", "--set", "train.batchsize=8"], "unknown config key in [train] 'batchsize'"),
    (["dcgan", "--n", "5"], "--n must be at least 10"),
])
def test_a_mistake_no_model_can_train_with_fails_at_once_and_writes_nothing(args, message, tmp_path, capsys):
    out = tmp_path / "bench"
    assert main(["bench", *args, "--budget", "1m", "--out", str(out), "--device", "cpu"]) == 2
    assert message in " ".join(capsys.readouterr().err.split())
    assert not out.exists()


def test_an_out_that_is_a_file_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "notes.txt"
    out.write_text("mine")
    assert main(["bench", "dcgan", "--budget", "1m", "--out", str(out), "--device", "cpu"]) == 2
    assert "is not a folder" in capsys.readouterr().err and out.read_text() == "mine"
    (tmp_path / "b" / "bench.json").mkdir(parents=True)
    assert main(["bench", "dcgan", "--budget", "1m", "--out", str(tmp_path / "b"), "--device", "cpu"]) == 2
    assert "bench.json is not a file" in " ".join(capsys.readouterr().err.split())


def test_a_training_that_writes_no_summary_is_a_failed_entry_and_the_bench_goes_on(tmp_path, monkeypatch):
    import sys

    from ganzoo import bench

    monkeypatch.setattr(bench, "_train_command", lambda entry, **kw: [sys.executable, "-c", "pass"])
    entry = bench.Entry("dcgan", "default", 0, str(tmp_path / "run"))
    settings = {"dataset": "fashion_mnist", "budget_minutes": None, "epochs": 1, "device": "cpu", "overrides": [], "n": 10}
    lines = []
    assert bench._run_entry(entry, settings, None, lines.append, evaluate=None, write_eval=None) is None
    assert entry.status == "failed" and entry.error == f"training ended without writing {tmp_path / 'run' / 'summary.json'}"
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "summary.json").write_text("{")
    assert bench._run_entry(entry, settings, None, lines.append, evaluate=None, write_eval=None) is None
    assert entry.status == "failed" and "summary.json cannot be read" in entry.error and "failed:" in lines[-1]


def test_ctrl_c_while_scoring_says_how_to_continue(tmp_path, monkeypatch):
    import sys

    from ganzoo import bench

    def trained(entry, **kw):  # a training that finished: the entry's summary is written
        summary = Path(entry.run) / "summary.json"
        return [sys.executable, "-c", f"import pathlib; p = pathlib.Path({str(summary)!r}); "
                "p.parent.mkdir(parents=True); p.write_text('{\"steps\": 7}')"]

    def pressed(run, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "_train_command", trained)
    monkeypatch.setattr("ganzoo.evaluation.evaluate", pressed)
    with pytest.raises(TrainingInterrupted, match="stopped after step 7.*Run the same command again"):
        bench.run_bench(["dcgan"], epochs=1, out=tmp_path / "b", device="cpu", n=10)
    [entry] = json.loads((tmp_path / "b" / "bench.json").read_text())["entries"]
    assert entry["status"] == "interrupted" and "the run is trained and is scored next time" in entry["error"]


def test_the_settings_are_written_before_the_first_run_trains(tmp_path, monkeypatch):
    """A bench killed (SIGKILL, out of memory) in its first training still says what trained its runs."""
    from ganzoo import bench

    seen = []
    monkeypatch.setattr(bench, "_run_entry", lambda entry, settings, *a: seen.append(
        json.loads((tmp_path / "b" / "bench.json").read_text())["settings"]) or "SIGKILL")
    with pytest.raises(TrainingInterrupted):
        bench.run_bench(["dcgan"], epochs=3, out=tmp_path / "b", device="cpu", n=10)
    assert seen[0]["epochs"] == 3 and seen[0]["device"] == "cpu"


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="VmHWM is Linux's")
def test_a_run_started_by_a_big_process_reports_its_own_peak_memory():
    """ganzoo bench holds the feature network and 10,000 samples when it starts the next run; Linux
    hands the parent's resident size to a child's ru_maxrss across fork and exec."""
    import subprocess
    import sys

    ballast = b"\x01" * (1500 << 20)  # 1.5 GB resident in this (the parent) process
    child = subprocess.run([sys.executable, "-c", "import torch; from ganzoo.trainer import peak_memory; "
                            "print(peak_memory(torch.device('cpu'))['peak_rss_mb'])"],
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    assert float(child.stdout) < 1200, (len(ballast), child.stdout)


_BOARD = {
    "settings": {"dataset": "fashion_mnist", "budget_minutes": None, "epochs": 10},
    "leaderboard": [
        {"rank": 1, "model": "cgan", "recipe": "default", "loss": "nonsaturating", "fid": 20.76, "fid_spread": 0.0,
         "classes_covered": 10.0, "images_per_s": 283.6, "train_minutes": 35.21, "peak_memory_mb": 960.6,
         "floor_fid": 0.81},
        {"rank": 2, "model": "a-third-party-model-with-a-long-name", "recipe": "default", "loss": "nonsaturating",
         "fid": 248.4, "fid_spread": 12.25, "classes_covered": 9.5, "images_per_s": 4062.9, "train_minutes": 2.5,
         "peak_memory_mb": 820.2, "floor_fid": 0.81},
    ],
}
_CELLS = ("20.8±0.0", "248.4±12.2", "4,063", "35.2", "961", "820", "9.5")


def test_the_bench_table_keeps_every_number_whole_in_a_log_file(monkeypatch, capsys):
    # a long bench is run under nohup with its output in a file: rich would lay the table out at 80
    # columns and shrink cells to an ellipsis ("4,0…"); the whole table is printed instead
    monkeypatch.setattr("ganzoo.bench.run_bench", lambda *a, **k: _BOARD)
    monkeypatch.setenv("COLUMNS", "60")
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):  # rich would take the captured output for a terminal
        monkeypatch.delenv(name, raising=False)
    assert main(["bench", "--epochs", "10", "--out", "somewhere"]) == 0
    printed = capsys.readouterr().out
    assert "…" not in printed
    rows = [line for line in printed.splitlines() if "a-third-party-model-with-a-long-name" in line]
    assert len(rows) == 1, f"the long name was folded over lines:\n{printed}"
    assert all(cell in rows[0] for cell in ("248.4±12.2", "4,063", "2.5", "820", "9.5"))
    assert all(cell in printed for cell in _CELLS)


def test_the_bench_table_on_a_narrow_terminal_folds_names_not_numbers(monkeypatch):
    import io

    from rich.console import Console

    screen = io.StringIO()
    terminal = Console(file=screen, width=72, force_terminal=True, color_system=None, highlight=False, markup=False)
    monkeypatch.setattr("ganzoo.bench.run_bench", lambda *a, **k: _BOARD)
    monkeypatch.setattr("ganzoo.cli._console", lambda stderr=False, quiet=False: terminal)
    assert main(["bench", "--epochs", "10", "--out", "somewhere"]) == 0
    printed = screen.getvalue()
    assert max(map(len, printed.splitlines())) <= 72
    assert "…" not in printed and all(cell in printed for cell in _CELLS)


@pytest.mark.parametrize("to", ["the bench", "its process group"])  # kill -INT PID, or a terminal's Ctrl-C
def test_ctrl_c_stops_the_bench_with_the_run_saved_and_the_same_command_continues_it(to, data, tmp_path):
    """The training under way finishes its step and writes its checkpoint (it is not killed, and the
    bench does not go on to the next model); running the bench again continues that run."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "bench"
    argv = [sys.executable, "-m", "ganzoo", "bench", "dcgan", "sngan", "--epochs", "40", "--n", "30", "--data-dir",
            str(data), "--out", str(out), "--set", "model.width=4", "--set", "train.log_every=1", "--device", "cpu"]
    bench = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    run = out / "runs" / "dcgan-default-s0"
    deadline = time.monotonic() + 120
    while not ((run / "metrics.jsonl").is_file() and '"step"' in (run / "metrics.jsonl").read_text()):
        assert bench.poll() is None and time.monotonic() < deadline, bench.communicate()
        time.sleep(0.02)
    (os.kill if to == "the bench" else os.killpg)(bench.pid, signal.SIGINT)
    _, err = bench.communicate(timeout=120)
    err = " ".join(err.split())
    assert bench.returncode == 130, err
    assert "SIGINT received: dcgan (default recipe, seed 0) stopped after step" in err
    assert "its checkpoint saved" in err and "Run the same command again" in err
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted" and 0 < summary["steps"] < 40
    assert (run / "checkpoints" / "last.safetensors").is_file()
    assert not (out / "runs" / "sngan-default-s0").exists()  # the bench stopped; it did not go on
    [entry] = json.loads((out / "bench.json").read_text())["entries"]
    assert entry["status"] == "interrupted" and "stopped after step" in entry["error"]

    again = subprocess.run(argv[:5] + argv[6:], capture_output=True, text=True, timeout=300)  # dcgan alone now
    assert again.returncode == 0, again.stderr
    [entry] = json.loads((out / "bench.json").read_text())["entries"]
    assert entry["model"] == "dcgan" and entry["status"] == "done" and entry["summary"]["steps"] == 40
    assert entry["scores"]["fid"] > 0
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "event" not in r] == list(range(1, 41))  # no step trained twice, none lost
