"""Small reusable blocks shared by every task: the lesson's ``conv_layer`` and ``res_block``.

The lesson's building block is conv -> ReLU -> batch norm (in that order, which fast.ai found to
train slightly better than conv -> BN -> ReLU; ``norm_first`` gives the other order, to compare).
Residual and dense blocks are built from one idea: a body that remembers its input, plus a merge
that either adds the input back (ResNet) or concatenates it (DenseNet).
"""

from typing import Literal

import torch
from torch import nn

NormType = Literal["batch", "batch_zero", "weight", "spectral", "none"]
Activation = Literal["relu", "leaky_relu", "none"]


def _activation(name: Activation) -> nn.Module | None:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2, inplace=True)
    if name == "none":
        return None
    raise ValueError(f"unknown activation {name!r}; expected 'relu', 'leaky_relu' or 'none'")


def reparametrized(conv: nn.Module, norm: NormType) -> nn.Module:
    """``conv`` with its weight weight- or spectral-normalised when ``norm`` says so; else as it is.

    Raises:
        ValueError: an unknown norm.
    """
    if norm == "weight":
        return nn.utils.parametrizations.weight_norm(conv)
    if norm == "spectral":
        return nn.utils.parametrizations.spectral_norm(conv)
    if norm not in ("batch", "batch_zero", "none"):
        raise ValueError(f"unknown norm {norm!r}; expected one of {NormType.__args__}")
    return conv


def conv_layer(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    norm: NormType = "batch",
    activation: Activation = "relu",
    padding: int | None = None,
    bias: bool | None = None,
    transpose: bool = False,
    norm_first: bool = False,
) -> nn.Sequential:
    """Conv -> activation -> norm, with "same" padding and Kaiming initialisation.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        kernel_size: square kernel size; padding keeps the size at stride 1.
        stride: 2 halves height and width.
        norm: ``batch`` (after the activation), ``batch_zero`` (batch norm whose scale starts at
            zero, so a residual branch starts as the identity), ``weight`` or ``spectral`` (a
            reparametrisation of the conv weight), or ``none``.
        activation: ``relu``, ``leaky_relu`` (slope 0.2, the critic's) or ``none``.
        padding: pixels of zero padding; by default ``(kernel_size - 1) // 2``, which keeps the
            size at stride 1 and halves it at stride 2 (also for the GANs' 4x4 kernels).
        bias: whether the conv has a bias; by default only when no batch norm follows.
        transpose: a transposed conv (upsampling by ``stride``), as in the DCGAN generator.
        norm_first: batch norm before the activation (conv -> BN -> ReLU, torchvision's ResNets).
    """
    uses_batch_norm = norm in ("batch", "batch_zero")
    conv_class = nn.ConvTranspose2d if transpose else nn.Conv2d
    conv = conv_class(
        in_channels, out_channels, kernel_size, stride=stride,
        padding=(kernel_size - 1) // 2 if padding is None else padding,
        bias=not uses_batch_norm if bias is None else bias,
    )
    nonlinearity = "leaky_relu" if activation == "leaky_relu" else "relu"
    nn.init.kaiming_normal_(conv.weight, a=0.2 if activation == "leaky_relu" else 0.0,
                            nonlinearity=nonlinearity)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    layers: list[nn.Module] = [reparametrized(conv, norm)]
    act = _activation(activation)
    if act is not None:
        layers.append(act)
    if uses_batch_norm:
        bn = nn.BatchNorm2d(out_channels)
        if norm == "batch_zero":
            nn.init.zeros_(bn.weight)
        layers.insert(1 if norm_first else len(layers), bn)
    return nn.Sequential(*layers)


class Merge(nn.Module):
    """Joins a block's output with the block's input: adds them, or concatenates on channels.

    Args:
        dense: concatenate (DenseNet) instead of adding (ResNet).
    """

    def __init__(self, dense: bool = False):
        super().__init__()
        self.dense = dense

    def forward(self, output: torch.Tensor, block_input: torch.Tensor) -> torch.Tensor:
        if self.dense:
            return torch.cat([output, block_input], dim=1)  # (B, C_out + C_in, H, W)
        return output + block_input

    def extra_repr(self) -> str:
        return "concatenate" if self.dense else "add"


class ShortcutBlock(nn.Module):
    """A sequential body that remembers its input and merges it back into the body's output.

    Args:
        body: the layers the input flows through.
        merge: how the untouched input joins the body's output.
    """

    def __init__(self, body: nn.Module, merge: Merge):
        super().__init__()
        self.body = body
        self.merge = merge

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.merge(self.body(x), x)


def res_block(channels: int, dense: bool = False, norm: NormType = "batch", norm_first: bool = False) -> ShortcutBlock:
    """Two 3x3 ``conv_layer``s with a shortcut: ``x + f(x)`` or, dense, ``cat(f(x), x)``.

    A dense block's output has ``2 * channels`` channels. In the residual (adding) form with batch
    norm, the second conv's batch-norm scale starts at zero, so the block starts as the identity
    and a deep stack trains as stably as a shallow one.

    Args:
        channels: channels of input and body output.
        dense: concatenate the input instead of adding it.
        norm: norm for both convs (see ``conv_layer``).
        norm_first: batch norm before each ReLU (see ``conv_layer``).
    """
    second_norm: NormType = "batch_zero" if (norm == "batch" and not dense) else norm
    body = nn.Sequential(
        conv_layer(channels, channels, norm=norm, norm_first=norm_first),
        conv_layer(channels, channels, norm=second_norm, norm_first=norm_first),
    )
    return ShortcutBlock(body, Merge(dense))
