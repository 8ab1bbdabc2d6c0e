"""The k items with the lowest scores seen so far, kept while a stream of scored items goes by."""

from collections.abc import Iterator
from typing import Any


class LowestScores:
    """Holds at most ``k`` (score, item) pairs: the lowest scores offered since the last ``clear``.

    For the worst frames of a validation pass: each batch offers its frames, and only those that
    would enter the list need to be copied off the device (``admits`` says which).

    Args:
        k: how many to keep; 0 keeps none.
    """

    def __init__(self, k: int):
        self.k = k
        self._kept: list[tuple[float, int, Any]] = []  # ascending by score; the int breaks ties by arrival
        self._offered = 0

    def admits(self, score: float) -> bool:
        """Whether an item with ``score`` would be kept now."""
        return self.k > 0 and (len(self._kept) < self.k or score < self._kept[-1][0])

    def offer(self, score: float, item: Any) -> None:
        """Keeps ``item`` if its score is among the ``k`` lowest so far (earlier items win ties)."""
        if self.admits(score):
            self._kept.append((score, self._offered, item))
            self._kept.sort(key=lambda kept: kept[:2])
            del self._kept[self.k :]
        self._offered += 1

    def clear(self) -> None:
        self._kept.clear()
        self._offered = 0

    def __len__(self) -> int:
        return len(self._kept)

    def __iter__(self) -> Iterator[tuple[float, Any]]:
        """(score, item), lowest score first."""
        return ((score, item) for score, _, item in self._kept)
