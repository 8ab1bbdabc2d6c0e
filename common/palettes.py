"""Colours for segmentation masks: SegNet's CamVid colours, fixed colours for more classes, black for Void."""

import numpy as np

# SegNet's colour for each of CamVid's 11 classes, in class order.
SEGNET_COLOURS = (
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
    (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
)


def segmentation_palette(num_classes: int, void_index: int | None = None) -> np.ndarray:
    """A fixed (num_classes + 1, 3) uint8 colour table; the extra last row (black) is for Void.

    The first 11 colours are SegNet's CamVid colours; more classes get fixed pseudo-random colours.
    A Void class inside the range (fast.ai's 32-class layout) is black too, so Void looks the same
    in every layout.

    Args:
        num_classes: classes predicted.
        void_index: the Void label, when it is one of the classes.
    """
    extra = np.random.default_rng(7).integers(32, 256, (max(num_classes - len(SEGNET_COLOURS), 0), 3))
    colours = np.concatenate([np.array(SEGNET_COLOURS), extra])[:num_classes]
    palette = np.concatenate([colours, [[0, 0, 0]]]).astype(np.uint8)
    if void_index is not None and 0 <= void_index < num_classes:
        palette[void_index] = 0
    return palette
