"""Finding and opening image files, with errors that name the file at fault."""

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from common.errors import UserInputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def has_image_suffix(name: str | Path) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def holds_images(folder: Path) -> bool:
    """Whether ``folder`` exists and has at least one image file directly inside."""
    return folder.is_dir() and any(has_image_suffix(p) and p.is_file() for p in folder.iterdir())


def list_images(folder: str | Path, option: str, hint: str = "") -> list[Path]:
    """Sorted image files directly inside ``folder``.

    Args:
        folder: the folder to list.
        option: the CLI option that named the folder, quoted in errors.
        hint: a sentence appended to those errors (how to get the images).

    Raises:
        UserInputError: the folder is missing or holds no images.
    """
    folder = Path(folder)
    hint = f" {hint}" if hint else ""
    if not folder.is_dir():
        raise UserInputError(f"{option}: folder {folder} does not exist.{hint}")
    files = sorted(p for p in folder.iterdir() if has_image_suffix(p) and p.is_file())
    if not files:
        raise UserInputError(
            f"{option}: folder {folder} holds no images (looked for {', '.join(IMAGE_SUFFIXES)}).{hint}"
        )
    return files


def load_image(path: Path, mode: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decodes an image and converts it to ``mode`` ("RGB", "L"), as an (H, W[, C]) uint8 array.

    ``size`` (width, height), if given, resizes with bilinear filtering.

    Palette, RGBA and greyscale files are converted rather than rejected: photo folders mix them.

    Raises:
        UserInputError: the file is missing, truncated or not an image.
    """
    try:
        with Image.open(path) as image:
            image = image.convert(mode)
            if size is not None and image.size != tuple(size):
                image = image.resize(tuple(size), Image.BILINEAR)
            return np.asarray(image)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise UserInputError(f"Cannot read image {path}: {error}.") from error
