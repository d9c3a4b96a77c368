"""Third-party plugins for real: pip-install packages into a virtualenv and drive ganzoo there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import make_mnist_like

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugins" / "ganzoo-resizeconv"


class Venv:
    """A throwaway virtualenv that sees the packages of the environment running the tests (torch,
    ganzoo, pytest), whatever that environment is: a venv, a conda env or the system Python.

    ``venv --system-site-packages`` would expose the *base* interpreter's packages, which inside a
    virtualenv are not the ones the tests run with; a ``.pth`` line that calls ``site.addsitedir``
    on the running environment's site-packages does (and runs their ``.pth`` files, so an
    editable ganzoo is found too). Packages installed into the throwaway env come first.
    """

    def __init__(self, path: Path) -> None:
        import site
        import sysconfig

        self.path = path
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
        self.python = str(path / ("Scripts" if os.name == "nt" else "bin") / "python")
        purelib = subprocess.run([self.python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        parents = [p for p in dict.fromkeys([*site.getsitepackages(), sysconfig.get_path("purelib"),
                                             sysconfig.get_path("platlib")]) if Path(p).is_dir()]
        (Path(purelib) / "_ganzoo_test_parent_env.pth").write_text(
            "import site; " + "; ".join(f"site.addsitedir({p!r})" for p in parents) + "\n")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GANZOO_") and k != "PYTHONPATH"}

    def pip_install(self, package: Path) -> None:
        subprocess.run([self.python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                        "--disable-pip-version-check", str(package)], check=True, env=self.env)

    def run(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([self.python, *args], capture_output=True, text=True, cwd=cwd,
                              env={**self.env, **(env or {})}, timeout=300)

    def ganzoo(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("-m", "ganzoo", *map(str, args), **kwargs)


def write_package(folder: Path, name: str, source: str) -> Path:
    """A one-module plugin package, ``ganzoo-NAME`` holding ``ganzoo_NAME``, entry point ``NAME``."""
    package = folder / f"ganzoo-{name}"
    (package / f"ganzoo_{name}").mkdir(parents=True)
    (package / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "ganzoo-{name}"
        version = "9.9"
        [project.entry-points.ganzoo]
        {name} = "ganzoo_{name}"
        [tool.setuptools]
        packages = ["ganzoo_{name}"]
    """))
    (package / f"ganzoo_{name}" / "__init__.py").write_text(textwrap.dedent(source))
    return package


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Venv:
    env = Venv(tmp_path_factory.mktemp("venv") / "env")
    seen = env.run("-c", "import ganzoo, torch, pytest, setuptools; print(ganzoo.__file__)")
    assert seen.returncode == 0, seen.stderr  # the throwaway env sees the tested ganzoo and its tools
    assert Path(seen.stdout.strip()).resolve().parent == Path(__import__("ganzoo").__file__).resolve().parent
    return env


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return make_mnist_like(tmp_path_factory.mktemp("data"), n=64)


def test_example_plugin_installs_and_joins_the_zoo(venv, data_root, tmp_path):
    venv.pip_install(EXAMPLE)

    listing = venv.ganzoo("list", "--json")
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout)
    model = next(m for m in data["models"] if m["name"] == "resizeconv")
    assert (model["plugin"], model["package"], model["version"]) == ("resizeconv", "ganzoo-resizeconv", "0.2.0")
    assert any(loss["name"] == "smoothed" for loss in data["losses"])
    table = venv.ganzoo("list", env={"COLUMNS": "200"})
    assert "ganzoo-resizeconv 0.2.0" in " ".join(table.stdout.split())

    plugins = json.loads(venv.ganzoo("plugins", "--json").stdout)
    info = next(p for p in plugins["plugins"] if p["name"] == "resizeconv")
    assert info["builtin"] is False and info["hooks"] == ["register_losses", "register_models"]
    assert info["registers"] == ["model:resizeconv", "loss:smoothed"]

    run = tmp_path / "run"
    train = venv.ganzoo("train", "resizeconv", "--dataset", "fashion_mnist", "--data-dir", data_root,
                        "--max-steps", 2, "--batch-size", 16, "--set", "model.width=8", "--out", run)
    assert train.returncode == 0, train.stderr
    assert "plugin recipe resizeconv/fashion_mnist" in train.stdout
    assert 'name = "smoothed"' in (run / "config.toml").read_text()  # the plugin's recipe was used
    sample = venv.ganzoo("sample", run, "--n", 5, "--out", tmp_path / "s.npy")
    assert sample.returncode == 0, sample.stderr
    assert np.load(tmp_path / "s.npy").shape == (5, 1, 28, 28)

    own_tests = venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests"), cwd=tmp_path)
    assert own_tests.returncode == 0, own_tests.stdout + own_tests.stderr
    assert "TestResizeConv::test_checkpoint_round_trip_resumes_bit_exactly" in venv.run(
        "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", str(EXAMPLE / "tests"), cwd=tmp_path).stdout

    # the switches keep it out
    hidden = venv.ganzoo("list", "--json", env={"GANZOO_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert "resizeconv" not in hidden.stdout and "dcgan" in hidden.stdout
    only = json.loads(venv.ganzoo("list", "--json", env={"GANZOO_PLUGINS": "resizeconv"}).stdout)
    assert [m["name"] for m in only["models"]] == ["resizeconv"]


def test_new_plugin_scaffold_installs_and_passes_its_own_test(venv, data_root, tmp_path):
    made = venv.ganzoo("new-plugin", "tinygan", "--dir", tmp_path)
    assert made.returncode == 0, made.stderr
    package = tmp_path / "ganzoo-tinygan"
    assert sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file()) == [
        "README.md", "ganzoo_tinygan/__init__.py", "ganzoo_tinygan/nets.py",
        "ganzoo_tinygan/recipes/fashion_mnist.toml", "pyproject.toml", "tests/test_ganzoo_tinygan.py",
    ]
    venv.pip_install(package)
    own_tests = venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=package)
    assert own_tests.returncode == 0, own_tests.stdout + own_tests.stderr
    # its own five tests and the conformance checks: at least one per check, one per loss for gradients
    passed = int(re.search(r"(\d+) passed", own_tests.stdout).group(1))
    assert passed >= 5 + 8 and "failed" not in own_tests.stdout
    train = venv.ganzoo("train", "tinygan", "--data-dir", data_root, "--max-steps", 1, "--out", tmp_path / "r")
    assert train.returncode == 0, train.stderr

    again = venv.ganzoo("new-plugin", "tinygan", "--dir", tmp_path)
    assert again.returncode == 2 and "already registered" in again.stderr
    bad = venv.ganzoo("new-plugin", "Tiny-GAN", "--dir", tmp_path)
    assert bad.returncode == 2 and "must start with a letter" in bad.stderr


def test_a_broken_installed_plugin_leaves_the_cli_usable(venv, tmp_path):
    venv.pip_install(write_package(tmp_path, "broken", "import a_module_that_does_not_exist\n"))

    listing = venv.ganzoo("list")
    assert listing.returncode == 0 and "dcgan" in listing.stdout
    warning = " ".join(listing.stderr.split())
    assert "plugin 'broken': failed to import ganzoo_broken: ModuleNotFoundError" in warning
    assert "Traceback" not in listing.stderr
    plugins = json.loads(venv.ganzoo("plugins", "--json").stdout)
    assert [(f["name"], f["package"]) for f in plugins["failed"]] == [("broken", "ganzoo-broken")]
    subprocess.run([venv.python, "-m", "pip", "uninstall", "-q", "-y", "ganzoo-broken"], check=True)


def test_conformance_catches_torch_imported_at_registration_and_a_second_plugin_of_the_same_name(venv, tmp_path):
    """Two mistakes only installed plugins can make: importing torch in the register hook (the module
    itself stays light, so `ganzoo list` gets slow unnoticed), and a model name another installed
    plugin registers first (the checks would test that other plugin's model)."""
    assert venv.ganzoo("new-plugin", "twin", "--dir", tmp_path).returncode == 0
    package = tmp_path / "ganzoo-twin"
    init = package / "ganzoo_twin" / "__init__.py"
    source = init.read_text()
    hook = "def register_models(register: Any) -> None:\n"
    assert hook in source
    init.write_text(source.replace(hook, hook + "    from . import nets  # noqa: F401  (imports torch)\n"))
    venv.pip_install(package)

    def conformance(*args: str) -> str:
        result = venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "--ganzoo-conformance", "twin", *args,
                          cwd=tmp_path)
        return result.stdout + result.stderr

    try:
        out = conformance("-k", "torch")
        assert "1 failed" in out, out[-3000:]
        assert "running the register_* hooks of plugin 'twin' imports torch" in out, out[-3000:]
        assert "What to fix: import torch (and the modules that do) inside build(), not in the register_* hook" in out

        venv.pip_install(write_package(tmp_path, "copycat", """
            from ganzoo import hookimpl
            from ganzoo_twin import Options, build

            @hookimpl
            def register_models(register):
                register("twin", build, options=Options, description="another plugin's twin")
        """))
        out = conformance("-k", "registration")  # 'copycat' loads first (entry points by name): it keeps the name
        assert "1 error" in out and "passed" not in out, out[-3000:]
        assert ("ganzoo conformance: model 'twin' is registered by plugin 'copycat', and a second registration of "
                "the name failed: plugin 'twin': model 'twin' is already registered by plugin 'copycat'; this "
                "plugin's registration of it was skipped. The checks cannot tell which model you mean") \
            in " ".join(out.split()), out[-3000:]
        assert "Traceback" not in out, out[-3000:]
    finally:
        subprocess.run([venv.python, "-m", "pip", "uninstall", "-q", "-y", "ganzoo-twin", "ganzoo-copycat"],
                       env=venv.env, check=False)
