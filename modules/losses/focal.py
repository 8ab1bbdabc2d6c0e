"""Focal loss (Lin et al. 2017): cross-entropy that fades on pixels the model already gets right."""

import torch
import torch.nn.functional as F


def focal_loss(
    logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0, ignore_index: int = -100
) -> torch.Tensor:
    """Mean of ``-(1 - p_t) ** gamma * log p_t`` over the pixels not labelled ``ignore_index``.

    Road and sky make up most of a street scene and are soon predicted with confidence; their
    ``(1 - p_t) ** gamma`` factor then shrinks towards 0, so the loss is left to the rare and
    thin classes the model still gets wrong. ``gamma = 0`` is plain cross-entropy.

    Args:
        logits: (B, C, H, W) class scores.
        target: (B, H, W) class indices; ``ignore_index`` marks pixels left out (Void).
        gamma: how fast well-classified pixels fade out.
        ignore_index: the label of pixels left out; may lie outside 0..C-1.

    Returns:
        A scalar; 0 (still part of the graph) when every pixel is ignored.
    """
    valid = target != ignore_index  # (B, H, W)
    log_probabilities = F.log_softmax(logits, dim=1)  # (B, C, H, W)
    safe_target = torch.where(valid, target, torch.zeros_like(target))  # Void may be no class index at all
    log_p_true = log_probabilities.gather(1, safe_target.unsqueeze(1)).squeeze(1)  # (B, H, W)
    # Clamped so that a gamma below 1 keeps finite gradients where p_t rounds to exactly 1.
    fade = (1 - log_p_true.exp()).clamp(min=1e-6) ** gamma
    per_pixel = -fade * log_p_true
    return (per_pixel * valid).sum() / valid.sum().clamp(min=1)
