"""Scores, pictures, compare and report."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import make_mnist_like
from ganzoo.cli import main
from ganzoo.data import load_images
from ganzoo.evaluation import FeatureNet, _scores, coverage_summary, feature_net


@pytest.fixture(scope="module")
def scored_run(tmp_path_factory):
    """A dcgan run on a tiny dataset with a test split, scored during training and by `ganzoo eval`
    (so that a test of compare or report does not depend on an eval test having run before it)."""
    import os

    base = tmp_path_factory.mktemp("eval")
    os.environ["GANZOO_CACHE_DIR"] = str(base / "cache")
    data = make_mnist_like(base / "data", n=160)
    make_mnist_like(data, n=80, train=False)
    run = base / "run"
    code = main(["train", "dcgan", "--data-dir", str(data), "--epochs", "2", "--batch-size", "32", "--set",
                 "model.width=4", "--eval-every", "1", "--set", "train.eval_n=60", "--out", str(run)])
    assert code == 0
    assert main(["eval", str(run), "--n", "60"]) == 0
    yield run, data, base
    os.environ.pop("GANZOO_CACHE_DIR", None)


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    # with an identity feature map, FID between two Gaussian samples approaches ||mu1 - mu2||^2 + trace term
    class Identity(torch.nn.Module):
        num_features = 4

        def forward(self, x):
            return x.flatten(1)  # the images reach the network as given (normalize=False)

    torch.manual_seed(0)
    a = torch.randn(20000, 1, 2, 2)
    b = torch.randn(20000, 1, 2, 2) * 2 + 0.5  # mean shift 0.5, std 2
    scores = _scores(Identity(), a, b, seed=0)
    # ||mu||^2 = 4 * 0.25 = 1; trace(S1 + S2 - 2 sqrt(S1 S2)) = 4 * (1 + 4 - 2 * 2) = 4
    assert scores["fid"] == pytest.approx(5.0, rel=0.05)
    same = _scores(Identity(), a[:10000], a[10000:], seed=0)
    assert same["fid"] < 0.01 and abs(same["kid"]) < 0.01


def test_coverage_summary():
    assert coverage_summary([0.1] * 10) == {"classes_covered": 10, "coverage_entropy": 1.0}
    collapsed = coverage_summary([1.0] + [0.0] * 9)
    assert collapsed["classes_covered"] == 1 and collapsed["coverage_entropy"] == 0.0


def test_feature_network_is_trained_once_cached_and_deterministic(scored_run):
    run, data, base = scored_run
    cached = list((base / "cache" / "features").glob("*.safetensors"))
    assert len(cached) == 1
    splits = [load_images("fashion_mnist", data, train=train, download=False) for train in (True, False)]
    net, info = feature_net("fashion_mnist", *splits)
    assert isinstance(net, FeatureNet) and info["test_accuracy"] > 0.9 and info["epochs"] == 3
    cached[0].rename(cached[0].with_suffix(".bak"))  # train again: the same weights come out
    net2, _ = feature_net("fashion_mnist", *splits)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), net2.state_dict().values()))


def test_scoring_seeds_the_cpu_only_and_leaves_the_gpus_random_stream_alone(scored_run, monkeypatch):
    """During training on a GPU, an evaluation used to reseed CUDA's generator to the run's seed
    (torch.manual_seed seeds every device): dropout and augmentation then repeated their draws."""
    run, data, base = scored_run
    seeded = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: seeded.append(seed))
    cached = next((base / "cache" / "features").glob("*.safetensors"))
    cached.rename(cached.with_suffix(".bak"))  # the feature network trains again, seeded
    try:
        splits = [load_images("fashion_mnist", data, train=train, download=False) for train in (True, False)]
        net, _ = feature_net("fashion_mnist", *splits)
        state = torch.random.get_rng_state()
        images = splits[1].images.float() / 127.5 - 1
        _scores(net, images[:20], images[20:40], seed=5)
    finally:
        for extra in (base / "cache" / "features").glob("*.safetensors"):
            extra.unlink()
        cached.with_suffix(".bak").rename(cached)
    assert seeded == [] and torch.equal(torch.random.get_rng_state(), state)


def test_eval_during_training_logs_scores_and_keeps_the_best(scored_run):
    run, _, _ = scored_run
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in lines if r.get("event") == "eval"]
    assert [r["epoch"] for r in evals] == [1, 2]
    assert all(r["fid"] > 0 and "floor_fid" in r for r in evals)
    assert (run / "checkpoints" / "best.safetensors").is_file()
    assert (run / "loss.png").is_file()
    with Image.open(run / "progress.gif") as gif:
        assert gif.n_frames == 3  # epochs 0, 1, 2


def test_eval_command_reports_scores_floor_and_coverage(scored_run, capsys):
    run, _, _ = scored_run
    capsys.readouterr()
    assert main(["eval", str(run), "--n", "60", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 60 and result["fid"] > result["floor"]["fid"]
    assert len(result["class_shares"]) == 10 and abs(sum(result["class_shares"]) - 1) < 1e-3
    assert 0 <= result["coverage_entropy"] <= 1
    assert json.loads((run / "eval.json").read_text())["fid"] == result["fid"]
    assert main(["eval", str(run), "--n", "60"]) == 0
    out = capsys.readouterr().out
    assert "real-vs-real floor" in out and "test accuracy" in out


class _LookupGenerator(torch.nn.Module):
    """A 'conditional generator' that returns a real test image of the class asked for (or of
    class 0 whatever is asked, with obey=False)."""

    def __init__(self, images, labels, obey):
        super().__init__()
        self.num_classes, self.latent_dim, self.obey = 10, 2, obey
        self.register_buffer("by_class", torch.stack([images[labels == k][0] for k in range(10)]))
        self.scale = torch.nn.Parameter(torch.ones(()))

    def sample_latent(self, n, generator=None, device=None):
        return torch.randn(n, self.latent_dim, generator=generator)

    def forward(self, z, y):
        picked = self.by_class[y if self.obey else torch.zeros_like(y)]
        return (picked.float() / 127.5 - 1) * self.scale


def test_eval_scores_class_accuracy_of_conditional_generators(scored_run):
    from ganzoo.evaluation import evaluate

    run, data, _ = scored_run
    images, labels, _ = load_images("fashion_mnist", str(data), train=False, download=False)
    meta = {"model": "lookup", "config": {"data": {"name": "fashion_mnist", "root": str(data), "download": False}}}
    obeys = evaluate(run, n=60, generator=_LookupGenerator(images, labels, True), meta=meta)
    ignores = evaluate(run, n=60, generator=_LookupGenerator(images, labels, False), meta=meta)
    assert obeys["class_accuracy"] > 0.9  # the feature network recognises every asked-for class
    assert ignores["class_accuracy"] == pytest.approx(0.1, abs=0.02)  # only the 1 in 10 that asked for 0
    assert ignores["classes_covered"] == 1
    unconditional = evaluate(run, n=60)  # the run's own dcgan: no labels asked for, no class accuracy
    assert "class_accuracy" not in unconditional and unconditional["classes_covered"] >= 1


def test_inception_fid_without_weights_says_what_to_fetch(scored_run, capsys, monkeypatch, tmp_path):
    run, _, _ = scored_run
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def scored(*args, **kwargs):
        raise AssertionError("the run was scored before the Inception check")

    monkeypatch.setattr("ganzoo.evaluation.evaluate", scored)  # the check comes before minutes of scoring
    capsys.readouterr()
    code = main(["eval", str(run), "--n", "60", "--inception"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert ("weights-inception-2015-12-05-6726825d.pth" in err and "github.com/toshas/torch-fidelity" in err) \
        or "pip install 'ganzoo[inception]'" in err


def test_eval_of_a_run_it_cannot_write_to_still_prints_the_scores(scored_run, capsys, monkeypatch):
    run, _, _ = scored_run

    def read_only(run_dir, result):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("ganzoo.evaluation.write_eval", read_only)
    capsys.readouterr()
    assert main(["eval", str(run), "--n", "60", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["fid"] > 0
    assert f"could not write {run / 'eval.json'}: Permission denied" in " ".join(err.split())
    assert main(["eval", str(run), "--n", "60"]) == 0  # the table does not claim it was written
    out, err = capsys.readouterr()
    assert "FID" in out and "written to" not in out and "could not write" in err


def test_sample_writes_png_folders_and_interpolation_gifs(scored_run, tmp_path, capsys):
    run, _, _ = scored_run
    assert main(["sample", str(run), "--n", "3", "--out", str(tmp_path / "pngs") + "/"]) == 0
    capsys.readouterr()  # again into the same folder: two sets of samples would mix
    assert main(["sample", str(run), "--n", "2", "--seed", "1", "--out", str(tmp_path / "pngs")]) == 2
    assert "already holds samples (000000.png ... 000002.png)" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(SystemExit) as stop:  # argparse's exit: 2 and the usage
        main(["sample", str(run), "--seed", str(2**32)])  # torch would overflow on it
    assert stop.value.code == 2 and "must be from 0 to 4294967295" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    assert main(["sample", str(run), "--out", str(tmp_path / "walk.gif")]) == 0
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames == 46 and gif.size == (2 * (4 * 30 + 2), 2 * (4 * 30 + 2))
    capsys.readouterr()
    assert main(["sample", str(run), "--out", str(tmp_path / "x.jpg")]) == 2


def test_compare_lists_runs_with_their_scores(scored_run, capsys):
    run, _, _ = scored_run
    capsys.readouterr()
    assert main(["compare", str(run), str(run), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and rows[0]["config"]["model"]["name"] == "dcgan" and "fid" in rows[0]["eval"]
    assert main(["compare", str(run)]) == 0
    assert main(["compare", str(run.parent / "nope")]) == 2


@pytest.mark.parametrize("damage", ["", '{"steps": 3', "[1, 2]"])
def test_a_damaged_summary_or_eval_file_is_named_not_a_traceback(damage, scored_run, tmp_path, capsys):
    run, _, _ = scored_run
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    for name in ("summary.json", "eval.json"):
        (copy / name).write_text(damage)
        capsys.readouterr()
        assert main(["compare", str(copy)]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"{copy / name}" in err and "move it away" in err and "Traceback" not in err
        assert main(["report", str(copy), "--out", str(tmp_path / "r.html")]) == 2
        shutil.copy(run / name, copy / name)
    assert main(["compare", str(copy)]) == 0


def test_report_is_self_contained(scored_run, tmp_path, capsys):
    run, _, _ = scored_run
    out = tmp_path / "report.html"
    assert main(["report", str(run), str(run), "--out", str(out)]) == 0
    page = out.read_text()
    assert page.count("<section>") == 2 and "data:image/png;base64," in page and "<svg" in page
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
IMAGE_CHECK = """
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-broken-images', bad);
});
"""


@pytest.mark.skipif(not CHROMIUM, reason="Chromium is not installed (apt-get install chromium); CI installs it")
def test_report_renders_in_a_real_browser(scored_run, tmp_path):
    run, _, _ = scored_run
    out = tmp_path / "report.html"
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert "<script" not in out.read_text()  # a report ships no script; this test brings its own
    out.write_text(out.read_text().replace("</body>", f"<script>{IMAGE_CHECK}</script></body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", out.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-broken-images="0"' in dom.stdout
    images = int(dom.stdout.split('data-images="')[1].split('"')[0])
    assert images >= 4  # final samples + one grid per epoch (0, 1, 2)
    console_errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "error" in line.lower()]
    assert not console_errors, console_errors
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1200,1400", f"--screenshot={shot}", out.as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as img:
        pixels = np.asarray(img.convert("L"))
    assert pixels.std() > 10  # not a blank page


@pytest.mark.parametrize("columns", [80, 120, 200])
def test_compare_reads_at_any_terminal_width(scored_run, columns, monkeypatch):
    import io

    from rich.console import Console

    run, _, _ = scored_run
    screen = io.StringIO()
    terminal = Console(file=screen, width=columns, force_terminal=True, color_system=None, highlight=False,
                       markup=False, soft_wrap=True)  # as ganzoo.cli._console's: a long line is not re-wrapped
    monkeypatch.setattr("ganzoo.cli._console", lambda stderr=False, quiet=False: terminal)
    assert main(["compare", str(run), str(run)]) == 0
    out = screen.getvalue()
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= columns
    assert "…" not in out  # no cell cut short
    rows = [line for line in lines if " dcgan " in f" {line} "]
    assert len(rows) == 2 and rows[0].split()[:3] == [run.name, "dcgan", "nonsaturating"]  # one line a run
    header = next(line for line in lines if line.split()[:2] == ["run", "model"]).split()
    if columns < 120:
        assert "real-vs-real floor FID" in out and "KID" not in header  # the essentials, and where the rest is
    else:
        assert "KID" in header and "img/s" in header


def test_compare_in_a_file_has_every_column_whatever_the_width(scored_run, monkeypatch, capsys):
    # `ganzoo compare runs/* > table.txt`: a file has no width to keep, so nothing is left out or folded
    run, _, _ = scored_run
    monkeypatch.setenv("COLUMNS", "60")
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):  # rich would take the captured output for a terminal
        monkeypatch.delenv(name, raising=False)
    capsys.readouterr()
    assert main(["compare", str(run), str(run)]) == 0
    out = capsys.readouterr().out
    assert "…" not in out and "real-vs-real floor FID" not in out  # no "see a wider terminal" hint
    header = next(line for line in out.splitlines() if line.split()[:2] == ["run", "model"])
    assert header.split() == ["run", "model", "loss", "dataset", "epochs", "min", "img/s", "FID", "KID", "floor",
                              "classes"]
    rows = [line for line in out.splitlines() if " dcgan " in f" {line} "]
    assert len(rows) == 2 and rows[0].split()[:4] == [run.name, "dcgan", "nonsaturating", "fashion_mnist"]
    assert len(rows[0].split()) == 11  # every cell of a run on its one line


def test_report_and_compare_do_not_import_torch(scored_run, tmp_path):
    import subprocess
    import sys

    run, _, _ = scored_run
    probe = (
        "import sys, contextlib, io\n"
        "from ganzoo.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['compare', {str(run)!r}]) == 0\n"
        f"    assert main(['report', {str(run)!r}, '--out', {str(tmp_path / 'r.html')!r}]) == 0\n"
        "print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def _one_step_run(tmp_path):
    """A dcgan run of one step on 64 training and 32 test images."""
    data = make_mnist_like(tmp_path / "data", n=64)
    make_mnist_like(data, n=32, train=False)
    run = tmp_path / "run"
    assert main(["train", "dcgan", "--data-dir", str(data), "--max-steps", "1", "--set", "model.width=4",
                 "--out", str(run)]) == 0
    return run


def test_the_first_eval_announces_the_feature_network_and_shows_progress(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GANZOO_CACHE_DIR", str(tmp_path / "fresh-cache"))
    run = _one_step_run(tmp_path)
    capsys.readouterr()
    assert main(["eval", str(run), "--n", "30"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "training the feature network for fashion_mnist once (3 epochs over 64 images" in err
    assert "fresh-cache" in err
    assert main(["eval", str(run), "--n", "30"]) == 0
    assert "training the feature network" not in capsys.readouterr().err  # cached: said only once


def test_inception_fid_scores_uint8_images_as_the_published_protocols_do(scored_run, monkeypatch):
    """The test images as stored and the fakes rounded as a PNG holds them (not truncated), three channels."""
    from ganzoo.data import to_uint8
    from ganzoo.evaluation import inception_fid
    from ganzoo.sampling import generate, load_generator

    run, data, _ = scored_run
    seen = []

    class Recorder:
        def __init__(self, feature, normalize):
            assert feature == 2048 and normalize is False

        def update(self, images, real):
            seen.append((real, images.clone()))

        def compute(self):
            return torch.tensor(1.5)

    monkeypatch.setattr("ganzoo.evaluation.check_inception", lambda: None)
    monkeypatch.setattr("torchmetrics.image.fid.FrechetInceptionDistance", Recorder)
    assert inception_fid(run, n=60) == 1.5
    reals = torch.cat([x for real, x in seen if real])
    fakes = torch.cat([x for real, x in seen if not real])
    assert reals.dtype == fakes.dtype == torch.uint8 and reals.shape == fakes.shape == (60, 3, 28, 28)
    assert torch.equal(reals, load_images("fashion_mnist", data, train=False, download=False).images[:60].expand(-1, 3, -1, -1))
    generator, _ = load_generator(run)
    assert torch.equal(fakes, to_uint8(generate(generator, 60, seed=0)).expand(-1, 3, -1, -1))


def test_a_cache_it_cannot_write_costs_a_warning_not_the_scores(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("")
    monkeypatch.setenv("GANZOO_CACHE_DIR", str(blocker))
    run = _one_step_run(tmp_path)
    capsys.readouterr()
    assert main(["eval", str(run), "--n", "30", "--json"]) == 0
    out, err = capsys.readouterr()
    assert "fid" in json.loads(out)
    err = " ".join(err.split())
    assert "warning: could not cache the feature network" in err and "GANZOO_CACHE_DIR" in err
