"""The lesson's feature (perceptual) loss: compare images through a frozen ImageNet VGG."""

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from modules.checkpoints import keep_out_of_checkpoints
from modules.nets.encoders import build_encoder, load_encoder_weights


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """Channel-by-channel correlations of a feature map, the texture statistic of style transfer.

    (B, C, H, W) -> (B, C, C), scaled by 1 / (C * H * W) so layers of any size weigh alike.
    """
    batch, channels, height, width = features.shape
    flat = features.reshape(batch, channels, height * width)  # (B, C, HW)
    return flat @ flat.transpose(1, 2) / (channels * height * width)  # (B, C, C)


class FeatureLoss(nn.Module):
    """Pixel L1 plus L1 distances between VGG activations and between their Gram matrices.

    ``loss = L1(x, y) + sum_i w_i * L1(f_i(x), f_i(y)) + sum_i w_i**2 * gram_scale * L1(G(f_i(x)), G(f_i(y)))``
    where ``f_i`` are the activations just before the last max-pools of VGG16, one per weight
    (the lesson: the last three, weights 5, 15, 2; gram scale 5e3). Inputs are ImageNet-normalised
    images, as VGG expects.

    The extractor is frozen: it never trains (``train()`` leaves it in eval mode), takes no
    gradient for its weights, and is left out of this module's ``state_dict`` (it is rebuilt from
    its source instead of being stored in every checkpoint). It is built with random weights;
    ``load_weights`` fills it, which a training run does when it starts.

    Args:
        arch: ``vgg16`` or ``vgg16_bn`` (torchvision).
        weights: ``imagenet`` (torchvision weights, downloaded), a local state-dict path, or None
            to start random (``load_weights`` later).
        layer_weights: weight of each compared layer, deepest last.
        gram_scale: extra factor on the Gram terms.
        pixel: the pixel term: ``l1`` (the lesson's) or ``mse``, the distance PSNR measures.
        pixel_weight: its weight.
    """

    def __init__(
        self,
        arch: str = "vgg16",
        weights: str | None = None,
        layer_weights: Sequence[float] = (5.0, 15.0, 2.0),
        gram_scale: float = 5e3,
        pixel: Literal["l1", "mse"] = "l1",
        pixel_weight: float = 1.0,
    ):
        super().__init__()
        self.arch = arch
        with torch.device("meta"):  # shapes only: VGG's classifier alone would be 100M random numbers
            body = build_encoder(arch, None)
        pools = [index for index, layer in enumerate(body) if isinstance(layer, nn.MaxPool2d)]
        if len(pools) < len(layer_weights):
            raise ValueError(f"{arch} has {len(pools)} max-pools; cannot compare {len(layer_weights)} layers")
        # The activation feeding each of the last max-pools; nothing after the deepest is needed.
        self.tap_indices = [index - 1 for index in pools[-len(layer_weights):]]
        self.extractor = _materialized(body[: self.tap_indices[-1] + 1]).eval().requires_grad_(False)
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.gram_scale = gram_scale
        self.pixel_distance = {"l1": F.l1_loss, "mse": F.mse_loss}[pixel]
        self.pixel_weight = pixel_weight
        keep_out_of_checkpoints(self, "extractor")
        if weights is not None:
            self.load_weights(weights)

    def load_weights(self, weights: str, option: str = "--model.feature_weights") -> None:
        """Fills the extractor with pretrained weights: ``imagenet`` or a local state-dict path.

        Raises:
            UserInputError: the weights cannot be had (missing file, another network, no network
                for the download); names ``option``.
        """
        load_encoder_weights(self.extractor, self.arch, weights, cut=len(self.extractor), option=option)

    def train(self, mode: bool = True) -> "FeatureLoss":
        super().train(mode)
        self.extractor.eval()  # batch norm statistics (vgg16_bn) stay ImageNet's
        return self

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """Activations at the tapped layers, shallowest first."""
        taps, out = [], images
        for index, layer in enumerate(self.extractor):
            out = layer(out)
            if index in self.tap_indices:
                taps.append(out)
        return taps

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns ``loss`` (the total) and each term: ``pixel``, ``feat_<i>``, ``gram_<i>``.

        Under autocast the extractor's convs run in the low precision, but the differences and the
        Gram matrices are computed in float32: a Gram entry sums H x W products of activations,
        which overflows float16 (its largest value is 65504) on ordinary photos.
        """
        with torch.no_grad():
            target_features = self.features(target)
        prediction_features = self.features(prediction)
        with torch.autocast(prediction.device.type, enabled=False):
            terms = {"pixel": self.pixel_weight * self.pixel_distance(prediction.float(), target.float())}
            for i, (weight, mine, theirs) in enumerate(
                zip(self.layer_weights, prediction_features, target_features, strict=True)
            ):
                mine, theirs = mine.float(), theirs.float()
                terms[f"feat_{i}"] = weight * F.l1_loss(mine, theirs)
                terms[f"gram_{i}"] = weight**2 * self.gram_scale * F.l1_loss(gram_matrix(mine), gram_matrix(theirs))
            terms["loss"] = sum(terms.values())
        return terms


def _materialized(layers: nn.Sequential) -> nn.Sequential:
    """Meta-device layers given real memory and VGG's own initialisation (He for convs, as torchvision's VGG)."""
    layers = layers.to_empty(device="cpu")
    for layer in layers.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.kaiming_normal_(layer.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            layer.reset_parameters()
            layer.reset_running_stats()
    return layers
