"""A confusion matrix as a picture: rows are the true classes, each normalised to sum to 1."""

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

CELL = 30  # pixels per cell: room for "0.93" in the default font
LOW, HIGH = np.array([255, 255, 255]), np.array([24, 64, 140])  # colours of share 0 and share 1


def normalise_rows(counts: torch.Tensor) -> torch.Tensor:
    """Each row divided by its sum: row t, column p is the share of class t's pixels predicted as p.

    Per true class, so that a rare class (poles) reads as plainly as a common one (road); a class
    absent from the truth keeps a row of zeros.
    """
    counts = counts.double()
    return counts / counts.sum(dim=1, keepdim=True).clamp(min=1)


def confusion_image(shares: torch.Tensor, class_names: list[str]) -> torch.Tensor:
    """Draws a (K, K) matrix of shares in [0, 1]: cells shaded by share and labelled with it.

    Args:
        shares: (truth, prediction) shares, e.g. ``normalise_rows(counts)``.
        class_names: K names, written left of the rows (true class) and above the columns (predicted).

    Returns:
        (3, H, W) float image in [0, 1], for TensorBoard's ``add_image`` or torchvision's ``save_image``.
    """
    values = shares.detach().cpu().double().clamp(0, 1).numpy()
    count = len(values)
    if len(class_names) != count:
        raise ValueError(f"{count} classes but {len(class_names)} names")
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_width = int(max(measure.textlength(name, font=font) for name in class_names)) + 8
    title_height = 16
    left, top = label_width + title_height, label_width + title_height
    canvas = Image.new("RGB", (left + count * CELL + 4, top + count * CELL + 4), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((left, 2), "predicted class", fill="black", font=font)
    _paste_rotated(canvas, "true class", (2, top + _text_width(draw, "true class", font)), font)
    for index, name in enumerate(class_names):
        draw.text((left - 4 - measure.textlength(name, font=font), top + index * CELL + CELL // 2 - 6), name,
                  fill="black", font=font)
        _paste_rotated(canvas, name, (left + index * CELL + CELL // 2 - 6, top - 4), font)
    for row in range(count):
        for column in range(count):
            share = values[row, column]
            colour = tuple(int(c) for c in (LOW + share * (HIGH - LOW)).round())
            x, y = left + column * CELL, top + row * CELL
            draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=colour, outline=(200, 200, 200))
            if share >= 0.005:  # blank cells for (almost) nothing keep the errors easy to spot
                text = f"{share:.2f}"
                offset = (CELL - measure.textlength(text, font=font)) / 2
                draw.text((x + offset, y + CELL // 2 - 6), text, fill="white" if share > 0.5 else "black", font=font)
    return torch.from_numpy(np.asarray(canvas).copy()).permute(2, 0, 1).float() / 255


def _text_width(draw: ImageDraw.ImageDraw, text: str, font) -> int:
    return int(draw.textlength(text, font=font)) + 2


def _paste_rotated(canvas: Image.Image, text: str, bottom_left: tuple[int, int], font) -> None:
    """Writes ``text`` turned a quarter left (read bottom to top), its first letter at ``bottom_left``."""
    strip = Image.new("RGB", (_text_width(ImageDraw.Draw(canvas), text, font), 14), "white")
    ImageDraw.Draw(strip).text((1, 1), text, fill="black", font=font)
    turned = strip.rotate(90, expand=True)
    canvas.paste(turned, (bottom_left[0], bottom_left[1] - turned.height))
