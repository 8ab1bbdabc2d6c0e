"""Training-step throughput of SegmentationModule under Lightning against a plain PyTorch loop.

Both run the same U-Net (the config's MobileNetV2 encoder, cut before its 1280-channel expansion,
channels-last), the same CamVid batches (in-memory frames, albumentations crops), fused AdamW and
the same one-cycle schedule, all parameters trainable, on the CPU. Run:

    python -m benchmarks.camvid_step --data_dir ../shared/data/camvid --steps 12 --rounds 3
"""

import argparse
import time

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from benchmarks.timing import StepTimer, compare, print_seconds_per_step
from datamodules.camvid import CamVidDataModule
from modules.freezing import PhasedOneCycle
from modules.segmentation import SegmentationModule

WARMUP = 2
MODEL = {"encoder": "mobilenet_v2", "encoder_cut": -1, "norm": "none", "frozen_epochs": 0,
         "unfrozen_lr": (3e-4, 1e-3), "unfrozen_pct_start": 0.3}


def lightning_epoch(datamodule: CamVidDataModule, steps: int) -> tuple[float, int]:
    model = SegmentationModule(num_classes=datamodule.num_classes, ignore_index=datamodule.ignore_index, **MODEL)
    timer = StepTimer(WARMUP)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=steps + WARMUP, limit_val_batches=0, num_sanity_val_steps=0,
        accelerator="cpu", devices=1, log_every_n_steps=10, enable_checkpointing=False,
        logger=pl.loggers.TensorBoardLogger("/tmp/lesson7-bench", name="camvid"),
        callbacks=[timer, pl.callbacks.TQDMProgressBar(refresh_rate=5)], enable_model_summary=False,
    )
    trainer.fit(model, datamodule=datamodule)
    return timer.seconds, timer.timed_steps


def plain_epoch(datamodule: CamVidDataModule, steps: int) -> tuple[float, int]:
    model = SegmentationModule(num_classes=datamodule.num_classes, ignore_index=datamodule.ignore_index, **MODEL)
    net = model.net.train()
    encoder_ids = {id(p) for p in net.encoder.parameters()}
    groups = [{"params": list(net.encoder.parameters())},
              {"params": [p for p in net.parameters() if id(p) not in encoder_ids]}]
    optimizer = torch.optim.AdamW(groups, lr=1e-3, betas=(0.95, 0.99), weight_decay=1e-2, fused=True)
    scheduler = PhasedOneCycle(optimizer, [(steps + WARMUP, list(MODEL["unfrozen_lr"]), 0.3)])
    started = 0.0
    for step, batch in enumerate(datamodule.train_dataloader()):
        if step == WARMUP:
            started = time.perf_counter()
        if step == steps + WARMUP:
            break
        batch = datamodule.on_after_batch_transfer(batch, 0)
        images = batch["image"].contiguous(memory_format=model.memory_format)
        loss = F.cross_entropy(net(images), batch["mask"], ignore_index=datamodule.ignore_index)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return time.perf_counter() - started, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--crop", type=int, nargs=2, default=(180, 240))
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    datamodule = CamVidDataModule(args.data_dir, batch_size=args.batch_size, crop_size=tuple(args.crop),
                                  scale_range=(0.6, 1.1))
    datamodule.setup("fit")
    result = compare(lambda: lightning_epoch(datamodule, args.steps), lambda: plain_epoch(datamodule, args.steps),
                     args.rounds)
    print(f"CamVid U-Net mobilenet_v2 (cut -1), crops {args.crop[0]}x{args.crop[1]}, bs {args.batch_size}, "
          f"{args.steps} timed steps x {args.rounds} rounds, {torch.get_num_threads()} threads")
    print_seconds_per_step(result)


if __name__ == "__main__":
    main()
