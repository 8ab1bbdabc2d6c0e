"""How often each class appears in a set of masks (SegNet's ``freq_c``), counted once and kept in a JSON file.

Class-balanced losses need, per class, its pixels divided by the pixels of the images it appears
in. Counting means decoding every training mask, so the table is written to a cache file and read
back by later runs; a fingerprint of the mask files (names, sizes, modification times) tells
when the masks changed and the table must be counted again.
"""

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from common.errors import UserInputError


def count_class_pixels(masks: Iterable[np.ndarray], num_classes: int, void_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Per class: its pixels, and the pixels of the masks it appears in (all their pixels, Void too).

    Labels outside 0..num_classes-1 and the Void class are not counted as classes.

    Returns:
        (class_pixels, image_pixels), each (num_classes,) int64.
    """
    class_pixels = np.zeros(num_classes, np.int64)
    image_pixels = np.zeros(num_classes, np.int64)
    for mask in masks:
        counts = np.bincount(mask.ravel(), minlength=num_classes)[:num_classes].astype(np.int64)
        if 0 <= void_index < num_classes:
            counts[void_index] = 0
        class_pixels += counts
        image_pixels += (counts > 0) * mask.size
    return class_pixels, image_pixels


def frequencies(class_pixels: np.ndarray, image_pixels: np.ndarray) -> list[float]:
    """``class_pixels / image_pixels`` per class, 0 for a class that never appears."""
    share = np.divide(class_pixels, image_pixels, out=np.zeros(len(class_pixels)), where=image_pixels > 0)
    return [float(value) for value in share]


def files_fingerprint(paths: Iterable[Path], *facts) -> str:
    """A short hash of the files' names, sizes and modification times, and of ``facts``."""
    digest = hashlib.sha1(json.dumps([str(fact) for fact in facts]).encode())
    for path in sorted(Path(p) for p in paths):
        status = path.stat()
        digest.update(f"{path.name}\0{status.st_size}\0{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def cached_frequencies(cache_file: Path, fingerprint: str, class_names: list[str],
                       count: Callable[[], tuple[np.ndarray, np.ndarray]]) -> list[float]:
    """The frequencies stored in ``cache_file`` for ``fingerprint``; otherwise ``count()``-ed and stored there.

    Args:
        cache_file: the JSON table; its folder is created if needed.
        fingerprint: ``files_fingerprint`` of the masks; a table for another fingerprint is counted again.
        class_names: written beside the counts, for a person reading the file.
        count: returns ``(class_pixels, image_pixels)`` (see ``count_class_pixels``).

    Raises:
        UserInputError: the cache file exists but cannot be read, or cannot be written.
    """
    if cache_file.exists():
        try:
            stored = json.loads(cache_file.read_text())
            if stored["fingerprint"] == fingerprint:
                values = [float(value) for value in stored["frequencies"]]
                if len(values) == len(class_names):
                    return values
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserInputError(
                f"Cannot read the class-frequency table {cache_file}: {error!r}. Delete it to count the "
                "training masks again."
            ) from error
    class_pixels, image_pixels = count()
    table = {
        "fingerprint": fingerprint,
        "class_names": list(class_names),
        "class_pixels": class_pixels.tolist(),
        "image_pixels": image_pixels.tolist(),
        "frequencies": frequencies(class_pixels, image_pixels),
    }
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        partial = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(table, indent=1))
        partial.replace(cache_file)  # atomic: another process never reads half a table
    except OSError as error:
        raise UserInputError(f"Cannot write the class-frequency table {cache_file}: {error}.") from error
    return table["frequencies"]
