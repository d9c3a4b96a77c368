import math

import pytest
import torch

import ganzoo
from ganzoo.testing import conformance

TestResizeConv = conformance("resizeconv")  # ganzoo's checks for every model, one test each


def test_registered_through_the_entry_point():
    assert "resizeconv" in ganzoo.list_models()
    assert "smoothed" in ganzoo.list_losses()
    assert ganzoo.get_model_spec("resizeconv").plugin == "resizeconv"


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_shapes(shape):
    gan = ganzoo.create_model("resizeconv", image_shape=shape, width=8)
    fake = gan.generator(torch.randn(2, 100))
    assert fake.shape == (2, *shape)
    assert gan.discriminator(fake).shape == (2,)


def test_label_smoothing_by_hand():
    loss = ganzoo.create_loss("smoothed", smoothing=0.1)
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    p = 1 / (1 + math.exp(-2.0))
    expected = -(0.9 * math.log(p) + 0.1 * math.log(1 - p)) - math.log(1 - 1 / (1 + math.exp(1.0)))
    assert loss.discriminator_loss(real, fake).item() == pytest.approx(expected, rel=1e-6)
