"""The lesson's MNIST networks: a plain stride-2 CNN and the ResNet-ish / DenseNet-ish nets.

Each stage halves the image: 28 -> 14 -> 7 -> 4 -> 2 -> 1, so the last conv leaves a 1x1 map
of class scores that is flattened into logits.
"""

from dataclasses import dataclass
from typing import Literal

from torch import nn

from modules.layers import conv_layer, res_block

MNISTArch = Literal["plain", "resnet", "densenet"]


def mnist_net(
    arch: MNISTArch = "resnet",
    in_channels: int = 1,
    num_classes: int = 10,
    widths: tuple[int, ...] = (8, 16, 32, 16),
    norm_first: bool = False,
) -> nn.Sequential:
    """Builds one of the lesson's three MNIST classifiers.

    ``plain``: stride-2 conv_layers 1 -> 8 -> 16 -> 32 -> 16 -> 10. ``resnet``: each stride-2
    conv_layer is followed by a ``res_block``. ``densenet``: the same with concatenating blocks,
    so every stage hands twice its channels to the next.

    Args:
        arch: ``plain``, ``resnet`` or ``densenet``.
        in_channels: image channels (1 for MNIST).
        num_classes: number of logits.
        widths: channels of the stride-2 stages before the classifying conv.
        norm_first: conv -> BN -> ReLU in every layer instead of the lesson's conv -> ReLU -> BN.
    """
    if arch not in ("plain", "resnet", "densenet"):
        raise ValueError(f"unknown MNIST arch {arch!r}; expected 'plain', 'resnet' or 'densenet'")
    layers: list[nn.Module] = []
    incoming = in_channels
    for width in widths:
        layers.append(conv_layer(incoming, width, stride=2, norm_first=norm_first))
        if arch == "plain":
            incoming = width
        else:
            dense = arch == "densenet"
            layers.append(res_block(width, dense=dense, norm_first=norm_first))
            incoming = 2 * width if dense else width
    # The lesson ends with conv2(16, 10): a stride-2 conv_layer (ReLU and BN included).
    layers.append(conv_layer(incoming, num_classes, stride=2, norm_first=norm_first))
    layers.append(nn.Flatten())  # (B, num_classes, 1, 1) -> (B, num_classes)
    return nn.Sequential(*layers)


@dataclass
class MNISTNetSpec:
    """One of the lesson's MNIST classifiers, everything but its weights.

    Args:
        arch: ``plain``, ``resnet`` or ``densenet``.
        widths: channels of the stride-2 stages (the lesson's 8, 16, 32, 16).
        norm_first: conv -> BN -> ReLU instead of the lesson's conv -> ReLU -> BN (same parameters).
    """

    arch: MNISTArch = "resnet"
    widths: tuple[int, ...] = (8, 16, 32, 16)
    norm_first: bool = False

    def __post_init__(self) -> None:
        self.widths = tuple(int(width) for width in self.widths)

    def build(self, in_channels: int, num_classes: int) -> nn.Sequential:
        return mnist_net(self.arch, in_channels, num_classes, self.widths, self.norm_first)
