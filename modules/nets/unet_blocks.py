"""The U-Net decoder's pieces: ICNR pixel-shuffle upsampling, self-attention and the decoder block.

These follow fast.ai v1 (``PixelShuffle_ICNR``, ``SelfAttention``, ``UnetBlock``), the code the
2019 lesson ran.
"""

import torch
import torch.nn.functional as F
from torch import nn

from modules.layers import NormType, conv_layer, reparametrized


def icnr_(weight: torch.Tensor, scale: int = 2) -> torch.Tensor:
    """ICNR initialisation (Aitken et al. 2017) of a conv weight that feeds ``PixelShuffle(scale)``.

    Pixel shuffle turns channels ``c * scale**2 + i`` into the ``scale**2`` sub-pixels of output
    channel ``c``; giving those channels the same kernel makes the upsampled image start as a
    nearest-neighbour upsampling of a normal conv, free of checkerboard artefacts.
    """
    out_channels, in_channels, height, width = weight.shape
    subkernel = torch.empty(out_channels // scale**2, in_channels, height, width)
    nn.init.kaiming_normal_(subkernel)
    with torch.no_grad():
        weight.copy_(subkernel.repeat_interleave(scale**2, dim=0))  # (C_out, C_in, kh, kw)
    return weight


class PixelShuffleICNR(nn.Module):
    """Doubles height and width: 1x1 conv to 4x channels (ICNR), ReLU, pixel shuffle, optional blur.

    The blur (replication pad by one pixel on the top and left, then a 2x2 average pool of stride
    1) smooths what checkerboard artefacts remain, at the same size.

    Args:
        in_channels: channels in.
        out_channels: channels out (``in_channels`` when None).
        blur: add the blur.
        norm: ``none``, ``batch`` (after the conv) or ``weight`` (weight norm of the conv).
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, blur: bool = False,
                 norm: NormType = "none"):
        super().__init__()
        out_channels = out_channels or in_channels
        conv = nn.Conv2d(in_channels, out_channels * 4, 1, bias=norm not in ("batch", "batch_zero"))
        icnr_(conv.weight)
        if conv.bias is not None:
            nn.init.zeros_(conv.bias)
        layers: list[nn.Module] = [reparametrized(conv, norm)]
        if norm in ("batch", "batch_zero"):
            layers.append(nn.BatchNorm2d(out_channels * 4))
        layers += [nn.ReLU(inplace=True), nn.PixelShuffle(2)]
        if blur:
            layers += [nn.ReplicationPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, stride=1)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # (B, C, H, W) -> (B, C_out, 2H, 2W)


class SelfAttention(nn.Module):
    """SAGAN self-attention over all positions, added to the input with a learnt scale from 0.

    Args:
        channels: channels in and out; queries and keys use ``channels // 8``.
    """

    def __init__(self, channels: int):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.query = sn(nn.Conv1d(channels, max(channels // 8, 1), 1, bias=False))
        self.key = sn(nn.Conv1d(channels, max(channels // 8, 1), 1, bias=False))
        self.value = sn(nn.Conv1d(channels, channels, 1, bias=False))
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        flat = x.reshape(batch, channels, height * width)  # (B, C, N)
        query, key, value = self.query(flat), self.key(flat), self.value(flat)  # (B, C/8, N) x2, (B, C, N)
        # fast.ai's form: softmax over the attending positions (dim 1), output o_j = sum_i v_i beta_ij.
        beta = F.softmax(torch.bmm(query.transpose(1, 2), key), dim=1)  # (B, N, N)
        out = self.gamma * torch.bmm(value, beta) + flat  # (B, C, N)
        return out.reshape(batch, channels, height, width)


class UNetBlock(nn.Module):
    """One decoder step: upsample, batch-normed skip, concatenate, ReLU, two conv_layers.

    Args:
        up_channels: channels of the decoder input (halved by the upsampling).
        skip_channels: channels of the encoder feature joined at this resolution.
        final_div: keep the concatenated width in the convs (False halves it, for the last block).
        blur: blur after the pixel shuffle.
        self_attention: self-attention after the second conv.
        norm: norm of the convs and the upsampling (see ``conv_layer``).
    """

    def __init__(self, up_channels: int, skip_channels: int, final_div: bool = True, blur: bool = False,
                 self_attention: bool = False, norm: NormType = "none"):
        super().__init__()
        self.upsample = PixelShuffleICNR(up_channels, up_channels // 2, blur=blur, norm=norm)
        self.skip_norm = nn.BatchNorm2d(skip_channels)
        channels = up_channels // 2 + skip_channels
        out_channels = channels if final_div else channels // 2
        convs = [conv_layer(channels, out_channels, norm=norm), conv_layer(out_channels, out_channels, norm=norm)]
        if self_attention:
            convs.append(SelfAttention(out_channels))
        self.convs = nn.Sequential(*convs)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # Odd sizes (97 -> 49 -> 25 ...) come back one pixel too large: match the skip, always (a
        # no-op copy when the sizes agree), so that the graph holds no branch on the input's size.
        up = F.interpolate(self.upsample(x), size=skip.shape[-2:], mode="nearest")  # (B, C_up/2, H, W)
        joined = F.relu(torch.cat([up, self.skip_norm(skip)], dim=1))  # (B, C_up/2 + C_skip, H, W)
        return self.convs(joined)
