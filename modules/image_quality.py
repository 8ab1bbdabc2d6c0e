"""PSNR and SSIM of restored images, and of the damaged inputs they started from."""

import torch
from torch import nn
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure


class ImageQualityMetrics(nn.Module):
    """torchmetrics PSNR (mean over images) and SSIM for outputs and for inputs, against targets.

    All images in [0, 1]. The input scores are the baseline the model must beat. Scores are
    computed in float32 even inside a mixed-precision step: under bf16 autocast SSIM's Gaussian
    windows would run in bf16 and come out far too low.
    """

    def __init__(self):
        super().__init__()
        self.psnr = PeakSignalNoiseRatio(data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3))
        self.ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
        self.psnr_input = PeakSignalNoiseRatio(data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3))
        self.ssim_input = StructuralSimilarityIndexMeasure(data_range=1.0)

    def update(self, output: torch.Tensor, damaged: torch.Tensor, target: torch.Tensor) -> None:
        with torch.autocast(output.device.type, enabled=False):
            output, damaged, target = output.float(), damaged.float(), target.float()
            self.psnr.update(output, target)
            self.ssim.update(output, target)
            self.psnr_input.update(damaged, target)
            self.ssim_input.update(damaged, target)

    def as_log_dict(self, split: str) -> dict:
        """Metric objects keyed by name, for ``LightningModule.log_dict`` (it computes and resets them)."""
        return {f"{split}/{name}": metric for name, metric in self.named_children()}
