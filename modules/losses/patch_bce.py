"""The patch critic's loss: binary cross-entropy of every patch's logit against its image's label."""

import torch
import torch.nn.functional as F


def patch_bce(patch_logits: torch.Tensor, is_real: torch.Tensor | float) -> torch.Tensor:
    """BCE of (B, P) patch logits against one label per image (1 real, 0 generated), or one for all."""
    target = torch.as_tensor(is_real, dtype=patch_logits.dtype, device=patch_logits.device)
    target = target.view(-1, 1).expand_as(patch_logits) if target.dim() else target.expand_as(patch_logits)
    return F.binary_cross_entropy_with_logits(patch_logits, target)
