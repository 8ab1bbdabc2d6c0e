"""Lovász-softmax (Berman et al. 2018): a loss whose minimum is the best intersection-over-union.

IoU is a function of the *set* of wrong pixels, so it has no gradient. Its Lovász extension
does: sort the pixels by error, largest first; the IoU loss of treating the first k as wrong,
as k grows, rises in steps; each pixel's error is weighted by the step it causes. On hard 0/1
errors the extension equals the IoU loss itself; between them it interpolates linearly, so
gradient descent on softmax probabilities descends on (a convex surrogate of) IoU.
"""

import torch
import torch.nn.functional as F


def iou_loss_steps(is_class_sorted: torch.Tensor) -> torch.Tensor:
    """Increments of ``1 - IoU`` as the pixels, in the given order, are counted wrong one by one.

    Args:
        is_class_sorted: (N,) 1.0 where the pixel's true class is the class scored, sorted by
            that class's error, largest first.

    Returns:
        (N,) steps, summing to 1 - IoU with every pixel wrong, i.e. 1 when the class is present.
    """
    class_pixels = is_class_sorted.sum()
    missed = is_class_sorted.cumsum(0)  # true pixels among the first k: false negatives
    false_alarms = (1 - is_class_sorted).cumsum(0)  # other pixels among the first k: false positives
    iou = (class_pixels - missed) / (class_pixels + false_alarms).clamp(min=1)
    loss = 1 - iou  # (N,) loss with the first k pixels wrong, k = 1..N
    return torch.cat([loss[:1], loss[1:] - loss[:-1]])


def lovasz_softmax(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean over the classes present in ``target`` of the Lovász extension of their IoU loss.

    All the batch's pixels are scored together (the IoU of the batch, as mIoU is of the data set).
    Classes absent from the batch's truth are left out: their "IoU" would only punish false
    positives, which the present classes' losses already do.

    Args:
        logits: (B, C, H, W) class scores.
        target: (B, H, W) class indices; ``ignore_index`` marks pixels left out (Void).
        ignore_index: the label of pixels left out; may lie outside 0..C-1.

    Returns:
        A scalar; 0 (still part of the graph) when every pixel is ignored.
    """
    num_classes = logits.shape[1]
    probabilities = F.softmax(logits, dim=1).permute(0, 2, 3, 1).reshape(-1, num_classes)  # (B*H*W, C)
    labels = target.reshape(-1)
    valid = labels != ignore_index
    probabilities, labels = probabilities[valid], labels[valid]  # (N, C), (N,)
    losses = []
    for index in labels.unique().tolist():
        is_class = (labels == index).to(probabilities.dtype)  # (N,)
        errors = (is_class - probabilities[:, index]).abs()
        errors_sorted, order = errors.sort(descending=True)
        losses.append(torch.dot(errors_sorted, iou_loss_steps(is_class[order])))
    if not losses:
        return logits.sum() * 0
    return torch.stack(losses).mean()
