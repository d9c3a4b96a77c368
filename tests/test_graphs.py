"""The step replayed from CUDA graphs (ganzoo.graphs): what can be checked without a GPU.

The capture itself needs CUDA (tests/test_cuda.py captures every model that declares it); here a
stand-in capture reruns the step on its static buffers when replayed, which checks everything
around the graph: one graph per kind of step, the warm-up, inputs copied in, fresh outputs, the
EMA's decay read from a tensor, and which runs may use graphs at all. The parts' promise is
checked with what a CPU can see (ganzoo.testing's rebound_state, host_reads and trace_capture).
"""

from __future__ import annotations

import json

import pytest
import torch

from conftest import make_trainer
from ganzoo.checkpoint import load_checkpoint
from ganzoo.cli import main
from ganzoo.errors import ConfigError
from ganzoo.graphs import GraphedStep, refusal, resolve
from ganzoo.step import update_ema


def rerun_capture(fn):
    """Like torch.cuda.graph: nothing runs at capture; each replay runs ``fn`` on the buffers it
    closed over and rewrites the same output tensors in place."""
    outputs: dict[str, torch.Tensor] = {}

    def replay() -> None:
        for name, value in fn().items():
            outputs.setdefault(name, torch.empty_like(value)).copy_(value)

    return replay, outputs


def _fit(tmp_path, tiny_data, name, *, graphed: bool, **train):
    trainer = make_trainer(tmp_path / name, tiny_data, "wgan-gp", width=4, **train)
    if graphed:
        trainer.parts.graphed = GraphedStep(trainer.parts.step, warmup=1, capture=rerun_capture)
    trainer.fit()
    return trainer, load_checkpoint(tmp_path / name / "checkpoints" / "last.safetensors")[0]


def test_a_replayed_run_trains_as_the_eager_run_does(tiny_data, tmp_path):
    """D-only and D+G steps, a lazy regularizer and the EMA's warm-up: 8 steps through graphs (the
    stand-in) give the weights of 8 eager steps; the EMA's tensor decay rounds differently, barely."""
    train = dict(max_steps=8, d_steps=2, ema_decay=0.9, regularizers=[{"name": "r1", "every": 4}])
    _, eager = _fit(tmp_path, tiny_data, "eager", graphed=False, **train)
    trainer, replayed = _fit(tmp_path, tiny_data, "graphed", graphed=True, **train)
    assert eager.keys() == replayed.keys()
    for key in eager:
        if key.startswith("generator_ema."):
            torch.testing.assert_close(replayed[key], eager[key], rtol=1e-5, atol=1e-6, msg=key)
        else:
            assert torch.equal(replayed[key], eager[key]), key
    graphed = trainer.parts.graphed
    # steps 0..7: G learns on odd steps, r1 is due on steps 0 and 4: three kinds of step, each
    # stepped once eagerly, then captured
    assert sorted(graphed.graphs) == sorted(graphed.eager_steps) == [
        (False, (False,), (24, 1, 28, 28), True), (False, (True,), (24, 1, 28, 28), True),
        (True, (False,), (24, 1, 28, 28), True)]  # (G updated, r1 due, batch shape, labels)
    assert set(graphed.eager_steps.values()) == {1}


def test_each_kind_of_step_has_its_own_graph_and_warm_up(tiny_data, tmp_path):
    trainer = make_trainer(tmp_path / "run", tiny_data, "dcgan", width=4, d_steps=3, max_steps=None)
    step = GraphedStep(trainer.parts.step, warmup=2, capture=rerun_capture)
    real = trainer.images[:24].float() / 127.5 - 1
    z = trainer.gan.generator.sample_latent(24)
    kinds = []
    for i in range(12):
        out = step(real, None, z, update_g=(i + 1) % 3 == 0, step=i, g_step=i // 3)
        kinds.append(len(step.graphs))
        assert ("g_loss" in out) == ((i + 1) % 3 == 0)
    # D-only steps (two of every three) are captured after two eager ones, D+G steps after theirs
    assert kinds == [0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2]
    half = step(real[:12], None, z[:12], update_g=False, step=12)  # a smaller batch: a kind of its own
    assert step.eager_steps[step.key(real[:12], None, update_g=False, step=12)] == 1
    assert set(half) == {"d_loss", "d_real", "d_fake"} and len(step.graphs) == 2


def test_replayed_outputs_are_fresh_tensors_and_inputs_are_copied_in(tiny_data, tmp_path):
    trainer = make_trainer(tmp_path / "run", tiny_data, "dcgan", width=4)
    step = GraphedStep(trainer.parts.step, warmup=0, capture=rerun_capture)
    real = trainer.images[:24].float() / 127.5 - 1
    z = trainer.gan.generator.sample_latent(24)
    first = step(real, None, z)
    kept = {k: v.clone() for k, v in first.items()}
    second = step(-real, None, torch.zeros_like(z))
    (_, outputs, inputs), = step.graphs.values()
    assert torch.equal(inputs[0], -real) and torch.equal(inputs[1], torch.zeros_like(z))
    assert all(torch.equal(first[k], kept[k]) for k in first)  # the next replay did not overwrite them
    assert all(second[k].data_ptr() != outputs[k].data_ptr() for k in second)


def test_the_emas_decay_as_a_tensor_is_the_decay_as_a_float():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    a, b = (torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3)) for _ in range(2))
    b.load_state_dict(a.state_dict())
    model(torch.randn(8, 4))  # running statistics to copy
    update_ema(a, model, 0.75)
    update_ema(b, model, torch.tensor(0.75))
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-7, msg=name)
    assert not torch.equal(a[0].weight, model[0].weight)


@pytest.mark.parametrize(("setting", "device", "kwargs", "expected"), [
    ("auto", "cpu", {}, "auto: off, it needs a CUDA device (this run is on cpu)"),
    ("auto", "cuda", {"precision": "fp16"}, "auto: off, fp16's loss scaling"),
    ("auto", "cuda", {"compile": True}, "auto: off, train.compile is on"),
    ("auto", "cuda", {"distributed": True}, "auto: off, it runs in one process only"),
    ("auto", "cuda", {"why_not": "loss 'x' does not declare"}, "auto: off, loss 'x' does not declare"),
    ("auto", "cuda", {}, "auto: on for CUDA"),
])
def test_auto_says_why_it_is_on_or_off(setting, device, kwargs, expected):
    args = {"precision": "bf16", "compile": False, "distributed": False, "why_not": None, **kwargs}
    on, reason = resolve(setting, device=torch.device(device), **args)
    assert on == (expected == "auto: on for CUDA") and reason.startswith(expected)


def test_true_where_graphs_cannot_work_is_refused_naming_why():
    with pytest.raises(ConfigError, match=r"train.cuda_graphs = true cannot be used: it needs a CUDA device"):
        resolve(True, device=torch.device("cpu"), precision="fp32", compile=False, distributed=False, why_not=None)
    assert resolve(False, device=torch.device("cuda"), precision="bf16", compile=False, distributed=False,
                   why_not=None) == (False, None)


def test_every_part_of_the_step_must_declare_it():
    import ganzoo

    dcgan, infogan = (ganzoo.create_model(m, image_shape=(1, 28, 28)) for m in ("dcgan", "infogan"))
    loss = ganzoo.create_loss("nonsaturating")
    assert refusal(dcgan, loss, [], [], model="dcgan", loss_name="nonsaturating") is None
    assert "model 'infogan' does not declare" in refusal(infogan, loss, [], [], model="infogan", loss_name="nonsaturating")
    ada, lecam = ganzoo.create_augmentation("ada"), ganzoo.create_regularizer("lecam")
    r1, diffaugment = ganzoo.create_regularizer("r1"), ganzoo.create_augmentation("diffaugment")
    assert refusal(dcgan, loss, [("r1", r1)], [("diffaugment", diffaugment)], model="dcgan", loss_name="nonsaturating") is None
    # ADA and LeCam keep their state by rebinding attributes: a replayed graph would not advance it
    assert "augmentation 'ada' does not declare" in refusal(dcgan, loss, [], [("ada", ada)], model="dcgan",
                                                            loss_name="nonsaturating")
    assert "regularizer 'lecam' does not declare" in refusal(dcgan, loss, [("lecam", lecam)], [], model="dcgan",
                                                             loss_name="nonsaturating")


def test_a_cpu_run_says_why_it_does_not_use_graphs_and_refuses_true(tiny_data, tmp_path, capsys):
    common = ["train", "dcgan", "--data-dir", str(tiny_data), "--max-steps", "2", "--set", "model.width=4",
              "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["cuda_graphs"] is False
    assert summary["auto"]["cuda_graphs"] == "auto: off, it needs a CUDA device (this run is on cpu)"
    capsys.readouterr()
    assert main([*common, "--set", "train.cuda_graphs=true", "--out", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert "error: train.cuda_graphs = true cannot be used: it needs a CUDA device" in err
    assert "Traceback" not in err and not (tmp_path / "refused").exists()


def test_the_run_header_says_whether_steps_replay_from_graphs_and_if_not_why():
    from ganzoo.progress import RichProgress

    def header(device, on, why=None):
        return RichProgress._graphs({"device": device, "cuda_graphs": on,
                                        "auto": {"cuda_graphs": why} if why else {}})

    assert header("cuda:0", True, "auto: on for CUDA, every part ...") == ", steps replayed from CUDA graphs"
    assert header("cuda:0", False, "auto: off, augmentation 'ada' does not declare that it can be captured") == \
        ", steps not graphed (augmentation 'ada' does not declare that it can be captured)"
    assert header("cpu", False, "auto: off, it needs a CUDA device (this run is on cpu)") == ""  # nothing to say
    assert header("cuda:0", False) == ""  # train.cuda_graphs = false: the user's own choice


def test_a_step_that_cannot_be_captured_says_what_to_do(tiny_data, tmp_path):
    from ganzoo.errors import PluginError

    def failing_capture(fn):
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing\nmore detail")

    trainer = make_trainer(tmp_path / "run", tiny_data, "dcgan", width=4)
    step = GraphedStep(trainer.parts.step, warmup=1, capture=failing_capture)
    real = trainer.images[:24].float() / 127.5 - 1
    z = trainer.gan.generator.sample_latent(24)
    step(real, None, z)  # the eager warm-up
    with pytest.raises(PluginError) as caught:
        step(real, None, z, step=1)
    message = str(caught.value)
    assert "capturing the training step in a CUDA graph failed" in message
    assert "operation not permitted when stream is capturing." in message and "more detail" not in message
    assert "--set train.cuda_graphs=false" in message


def _declared(kind: str) -> list[str]:
    import ganzoo

    names = {"loss": ganzoo.list_losses, "regularizer": ganzoo.list_regularizers,
             "augmentation": ganzoo.list_augmentations}[kind]()
    create = {"loss": ganzoo.create_loss, "regularizer": ganzoo.create_regularizer,
              "augmentation": ganzoo.create_augmentation}[kind]
    return [name for name in names if create(name).cuda_graphs]


@pytest.mark.parametrize(("kind", "name", "declared"), [
    *((kind, name, True) for kind in ("loss", "regularizer", "augmentation") for name in _declared(kind)),
    ("regularizer", "lecam", False), ("augmentation", "ada", False)])
def test_what_declares_cuda_graphs_keeps_its_state_in_place_and_what_does_not_is_caught(tiny_data, tmp_path,
                                                                                           kind, name, declared):
    """A replayed graph reads the tensors its capture saw: state rebound per call (LeCam's averages,
    ADA's p) would stay behind. ganzoo.testing.rebound_state finds it on the CPU."""
    from ganzoo.testing import rebound_state

    train = {"regularizers": [name]} if kind == "regularizer" else {"augmentations": [name]} if kind == "augmentation" else {}
    trainer = make_trainer(tmp_path / "run", tiny_data, "wgan-gp", **train)
    if kind == "loss":
        import ganzoo

        trainer.parts.step.loss = ganzoo.create_loss(name)
    m = trainer.parts.step
    part = m.loss if kind == "loss" else dict(m.regularizers if kind == "regularizer" else m.augmentations)[name]
    assert part.cuda_graphs is declared
    real = trainer.images[:24].float() / 127.5 - 1
    rebound = rebound_state({name: part, "model": trainer.gan},
                            lambda: [trainer.train_step(real, None) for _ in range(2)])
    assert (rebound == []) is declared, rebound


def test_begans_loss_rebinds_k_which_is_why_it_does_not_declare_cuda_graphs():
    import ganzoo
    from ganzoo.testing import rebound_state

    loss, gan = ganzoo.create_loss("began"), ganzoo.create_model("began", image_shape=(1, 28, 28))
    real, fake = torch.rand(8), torch.rand(8)

    def step():
        loss.discriminator_loss(real, fake)
        loss.after_discriminator_update(gan.discriminator, real, fake)

    assert rebound_state({"loss": loss}, step) == ["loss.k"]
    assert not loss.cuda_graphs and not gan.cuda_graphs


@pytest.mark.parametrize(("kind", "name"), [(kind, name) for kind in ("loss", "regularizer", "augmentation")
                                            for name in _declared(kind)])
def test_what_declares_cuda_graphs_reads_nothing_back_and_replays_as_eagerly(kind, name):
    """What a CPU can check of the parts' promise (the models' is the conformance suite's): a step
    with the part reads no value back and makes nothing off the device (host_reads), and a recorded
    trace of it replays as the step runs eagerly (trace_capture standing in for the CUDA graph)."""
    import ganzoo
    from ganzoo.step import train_step
    from ganzoo.testing import _step_modules, build, check_cuda_graph_step, host_reads

    loss = name if kind == "loss" else "nonsaturating"
    parts = {"regularizers": [(name, ganzoo.create_regularizer(name))]} if kind == "regularizer" else \
        {"augmentations": [(name, ganzoo.create_augmentation(name))]} if kind == "augmentation" else {}
    torch.manual_seed(0)
    gan = build("dcgan", (1, 28, 28))
    m = _step_modules(gan, loss, lambda params: torch.optim.SGD(params, lr=0.05), device_type="cpu", **parts)
    real, z = torch.rand(3, 8, 1, 28, 28) * 2 - 1, gan.generator.sample_latent(16).reshape(2, 8, -1)
    train_step(m, real[0], None, z[0], step=0)  # state made lazily is made before the watch
    assert host_reads(lambda: train_step(m, real[1], None, z[1], step=1)) == []
    check_cuda_graph_step(build("dcgan", (1, 28, 28)), loss, device="cpu", **parts)


def test_host_reads_names_each_thing_a_graph_cannot_capture_with_its_line():
    import random

    import torch.nn.functional as F

    from ganzoo.testing import host_reads

    x = torch.randn(8, requires_grad=True)
    y = torch.arange(8) % 3

    def step():
        (x * 2).relu().sum().backward()
        if x.sum() > 0:  # line +2
            pass
        n = int(x.argmax())  # line +4
        x[x > 0].sum()  # line +5
        torch.nonzero(x)  # line +6
        torch.rand(()) < 0.5  # line +7
        torch.arange(4), x.detach().tolist()  # line +8
        random.random()  # line +9
        x.new_tensor([1.0, 2.0]), torch.tensor([3.0], device=x.device)  # line +10
        masked = x.detach().clone()
        masked[masked > 0] = masked.mean()  # line +12
        torch.randn(2, generator=torch.Generator().manual_seed(0), device=x.device)  # line +13
        return n

    first, original = step.__code__.co_firstlineno, random.random
    found = host_reads(step)
    at = f"at {__file__}:{{}} in step: "
    assert found == [
        f"reads a value back to the host (.item(), `if tensor:`, int(t), float(t)), {at.format(first + 2)}"
        "if x.sum() > 0:  # line +2",
        f"reads a value back to the host (.item(), `if tensor:`, int(t), float(t)), {at.format(first + 4)}"
        "n = int(x.argmax())  # line +4",
        f"makes a tensor whose shape depends on the data (a boolean mask as an index), {at.format(first + 5)}"
        "x[x > 0].sum()  # line +5",
        f"makes a tensor whose shape depends on the data (nonzero), {at.format(first + 6)}torch.nonzero(x)  # line +6",
        "draws random numbers without a device (torch.rand): on a GPU it is made on the host, outside the graph, so "
        f"every replay reuses what the capture made (pass device=, or use *_like / x.new_*), {at.format(first + 7)}"
        "torch.rand(()) < 0.5  # line +7",
        "builds a tensor without a device (torch.arange): on a GPU it is made on the host, outside the graph, so "
        f"every replay reuses what the capture made (pass device=, or use *_like / x.new_*), {at.format(first + 8)}"
        "torch.arange(4), x.detach().tolist()  # line +8",
        "copies a tensor to the host (.tolist()): on a GPU it waits for the device, and a capture refuses it, "
        f"{at.format(first + 8)}torch.arange(4), x.detach().tolist()  # line +8",
        "draws from Python's random module (random.random): a replayed graph repeats the capture's draw (draw on the "
        f"device with torch), {at.format(first + 9)}random.random()  # line +9",
        *(f"copies Python data to the device ({call}): a capture refuses the copy, or replays it from memory freed "
          "since; use a Python number, torch.full((), c, device=...), x.new_full(...), or a buffer made in __init__, "
          f"{at.format(first + 10)}x.new_tensor([1.0, 2.0]), torch.tensor([3.0], device=x.device)  # line +10"
          for call in ("x.new_tensor", "torch.tensor")),
        "makes a tensor whose shape depends on the data (a tensor assigned through a boolean mask: on a GPU it is "
        f"indexed by nonzero; assign a Python number, or use torch.where), {at.format(first + 12)}"
        "masked[masked > 0] = masked.mean()  # line +12",
        "draws with a generator of its own (torch.randn(generator=...)): a CUDA graph replays only the default "
        f"generator's draws, {at.format(first + 13)}"
        "torch.randn(2, generator=torch.Generator().manual_seed(0), device=x.device)  # line +13"], found
    assert random.random is original  # put back

    def fine():  # what a GPU does without a read: one_hot with the class count, a scalar through a mask
        (x * 3).sum().backward()
        F.one_hot(y, 3)
        masked = x.detach().clone()
        masked[masked > 0] = 0.0
        torch.rand(3, out=torch.empty(3, device=x.device)), torch.randn_like(x), x.new_zeros(2), x.to(x.device)
        torch.zeros(()), torch.tensor(0.5), torch.full((), 2.0)  # CPU scalars: captured as constants

    assert host_reads(fine) == []


def test_a_lazy_regularizer_is_checked_on_the_steps_it_is_due():
    """The check steps at 0, L, 2L (L a multiple of every lazy period), so that the step it
    measures is a replay of the kind of step in which the regularizer applies."""
    import ganzoo
    from ganzoo.testing import build, check_cuda_graph_step

    for every in (2, 4):
        check_cuda_graph_step(build("dcgan", (1, 28, 28)), "nonsaturating", device="cpu",
                              regularizers=[("r1", ganzoo.create_regularizer("r1", every=every))])


def test_the_graphs_benchmark_without_a_gpu_runs_the_cpu_checks_and_says_which_fail():
    """`python benchmarks/bench_cuda_graphs.py MODEL` tells a plugin author without a GPU what the
    CPU can: BEGAN's loss rebinds k_t; dcgan passes all three."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_cuda_graphs.py"
    result = subprocess.run([sys.executable, str(script), "began", "dcgan", "--json"], capture_output=True, text=True,
                            timeout=300, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {row["model"]: row for row in json.loads(result.stdout)}
    assert rows["began"]["keeps_state_in_place"] is False and "loss.k" in rows["began"]["why"]
    assert rows["began"]["declared"] is False and rows["dcgan"]["declared"] is True
    assert all(rows["dcgan"][check] for check in ("reads_nothing_back", "keeps_state_in_place", "replays_as_eagerly"))
