"""The lesson's U-Net (fast.ai's ``DynamicUnet``): a decoder grown to fit any CNN encoder.

The decoder is sized by running a dummy batch through the encoder with forward hooks that
record every layer's output shape; wherever the next layer's output is smaller, this layer's output
is a skip connection, and the decoder gets one block per skip, deepest first. The hooks are
removed as soon as the shapes are known: at run time ``forward`` walks the encoder's layers itself
and keeps the skip outputs (with their gradients), so the model holds no hooks and pickles,
deep-copies and wraps in DDP like any module.
"""

from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from modules.layers import NormType, conv_layer, res_block
from modules.nets.encoders import build_encoder, load_encoder_weights
from modules.nets.unet_blocks import PixelShuffleICNR, UNetBlock


@contextmanager
def _recording_output_shapes(layers: nn.Sequential):
    """Forward hooks that append each layer's output shape to the yielded list; removed on exit."""
    shapes: list[torch.Size] = []
    handles = [layer.register_forward_hook(lambda _m, _i, output: shapes.append(output.shape)) for layer in layers]
    try:
        yield shapes
    finally:
        for handle in handles:
            handle.remove()


def skip_indices(shapes: list[torch.Size]) -> list[int]:
    """Indices of the layers whose output is the last at its resolution (fast.ai's ``_get_sfs_idxs``)."""
    return [i for i in range(len(shapes) - 1) if shapes[i][-2:] != shapes[i + 1][-2:]]


class UNet(nn.Module):
    """U-Net on an encoder: middle block, one ``UNetBlock`` per skip, last cross, 1x1 head.

    Any input height and width works (not only multiples of 32): each decoder block matches its
    skip's size, and the output has the input's size.

    Args:
        encoder: the encoder's layers in order (see ``build_encoder``).
        num_classes: output channels (classes for segmentation, 3 for images).
        in_channels: input image channels.
        blur: blur after each upsampling (against checkerboard artefacts).
        blur_final: blur the last block's upsampling too (when ``blur``).
        self_attention: self-attention in the third-from-last decoder block.
        y_range: (low, high): squash outputs with a sigmoid scaled to this range (image outputs).
        last_cross: concatenate the input image after the last upsampling, then a ``res_block``.
        norm: decoder norm: ``none`` (the lesson's CamVid U-Net), ``batch`` or ``weight``.
        residual: predict a correction to the input image instead of the image (VDSR's residual
            learning; needs ``num_classes == in_channels``). The head starts at zero, so the untrained
            net returns its input and training only has to learn what the input lacks, where the
            plain U-Net first spends epochs learning to copy it. With ``y_range`` the correction
            is added in the sigmoid's logit space, so the output stays inside the range.
        probe_size: (H, W) of the dummy batch that sizes the decoder; big enough that the encoder's
            deepest output is at least 2x2.
    """

    def __init__(
        self,
        encoder: nn.Sequential,
        num_classes: int,
        in_channels: int = 3,
        blur: bool = False,
        blur_final: bool = True,
        self_attention: bool = False,
        y_range: tuple[float, float] | None = None,
        last_cross: bool = True,
        norm: NormType = "none",
        residual: bool = False,
        probe_size: tuple[int, int] = (128, 128),
    ):
        super().__init__()
        if residual and num_classes != in_channels:
            raise ValueError(f"residual=True needs as many outputs as input channels, got {num_classes} "
                             f"outputs for {in_channels} input channels")
        self.encoder = encoder
        self.in_channels = in_channels
        was_training = encoder.training
        encoder.eval()  # a batch of one must not disturb (or trip over) the batch-norm statistics
        with torch.no_grad(), _recording_output_shapes(encoder) as shapes:
            deepest = encoder(torch.zeros(1, in_channels, *probe_size))
        encoder.train(was_training)
        self.skip_indices = skip_indices(shapes)
        channels = deepest.shape[1]

        self.middle = nn.Sequential(
            nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
            conv_layer(channels, channels * 2, norm=norm), conv_layer(channels * 2, channels, norm=norm),
        )
        blocks = []
        for i, index in enumerate(reversed(self.skip_indices)):
            not_final = i != len(self.skip_indices) - 1
            block = UNetBlock(
                channels, shapes[index][1], final_div=not_final, blur=blur and (not_final or blur_final),
                self_attention=self_attention and i == len(self.skip_indices) - 3, norm=norm,
            )
            blocks.append(block)
            channels = block.out_channels
        self.blocks = nn.ModuleList(blocks)
        # The first skip is at half the input size for most encoders (at full size for VGG).
        first_is_full_size = tuple(shapes[self.skip_indices[0]][-2:]) == tuple(probe_size) if blocks else True
        self.final_upsample = nn.Identity() if first_is_full_size else PixelShuffleICNR(channels, norm=norm)
        self.cross = res_block(channels + in_channels, norm=norm) if last_cross else None
        if last_cross:
            channels += in_channels
        self.head = conv_layer(channels, num_classes, kernel_size=1, norm=norm, activation="none")
        self.y_range = tuple(y_range) if y_range is not None else None
        self.residual = residual
        if residual:
            _zero_weight(self.head[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for index, layer in enumerate(self.encoder):
            h = layer(h)
            if index in self.skip_indices:
                skips.append(h)  # kept with its graph: the encoder learns through the skips too
        h = self.middle(h)  # (B, C_deep, H/32, W/32)
        for block, skip in zip(self.blocks, reversed(skips)):
            h = block(h, skip)
        # Odd sizes come back a pixel too large: back to the input's size. Done always (a no-op copy
        # when the sizes agree), so that the graph holds no branch on the input's size and exports
        # with dynamic height and width.
        h = F.interpolate(self.final_upsample(h), size=x.shape[-2:], mode="nearest")
        if self.cross is not None:
            h = self.cross(torch.cat([h, x], dim=1))  # (B, C + C_in, H, W)
        h = self.head(h)  # (B, num_classes, H, W)
        if self.y_range is not None:
            low, high = self.y_range
            if self.residual:
                h = h + torch.logit(((x - low) / (high - low)).clamp(1e-4, 1 - 1e-4))
            return torch.sigmoid(h) * (high - low) + low
        return x + h if self.residual else h


def _zero_weight(conv: nn.Module) -> None:
    """Makes a conv output zeros (weight and bias), whether or not its weight is weight-normalised."""
    with torch.no_grad():
        parametrized = getattr(conv, "parametrizations", None)
        if parametrized is not None and hasattr(parametrized, "weight"):
            parametrized.weight.original0.zero_()  # weight norm's magnitude g: weight = g * v / |v|
        else:
            conv.weight.zero_()
        if conv.bias is not None:
            conv.bias.zero_()


@dataclass
class UNetSpec:
    """A U-Net on a torchvision encoder, everything but its weights: fast.ai's ``unet_learner`` options.

    Args:
        encoder: torchvision classifier whose body is the encoder (``resnet34``, ``mobilenet_v2``, ...).
        encoder_cut: keep the encoder body's layers ``[:encoder_cut]`` (``-1`` on ``mobilenet_v2``
            drops the 1x1 expansion to 1280 channels); None keeps all.
        norm: decoder norm: ``none`` (the lesson's CamVid U-Net), ``batch`` or ``weight`` (its generator).
        blur: blur after each decoder upsampling (against checkerboard artefacts).
        blur_final: blur the last block's upsampling too (when ``blur``).
        self_attention: self-attention in the third-from-last decoder block.
        last_cross: concatenate the input image before the last ``res_block``.
        y_range: (low, high) range of the outputs (image outputs; ImageNet-normalised pixels lie
            within about -2.2..2.7), or None for unbounded outputs (class scores).
        residual: predict a correction to the input image instead of the image (see ``UNet``).
    """

    encoder: str = "resnet34"
    encoder_cut: int | None = None
    norm: NormType = "none"
    blur: bool = False
    blur_final: bool = True
    self_attention: bool = False
    last_cross: bool = True
    y_range: tuple[float, float] | None = None
    residual: bool = False

    def __post_init__(self) -> None:
        if self.y_range is not None:
            self.y_range = (float(self.y_range[0]), float(self.y_range[1]))

    def build(self, in_channels: int, out_channels: int) -> UNet:
        """The U-Net with a randomly initialised encoder (see ``load_encoder_weights`` for pretrained ones)."""
        encoder = build_encoder(self.encoder, None, self.encoder_cut, in_channels)
        return UNet(encoder, out_channels, in_channels=in_channels, blur=self.blur, blur_final=self.blur_final,
                    self_attention=self.self_attention, y_range=self.y_range, last_cross=self.last_cross,
                    norm=self.norm, residual=self.residual)

    def load_encoder_weights(self, net: UNet, weights: str, option: str = "--model.encoder_weights") -> None:
        """Fills ``net``'s encoder (built by ``build``) with pretrained weights: ``imagenet`` or a file."""
        load_encoder_weights(net.encoder, self.encoder, weights, self.encoder_cut, net.in_channels, option)
