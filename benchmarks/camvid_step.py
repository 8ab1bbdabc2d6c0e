"""Training-step throughput of SegmentationModule under Lightning against a plain PyTorch loop.

Both build the U-Net and the data from ``configs/camvid_unet.yaml`` (the MobileNetV2 encoder, cut
before its 1280-channel expansion, channels-last; in-memory frames, albumentations crops) and run
the module's own loss (``training_loss``) and its fused AdamW under the same one-cycle schedule
(``one_cycle_adamw``), all parameters trainable (``frozen_epochs`` 0), on the CPU. Only the loop
differs. The encoder starts random: its weights do not change the cost of a step. Run:

    python -m benchmarks.camvid_step --data_dir ../shared/data/camvid --steps 12 --rounds 3
"""

import argparse
import time

import lightning.pytorch as pl
import torch

from benchmarks.configs import data_options, model_options, progress_refresh, read_config
from benchmarks.plain import descend, unfrozen_unet
from benchmarks.timing import StepTimer, compare, print_seconds_per_step, tensorboard_logger
from datamodules.camvid import CamVidDataModule
from modules.segmentation import SegmentationModule

WARMUP = 2
CONFIG = "camvid_unet.yaml"


def build_model(datamodule: CamVidDataModule, options: dict) -> SegmentationModule:
    return SegmentationModule(**options, num_classes=datamodule.num_classes, ignore_index=datamodule.ignore_index)


def lightning_epoch(datamodule: CamVidDataModule, options: dict, config: dict, steps: int) -> tuple[float, int]:
    timer = StepTimer(WARMUP)
    trainer = pl.Trainer(
        max_epochs=1, limit_train_batches=steps + WARMUP, limit_val_batches=0, num_sanity_val_steps=0,
        accelerator="cpu", devices=1, log_every_n_steps=config["trainer"]["log_every_n_steps"],
        enable_checkpointing=False, logger=tensorboard_logger("camvid"),
        callbacks=[timer, pl.callbacks.TQDMProgressBar(refresh_rate=progress_refresh(config))],
        enable_model_summary=False,
    )
    trainer.fit(build_model(datamodule, options), datamodule=datamodule)
    return timer.seconds, timer.timed_steps


def plain_epoch(datamodule: CamVidDataModule, options: dict, steps: int) -> tuple[float, int]:
    model = build_model(datamodule, options).train()
    optimizer, scheduler = unfrozen_unet(model, model.net.encoder, steps + WARMUP)
    started = 0.0
    for step, batch in enumerate(datamodule.train_dataloader()):
        if step == WARMUP:
            started = time.perf_counter()
        if step == steps + WARMUP:
            break
        descend(optimizer, model.training_loss(datamodule.on_after_batch_transfer(batch, 0)))
        scheduler.step()
    return time.perf_counter() - started, steps


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--crop", type=int, nargs=2, help="training crop (height width); the config's by default")
    parser.add_argument("--batch_size", type=int, help="the config's by default")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    config = read_config(CONFIG)
    options = model_options(config)
    options.update(encoder_weights=None, schedule={**options["schedule"], "frozen_epochs": 0})
    data = data_options(config)
    data.update(data_dir=args.data_dir, download=False)
    if args.crop:
        data["crop_size"] = tuple(args.crop)
    if args.batch_size:
        data["batch_size"] = args.batch_size
    datamodule = CamVidDataModule(**data)
    datamodule.setup("fit")
    if len(datamodule.train_dataloader()) < args.steps + WARMUP:
        raise SystemExit(f"{args.steps} timed steps need {args.steps + WARMUP} training batches; the data give "
                         f"{len(datamodule.train_dataloader())}. Use fewer --steps or a smaller --batch_size.")
    result = compare(lambda: lightning_epoch(datamodule, options, config, args.steps),
                     lambda: plain_epoch(datamodule, options, args.steps), args.rounds)
    net, crop = options["net"], data["crop_size"]
    crops = f"crops {crop[0]}x{crop[1]}" if crop else "whole frames"
    print(f"CamVid U-Net {net['encoder']} (cut {net['encoder_cut']}), {crops}, bs {data['batch_size']}, "
          f"{args.steps} timed steps x {args.rounds} rounds, {torch.get_num_threads()} threads")
    print_seconds_per_step(result)


if __name__ == "__main__":
    main()
