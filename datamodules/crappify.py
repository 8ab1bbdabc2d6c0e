"""The lesson's "crappify": turn a good photo into a small, JPEG-damaged one with a number on it.

For a photo: resize so the short side is 96 px (bilinear), pick a JPEG quality q in [10, 70],
write q in white at a random place in the top-left quarter, and save as JPEG at quality q.
The random choices depend only on the seed and the file name, so a cache can be rebuilt
identically, in any order, by any number of processes.
"""

import hashlib
import os
import random
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, UnidentifiedImageError
from tqdm import tqdm


@dataclass(frozen=True)
class Degradation:
    """How a photo is damaged.

    Args:
        short_side: the damaged image's short side in pixels.
        quality_min: lowest JPEG quality drawn.
        quality_max: highest JPEG quality drawn.
        draw_quality: write the chosen quality as text on the image (the lesson's crappify).
    """

    short_side: int = 96
    quality_min: int = 10
    quality_max: int = 70
    draw_quality: bool = True

    def tag(self) -> str:
        """A folder name that changes whenever the settings do, so caches never mix."""
        return f"s{self.short_side}-q{self.quality_min}-{self.quality_max}-{'text' if self.draw_quality else 'plain'}"


def _rng_for(name: str, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def degrade(photo: Image.Image, name: str, seed: int, degradation: Degradation) -> tuple[Image.Image, int]:
    """Returns the damaged RGB image and the JPEG quality to save it at."""
    rng = _rng_for(name, seed)
    scale = degradation.short_side / min(photo.size)
    size = (max(1, round(photo.width * scale)), max(1, round(photo.height * scale)))
    small = photo.convert("RGB").resize(size, Image.BILINEAR)
    quality = rng.randint(degradation.quality_min, degradation.quality_max)
    if degradation.draw_quality:
        position = (rng.randint(0, small.width // 2), rng.randint(0, small.height // 2))
        ImageDraw.Draw(small).text(position, str(quality), fill=(255, 255, 255))
    return small, quality


def crappify_file(source: Path, destination: Path, seed: int, degradation: Degradation) -> str | None:
    """Writes the damaged version of ``source`` to ``destination`` atomically.

    Returns None on success, or a one-line description of why ``source`` could not be read.
    An existing destination is left alone (the cache is filled once).
    """
    if destination.exists():
        return None
    try:
        with Image.open(source) as photo:
            photo.load()
            damaged, quality = degrade(photo, source.name, seed, degradation)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        return f"{source}: {error}"
    handle, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.", suffix=".jpg")
    try:
        with os.fdopen(handle, "wb") as out:
            damaged.save(out, format="JPEG", quality=quality)
        os.replace(temporary, destination)  # a killed run never leaves a half-written image
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return None


def _crappify_job(job: tuple[Path, Path, int, Degradation]) -> str | None:
    return crappify_file(*job)


def crappify_folder(
    sources: list[Path], cache_dir: Path, seed: int, degradation: Degradation, workers: int = 2
) -> list[str]:
    """Damages every photo into ``cache_dir`` (same stem, ``.jpg``), in parallel with a progress bar.

    Returns the problems with unreadable photos, one line each; those photos get no cached copy.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(source, cache_dir / f"{source.stem}.jpg", seed, degradation) for source in sources]
    todo = [job for job in jobs if not job[1].exists()]
    if not todo:
        return []
    progress = dict(total=len(todo), desc=f"crappify -> {cache_dir}", unit="img")
    if workers <= 1:
        return [problem for problem in tqdm(map(_crappify_job, todo), **progress) if problem]
    with ProcessPoolExecutor(workers) as pool:
        results = list(tqdm(pool.map(_crappify_job, todo, chunksize=8), **progress))
    return [problem for problem in results if problem]
