"""Image grids whose columns say what they show: "damaged | restored | original" written above them."""

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

TITLE_HEIGHT = 14


def titled_grid(columns: Sequence[torch.Tensor], titles: Sequence[str], padding: int = 2) -> torch.Tensor:
    """One grid row per image, one column per tensor, each column's title on a strip above it.

    Args:
        columns: tensors of equal shape (N, 3, H, W) in [0, 1]; row i holds image i of each.
        titles: one short name per column; cut to the column's width.
        padding: pixels between tiles, as ``make_grid``'s.

    Returns:
        A (3, TITLE_HEIGHT + grid height, grid width) image in [0, 1], for TensorBoard's
        ``add_image`` or torchvision's ``save_image``.
    """
    if len(columns) != len(titles):
        raise ValueError(f"{len(columns)} columns but {len(titles)} titles")
    tiles = torch.stack([column.detach().float().cpu().clamp(0, 1) for column in columns], dim=1).flatten(0, 1)
    grid = make_grid(tiles, nrow=len(columns), padding=padding)
    tile_width = columns[0].shape[-1]
    strip = Image.new("RGB", (grid.shape[-1], TITLE_HEIGHT), "black")
    draw, font = ImageDraw.Draw(strip), ImageFont.load_default()
    for index, title in enumerate(titles):
        while title and draw.textlength(title, font=font) > tile_width:
            title = title[:-1]
        left = padding + index * (tile_width + padding)
        offset = (tile_width - draw.textlength(title, font=font)) / 2
        draw.text((left + offset, 1), title, fill="white", font=font)
    header = torch.from_numpy(np.asarray(strip).copy()).permute(2, 0, 1).float() / 255
    return torch.cat([header, grid], dim=1)
