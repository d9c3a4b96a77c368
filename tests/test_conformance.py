"""Every model in the zoo passes the conformance checks plugin authors run (ganzoo.testing)."""

from __future__ import annotations

import os
import subprocess
import sys

import ganzoo
from ganzoo.testing import conformance

TestBuiltinModels = conformance(*ganzoo.list_models())


def test_the_suite_runs_from_the_command_line_for_a_named_model(tmp_path):
    """`pytest --ganzoo-conformance NAME`, with no test file, as a plugin's CI would run it."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "--ganzoo-conformance", "vanilla", "-k", "registration or shapes"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "4 passed" in result.stdout  # metadata, two shapes, no torch at registration


def test_a_model_that_is_not_registered_fails_the_collection_once_with_the_nearest_names(tmp_path):
    """A typo, or a plugin not installed where the suite runs: one clear error, not 17 tracebacks."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "--ganzoo-conformance", "dcgna"], capture_output=True, text=True, cwd=tmp_path,
                            timeout=300)
    out = result.stdout
    assert result.returncode == 2 and "1 error" in out and "passed" not in out, out[-3000:]
    assert "ganzoo conformance: unknown model 'dcgna'; did you mean 'dcgan'?" in out, out[-3000:]
    assert "Traceback" not in out and "registry.py" not in out, out[-3000:]


def test_the_option_keeps_the_users_own_arguments_and_addopts_adds_nothing(tmp_path):
    (tmp_path / "test_own.py").write_text("def test_own():\n    assert True\n")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)

    both = run("test_own.py", "--ganzoo-conformance", "vanilla", "-k", "own or registration")
    assert both.returncode == 0 and "3 passed" in both.stdout, both.stdout[-3000:]  # own + two registration checks
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --ganzoo-conformance vanilla\n")
    bare = run()  # the option in addopts: a bare run still collects the project's tests, not the suite
    assert bare.returncode == 0 and "1 passed" in bare.stdout, bare.stdout[-3000:]


def test_a_failing_check_says_what_to_fix(tmp_path):
    plugin = tmp_path / "test_bad_plugin.py"
    plugin.write_text('''
import torch
from torch import nn

import ganzoo
from ganzoo import hookimpl
from ganzoo.interfaces import GAN, Discriminator, Generator
from ganzoo.testing import conformance


class G(Generator):
    def __init__(self, image_shape):
        super().__init__(8, image_shape)
        self.net = nn.Linear(8, 1)
        self.unused = nn.Linear(3, 3)   # a layer that takes no part

    def forward(self, z, y=None):
        return self.net(z).view(-1, 1, 1, 1).expand(-1, *self.image_shape) * 3   # leaves [-1, 1]


class D(Discriminator):
    def __init__(self, image_shape):
        super().__init__(image_shape)
        self.net = nn.Linear(1, 1)

    def forward(self, x, y=None):
        return self.net(x.mean((1, 2, 3))[:, None]).squeeze(1)


def lonely(o, *, image_shape, num_classes=None):
    gan = GAN(G(image_shape), D(image_shape))
    gan.trains_with = ("no-such-loss",)   # a loss nobody registered
    return gan


class Plugin:
    @hookimpl
    def register_models(self, register):
        register("bad", lambda o, *, image_shape, num_classes=None: GAN(G(image_shape), D(image_shape)),
                 description="a model with two mistakes")
        register("lonely", lonely, description="a model that names a loss nobody registered")


ganzoo.add_plugin(Plugin(), name="bad")
TestBad = conformance("bad")
TestLonely = conformance("lonely")
''')
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(plugin),
                             "-k", "Bad and (shapes or learns and nonsaturating) or Lonely and few_cpu_steps"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    out = result.stdout
    assert result.returncode == 1, out[-3000:]
    assert "G's images leave [-1, 1] (end G in tanh)" in out and "What to fix:" in out
    assert "G's parameters without a gradient under nonsaturating: ['unused.weight', 'unused.bias']" in out
    assert "model 'lonely' trains with no registered loss: check the names in its GAN's trains_with attribute" in out


def test_naming_no_model_fails_instead_of_skipping_every_check(tmp_path):
    """`conformance()` with no name would skip everything, and a plugin's CI would go green."""
    (tmp_path / "test_mine.py").write_text("from ganzoo.testing import conformance\n\nTestMine = conformance()\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    out = result.stdout
    assert result.returncode != 0 and "skipped" not in out and "passed" not in out, out[-3000:]
    assert "ganzoo conformance: no model named" in out and "--ganzoo-conformance mygan" in out, out[-3000:]


def test_an_error_raised_by_the_plugin_says_what_to_fix_and_conditional_models_build_in_any_words(tmp_path):
    """A D written for 28x28 raises torch's own RuntimeError at 3x32x32: the check says what to fix,
    and keeps the error's traceback. A conditional model may refuse to build without classes in words
    of its own (no 'label' or 'class' in them): the suite gives it classes."""
    plugin = tmp_path / "test_two_plugins.py"
    plugin.write_text('''
import torch
from torch import nn

import ganzoo
from ganzoo import hookimpl
from ganzoo.errors import ConfigError
from ganzoo.interfaces import GAN, Discriminator, Generator
from ganzoo.testing import conformance


class G(Generator):
    def __init__(self, image_shape, num_classes=None):
        super().__init__(8, image_shape, num_classes)
        self.net = nn.Linear(8, image_shape[0] * image_shape[1] * image_shape[2])

    def forward(self, z, y=None):
        return torch.tanh(self.net(z)).reshape(-1, *self.image_shape)


class D28(Discriminator):
    def __init__(self, image_shape):
        super().__init__(image_shape)
        self.net = nn.Linear(28 * 28, 1)   # written for one shape only

    def forward(self, x, y=None):
        return self.net(x.flatten(1)).squeeze(1)


class DAsserts(Discriminator):
    def __init__(self, image_shape):
        super().__init__(image_shape)
        self.net = nn.Linear(1, 1)

    def forward(self, x, y=None):
        assert x.shape[-1] == 28, "this D takes 28x28 images only"
        return self.net(x.mean((1, 2, 3))[:, None]).squeeze(1)


class DAny(Discriminator):
    def __init__(self, image_shape, num_classes=None):
        super().__init__(image_shape)
        self.net = nn.Linear(1, 1)

    def forward(self, x, y=None):
        return self.net(x.mean((1, 2, 3))[:, None]).squeeze(1)


def conditional(options, *, image_shape, num_classes=None):
    if num_classes is None:
        raise ConfigError("picky is conditional: train it on a dataset with categories")
    return GAN(G(image_shape, num_classes), DAny(image_shape, num_classes))


class Plugin:
    @hookimpl
    def register_models(self, register):
        register("fixed28", lambda o, *, image_shape, num_classes=None: GAN(G(image_shape), D28(image_shape)),
                 description="a D for 28x28 only")
        register("picky", conditional, description="a conditional model")
        register("asserts28", lambda o, *, image_shape, num_classes=None: GAN(G(image_shape), DAsserts(image_shape)),
                 description="a D that asserts its shape")


ganzoo.add_plugin(Plugin(), name="two")
TestTwo = conformance("fixed28", "picky", "asserts28")
''')
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", str(plugin),
                             "-k", "shapes"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    out = result.stdout
    assert "2 failed, 4 passed" in out, out[-3000:]  # fixed28 and asserts28 at 3x32x32 only
    assert "FAILED test_two_plugins.py::TestTwo::test_builds_and_shapes[fixed28-3x32x32]" in out, out[-3000:]
    assert "AssertionError: RuntimeError: mat1 and mat2 shapes cannot be multiplied" in out, out[-3000:]
    assert "What to fix: build(options, *, image_shape, num_classes)" in out, out[-3000:]
    assert "self.net(x.flatten(1))" in out, out[-3000:]  # the plugin's own line, from the chained traceback
    assert "AssertionError: an assert of the model's own failed: this D takes 28x28 images only" in out, out[-3000:]
    assert 'assert x.shape[-1] == 28, "this D takes 28x28 images only"' in out, out[-3000:]  # its line too


def test_a_refused_registration_is_the_reason_given_not_a_did_you_mean(tmp_path):
    (tmp_path / "test_half.py").write_text('''
from dataclasses import dataclass

import ganzoo
from ganzoo import hookimpl, option
from ganzoo.testing import conformance


@dataclass(frozen=True)
class Options:
    scale: int = option(0.5)


class Plugin:
    @hookimpl
    def register_models(self, register):
        register("wgn", lambda o, *, image_shape, num_classes=None: None, options=Options, description="x")


ganzoo.add_plugin(Plugin(), name="half")
TestHalf = conformance("wgn")
''')
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_half.py"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    out = " ".join(result.stdout.split())
    assert result.returncode == 2 and "1 error" in out and "did you mean" not in out, out[-3000:]
    assert ("ganzoo conformance: model 'wgn' was not registered: plugin 'half': cannot register model 'wgn': option "
            "'scale' of Options: its default does not pass its own check (config key 'scale' must be an integer, "
            "got 0.5)") in out, out[-3000:]


def test_a_model_that_declares_cuda_graphs_but_decides_on_the_host_fails_on_a_cpu(tmp_path):
    """The capture itself needs a GPU; what it would freeze shows on any machine: a decision read
    back to the host or a draw made on the CPU (with the line that does it), and a choice made from
    Python state (a trace of the step, replayed, stands in for the graph)."""
    plugin = tmp_path / "test_hosty_plugin.py"
    plugin.write_text('''
import torch
import torch.nn.functional as F
from torch import nn

import ganzoo
from ganzoo import hookimpl
from ganzoo.interfaces import GAN, Discriminator, Generator
from ganzoo.testing import conformance


class G(Generator):
    def __init__(self, image_shape, flip=True):
        super().__init__(8, image_shape)
        self.net = nn.Linear(8, 28 * 28)
        self.flip = flip

    def forward(self, z, y=None):
        x = self.net(z)
        if self.flip and self.training and torch.rand(()) < 0.5:   # decided on the host: a graph repeats it
            x = -x
        return torch.tanh(x).reshape(-1, *self.image_shape)


class D(Discriminator):
    def __init__(self, image_shape):
        super().__init__(image_shape)
        self.net = nn.Linear(28 * 28, 1)

    def forward(self, x, y=None):
        return self.net(x.flatten(1)).squeeze(1)


class CountingD(D):
    def __init__(self, image_shape):
        super().__init__(image_shape)
        self.calls = 0

    def forward(self, x, y=None):
        self.calls += 1   # a Python counter: a replayed graph repeats the scale its capture chose
        return super().forward(x) * (0.5 if self.calls % 2 else 1.0)


class OneHotG(G):  # conditional on one-hot labels: fine on a GPU (its kernel reads nothing back)
    def __init__(self, image_shape):
        super().__init__(image_shape, flip=False)
        self.num_classes = 10
        self.net = nn.Linear(8 + 10, 28 * 28)

    def forward(self, z, y=None):
        return torch.tanh(self.net(torch.cat([z, F.one_hot(y, 10).float()], 1))).reshape(-1, *self.image_shape)


class Plugin:
    @hookimpl
    def register_models(self, register):
        register("onehot", lambda o, *, image_shape, num_classes=None: GAN(
            OneHotG(image_shape), D(image_shape), cuda_graphs=True), description="one-hot labels into G")
        register("counting", lambda o, *, image_shape, num_classes=None: GAN(
            G(image_shape, flip=False), CountingD(image_shape), cuda_graphs=True),
            description="declares cuda_graphs but decides from a Python counter")
        register("hosty", lambda o, *, image_shape, num_classes=None: GAN(
            G(image_shape), D(image_shape), cuda_graphs=True),
                 description="declares cuda_graphs but flips a coin on the host")


ganzoo.add_plugin(Plugin(), name="hosty")
TestHosty = conformance("hosty", "counting", "onehot", shapes=[(1, 28, 28)])
''')
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(plugin), "-k",
                             "reads_nothing_back or replays_as_eagerly_on_cpu or keeps_state_in_place"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})  # the CPU's checks, on a GPU machine too
    out = result.stdout
    failed = sorted(line.split("::")[-1].split(" ")[0] for line in out.splitlines() if line.startswith("FAILED"))
    assert result.returncode == 1 and failed == [
        "test_cuda_graph_promise_reads_nothing_back[hosty]",  # the coin, with its line
        "test_cuda_graph_promise_replays_as_eagerly_on_cpu[counting]",  # a Python counter's choice, frozen
        "test_cuda_graph_promise_replays_as_eagerly_on_cpu[hosty]"], out[-3000:]  # the recording reads the coin back
    assert ("AssertionError: the step reads a value back to the host (.item(), `if tensor:`, int(t), float(t)), which "
            f"a CUDA capture refuses, at {plugin}:20 in forward") in out, out[-3000:]  # refused as a capture is
    assert "reads a value back to the host" in out and "draws random numbers without a device (torch.rand)" in out
    assert "test_hosty_plugin.py:20 in forward: if self.flip and self.training and torch.rand(()) < 0.5:" in out
    differ = next(line for line in out.splitlines() if "a replayed step and the same step run eagerly changed" in line)
    assert "'discriminator.net.weight'" in differ and "'generator.net.weight'" in differ, differ
    assert "What to fix: decide on the device, not in Python: torch.where" in out, out[-3000:]
