import pytest
import torch

from common.titled_grid import TITLE_HEIGHT, titled_grid


def test_each_column_gets_its_title_above_the_unchanged_tiles():
    columns = [torch.full((2, 3, 40, 60), value) for value in (0.2, 0.5, 0.8)]
    grid = titled_grid(columns, ["damaged", "", "original"], padding=2)
    assert grid.shape == (3, TITLE_HEIGHT + 2 * 40 + 3 * 2, 3 * 60 + 4 * 2)
    header, tiles = grid[:, :TITLE_HEIGHT], grid[:, TITLE_HEIGHT:]
    # Tiles as make_grid lays them out: row 1, column 2 holds the second image of the third column.
    assert torch.allclose(tiles[:, 2 + 40 + 2:2 + 40 + 2 + 40, 2 + 2 * 62:2 + 2 * 62 + 60], torch.tensor(0.8))
    written = [header[:, :, 2 + index * 62:2 + index * 62 + 60].amax() for index in range(3)]
    assert written[0] > 0.5 and written[2] > 0.5  # white text on black
    assert written[1] == 0  # an empty title writes nothing


def test_long_titles_are_cut_to_their_column():
    grid = titled_grid([torch.zeros(1, 3, 20, 20)] * 2, ["a title far wider than twenty pixels", "x"], padding=2)
    assert grid[:, :TITLE_HEIGHT, 2:22].amax() > 0
    assert grid[:, :TITLE_HEIGHT, 22:24].amax() == 0  # nothing spills into the padding between columns


def test_titles_must_match_columns():
    with pytest.raises(ValueError, match="2 columns but 1 titles"):
        titled_grid([torch.zeros(1, 3, 8, 8)] * 2, ["one"])
