"""The DCGAN-style generator and critic of the lesson's WGAN (fast.ai's ``basic_generator/critic``)."""

import math
from dataclasses import dataclass

from torch import nn

from modules.layers import conv_layer


def _check_size(image_size: int) -> int:
    steps = math.log2(image_size)
    if image_size < 8 or steps != int(steps):
        raise ValueError(f"image_size must be a square whose side is a power of two >= 8, not {image_size}")
    return int(steps)


def dcgan_generator(
    image_size: int = 64, out_channels: int = 3, noise_dim: int = 100, width: int = 64
) -> nn.Sequential:
    """Noise (B, noise_dim, 1, 1) -> image (B, out_channels, S, S) in [-1, 1].

    A 4x4 transposed conv makes a 4x4 map with ``width * S / 8`` channels; each stride-2
    transposed conv_layer then doubles the size and halves the channels; the last one makes the
    image, squashed by tanh.

    Args:
        image_size: output side, a power of two.
        out_channels: image channels.
        noise_dim: length of the noise vector.
        width: channels of the last hidden layer.
    """
    steps = _check_size(image_size)
    channels = width * image_size // 8
    layers: list[nn.Module] = [conv_layer(noise_dim, channels, kernel_size=4, padding=0, transpose=True)]
    for _ in range(steps - 3):  # 4 -> image_size / 2
        layers.append(conv_layer(channels, channels // 2, kernel_size=4, stride=2, padding=1, transpose=True))
        channels //= 2
    layers += [nn.ConvTranspose2d(channels, out_channels, 4, stride=2, padding=1, bias=False), nn.Tanh()]
    return nn.Sequential(*layers)


def dcgan_critic(image_size: int = 64, in_channels: int = 3, width: int = 64) -> nn.Sequential:
    """Image (B, C, S, S) -> one unbounded score per image (B,), the Wasserstein critic.

    Args:
        image_size: input side, a power of two.
        in_channels: image channels.
        width: channels of the first conv; doubled at each halving.
    """
    steps = _check_size(image_size)
    layers: list[nn.Module] = [
        conv_layer(in_channels, width, kernel_size=4, stride=2, padding=1, norm="none", activation="leaky_relu")
    ]
    channels = width
    for _ in range(steps - 3):  # image_size / 2 -> 4
        layers.append(conv_layer(channels, 2 * channels, kernel_size=4, stride=2, padding=1, activation="leaky_relu"))
        channels *= 2
    layers += [nn.Conv2d(channels, 1, 4, padding=0), nn.Flatten(0)]  # (B, 1, 1, 1) -> (B,)
    return nn.Sequential(*layers)


@dataclass
class DCGANSpec:
    """The WGAN's DCGAN-style generator and critic, everything but their weights and image size.

    Args:
        noise_dim: length of the generator's noise vector.
        width: width of both networks (the generator's last hidden layer, the critic's first).
    """

    noise_dim: int = 100
    width: int = 64

    def build_generator(self, image_size: int, channels: int) -> nn.Sequential:
        return dcgan_generator(image_size, channels, self.noise_dim, self.width)

    def build_critic(self, image_size: int, channels: int) -> nn.Sequential:
        return dcgan_critic(image_size, channels, self.width)
