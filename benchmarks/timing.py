"""Side-by-side timing of a Lightning training epoch and a plain PyTorch loop over the same work."""

import statistics
import time
from collections.abc import Callable
from typing import Literal

import lightning.pytorch as pl

LOG_DIR = "/tmp/lesson7-bench"  # where the Lightning runs write their TensorBoard logs


def tensorboard_logger(name: str) -> pl.loggers.TensorBoardLogger:
    """The logger of a Lightning run: its cost is part of what Lightning adds."""
    return pl.loggers.TensorBoardLogger(LOG_DIR, name=name)


class StepTimer(pl.Callback):
    """Wall time from the start of batch ``warmup`` to the end of the training epoch.

    With ``stop="last_batch"`` the clock stops at the end of the last batch instead: the timed
    steps alone, without what the epoch's end adds (a config's checkpoint saving, its logs).
    """

    def __init__(self, warmup: int, stop: Literal["epoch_end", "last_batch"] = "epoch_end"):
        if stop not in ("epoch_end", "last_batch"):
            raise ValueError(f"unknown stop {stop!r}; expected 'epoch_end' or 'last_batch'")
        self.warmup = warmup
        self.stop = stop
        self.started = 0.0
        self.seconds = 0.0
        self.timed_steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= self.warmup:
            self.timed_steps = batch_idx - self.warmup + 1
            if self.stop == "last_batch":
                self.seconds = time.perf_counter() - self.started

    def on_train_epoch_end(self, trainer, pl_module):
        if self.stop == "epoch_end":
            self.seconds = time.perf_counter() - self.started


def compare(lightning_run: Callable[[], tuple[float, int]], plain_run: Callable[[], tuple[float, int]],
            rounds: int) -> dict:
    """Alternates the two runs ``rounds`` times; returns medians of steps per second and their ratio."""
    lightning_rates, plain_rates = [], []
    for _ in range(rounds):
        seconds, steps = plain_run()
        plain_rates.append(steps / seconds)
        seconds, steps = lightning_run()
        lightning_rates.append(steps / seconds)
    ratios = [lit / plain for lit, plain in zip(lightning_rates, plain_rates)]
    return {
        "plain_steps_per_s": statistics.median(plain_rates),
        "lightning_steps_per_s": statistics.median(lightning_rates),
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
    }


def print_seconds_per_step(result: dict) -> None:
    """The lines every step benchmark ends with: both medians as s/step, then the ratio per round."""
    print(f"plain loop: {1 / result['plain_steps_per_s']:.3f} s/step (median)")
    print(f"lightning:  {1 / result['lightning_steps_per_s']:.3f} s/step (median)")
    print(f"ratio lightning/plain (throughput): {result['ratio_median']:.3f} (per round: "
          f"{', '.join(f'{r:.3f}' for r in result['ratios'])})")
