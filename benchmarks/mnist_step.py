"""Training-step throughput of ClassifierModule under Lightning against a plain PyTorch loop.

Both run the same net, the same in-memory MNIST batches (batched pad-and-crop included), AdamW
and the one-cycle schedule, on the CPU. Run:

    python benchmarks/mnist_step.py --data_dir ../shared/data --steps 200 --rounds 5
"""

import argparse
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from benchmarks.timing import StepTimer, compare
from datamodules.mnist import MNISTDataModule
from modules.classifier import ClassifierModule

WARMUP = 10


def lightning_epoch(datamodule: MNISTDataModule, arch: str, steps: int) -> tuple[float, int]:
    model = ClassifierModule(arch=arch)
    timer = StepTimer(WARMUP)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=steps + WARMUP, limit_val_batches=0, num_sanity_val_steps=0,
        accelerator="cpu", devices=1, log_every_n_steps=50, enable_checkpointing=False,
        logger=pl.loggers.TensorBoardLogger("/tmp/lesson7-bench", name="mnist"),
        callbacks=[timer, pl.callbacks.TQDMProgressBar(refresh_rate=20)], enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    return timer.seconds, timer.timed_steps


def plain_epoch(datamodule: MNISTDataModule, arch: str, steps: int) -> tuple[float, int]:
    model = ClassifierModule(arch=arch)
    net = model.net.train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=0.05, betas=(0.95, 0.99), weight_decay=0.01, fused=True)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=0.05, total_steps=steps + WARMUP, pct_start=0.3, base_momentum=0.85,
        max_momentum=0.95,
    )
    datamodule.trainer = type("Training", (), {"training": True})()  # enables augmentation
    started = 0.0
    for step, batch in enumerate(datamodule.train_dataloader()):
        if step == WARMUP:
            started = time.perf_counter()
        if step == steps + WARMUP:
            break
        batch = datamodule.on_after_batch_transfer(batch, 0)
        images = batch["image"].contiguous(memory_format=model.memory_format)
        loss = F.cross_entropy(net(images), batch["label"])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    datamodule.trainer = None
    return time.perf_counter() - started, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--arch", default="resnet")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    datamodule = MNISTDataModule(data_dir=args.data_dir, download=False)
    datamodule.setup("fit")
    result = compare(
        lambda: lightning_epoch(datamodule, args.arch, args.steps),
        lambda: plain_epoch(datamodule, args.arch, args.steps),
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
