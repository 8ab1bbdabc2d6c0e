"""Training-step throughput of LanguageModelModule under Lightning against a plain PyTorch loop.

Both train the same net (the lesson's 2-layer GRU by default) on the same human-numbers stream
(batch 64, bptt 20, 40 windows an epoch), carry the hidden state across windows and detach it,
and use fused AdamW under the same one-cycle schedule, on the CPU with the same thread count.
The Lightning run keeps what the config has: TensorBoard logger, progress bar, learning-rate
monitor and the non-finite-loss check; validation is off in both. Run:

    python -m benchmarks.lm_step --epochs 5 --rounds 7 --threads 1 [--clock cpu]

``--clock cpu`` times with this process's CPU time instead of wall time: on a machine shared with
other jobs it leaves out the time spent waiting for a core, and still counts all of Lightning's
own work (with one thread, CPU time is the work done).
"""

import argparse
import time
from collections.abc import Callable

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from benchmarks.timing import compare
from callbacks.finite_loss import StopOnNonFiniteLoss
from datamodules.human_numbers import HumanNumbersDataModule
from modules.language_model import LanguageModelModule

WARMUP = 10
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
MODEL = {"hidden_dim": 64, "lr": 1e-2, "weight_decay": 1.0, "pct_start": 0.3}


class FitTimer(pl.Callback):
    """Time on ``clock`` from the start of optimizer step ``warmup`` to the end of the last training epoch."""

    def __init__(self, warmup: int, clock: Callable[[], float]):
        self.warmup = warmup
        self.clock = clock
        self.started = 0.0
        self.seconds = 0.0
        self.timed_steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup:
            self.started = self.clock()

    def on_train_end(self, trainer, pl_module):
        self.seconds = self.clock() - self.started
        self.timed_steps = trainer.global_step - self.warmup


def _module(datamodule: HumanNumbersDataModule, arch: str) -> LanguageModelModule:
    layers = {"model4": 1, "model5": 2}.get(arch, 1)
    return LanguageModelModule(arch=arch, vocab_size=datamodule.vocab_size, vocab=datamodule.vocab,
                               num_layers=layers, sample_length=0, **MODEL)


def lightning_fit(datamodule: HumanNumbersDataModule, arch: str, epochs: int,
                  clock: Callable[[], float]) -> tuple[float, int]:
    timer = FitTimer(WARMUP, clock)
    trainer = pl.Trainer(
        max_epochs=epochs, limit_val_batches=0, num_sanity_val_steps=0, accelerator="cpu", devices=1,
        log_every_n_steps=10, enable_checkpointing=False, enable_model_summary=False,
        logger=pl.loggers.TensorBoardLogger("/tmp/lesson7-bench", name="lm"),
        callbacks=[timer, pl.callbacks.TQDMProgressBar(refresh_rate=10),
                   pl.callbacks.LearningRateMonitor(logging_interval="step"), StopOnNonFiniteLoss()],
    )
    trainer.fit(_module(datamodule, arch), datamodule=datamodule)
    return timer.seconds, timer.timed_steps


def plain_fit(datamodule: HumanNumbersDataModule, arch: str, epochs: int,
              clock: Callable[[], float]) -> tuple[float, int]:
    net = _module(datamodule, arch).net.train()
    steps_per_epoch = len(datamodule.train_dataloader())
    optimizer = torch.optim.AdamW(net.parameters(), lr=MODEL["lr"], betas=(0.95, 0.99),
                                  weight_decay=MODEL["weight_decay"], fused=True)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=MODEL["lr"], total_steps=epochs * steps_per_epoch, pct_start=MODEL["pct_start"],
        base_momentum=0.85, max_momentum=0.95, div_factor=25.0, final_div_factor=1e4,
    )
    step, started = 0, 0.0
    for _ in range(epochs):
        hidden = None
        for batch in datamodule.train_dataloader():
            if step == WARMUP:
                started = clock()
            logits, hidden = net(batch["tokens"], hidden)
            hidden = hidden.detach() if hidden is not None else None
            targets = batch["targets"] if logits.dim() == 3 else batch["targets"][:, -1]
            loss = F.cross_entropy(logits.flatten(0, -2), targets.flatten())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
    return clock() - started, step - WARMUP


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="model5")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = parser.parse_args()
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    datamodule = HumanNumbersDataModule(batch_size=64, bptt=20)
    result = compare(
        lambda: lightning_fit(datamodule, args.arch, args.epochs, clock),
        lambda: plain_fit(datamodule, args.arch, args.epochs, clock),
        args.rounds,
    )
    steps = args.epochs * len(datamodule.train_dataloader()) - WARMUP
    print(f"human numbers {args.arch}, bs 64, bptt 20, {steps} timed steps x {args.rounds} rounds, "
          f"{torch.get_num_threads()} threads, {args.clock} clock")
    print(f"plain loop: {result['plain_steps_per_s']:.1f} steps/s (median)")
    print(f"lightning:  {result['lightning_steps_per_s']:.1f} steps/s (median)")
    print(f"ratio lightning/plain: {result['ratio_median']:.3f} (per round: "
          f"{', '.join(f'{r:.3f}' for r in result['ratios'])})")


if __name__ == "__main__":
    main()
