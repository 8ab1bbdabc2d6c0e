"""Caps PyTorch's CPU threads for a run whose ops are too small to share among cores."""

import lightning.pytorch as pl
import torch
from lightning.pytorch.accelerators import CPUAccelerator


class CPUThreads(pl.Callback):
    """Sets ``torch.set_num_threads`` while fitting, validating or predicting on the CPU; restores it after.

    A 64-wide GRU on 64 x 20 tokens runs thousands of tiny kernels a step. Splitting each across
    threads gains nothing, and on a machine where other jobs hold the cores the threads wait for
    one another: on this project's shared 2-core CPU the human-numbers fit took 94 s with two
    threads and 20 s with one, to the same final accuracy. Under CPU DDP each process gets this many.

    Args:
        num_threads: intra-op threads per process.
    """

    def __init__(self, num_threads: int = 1):
        if num_threads < 1:
            raise ValueError(f"num_threads must be at least 1, not {num_threads}")
        self.num_threads = num_threads
        self.previous: int | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if isinstance(trainer.accelerator, CPUAccelerator):
            self.previous = torch.get_num_threads()
            torch.set_num_threads(self.num_threads)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.previous is not None:
            torch.set_num_threads(self.previous)
            self.previous = None
