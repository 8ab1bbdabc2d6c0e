"""Class weights for unbalanced segmentation data: median-frequency balancing (SegNet, Eigen & Fergus 2015)."""

import torch


def median_frequency_weights(frequencies: list[float] | torch.Tensor) -> torch.Tensor:
    """``median(freq) / freq_c`` per class: a class half as frequent as the median one weighs 2.

    ``freq_c`` is the pixels of class c divided by the pixels of the images where c appears (see
    ``common.class_frequencies``), so a class that appears in few frames but fills them is not
    taken for rare. The median is over the classes that appear; a class that never appears
    (frequency 0) gets weight 1, which leaves it as the typical class would be.

    Args:
        frequencies: (C,) per-class frequencies, 0 for classes never seen.

    Returns:
        (C,) float32 weights, e.g. for ``F.cross_entropy(weight=...)``.
    """
    frequencies = torch.as_tensor(frequencies, dtype=torch.float64)
    present = frequencies > 0
    if not present.any():
        return torch.ones(len(frequencies))
    weights = torch.ones_like(frequencies)
    # torch.median takes the lower of the two middle values; SegNet's median is their mean.
    weights[present] = frequencies[present].quantile(0.5) / frequencies[present]
    return weights.float()
