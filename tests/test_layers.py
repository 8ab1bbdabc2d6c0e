import pytest
import torch

from modules.layers import Merge, conv_layer, res_block


@pytest.mark.parametrize("stride, size", [(1, 28), (2, 14)])
def test_conv_layer_keeps_or_halves_size(stride, size):
    layer = conv_layer(3, 8, stride=stride)
    assert layer(torch.randn(2, 3, 28, 28)).shape == (2, 8, size, size)


def test_conv_layer_order_is_conv_relu_batchnorm():
    kinds = [type(m).__name__ for m in conv_layer(3, 8)]
    assert kinds == ["Conv2d", "ReLU", "BatchNorm2d"]


def test_conv_layer_norm_first_puts_batchnorm_before_relu():
    kinds = [type(m).__name__ for m in conv_layer(3, 8, norm_first=True)]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU"]


def test_res_block_with_norm_first_starts_as_identity():
    # ReLU of a zero-scaled batch norm is zero as well, so the identity start holds in either order.
    block = res_block(8, norm_first=True).train()
    x = torch.randn(4, 8, 7, 7)
    assert torch.allclose(block(x), x)


@pytest.mark.parametrize("norm", ["batch", "batch_zero", "weight", "spectral", "none"])
def test_conv_layer_norms_run(norm):
    out = conv_layer(4, 6, norm=norm, activation="leaky_relu")(torch.randn(2, 4, 9, 11))
    assert out.shape == (2, 6, 9, 11) and torch.isfinite(out).all()


def test_conv_layer_rejects_unknown_norm():
    with pytest.raises(ValueError, match="unknown norm"):
        conv_layer(1, 1, norm="group")


def test_res_block_adds_and_keeps_channels():
    block = res_block(8)
    assert isinstance(block.merge, Merge) and not block.merge.dense
    assert block(torch.randn(2, 8, 7, 7)).shape == (2, 8, 7, 7)


def test_res_block_starts_as_identity():
    # The second batch norm's scale starts at zero, so the body adds nothing at first.
    block = res_block(8).train()
    x = torch.randn(4, 8, 7, 7)
    assert torch.allclose(block(x), x)


def test_dense_block_concatenates_and_doubles_channels():
    block = res_block(8, dense=True)
    x = torch.randn(2, 8, 7, 7)
    out = block(x)
    assert out.shape == (2, 16, 7, 7)
    assert torch.equal(out[:, 8:], x)  # the input itself rides along unchanged
