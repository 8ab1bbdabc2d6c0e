"""Image quality of restoration generators on the validation split, against classic upsampling.

For each checkpoint named on the command line (a ``RestorationModule`` or ``GANModule`` run of
``cli.py fit``), the module is loaded from the checkpoint alone, with the class its
hyperparameters name, and restores the validation photos exactly as the training run's validation
saw them (centre crops of the damaged copy, upsampled as that run did). Every row is scored by
the product's ``ImageQualityMetrics`` (torchmetrics PSNR and SSIM against the originals), beside
the same scores of the damaged input upsampled bilinearly and bicubically. With
``--lpips_weights`` (AlexNet's) it adds LPIPS, the perceptual distance; with ``--feature_weights``
the lesson's VGG16 feature loss of every row, so generators trained under different losses are
compared on one ruler. PSNR is the mean of the photos' PSNRs, as validation logs it. ``--grid``
saves damaged | bicubic | each generator | original, titled, for the first validation photos. Run:

    # restoration (lesson-style crappify, 128 px): pretrained generator, then after the GAN
    python -m benchmarks.restoration_quality --data_dir ../shared/data/pets/images \\
        --checkpoint generator=lightning_logs/restore_generator/checkpoints/last.ckpt \\
        --checkpoint gan=$(ls lightning_logs/restore_gan/checkpoints/best-*.ckpt) \\
        --lpips_weights ../shared/weights/alexnet_imagenet_features.pth --grid docs/restoration_128.jpg
    # super-resolution (96 px JPEG-60 input): feature-loss model against a pixel-MSE one
    python -m benchmarks.restoration_quality --data_dir ../shared/data/pets/images --quality 60 60 \\
        --no_text --feature_weights ../shared/weights/vgg16_imagenet_features.pth \\
        --checkpoint feature=lightning_logs/superres/checkpoints/last.ckpt \\
        --checkpoint mse=lightning_logs/superres_mse/checkpoints/last.ckpt \\
        --lpips_weights ../shared/weights/alexnet_imagenet_features.pth --grid docs/superres_128.jpg
"""

import argparse
from pathlib import Path

import torch
from torchvision.utils import save_image

from common.imagenet import denormalize
from common.titled_grid import titled_grid
from datamodules.restoration import RestorationDataModule
from modules.checkpoints import load_module, read_checkpoint
from modules.image_quality import ImageQualityMetrics
from modules.image_to_image import ImageToImageModule
from modules.losses.feature_loss import FeatureLoss


def generator_from(checkpoint: str) -> tuple[ImageToImageModule, str]:
    """The module a restoration or GAN run saved, and how that run upsampled its damaged inputs
    (it is scored on inputs made the same way)."""
    saved = read_checkpoint(checkpoint, "--checkpoint")
    model = load_module(checkpoint, map_location="cpu")
    upsample = (saved.get("datamodule_hyper_parameters") or {}).get("upsample", "bilinear")
    return model.eval(), upsample


def validation_batches(args: argparse.Namespace, upsample: str) -> list[dict]:
    datamodule = RestorationDataModule(
        args.data_dir, cache_dir=args.cache_dir, image_size=args.image_size, eval_batch_size=args.batch_size,
        short_side=args.short_side, quality_min=args.quality[0], quality_max=args.quality[1],
        draw_quality=not args.no_text, upsample=upsample,
    )
    datamodule.prepare_data()
    datamodule.setup("validate")
    return [datamodule.on_after_batch_transfer(batch, 0) for batch in datamodule.val_dataloader()]


class Row:
    """One row of the table: PSNR and SSIM from ``ImageQualityMetrics``, optionally LPIPS and the feature loss."""

    def __init__(self, feature_loss: FeatureLoss | None, lpips_of: ImageQualityMetrics | None):
        self.quality = ImageQualityMetrics()
        if lpips_of is not None:
            self.quality.add_lpips(shared=lpips_of)
        self.feature_loss = feature_loss
        self.feature_sum, self.images = 0.0, 0

    def update(self, images: torch.Tensor, damaged: torch.Tensor, target: torch.Tensor) -> None:
        """Scores ``images`` (restored from ``damaged``, or ``damaged`` itself); all ImageNet-normalised."""
        self.quality.update(denormalize(images), denormalize(damaged), denormalize(target))
        if self.feature_loss is not None:
            self.feature_sum += float(self.feature_loss(images, target)["loss"]) * len(target)
            self.images += len(target)

    def line(self, name: str) -> str:
        psnr, ssim = float(self.quality.psnr.compute()), float(self.quality.ssim.compute())
        lpips = f" {float(self.quality.lpips.compute()):7.4f} |" if self.quality.lpips is not None else ""
        feature = f" {self.feature_sum / self.images:12.4f} |" if self.feature_loss is not None else ""
        return f"| {name:<22} | {psnr:8.2f} | {ssim:6.3f} |{lpips}{feature}"


@torch.no_grad()
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--cache_dir", default="data/cache")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--image_size", type=int, default=128)
    parser.add_argument("--short_side", type=int, default=96)
    parser.add_argument("--quality", type=int, nargs=2, default=(10, 70), metavar=("MIN", "MAX"))
    parser.add_argument("--no_text", action="store_true", help="damage without the drawn quality number")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--feature_weights", help="VGG16 weights ('imagenet' or a local state dict)")
    parser.add_argument("--lpips_weights", help="AlexNet weights for LPIPS ('imagenet' or a local state dict)")
    parser.add_argument("--grid", help="save damaged | generators | original for the first photos here")
    parser.add_argument("--grid_rows", type=int, default=6)
    args = parser.parse_args(argv)
    named = [entry.split("=", 1) for entry in args.checkpoint]
    if any(len(pair) != 2 for pair in named):
        parser.error("--checkpoint takes NAME=PATH")
    generators = {name: generator_from(path) for name, path in named}
    feature_loss = FeatureLoss("vgg16", args.feature_weights) if args.feature_weights else None
    lpips_of = None
    if args.lpips_weights:
        lpips_of = ImageQualityMetrics()
        lpips_of.add_lpips(args.lpips_weights)

    bilinear, bicubic = validation_batches(args, "bilinear"), validation_batches(args, "bicubic")
    rows = {name: Row(feature_loss, lpips_of) for name in ("input, bilinear", "input, bicubic", *generators)}
    grid_columns: list[list[torch.Tensor]] = []
    for plain, smooth in zip(bilinear, bicubic, strict=True):
        target = plain["target"]
        inputs = {"bilinear": plain["input"], "bicubic": smooth["input"]}
        rows["input, bilinear"].update(inputs["bilinear"], inputs["bilinear"], target)
        rows["input, bicubic"].update(inputs["bicubic"], inputs["bicubic"], target)
        outputs = []
        for name, (generator, upsample) in generators.items():
            outputs.append(generator(inputs[upsample]))
            rows[name].update(outputs[-1], inputs[upsample], target)
        grid_columns.append([plain["input"], smooth["input"], *outputs, target])

    images = sum(len(batch["target"]) for batch in bilinear)
    print(f"{images} validation photos of {args.data_dir}, {args.image_size} px, damage: short side "
          f"{args.short_side}, JPEG quality {args.quality[0]}-{args.quality[1]}, text {not args.no_text}")
    header = ("| image | PSNR (dB) | SSIM |" + (" LPIPS |" if lpips_of is not None else "")
              + (" feature loss |" if feature_loss is not None else ""))
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for name, row in rows.items():
        print(row.line(name))
    if args.grid:
        columns = [denormalize(torch.cat(parts)[: args.grid_rows]) for parts in zip(*grid_columns)]
        titles = ["damaged", "bicubic", *generators, "original"]
        Path(args.grid).parent.mkdir(parents=True, exist_ok=True)
        save_image(titled_grid(columns, titles), args.grid)
        print(f"grid ({' | '.join(titles)}) saved to {args.grid}")


if __name__ == "__main__":
    main()
