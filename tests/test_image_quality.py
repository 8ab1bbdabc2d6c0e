import pytest
import torch

from modules.image_quality import ImageQualityMetrics


def _scores(output, damaged, target, autocast: bool) -> dict:
    metrics = ImageQualityMetrics()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        metrics.update(output, damaged, target)
    return {name: float(metric.compute()) for name, metric in metrics.named_children()}


def test_scores_are_float32_scores_under_bf16_autocast():
    # Photo-like: bright, with little local variance, where SSIM's E[x^2] - E[x]^2 cancels badly in bf16.
    generator = torch.Generator().manual_seed(0)
    ramp = torch.linspace(0.6, 0.8, 64).expand(2, 3, 64, 64)
    target = ramp + 0.02 * torch.randn(2, 3, 64, 64, generator=generator)
    output = target + 0.01 * torch.randn(2, 3, 64, 64, generator=generator)
    damaged = target + 0.03 * torch.randn(2, 3, 64, 64, generator=generator)
    exact = _scores(output, damaged, target, autocast=False)
    mixed = _scores(output, damaged, target, autocast=True)
    assert mixed == pytest.approx(exact, abs=1e-4)
    assert exact["psnr"] > exact["psnr_input"] and exact["ssim"] > exact["ssim_input"]
