"""One type for every image-size option: a side for squares, or (height, width)."""

ImageSize = int | tuple[int, int]


def height_width(size: ImageSize) -> tuple[int, int]:
    """``size`` as (height, width): an int is a square's side."""
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def cover_size(height: int, width: int, target: ImageSize) -> tuple[int, int]:
    """(height, width) of an image of ``height`` x ``width`` scaled, keeping its shape, just enough to
    cover ``target``: for a square target of side S, the short side becomes S."""
    target_height, target_width = height_width(target)
    scale = max(target_height / height, target_width / width)
    return max(target_height, round(height * scale)), max(target_width, round(width * scale))
