"""Test-time augmentation for dense prediction: flipped and rescaled views, their probabilities averaged."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class TestTimeAugmentation:
    """Which views of each image to predict and average; one plain view when off (the default).

    Args:
        flip: also predict the mirrored image (left-right), mirrored back before averaging.
        scales: image scales to predict at (1.0 is the image as it is); each prediction is resized
            back to the image's size. Both together give ``2 * len(scales)`` views.
    """

    __test__ = False  # a dataclass named Test*, not a test case

    flip: bool = False
    scales: list[float] = field(default_factory=lambda: [1.0])

    @property
    def enabled(self) -> bool:
        return self.flip or list(self.scales) != [1.0]


def averaged_probabilities(
    predict: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    flip: bool,
    scales: Sequence[float],
    plain_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """The mean of the softmax probabilities of every view, at the images' size.

    Probabilities, not logits, are averaged: a view that is unsure (near-uniform probabilities)
    then counts for less than one that is sure, instead of its large negative logits dragging the mean.

    Args:
        predict: images (B, 3, h, w) -> logits (B, C, h, w); any h, w.
        images: (B, 3, H, W).
        flip: add each scale's mirrored view.
        scales: image scales, 1.0 for the image as it is.
        plain_logits: ``predict(images)`` when already computed, to reuse for the 1.0 view.

    Returns:
        (B, C, H, W) probabilities.
    """
    size = images.shape[-2:]
    total, views = None, 0
    for scale in scales:
        scaled = images if scale == 1 else F.interpolate(
            images, scale_factor=float(scale), mode="bilinear", align_corners=False, recompute_scale_factor=True)
        for mirrored in (False, True) if flip else (False,):
            if scale == 1 and not mirrored and plain_logits is not None:
                logits = plain_logits
            else:
                logits = predict(scaled.flip(-1) if mirrored else scaled)
                logits = logits.flip(-1) if mirrored else logits
            probabilities = logits.float().softmax(dim=1)  # (B, C, h, w)
            if probabilities.shape[-2:] != size:
                probabilities = F.interpolate(probabilities, size=size, mode="bilinear", align_corners=False)
            total = probabilities if total is None else total + probabilities
            views += 1
    return total / views
