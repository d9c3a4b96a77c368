"""Keeping freed memory between steps (ganzoo.malloc, train.reuse_memory)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from conftest import make_trainer


# --- keeping freed memory -------------------------------------------------------------------------

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc settings")
def test_reuse_memory_stops_the_page_faults_of_every_step(tiny_data, tmp_path):
    script = textwrap.dedent("""
        import resource, sys, torch
        from pathlib import Path
        from ganzoo.config import resolve_config
        from ganzoo.data import to_unit_range
        from ganzoo.rundir import RunDir
        from ganzoo.trainer import Trainer
        raw = {"model": {"name": "dcgan", "width": 64},
               "data": {"name": "fashion_mnist", "root": sys.argv[1], "download": False},
               "train": {"batch_size": 96, "precision": "fp32", "reuse_memory": sys.argv[2] == "on"}}
        trainer = Trainer(resolve_config(raw), RunDir(Path(sys.argv[3])), plugin_events=False)
        real = to_unit_range(trainer.images[:96])
        for _ in range(4):
            trainer.train_step(real, None)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(6):
            trainer.train_step(real, None)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)
    faults = {mode: int(subprocess.run([sys.executable, "-c", script, str(tiny_data), mode, str(tmp_path / mode)],
                                       capture_output=True, text=True, check=True).stdout.strip())
              for mode in ("off", "on")}
    assert faults["off"] > 6000, faults  # glibc returns the step's big tensors and faults them in again
    # measured over the six steps: 21,000-72,000 faults without; 0-2,200 with
    assert faults["on"] * 5 < faults["off"], faults


def test_the_trainer_reports_reuse_memory(tmp_path, tiny_data):
    trainer = make_trainer(tmp_path / "a", tiny_data, "dcgan", reuse_memory=False)
    assert trainer.summary()["reuse_memory"] is False
    trainer = make_trainer(tmp_path / "b", tiny_data, "dcgan")
    assert trainer.summary()["reuse_memory"] is sys.platform.startswith("linux")
