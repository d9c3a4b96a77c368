import pytest
import torch
from torch import nn

import ganzoo
from ganzoo.errors import ConfigError, UnknownNameError
from ganzoo.interfaces import GAN, Discriminator, Generator

SHAPES = [(1, 28, 28), (3, 32, 32)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", ganzoo.list_models())
def test_every_registered_model_builds_and_trains_one_step(name, shape):
    torch.manual_seed(0)
    gan = ganzoo.create_model(name, image_shape=shape, num_classes=10)
    assert isinstance(gan, GAN)
    assert isinstance(gan.generator, Generator) and isinstance(gan.discriminator, Discriminator)
    y = torch.tensor([0, 3, 9, 3]) if gan.generator.num_classes else None
    z = gan.generator.sample_latent(4)
    assert z.shape == (4, gan.latent_dim)
    fake = gan.generator(z, y)
    assert fake.shape == (4, *shape)
    assert fake.min() >= -1 and fake.max() <= 1
    out = gan.discriminator(fake, y)
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (4,)
    if isinstance(out, tuple):
        assert out[1].shape == (4, 10)
    logits.mean().backward()
    grads = [p.grad for n, p in gan.generator.named_parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    images = gan.generator.sample(3, y=y[:3] if y is not None else None)
    assert images.shape == (3, *shape) and gan.generator.training


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
    with pytest.raises(ConfigError, match="cannot use BatchNorm"):
        ganzoo.create_model("wgan-gp", d_batchnorm=True)
    acgan = ganzoo.create_model("acgan", num_classes=10)
    assert acgan.discriminator.classifier.out_features == 10 and acgan.generator.num_classes == 10
