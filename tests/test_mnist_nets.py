import pytest
import torch
import torch.nn.functional as F

from modules.nets.mnist import mnist_net


@pytest.mark.parametrize("arch", ["plain", "resnet", "densenet"])
def test_logits_shape_and_finite(arch):
    logits = mnist_net(arch)(torch.randn(3, 1, 28, 28))
    assert logits.shape == (3, 10) and torch.isfinite(logits).all()


@pytest.mark.parametrize("arch", ["plain", "resnet", "densenet"])
def test_every_parameter_gets_a_gradient(arch):
    net = mnist_net(arch)
    # Residual blocks start with a zero batch-norm scale, which blocks the gradient to the conv
    # before it at step 0 by design; give those scales a value so every path is exercised.
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(module.weight)
    F.cross_entropy(net(torch.randn(4, 1, 28, 28)), torch.tensor([0, 1, 2, 3])).backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_densenet_stages_receive_doubled_channels():
    net = mnist_net("densenet", widths=(8, 16))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    # stage 1: 1->8, block 8->8 (x2); stage 2 sees 16 channels; last conv sees 32.
    assert [c.in_channels for c in convs] == [1, 8, 8, 16, 16, 16, 32]


def test_resnet_matches_lesson_layout():
    net = mnist_net("resnet")
    parameters = sum(p.numel() for p in net.parameters())
    # Bias-free 3x3 convs plus batch-norm scale and shift, stage by stage:
    # conv 1->8 (72+16), block 8 (2x(576+16)), conv 8->16 (1152+32), block 16 (2x(2304+32)),
    # conv 16->32 (4608+64), block 32 (2x(9216+64)), conv 32->16 (4608+32), block 16, conv 16->10 (1440+20).
    assert parameters == 88 + 1184 + 1184 + 4672 + 4672 + 18560 + 4640 + 4672 + 1460


def test_norm_first_reorders_every_layer_and_keeps_the_parameters():
    lesson, reordered = mnist_net("resnet"), mnist_net("resnet", norm_first=True)
    assert sum(p.numel() for p in reordered.parameters()) == sum(p.numel() for p in lesson.parameters())
    orders = {tuple(type(m).__name__ for m in layer) for layer in reordered.modules()
              if isinstance(layer, torch.nn.Sequential) and isinstance(layer[0], torch.nn.Conv2d)}
    assert orders == {("Conv2d", "BatchNorm2d", "ReLU")}


def test_unknown_arch_is_rejected():
    with pytest.raises(ValueError, match="unknown MNIST arch"):
        mnist_net("vgg")
