"""Every model in the zoo passes the conformance checks plugin authors run (ganzoo.testing)."""

from __future__ import annotations

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


class Plugin:
    @hookimpl
    def register_models(self, register):
        register("bad", lambda o, *, image_shape, num_classes=None: GAN(G(image_shape), D(image_shape)),
                 description="a model with two mistakes")


ganzoo.add_plugin(Plugin(), name="bad")
TestBad = conformance("bad")
''')
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(plugin),
                             "-k", "shapes or learns and nonsaturating"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    out = result.stdout
    assert result.returncode == 1, out[-3000:]
    assert "G's images leave [-1, 1] (end G in tanh)" in out and "What to fix:" in out
    assert "G's parameters without a gradient under nonsaturating: ['unused.weight', 'unused.bias']" in out


def test_naming_no_model_fails_instead_of_skipping_every_check(tmp_path):
    """`conformance()` with no name would skip everything, and a plugin's CI would go green."""
    (tmp_path / "test_mine.py").write_text("from ganzoo.testing import conformance\n\nTestMine = conformance()\n")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_mine.py"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    out = result.stdout
    assert result.returncode != 0 and "skipped" not in out and "passed" not in out, out[-3000:]
    assert "ganzoo conformance: no model named" in out and "--ganzoo-conformance mygan" in out, out[-3000:]
