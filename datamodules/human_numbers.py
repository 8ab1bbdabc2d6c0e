"""fast.ai's "human numbers" as a language-model stream: numbers 1..8000 to train, 8001..9999 to validate."""

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from common.errors import UserInputError
from datamodules.number_words import number_stream


def stream_rows(tokens: torch.Tensor, rows: int, rank: int = 0, world_size: int = 1) -> torch.Tensor:
    """Cuts this process's contiguous share of a token stream into ``rows`` contiguous rows.

    The stream is first split into ``world_size`` equal shares (process ``rank`` takes share
    ``rank``), then each share into ``rows`` equal rows; leftover tokens at the ends are dropped.
    Row ``j`` of one window continues row ``j`` of the previous window, so a model can carry its
    hidden state from batch to batch.

    Returns:
        (rows, length) tensor.
    """
    share = len(tokens) // world_size
    mine = tokens[rank * share : (rank + 1) * share]
    length = len(mine) // rows
    if length < 2:
        raise UserInputError(
            f"The stream of {len(tokens)} tokens is too short for {world_size} process(es) x {rows} rows "
            "(--data.batch_size): each row needs at least 2 tokens."
        )
    return mine[: rows * length].view(rows, length)


class StreamWindows(IterableDataset):
    """Consecutive ``bptt``-long windows over stream rows: (inputs, next-token targets), in order.

    An iterable dataset, so that Lightning never re-samples it: the order is the point.
    """

    def __init__(self, rows: torch.Tensor, bptt: int):
        self.rows = rows
        self.bptt = bptt

    def __len__(self) -> int:
        return -(-(self.rows.shape[1] - 1) // self.bptt)  # ceil: the last window may be shorter

    def __iter__(self):
        usable = self.rows.shape[1] - 1  # the last token of a row is only ever a target
        for start in range(0, usable, self.bptt):
            end = min(start + self.bptt, usable)
            yield {"tokens": self.rows[:, start:end], "targets": self.rows[:, start + 1 : end + 1]}  # (B, T) each


class HumanNumbersDataModule(pl.LightningDataModule):
    """The words for 1..9999, generated here (no download), as one stream per split.

    Training reads 1..``train_last``, validation ``train_last + 1``..9999 (the lesson: 8000), each
    as ``xxbos one , two , ...``. The vocabulary (31 tokens) is built from the whole range, so
    validation holds no unknown words, and travels with checkpoints.

    Args:
        batch_size: parallel rows of the stream (each row is read left to right).
        bptt: tokens per window: how far back gradients flow.
        train_last: last number of the training text.
        predict_prompts: texts that ``predict`` continues.
    """

    def __init__(
        self, batch_size: int = 64, bptt: int = 20, train_last: int = 8000,
        predict_prompts: list[str] = ["eight thousand one hundred", "nine thousand nine hundred ninety"],  # noqa: B006
    ):
        super().__init__()
        self.save_hyperparameters()
        if not 1 <= train_last < 9999:
            raise UserInputError(f"--data.train_last must be between 1 and 9998, not {train_last}.")
        self.vocab = sorted(set(number_stream(1, 9999)), key=lambda t: (t != "xxbos", t != ",", t))
        self.index = {token: i for i, token in enumerate(self.vocab)}
        self.train_tokens = self.encode(number_stream(1, train_last))
        self.val_tokens = self.encode(number_stream(train_last + 1, 9999))

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def encode(self, tokens: list[str]) -> torch.Tensor:
        unknown = sorted({t for t in tokens if t not in self.index})
        if unknown:
            raise UserInputError(f"Words outside the vocabulary: {', '.join(unknown)}; it has {', '.join(self.vocab)}.")
        return torch.tensor([self.index[t] for t in tokens], dtype=torch.long)

    def decode(self, ids) -> list[str]:
        return [self.vocab[int(i)] for i in ids]

    def _windows(self, tokens: torch.Tensor) -> StreamWindows:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        world = self.trainer.world_size if self.trainer is not None else 1
        return StreamWindows(stream_rows(tokens, self.hparams.batch_size, rank, world), self.hparams.bptt)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self._windows(self.train_tokens), batch_size=None)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self._windows(self.val_tokens), batch_size=None)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return self.predict_loader(self.hparams.predict_prompts)

    def predict_loader(self, prompts: list[str]) -> DataLoader:
        """Texts to continue, one at a time; also what the one-call predictor reads."""
        items = [{"tokens": self.encode(["xxbos", *prompt.split()]).unsqueeze(0), "prompt": prompt}
                 for prompt in prompts]
        return DataLoader(items, batch_size=None)
