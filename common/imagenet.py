"""ImageNet normalisation, shared by every task whose encoder was trained on ImageNet."""

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _stats(like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(IMAGENET_MEAN, device=like.device, dtype=like.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=like.device, dtype=like.dtype).view(1, 3, 1, 1)
    return mean, std


def normalize_uint8(images: torch.Tensor, channels_first: bool = False) -> torch.Tensor:
    """(B, H, W, 3) uint8 (or (B, 3, H, W) with ``channels_first``) -> (B, 3, H, W) float, ImageNet-normalised."""
    floats = (images if channels_first else images.permute(0, 3, 1, 2)).float().div_(255)
    mean, std = _stats(floats)
    return (floats - mean) / std


def denormalize(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) ImageNet-normalised -> [0, 1] (clamped), for metrics and pictures."""
    mean, std = _stats(images)
    return (images * std + mean).clamp(0, 1)
