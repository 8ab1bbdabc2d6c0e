"""Training-step throughput of ClassifierModule under Lightning against a plain PyTorch loop.

Both build the model from ``configs/mnist_resnet.yaml`` (``--arch`` swaps the net's architecture)
and run the same in-memory MNIST batches (batched pad-and-crop included), the module's own loss
(``training_loss``) and its AdamW under the one-cycle schedule (``one_cycle_adamw``), on the CPU.
Only the loop differs. Run:

    python -m benchmarks.mnist_step --data_dir ../shared/data --steps 200 --rounds 5
"""

import argparse
import time
from types import SimpleNamespace

import lightning.pytorch as pl
import torch

from benchmarks.configs import data_options, model_options, progress_refresh, read_config
from benchmarks.plain import descend, one_cycle_all
from benchmarks.timing import StepTimer, compare, tensorboard_logger
from datamodules.mnist import MNISTDataModule
from modules.classifier import ClassifierModule

WARMUP = 10
CONFIG = "mnist_resnet.yaml"


def lightning_epoch(datamodule: MNISTDataModule, options: dict, config: dict, steps: int) -> tuple[float, int]:
    timer = StepTimer(WARMUP)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=steps + WARMUP, limit_val_batches=0, num_sanity_val_steps=0,
        accelerator="cpu", devices=1, log_every_n_steps=config["trainer"]["log_every_n_steps"],
        enable_checkpointing=False, logger=tensorboard_logger("mnist"),
        callbacks=[timer, pl.callbacks.TQDMProgressBar(refresh_rate=progress_refresh(config))],
        enable_model_summary=False,
    )
    trainer.fit(ClassifierModule(**options), datamodule=datamodule)
    return timer.seconds, timer.timed_steps


def plain_epoch(datamodule: MNISTDataModule, options: dict, steps: int) -> tuple[float, int]:
    model = ClassifierModule(**options).train()
    optimizer, scheduler = one_cycle_all(model, steps + WARMUP)
    datamodule.trainer = SimpleNamespace(training=True)  # the datamodule augments only while a trainer trains
    started = 0.0
    for step, batch in enumerate(datamodule.train_dataloader()):
        if step == WARMUP:
            started = time.perf_counter()
        if step == steps + WARMUP:
            break
        descend(optimizer, model.training_loss(datamodule.on_after_batch_transfer(batch, 0)))
        scheduler.step()
    datamodule.trainer = None
    return time.perf_counter() - started, steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--arch", default="resnet", choices=("plain", "resnet", "densenet"))
    parser.add_argument("--batch_size", type=int, help="the config's by default")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    config = read_config(CONFIG)
    options = model_options(config)
    options["net"] = {**options["net"], "arch": args.arch}
    data = data_options(config)
    data.update(data_dir=args.data_dir, download=False, batch_size=args.batch_size or data["batch_size"])
    datamodule = MNISTDataModule(**data)
    datamodule.setup("fit")
    if len(datamodule.train_dataloader()) < args.steps + WARMUP:
        raise SystemExit(f"{args.steps} timed steps need {args.steps + WARMUP} training batches; the data give "
                         f"{len(datamodule.train_dataloader())}. Use fewer --steps or a smaller --batch_size.")
    result = compare(
        lambda: lightning_epoch(datamodule, options, config, args.steps),
        lambda: plain_epoch(datamodule, options, args.steps),
        args.rounds,
    )
    print(f"MNIST {args.arch}, bs {datamodule.hparams.batch_size}, {args.steps} timed steps x {args.rounds} rounds, "
          f"{torch.get_num_threads()} threads")
    print(f"plain loop: {result['plain_steps_per_s']:.1f} steps/s (median)")
    print(f"lightning:  {result['lightning_steps_per_s']:.1f} steps/s (median)")
    print(f"ratio lightning/plain: {result['ratio_median']:.3f} (per round: "
          f"{', '.join(f'{r:.3f}' for r in result['ratios'])})")


if __name__ == "__main__":
    main()
