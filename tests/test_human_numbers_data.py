import pytest
import torch

from common.errors import UserInputError
from datamodules.human_numbers import HumanNumbersDataModule, StreamWindows, stream_rows
from datamodules.number_words import number_stream, number_words


@pytest.mark.parametrize("number, words", [
    (1, "one"), (13, "thirteen"), (40, "forty"), (101, "one hundred one"), (110, "one hundred ten"),
    (2019, "two thousand nineteen"), (8000, "eight thousand"), (9999, "nine thousand nine hundred ninety nine"),
])
def test_number_words(number, words):
    assert " ".join(number_words(number)) == words


def test_streams_match_the_lesson():
    datamodule = HumanNumbersDataModule()
    assert len(datamodule.val_tokens) == 13_017  # the lesson's validation stream, xxbos included
    assert datamodule.vocab_size == 31 and datamodule.vocab[:2] == ["xxbos", ","]
    assert " ".join(datamodule.decode(datamodule.train_tokens[:8])) == "xxbos one , two , three , four"
    assert "thousand" not in number_stream(1, 999)
    with pytest.raises(ValueError):
        number_words(10_000)


def test_rows_continue_from_window_to_window():
    tokens = torch.arange(103)
    rows = stream_rows(tokens, rows=4)  # (4, 25): 3 leftover tokens dropped
    assert rows.shape == (4, 25) and torch.equal(rows[1], torch.arange(25, 50))
    windows = list(StreamWindows(rows, bptt=10))
    assert len(windows) == len(StreamWindows(rows, bptt=10)) == 3
    assert [w["tokens"].shape[1] for w in windows] == [10, 10, 4]  # the last window is short
    for first, second in zip(windows, windows[1:]):
        # Row j of the next window starts right after row j of this one.
        assert torch.equal(second["tokens"][:, 0], first["tokens"][:, -1] + 1)
    for window in windows:
        assert torch.equal(window["targets"], window["tokens"] + 1)


def test_each_process_reads_its_own_contiguous_share():
    tokens = torch.arange(1000)
    shares = [stream_rows(tokens, rows=4, rank=rank, world_size=2) for rank in (0, 1)]
    assert shares[0].shape == shares[1].shape == (4, 125)
    assert shares[0].max() < 500 <= shares[1].min()  # no interleaving between processes
    assert torch.equal(shares[1][0], torch.arange(500, 625))


def test_too_many_rows_is_a_clear_error():
    with pytest.raises(UserInputError, match="batch_size"):
        stream_rows(torch.arange(10), rows=8)


def test_datamodule_serves_windows_in_order():
    datamodule = HumanNumbersDataModule(batch_size=8, bptt=5)
    batches = list(datamodule.val_dataloader())
    assert batches[0]["tokens"].shape == (8, 5)
    assert torch.equal(batches[1]["tokens"][:, 0], batches[0]["targets"][:, -1])
