import pytest

from ganzoo.config import (
    Config,
    TrainSettings,
    apply_override,
    build_options,
    dump_toml,
    find_recipe,
    load_toml,
    merge,
    parse_override,
    resolve_config,
)
from ganzoo.errors import ConfigError, UnknownNameError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("train.epochs=5", ("train.epochs", 5)),
        ("g_optimizer.lr=1e-4", ("g_optimizer.lr", 1e-4)),
        ("model.g_batchnorm=false", ("model.g_batchnorm", False)),
        ("g_optimizer.betas=[0.0, 0.9]", ("g_optimizer.betas", [0.0, 0.9])),
        ("g_optimizer.name=rmsprop", ("g_optimizer.name", "rmsprop")),
        ('data.root="/tmp/a b"', ("data.root", "/tmp/a b")),
        ("data.root=__import__('os').system('x')", ("data.root", "__import__('os').system('x')")),
    ],
)
def test_set_values_are_toml_literals_or_plain_strings(text, expected):
    assert parse_override(text) == expected


def test_set_needs_key_and_value():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("train.epochs")
    with pytest.raises(ConfigError, match="SECTION.KEY"):
        apply_override({}, "epochs", 3)
    with pytest.raises(UnknownNameError, match="did you mean 'train'"):
        apply_override({}, "trian.epochs", 3)


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


def test_resolve_fills_defaults_and_checks_components():
    config = resolve_config({"model": {"name": "dcgan", "width": 8}})
    assert config.model["width"] == 8 and config.model["latent_dim"] == 100
    assert config.loss == {"name": "nonsaturating"}
    assert config.g_optimizer["name"] == "adam" and config.g_optimizer["betas"] == [0.5, 0.999]
    with pytest.raises(ConfigError, match=r"'g_optimizer.lr' must be greater than 0"):
        resolve_config({"model": {"name": "dcgan"}, "g_optimizer": {"lr": 0.0}})
    with pytest.raises(UnknownNameError, match=r"unknown optimizer 'adm'; did you mean 'adam'"):
        resolve_config({"model": {"name": "dcgan"}, "d_optimizer": {"name": "adm"}})
    with pytest.raises(UnknownNameError, match=r"'momentum'"):  # adam has no momentum
        resolve_config({"model": {"name": "dcgan"}, "d_optimizer": {"momentum": 0.9}})
    sgd = resolve_config({"model": {"name": "dcgan"}, "d_optimizer": {"name": "sgd", "momentum": 0.9}})
    assert sgd.d_optimizer == {"name": "sgd", "lr": 0.01, "momentum": 0.9, "dampening": 0.0,
                               "weight_decay": 0.0, "nesterov": False, "fused": "auto"}
    with pytest.raises(UnknownNameError, match="unknown dataset 'cifar'"):
        resolve_config({"model": {"name": "dcgan"}, "data": {"name": "cifar"}})


def test_changing_a_component_name_drops_the_old_options():
    base = {"g_optimizer": {"name": "adam", "betas": [0.5, 0.999]}}
    merged = merge(base, {"g_optimizer": {"name": "rmsprop"}}, "--set")
    assert merged["g_optimizer"] == {"name": "rmsprop"}
    assert resolve_config({"model": {"name": "vanilla"}, **merged}).g_optimizer["alpha"] == 0.99


def test_toml_round_trip(tmp_path):
    config = resolve_config({"model": {"name": "vanilla", "g_hidden": [16, 32]}, "data": {"root": 'C:\\d "q"'}})
    path = tmp_path / "c.toml"
    path.write_text(dump_toml(config.to_dict()))
    again = resolve_config(load_toml(path))
    assert isinstance(again, Config) and again == config


def test_toml_syntax_errors_give_line_and_column(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[train]\nepochs = 3\nbatch_size = = 4\n')
    with pytest.raises(ConfigError, match=r"bad.toml: invalid TOML: .*line 3, column"):
        load_toml(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_toml(tmp_path / "missing.toml")


def test_the_dcgan_recipe_is_packaged_and_valid():
    recipe, where = find_recipe("dcgan", "fashion_mnist")
    assert where == "zoo_configs/dcgan-fashion_mnist.toml"
    config = resolve_config(recipe)
    assert config.model["name"] == "dcgan" and config.data.name == "fashion_mnist"
    assert config.g_optimizer["betas"] == [0.5, 0.999] and config.train.epochs >= 5
    assert find_recipe("vanilla", "mnist") is None


def test_every_zoo_recipe_resolves():
    from importlib import resources

    recipes = [p for p in resources.files("ganzoo.zoo_configs").iterdir() if p.name.endswith(".toml")]
    assert len(recipes) >= 6
    for recipe in recipes:
        model, dataset = recipe.name.removesuffix(".toml").rsplit("-", 1)
        config = resolve_config(load_toml(recipe))
        assert config.model["name"] == model and config.data.name == dataset, recipe.name
