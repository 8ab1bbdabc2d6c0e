"""The lesson's GAN critic (fast.ai's ``gan_critic``): a patch classifier of real vs generated."""

from dataclasses import dataclass

from torch import nn

from modules.layers import conv_layer, res_block
from modules.nets.unet_blocks import SelfAttention


def _critic_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """4x4 stride-2 spectral-normalised conv with LeakyReLU 0.2: halves the image."""
    return conv_layer(in_channels, out_channels, kernel_size=4, stride=2, norm="spectral", activation="leaky_relu")


def gan_critic(in_channels: int = 3, width: int = 128, num_blocks: int = 3, dropout: float = 0.15) -> nn.Sequential:
    """Critic that scores every patch of an image: a logit per patch, flattened to (B, P).

    Stem (stride 2) -> dropout -> dense res block (doubling channels) -> ``num_blocks`` x
    [dropout, stride-2 conv doubling channels, the first followed by self-attention] -> a 4x4
    conv without padding to one channel. A 128 px image gives 5x5 = 25 patch logits.

    Args:
        in_channels: image channels.
        width: channels of the stem, doubled by every later stage; the lesson uses 128 (about
            45M parameters), smaller values train far faster on a CPU.
        num_blocks: stride-2 stages after the stem.
        dropout: dropout of the later stages (half of it after the stem).
    """
    layers: list[nn.Module] = [
        _critic_conv(in_channels, width),
        nn.Dropout2d(dropout / 2),
        res_block(width, dense=True, norm="spectral"),
    ]
    channels = 2 * width
    for stage in range(num_blocks):
        layers += [nn.Dropout2d(dropout), _critic_conv(channels, 2 * channels)]
        if stage == 0:
            layers.append(SelfAttention(2 * channels))
        channels *= 2
    layers += [
        conv_layer(channels, 1, kernel_size=4, padding=0, bias=False, norm="spectral", activation="none"),
        nn.Flatten(),  # (B, 1, h, w) -> (B, h * w)
    ]
    return nn.Sequential(*layers)


@dataclass
class CriticSpec:
    """The lesson's patch critic (``gan_critic``), everything but its weights.

    Args:
        width: channels of the stem (the lesson: 128).
        num_blocks: stride-2 stages after the stem.
        dropout: dropout of the later stages (half of it after the stem).
    """

    width: int = 128
    num_blocks: int = 3
    dropout: float = 0.15

    def build(self, in_channels: int) -> nn.Sequential:
        return gan_critic(in_channels, self.width, self.num_blocks, self.dropout)
