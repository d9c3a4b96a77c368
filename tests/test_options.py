"""The option schema: typed values, ranges, unknown keys, descriptions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from ganzoo import option
from ganzoo.config import TrainSettings
from ganzoo.errors import ConfigError, UnknownNameError
from ganzoo.options import build_options, coerce, describe_options, option_defaults, options_to_dict, renamed_options


def test_types_are_checked_and_named():
    with pytest.raises(ConfigError, match=r"'train.epochs' must be an integer, got 'five'"):
        build_options(TrainSettings, {"epochs": "five"}, "train")
    with pytest.raises(ConfigError, match=r"'train.epochs' must be an integer, got 2.5"):
        build_options(TrainSettings, {"epochs": 2.5}, "train")
    with pytest.raises(ConfigError, match=r"'train.epochs' must be at least 1, got 0"):
        build_options(TrainSettings, {"epochs": 0}, "train")
    with pytest.raises(ConfigError, match=r"'train.device' must be 'auto' or 'cpu'"):
        build_options(TrainSettings, {"device": "gpu"}, "train")
    with pytest.raises(UnknownNameError, match=r"'epoch'.*did you mean 'epochs'"):
        build_options(TrainSettings, {"epoch": 3}, "train")
    assert build_options(TrainSettings, {"max_steps": "none"}, "train").max_steps is None


@dataclass(frozen=True)
class Sample:
    rate: float = option(0.5, min=0, max=1, help="a share")
    lr: float = option(1e-3, min=0, min_exclusive=True)
    sizes: tuple[int, ...] = option((4, 8))
    pair: tuple[float, float] = option((0.5, 0.9))
    channels: Literal[1, 3] | None = option(None)
    mode: Literal["auto"] | bool = option("auto")

    def __post_init__(self) -> None:
        if self.sizes and self.sizes[0] > 100:
            raise ValueError("the first size is at most 100")


def test_lossless_conversions_only():
    opts = build_options(Sample, {"rate": 1, "sizes": [1, 2, 3], "pair": [0, 1]}, "model")
    assert opts.rate == 1.0 and isinstance(opts.rate, float)
    assert opts.sizes == (1, 2, 3) and opts.pair == (0.0, 1.0)
    with pytest.raises(ConfigError, match=r"'model.sizes\[1\]' must be an integer"):
        build_options(Sample, {"sizes": [1, 2.5]}, "model")
    with pytest.raises(ConfigError, match="a list of 2 values"):
        build_options(Sample, {"pair": [0.1]}, "model")
    with pytest.raises(ConfigError, match="must be true or false"):
        coerce(1, bool, "x")
    with pytest.raises(ConfigError, match="must be an integer"):
        coerce(True, int, "x")
    with pytest.raises(ConfigError, match="finite"):
        coerce(float("nan"), float, "x")


def test_literals_do_not_accept_lookalike_values():
    assert build_options(Sample, {"channels": 3}, "data").channels == 3
    with pytest.raises(ConfigError, match="must be 1 or 3"):
        build_options(Sample, {"channels": True}, "data")  # True == 1 in Python, but is not a channel count
    assert build_options(Sample, {"mode": False}, "train").mode is False
    with pytest.raises(ConfigError, match="'auto' or true or false"):
        build_options(Sample, {"mode": "yes"}, "train")


def test_ranges_and_cross_field_checks_name_the_key():
    with pytest.raises(ConfigError, match=r"'loss.rate' must be at most 1, got 2"):
        build_options(Sample, {"rate": 2}, "loss")
    with pytest.raises(ConfigError, match=r"'loss.lr' must be greater than 0, got 0"):
        build_options(Sample, {"lr": 0}, "loss")
    with pytest.raises(ConfigError, match=r"\[loss\]: the first size is at most 100"):
        build_options(Sample, {"sizes": [101]}, "loss")


def test_descriptions_and_storage_form():
    rows = {key: (kind, default, text) for key, kind, default, text in describe_options(Sample)}
    assert rows["rate"] == ("a number", 0.5, "a share")
    assert rows["sizes"][1] == [4, 8]  # lists, as TOML and JSON have them
    assert option_defaults(Sample)["channels"] is None
    assert options_to_dict(Sample()) == {"rate": 0.5, "lr": 1e-3, "sizes": [4, 8], "pair": [0.5, 0.9], "mode": "auto"}


@dataclass(frozen=True)
class Renamed:
    g_batchnorm: bool = option(False, was="batchnorm")
    width: int = option(8, min=1, was=("size", "channels"))


def test_an_options_former_names_still_load_as_the_option():
    """A plugin renames an option without breaking the configs, runs and checkpoints of its users."""
    assert renamed_options(Renamed) == {"batchnorm": "g_batchnorm", "size": "width", "channels": "width"}
    assert renamed_options(Sample) == {} and renamed_options(int) == {}
    assert build_options(Renamed, {"batchnorm": True, "size": 4}, "model") == Renamed(True, 4)
    assert build_options(Renamed, {"batchnorm": True, "g_batchnorm": True}, "model") == Renamed(True)  # one value
    with pytest.raises(ConfigError, match=r"'model.batchnorm' and 'model.g_batchnorm' name one option, .* keep "
                                          r"'model.g_batchnorm' only"):
        build_options(Renamed, {"batchnorm": True, "g_batchnorm": False}, "model")
    with pytest.raises(ConfigError, match=r"'model.width' must be at least 1, got 0"):  # checked as the option
        build_options(Renamed, {"channels": 0}, "model")
    with pytest.raises(ConfigError, match=r"keys 'model.size' and 'model.channels' name one option, 'model.width'"):
        build_options(Renamed, {"size": 4, "channels": 8}, "model")  # the keys named as the user wrote them
    with pytest.raises(TypeError, match="was= takes an option's former name"):
        option(False, was=None)
    # the former names are accepted, never shown: listings and run directories have today's names
    assert [row[0] for row in describe_options(Renamed)] == ["g_batchnorm", "width"]
    assert options_to_dict(build_options(Renamed, {"batchnorm": True}, "model")) == {"g_batchnorm": True, "width": 8}


def test_the_option_schema_stands_on_errors_alone():
    """Plugins, the config layer and the registry all use it, so it may use nothing of theirs."""
    import ast

    import ganzoo.options

    tree = ast.parse(open(ganzoo.options.__file__, encoding="utf-8").read())
    ours = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
    assert ours == {"errors"}
