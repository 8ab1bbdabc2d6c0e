"""PSNR, SSIM and LPIPS of restored images, and of the damaged inputs they started from."""

import torch
from torch import nn
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from modules.perceptual import PerceptualSimilarity


class ImageQualityMetrics(nn.Module):
    """torchmetrics PSNR (mean over images) and SSIM for outputs and for inputs, against targets.

    All images in [0, 1]. The input scores are the baseline the model must beat. Scores are
    computed in float32 even inside a mixed-precision step: under bf16 autocast SSIM's Gaussian
    windows would run in bf16 and come out far too low. ``add_lpips`` adds the perceptual
    distance (``lpips``, ``lpips_input``), which needs AlexNet's weights.
    """

    def __init__(self):
        super().__init__()
        self.psnr = PeakSignalNoiseRatio(data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3))
        self.ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
        self.psnr_input = PeakSignalNoiseRatio(data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3))
        self.ssim_input = StructuralSimilarityIndexMeasure(data_range=1.0)
        self.lpips: PerceptualSimilarity | None = None
        self.lpips_input: PerceptualSimilarity | None = None

    def add_lpips(self, backbone_weights: str | None = None, shared: "ImageQualityMetrics | None" = None) -> None:
        """Adds LPIPS-Alex, with AlexNet from ``backbone_weights`` or shared with another set's.

        Raises:
            UserInputError: the weights cannot be had.
        """
        source = shared.lpips if shared is not None else PerceptualSimilarity(backbone_weights)
        self.lpips, self.lpips_input = PerceptualSimilarity(shared=source), PerceptualSimilarity(shared=source)

    def update(self, output: torch.Tensor, damaged: torch.Tensor, target: torch.Tensor) -> None:
        with torch.autocast(output.device.type, enabled=False):
            output, damaged, target = output.float(), damaged.float(), target.float()
            self.psnr.update(output, target)
            self.ssim.update(output, target)
            self.psnr_input.update(damaged, target)
            self.ssim_input.update(damaged, target)
            if self.lpips is not None:
                self.lpips.update(output, target)
                self.lpips_input.update(damaged, target)

    def as_log_dict(self, split: str) -> dict:
        """Metric objects keyed by name, for ``LightningModule.log_dict`` (it computes and resets them)."""
        return {f"{split}/{name}": metric for name, metric in self.named_children() if metric is not None}
