"""Where settings come from: recipe -> --config -> flags -> --set, resume, and the resolved Config."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import make_mnist_like
from ganzoo.cli import main
from ganzoo.config import Config, Flag, compose, dump_toml, load_toml, merge, parse_override, resolve_config, split_key
from ganzoo.errors import ConfigError, UnknownNameError

ROOT = Path(__file__).resolve().parents[1]


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
        split_key("epochs")
    with pytest.raises(UnknownNameError, match="did you mean 'train'"):
        split_key("trian.epochs")


def test_resolve_fills_defaults_and_checks_components():
    config = resolve_config({"model": {"name": "dcgan", "width": 8}})
    assert config.model["width"] == 8 and config.model.options.latent_dim == 100
    assert config.loss.to_dict() == {"name": "nonsaturating"}
    assert config.g_optimizer["name"] == "adam" and config.g_optimizer["betas"] == [0.5, 0.999]
    with pytest.raises(ConfigError, match=r"'g_optimizer.lr' must be greater than 0"):
        resolve_config({"model": {"name": "dcgan"}, "g_optimizer": {"lr": 0.0}})
    with pytest.raises(UnknownNameError, match=r"unknown optimizer 'adm'; did you mean 'adam'"):
        resolve_config({"model": {"name": "dcgan"}, "d_optimizer": {"name": "adm"}})
    with pytest.raises(UnknownNameError, match=r"'momentum'"):  # adam has no momentum
        resolve_config({"model": {"name": "dcgan"}, "d_optimizer": {"momentum": 0.9}})
    sgd = resolve_config({"model": {"name": "dcgan"}, "d_optimizer": {"name": "sgd", "momentum": 0.9}})
    assert dict(sgd.d_optimizer) == {"name": "sgd", "lr": 0.01, "momentum": 0.9, "dampening": 0.0,
                                     "weight_decay": 0.0, "nesterov": False, "fused": "auto"}
    with pytest.raises(UnknownNameError, match="unknown dataset 'cifar'"):
        resolve_config({"model": {"name": "dcgan"}, "data": {"name": "cifar"}})


def test_the_resolved_config_carries_typed_options_instances():
    from ganzoo_plugins.dcgan import DCGANOptions
    from ganzoo_plugins.optimizers import AdamOptions

    config = resolve_config({"model": {"name": "dcgan", "width": 8}, "g_optimizer": {"betas": [0, 0.9]}})
    assert isinstance(config.model.options, DCGANOptions) and config.model.options.width == 8
    assert isinstance(config.g_optimizer.options, AdamOptions) and config.g_optimizer.options.betas == (0.0, 0.9)
    folder = resolve_config({"model": {"name": "dcgan"}, "data": {"name": "folder:/x", "image_size": 24}})
    assert folder.data.options.image_size == 24 and folder.to_dict()["data"]["image_size"] == 24


def test_merge_starts_a_renamed_component_from_its_defaults():
    base = {"g_optimizer": {"name": "adam", "betas": [0.5, 0.999]}, "data": {"name": "folder:/a", "image_size": 8,
                                                                           "root": "/r"}}
    merged = merge(base, {"g_optimizer": {"name": "rmsprop", "lr": 0.1}, "data": {"name": "mnist"}}, "--set")
    assert merged["g_optimizer"] == {"name": "rmsprop", "lr": 0.1}
    assert merged["data"] == {"name": "mnist", "root": "/r"}  # the folder's options go, the root stays
    assert resolve_config({"model": {"name": "vanilla"}, **merged}).g_optimizer["alpha"] == 0.99


# --- every route by which a component's name can change (the --set bug) -----------------------------

def test_set_renaming_an_optimizer_starts_from_its_defaults():
    """The vanilla recipe sets Adam's betas; --set d_optimizer.name=sgd once kept them and failed."""
    config, sources = compose("vanilla", dataset="fashion_mnist", overrides=["d_optimizer.name=sgd"])
    assert "plugin recipe vanilla/fashion_mnist" in sources[0]
    assert dict(config.d_optimizer)["name"] == "sgd" and config.d_optimizer["lr"] == 0.01
    assert config.g_optimizer["betas"] == [0.5, 0.999]  # the other optimizer keeps the recipe's
    # keys given in the same layer apply to the new component, in any order
    for order in (["d_optimizer.lr=0.05", "d_optimizer.name=sgd"], ["d_optimizer.name=sgd", "d_optimizer.lr=0.05"]):
        assert compose("vanilla", overrides=order)[0].d_optimizer["lr"] == 0.05


def test_a_flag_renaming_the_loss_drops_the_recipes_loss_options():
    config, _ = compose("wgan-gp", flags=[Flag("--loss", "loss.name", "hinge")])  # recipe: penalty_weight = 10
    assert config.loss.to_dict() == {"name": "hinge"}
    assert compose("wgan-gp")[0].loss["penalty_weight"] == 10.0


def test_a_config_file_renaming_a_component_layers_over_the_recipe(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[model]\nname = "vanilla"\n[d_optimizer]\nname = "rmsprop"\n[train]\nepochs = 3\n')
    config, sources = compose(config_file=path)
    assert sources == [sources[0], str(path)] and "vanilla/fashion_mnist" in sources[0]
    assert config.d_optimizer.to_dict()["name"] == "rmsprop" and "betas" not in config.d_optimizer
    assert config.train.epochs == 3 and config.model["g_hidden"] == [256, 512, 1024]  # the recipe's, beneath
    # flags and --set still win over the file
    config, _ = compose(config_file=path, flags=[Flag("--epochs", "train.epochs", 7)],
                        overrides={"d_optimizer.name": "sgd", "d_optimizer.momentum": 0.5})
    assert config.train.epochs == 7 and dict(config.d_optimizer)["momentum"] == 0.5


def test_an_options_former_name_layers_like_the_option():
    """began's G-BatchNorm switch was `batchnorm` (now `g_batchnorm`, as dcgan's): a later
    layer wins whichever name each layer uses, and runs written with the old name resolve."""
    assert compose("began")[0].model["g_batchnorm"] is True  # the recipe's, by the new name
    for old_then_new in (["model.batchnorm=false"], {"model.batchnorm": False}):
        assert compose("began", overrides=old_then_new)[0].model["g_batchnorm"] is False
    merged = merge({"model": {"name": "began", "g_batchnorm": True}}, {"model": {"batchnorm": False}}, "--set")
    assert merged["model"] == {"name": "began", "batchnorm": False}
    merged = merge({"model": {"name": "began", "batchnorm": False}}, {"model": {"g_batchnorm": True}}, "--set")
    assert merged["model"] == {"name": "began", "g_batchnorm": True}
    import torch

    import ganzoo

    gan = ganzoo.create_model("began", filters=4, hidden=8, batchnorm=True)  # keywords by the old name too
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in gan.generator.modules())
    config = resolve_config({"model": {"name": "began", "batchnorm": True}})  # a run written before the rename
    assert config.model.to_dict()["g_batchnorm"] is True and "batchnorm" not in config.model.to_dict()
    with pytest.raises(ConfigError, match=r"'model.batchnorm' and 'model.g_batchnorm' name one option"):
        resolve_config({"model": {"name": "began", "batchnorm": True, "g_batchnorm": False}})  # one file, both
    merged = merge({"model": {"name": "nope", "batchnorm": True}}, {"model": {"g_batchnorm": False}}, "--set")
    assert set(merged["model"]) == {"name", "batchnorm", "g_batchnorm"}  # an unknown model: its resolution says so


def test_options_given_before_the_component_is_named_are_kept(tmp_path):
    """A config file's `[model] width = 32` with no name, under `ganzoo train dcgan --recipe none` (or a
    model with no recipe for the dataset): the name comes from a later layer and once wiped the width."""
    path = tmp_path / "mine.toml"
    path.write_text("[model]\nwidth = 32\n[loss]\npenalty_weight = 5.0\n")
    config, _ = compose("dcgan", recipe="none", config_file=path, flags=[Flag("--loss", "loss.name", "wgan-gp")])
    assert config.model["width"] == 32 and config.loss["penalty_weight"] == 5.0
    assert compose("dcgan", config_file=path, flags=[Flag("--loss", "loss.name", "wgan-gp")])[0].model["width"] == 32
    # a name given and then changed still starts the new component from its defaults
    merged = merge({"loss": {"name": "wgan-gp", "penalty_weight": 5.0}}, {"loss": {"name": "hinge"}}, "--set")
    assert merged["loss"] == {"name": "hinge"}


def test_the_recipe_itself_may_rename_what_the_defaults_name():
    config, _ = compose("sngan")  # the sngan recipe trains with the hinge loss, not the default one
    assert config.loss.name == "hinge" and config.train.d_steps == 2


def test_resume_may_change_only_what_keeps_the_run_the_same(tmp_path, capsys):
    data = make_mnist_like(tmp_path / "data", n=16)
    run = tmp_path / "run"
    assert main(["train", "vanilla", "--data-dir", str(data), "--max-steps", "1", "--out", str(run), "--set",
                 "model.g_hidden=[8]", "--set", "model.d_hidden=[8]"]) == 0
    for argv, message in (
        (["--set", "d_optimizer.name=sgd"], "--set d_optimizer.name cannot change when resuming"),
        (["--set", "model.dropout=0.1"], "--set model.dropout cannot change when resuming"),
        (["--loss", "hinge"], "--loss cannot change when resuming"),
        (["--dataset", "mnist"], "--dataset cannot change when resuming"),
        (["--recipe", "default"], "--recipe cannot change when resuming"),
        (["--set", "train.seed=3"], "--set train.seed cannot change when resuming"),
        (["--set", "train.batch_size=4"], "--set train.batch_size cannot change when resuming"),
        (["--seed", "3"], "--seed cannot change when resuming"),
        (["--set", "train.d_steps=2"], "--set train.d_steps cannot change when resuming"),
        (["--set", 'train.regularizers=["r1"]'], "--set train.regularizers cannot change when resuming"),
    ):
        capsys.readouterr()
        assert main(["train", "--resume", str(run), *argv]) == 2, argv
        assert message in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--set", "train.seed=3"]) == 2
    assert "what may change: data.root, data.download, train.epochs, train.max_steps, train.max_minutes" \
        in capsys.readouterr().err  # the refusal says what the user may change instead
    assert main(["train", "--resume", str(run), "--set", "train.max_steps=2", "--set", "train.log_every=1"]) == 0


# --- recipes and files -----------------------------------------------------------------------------

def test_named_recipes_and_unknown_recipe_names():
    with pytest.raises(UnknownNameError,
                       match=r"unknown recipe for dcgan on fashion_mnist 'fats'; did you mean 'fast'\? Known: default, fast, none"):
        compose("dcgan", recipe="fats")
    fast, sources = compose("dcgan", recipe="fast")
    assert sources[0].endswith("(plugins/dcgan/recipes/fashion_mnist.fast.toml)")
    assert fast.model["width"] == 32 and fast.train.batch_size == 64 and fast.g_optimizer["lr"] == 3e-4
    plain, sources = compose("dcgan", recipe="none")  # the model's own defaults, no recipe beneath
    assert sources == [] and plain.model["dropout"] == 0.3 and not plain.model["d_batchnorm"]
    config, sources = compose("dcgan", dataset="mnist")  # no recipe for mnist: the model's defaults
    assert sources == [] and config.model["dropout"] == 0.3 and config.data.name == "mnist"


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


def test_configs_of_ganzoo_0_1_still_resolve():
    """Run directories written before variants fixed their switches and before aux_weight moved."""
    old = {"model": {"name": "acgan", "width": 8, "conditional": False, "aux_classifier": True,
                     "spectral_norm": False},
           "train": {"aux_weight": 0.5, "epochs": 2}, "data": {"name": "fashion_mnist"}}
    config = resolve_config(old)
    assert config.model["aux_weight"] == 0.5 and not hasattr(config.train, "aux_weight")
    dcgan = resolve_config({"model": {"name": "dcgan", "conditional": False}, "train": {"aux_weight": 1.0}})
    assert "aux_weight" not in dcgan.model and "conditional" not in dcgan.model
    wgan = resolve_config({"model": {"name": "wgan-gp", "d_batchnorm": False}})
    assert "d_batchnorm" not in wgan.model


def test_print_config_shows_the_layers_and_the_result(capsys):
    assert main(["train", "vanilla", "--print-config", "--set", "d_optimizer.name=sgd", "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# from plugin recipe vanilla/fashion_mnist")
    parsed = __import__("tomllib").loads(out)
    assert parsed["d_optimizer"]["name"] == "sgd" and parsed["train"]["epochs"] == 3


@pytest.mark.parametrize("path", sorted((ROOT / "zoo_configs").glob("*.toml")), ids=lambda p: p.name)
def test_every_file_in_zoo_configs_resolves(path):
    config, sources = compose(config_file=path)
    assert sources[-1] == str(path)
    assert config.model.name == load_toml(path)["model"]["name"]


def test_every_registered_recipe_resolves_to_its_model_and_dataset():
    import ganzoo
    from ganzoo.recipes import recipe_names

    count = 0
    for model in ganzoo.list_models():
        for key in recipe_names(ganzoo.get_model_spec(model)):
            dataset, _, recipe = key.partition(":")
            config, _ = compose(model, dataset=dataset, recipe=recipe or None)
            assert config.model.name == model and config.data.name == dataset, key
            count += 1
    assert count >= 6
