import pytest
import torch
from torch import nn

from skingen.errors import SkingenError
from skingen.nn.blocks import ConvDecoder, Discriminator, ResizeConv, check_size


def test_resize_conv_equals_nearest_upsample_then_conv():
    torch.manual_seed(0)
    fast = ResizeConv(6, 5)
    plain = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), fast.conv)
    x = torch.randn(2, 6, 7, 9, requires_grad=True)
    a, b = fast(x), plain(x)
    assert a.shape == (2, 5, 14, 18)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    # same gradients for the input and for the (shared) 3x3 weights
    ga = torch.autograd.grad(a.square().sum(), [x, fast.conv.weight])
    gb = torch.autograd.grad(b.square().sum(), [x, fast.conv.weight])
    for u, v in zip(ga, gb):
        torch.testing.assert_close(u, v, atol=1e-4, rtol=1e-5)


def test_decoder_and_discriminator_shapes():
    dec = ConvDecoder(32, 10, channels=8, max_channels=32)
    img = dec(torch.randn(3, 10))
    assert img.shape == (3, 3, 32, 32) and img.abs().max() <= 1
    assert Discriminator(32, 8, 32, sn=True)(img).shape == (3,)
    assert check_size(256) == 6
    with pytest.raises(SkingenError, match="power of two"):
        check_size(48)
