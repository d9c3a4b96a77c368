"""The built-in models' own architecture and options. What every model must do (shapes, ranges,
gradients, resume, the channels-last promise) is checked by the conformance suite
(tests/test_conformance.py, ganzoo.testing)."""

import pytest
import torch
from torch import nn

import ganzoo
from conftest import make_trainer
from ganzoo.data import to_unit_range
from ganzoo.errors import ConfigError, UnknownNameError
from ganzoo.interfaces import DiscriminatorOutput, as_output
from test_layers import _layout

CONV_MODELS = ["dcgan", "cgan", "acgan", "sngan", "wgan-gp"]


def test_dcgan_options_switch_batchnorm_and_dropout():
    def count(module, kind):
        return sum(isinstance(m, kind) for m in module.modules())

    default = ganzoo.create_model("dcgan")
    assert count(default.generator, nn.BatchNorm2d) == 3
    assert count(default.discriminator, nn.BatchNorm2d) == 0
    assert count(default.discriminator, nn.Dropout) == 2
    assert sum(p.numel() for p in default.generator.parameters()) > 2_000_000  # 256-128-64 channels

    changed = ganzoo.create_model("dcgan", g_batchnorm=False, d_batchnorm=True, dropout=0.0, width=16)
    assert count(changed.generator, nn.BatchNorm2d) == 0
    assert count(changed.discriminator, nn.BatchNorm2d) == 1
    assert count(changed.discriminator, nn.Dropout) == 0
    assert changed.discriminator.features[0].out_channels == 16


def test_dcgan_generator_is_dense_reshape_then_transposed_convs():
    g = ganzoo.create_model("dcgan").generator
    assert isinstance(g.project, nn.Linear) and g.project.in_features == 100
    assert g.project.out_features == 256 * 7 * 7
    convs = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [128, 64, 1]
    assert isinstance(list(g.modules())[-1], nn.Tanh)


def test_vanilla_options():
    gan = ganzoo.create_model("vanilla", g_hidden=[32, 64], d_hidden=[16], dropout=0.0, g_batchnorm=False)
    linears = [m for m in gan.generator.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [32, 64, 784]
    assert not any(isinstance(m, (nn.Dropout, nn.BatchNorm1d)) for m in gan.modules())


def test_bad_model_options_name_the_key():
    with pytest.raises(UnknownNameError, match=r"'widht'.*did you mean 'width'"):
        ganzoo.create_model("dcgan", widht=32)
    with pytest.raises(ConfigError, match="model.dropout"):
        ganzoo.create_model("dcgan", dropout=1.5)
    with pytest.raises(ConfigError, match="kernel_size must be odd"):
        ganzoo.create_model("dcgan", kernel_size=4)
    with pytest.raises(ConfigError, match="divisible by 4"):
        ganzoo.create_model("dcgan", image_shape=(1, 30, 30))


def test_conditional_models_need_labels():
    cgan = ganzoo.create_model("cgan", num_classes=10)
    assert cgan.generator.num_classes == 10
    with pytest.raises(ConfigError, match="needs a dataset with class labels"):
        ganzoo.create_model("cgan")
    with pytest.raises(ValueError, match="pass class labels"):
        cgan.generator(torch.randn(2, 100))
    # labels change the output of a conditional generator, and not of an unconditional one
    z = torch.randn(2, 100)
    cgan.generator.eval()
    a, b = cgan.generator(z, torch.tensor([0, 0])), cgan.generator(z, torch.tensor([5, 5]))
    assert not torch.allclose(a, b)


def test_variant_defaults_follow_their_papers():
    from torch.nn.utils import parametrize

    sn = ganzoo.create_model("sngan")
    assert parametrize.is_parametrized(sn.discriminator.features[0])
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in sn.discriminator.modules())
    critic = ganzoo.create_model("wgan-gp").discriminator
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.Dropout)) for m in critic.modules())
    with pytest.raises(ConfigError, match="fixed to False"):
        ganzoo.create_model("wgan-gp", d_batchnorm=True)
    acgan = ganzoo.create_model("acgan", num_classes=10)
    assert acgan.discriminator.classifier.out_features == 10 and acgan.generator.num_classes == 10
    out = acgan.discriminator(torch.zeros(2, 1, 28, 28))
    assert isinstance(out, DiscriminatorOutput) and out.extras["classes"].shape == (2, 10)


def test_acgan_adds_its_class_losses_through_the_gan_interface():
    """The trainer knows no class losses: acgan's GAN returns them as extra terms for D and for G."""
    import torch.nn.functional as F

    from ganzoo.interfaces import Batch

    torch.manual_seed(0)
    gan = ganzoo.create_model("acgan", num_classes=10, aux_weight=0.5, width=8)
    y = torch.tensor([1, 7, 7, 2])
    fake = gan.generator(gan.generator.sample_latent(4), y)
    real = torch.rand(4, 1, 28, 28) * 2 - 1
    real_out, fake_out = gan.discriminator(real), gan.discriminator(fake)
    batch = Batch(real, fake, torch.zeros(4, 100), y)
    d_terms = gan.discriminator_terms(real_out, fake_out, batch)
    expected = 0.5 * (F.cross_entropy(real_out.extras["classes"], y) + F.cross_entropy(fake_out.extras["classes"], y))
    assert d_terms.keys() == {"class"} and torch.allclose(d_terms["class"], expected)
    g_terms = gan.generator_terms(fake_out, batch)
    assert torch.allclose(g_terms["class"], 0.5 * F.cross_entropy(fake_out.extras["classes"], y))
    plain = ganzoo.create_model("dcgan", width=8)
    assert plain.discriminator_terms(as_output(torch.zeros(4)), as_output(torch.zeros(4)), batch) == {}


def test_a_discriminator_returning_a_tuple_gets_a_migration_message():
    with pytest.raises(TypeError, match="DiscriminatorOutput.*CHANGELOG"):
        as_output((torch.zeros(2), torch.zeros(2, 10)))


# --- the channels-last promise of the built-in convolutional models -----------------------------

@pytest.mark.parametrize("model", CONV_MODELS)
def test_channels_last_computes_what_contiguous_memory_computes(tmp_path, tiny_data, model):
    torch.manual_seed(0)
    plain = make_trainer(tmp_path / "a", tiny_data, model, channels_last=False)
    torch.manual_seed(0)
    cl = make_trainer(tmp_path / "b", tiny_data, model, channels_last=True)
    assert _layout(next(p for p in cl.gan.parameters() if p.dim() == 4 and p.shape[1] > 1)) == "L"
    idx = torch.arange(24)
    y = plain.labels[idx] if plain.gan.generator.num_classes else None
    real = to_unit_range(plain.images[idx])
    outs = []
    for trainer in (plain, cl):
        torch.manual_seed(1)
        trainer.gan.discriminator.eval()  # no dropout: its masks follow memory order, so they would differ
        trainer.train_step(real, y)
        outs.append(trainer.gan.state_dict())
    for key in outs[0]:
        # Adam's first update is lr * g / (|g| + eps): a gradient within rounding of eps (1e-8) moves
        # its weight by a different fraction of lr (2e-4) in each layout; a layout bug moves most by 2 lr
        torch.testing.assert_close(outs[0][key], outs[1][key], rtol=1e-4, atol=1e-4, msg=key)


