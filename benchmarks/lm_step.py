"""Training-step throughput of LanguageModelModule under Lightning against a plain PyTorch loop.

Both build the model and the human-numbers stream from the arch's config (``--arch model5``, the
lesson's 2-layer GRU: ``configs/human_numbers.yaml``, batch 64, bptt 20, 40 windows an epoch;
the other archs: ``configs/human_numbers_<arch>.yaml``), carry the hidden state across windows
and detach it (the module's own ``training_loss``), and use its fused AdamW under the same
one-cycle schedule (``one_cycle_adamw``), on the CPU with the same thread count. Only the loop
differs. The Lightning run keeps what the config has: TensorBoard logger, progress bar,
learning-rate monitor and the non-finite-loss check; validation is off in both. Run:

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

from benchmarks.configs import data_options, model_options, progress_refresh, read_config
from benchmarks.plain import descend, one_cycle_all
from benchmarks.timing import compare, tensorboard_logger
from callbacks.finite_loss import StopOnNonFiniteLoss
from datamodules.human_numbers import HumanNumbersDataModule
from modules.language_model import LanguageModelModule

WARMUP = 10
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
ARCHS = ("model1", "model2", "model3", "model4", "model5")


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


def config_name(arch: str) -> str:
    """The config that trains ``arch``: the lesson's GRU has the plain name."""
    return "human_numbers.yaml" if arch == "model5" else f"human_numbers_{arch}.yaml"


def build_model(datamodule: HumanNumbersDataModule, options: dict) -> LanguageModelModule:
    return LanguageModelModule(**options, vocab_size=datamodule.vocab_size, vocab=datamodule.vocab)


def lightning_fit(datamodule: HumanNumbersDataModule, options: dict, config: dict, epochs: int,
                  clock: Callable[[], float]) -> tuple[float, int]:
    timer = FitTimer(WARMUP, clock)
    trainer = pl.Trainer(
        max_epochs=epochs, limit_val_batches=0, num_sanity_val_steps=0, accelerator="cpu", devices=1,
        log_every_n_steps=config["trainer"]["log_every_n_steps"], enable_checkpointing=False,
        enable_model_summary=False, logger=tensorboard_logger("lm"),
        callbacks=[timer, pl.callbacks.TQDMProgressBar(refresh_rate=progress_refresh(config)),
                   pl.callbacks.LearningRateMonitor(logging_interval="step"), StopOnNonFiniteLoss()],
    )
    trainer.fit(build_model(datamodule, options), datamodule=datamodule)
    return timer.seconds, timer.timed_steps


def plain_fit(datamodule: HumanNumbersDataModule, options: dict, epochs: int,
              clock: Callable[[], float]) -> tuple[float, int]:
    model = build_model(datamodule, options).train()
    optimizer, scheduler = one_cycle_all(model, epochs * len(datamodule.train_dataloader()))
    step, started = 0, 0.0
    for _ in range(epochs):
        model.on_train_epoch_start()  # a fresh hidden state each epoch
        for batch in datamodule.train_dataloader():
            if step == WARMUP:
                started = clock()
            descend(optimizer, model.training_loss(batch))
            scheduler.step()
            step += 1
    return clock() - started, step - WARMUP


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="model5", choices=ARCHS)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    args = parser.parse_args(argv)
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    config = read_config(config_name(args.arch))
    options = model_options(config)
    datamodule = HumanNumbersDataModule(**data_options(config))
    steps = args.epochs * len(datamodule.train_dataloader()) - WARMUP
    if steps < 1:
        raise SystemExit(f"{args.epochs} epoch(s) of {len(datamodule.train_dataloader())} windows leave no step "
                         f"after the {WARMUP} warm-up steps; use more --epochs.")
    result = compare(
        lambda: lightning_fit(datamodule, options, config, args.epochs, clock),
        lambda: plain_fit(datamodule, options, args.epochs, clock),
        args.rounds,
    )
    data = datamodule.hparams
    print(f"human numbers {args.arch}, bs {data.batch_size}, bptt {data.bptt}, {steps} timed steps x {args.rounds} "
          f"rounds, {torch.get_num_threads()} threads, {args.clock} clock")
    print(f"plain loop: {result['plain_steps_per_s']:.1f} steps/s (median)")
    print(f"lightning:  {result['lightning_steps_per_s']:.1f} steps/s (median)")
    print(f"ratio lightning/plain: {result['ratio_median']:.3f} (per round: "
          f"{', '.join(f'{r:.3f}' for r in result['ratios'])})")


if __name__ == "__main__":
    main()
