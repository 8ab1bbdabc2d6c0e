"""Turning batches into pictures for TensorBoard."""

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.utils import make_grid


def labelled_grid(
    images: torch.Tensor, captions: list[str], wrong: list[bool], scale: int = 3, nrow: int = 8
) -> torch.Tensor:
    """A grid of images, each with a caption strip under it; wrong ones captioned in red.

    Args:
        images: (N, C, H, W) in [0, 1], C = 1 or 3.
        captions: one short text per image.
        wrong: per image, whether to draw its caption in red.
        scale: nearest-neighbour upscaling so tiny images (MNIST) stay legible.
        nrow: images per grid row.

    Returns:
        (3, H', W') float tensor in [0, 1], ready for ``add_image``.
    """
    tiles = []
    for image, caption, is_wrong in zip(images, captions, wrong):
        array = (image.detach().float().cpu().clamp(0, 1) * 255).byte()
        array = array.expand(3, -1, -1).permute(1, 2, 0).numpy()  # (H, W, 3)
        tile = Image.fromarray(np.ascontiguousarray(array))
        tile = tile.resize((tile.width * scale, tile.height * scale), Image.NEAREST)
        canvas = Image.new("RGB", (tile.width, tile.height + 12), "black")
        canvas.paste(tile, (0, 0))
        ImageDraw.Draw(canvas).text((2, tile.height), caption, fill=(255, 80, 80) if is_wrong else (255, 255, 255))
        tiles.append(torch.from_numpy(np.array(canvas)).permute(2, 0, 1))
    grid = make_grid(torch.stack(tiles), nrow=nrow, padding=2)
    return grid.float() / 255
