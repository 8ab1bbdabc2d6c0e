"""Human numbers through the CLI: thread cap, and each DDP process reading its own share of the stream."""

from types import SimpleNamespace

import lightning.pytorch as pl
import torch

from callbacks.cpu_threads import CPUThreads
from cli import cli_main
from datamodules.human_numbers import HumanNumbersDataModule
from tests.conftest import CONFIGS


class ThreadProbe(pl.Callback):
    """Notes torch's thread count while training runs."""

    def __init__(self):
        self.during: int | None = None

    def on_train_start(self, trainer, pl_module):
        self.during = torch.get_num_threads()


def test_configs_cap_threads_during_fit_and_restore_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = torch.get_num_threads()
    probe = ThreadProbe()
    cli = cli_main(["fit", "--config", str(CONFIGS / "human_numbers.yaml"), "--trainer.fast_dev_run", "1",
                    "--trainer.accelerator", "cpu"], extra_callbacks=[probe])
    assert any(isinstance(callback, CPUThreads) for callback in cli.trainer.callbacks)
    assert probe.during == 1
    assert torch.get_num_threads() == before


def test_every_human_numbers_config_caps_threads():
    for config in sorted(CONFIGS.glob("human_numbers*.yaml")):
        assert "callbacks.cpu_threads.CPUThreads" in config.read_text(), config.name


def _first_batches(rank: int, world_size: int) -> tuple[dict, dict]:
    datamodule = HumanNumbersDataModule(batch_size=4, bptt=5)
    datamodule.trainer = SimpleNamespace(global_rank=rank, world_size=world_size)  # what DDP would set
    batches = iter(datamodule.val_dataloader())
    return next(batches), next(batches)


def test_datamodule_gives_each_process_its_own_contiguous_share():
    stream = HumanNumbersDataModule().val_tokens
    share = len(stream) // 2
    row_length = share // 4
    for rank in (0, 1):
        first, second = _first_batches(rank, world_size=2)
        # Row j of process `rank` starts j rows into that process's half of the stream...
        starts = [rank * share + row * row_length for row in range(4)]
        expected = torch.stack([stream[start : start + 5] for start in starts])
        assert torch.equal(first["tokens"], expected)
        # ...and its next window carries on where this one stopped.
        assert torch.equal(second["tokens"][:, 0], first["targets"][:, -1])
    alone, _ = _first_batches(rank=0, world_size=1)
    assert not torch.equal(alone["tokens"][1], _first_batches(rank=0, world_size=2)[0]["tokens"][1])
