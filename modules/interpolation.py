"""Network interpolation: a perceptual fine-tune's weights blended with the pixel-loss model's it started from.

A perceptual loss (VGG features and Grams) trades PSNR for perceptual similarity, and its weights
choose where on that trade-off a run lands. Blending the fine-tuned network's weights with the
pixel-loss network's reaches points at least as good as re-weighting the loss does (ESRGAN's "network
interpolation", Wang et al. 2018): at 256 px a blend gives a little lower LPIPS at the same PSNR
than the Gram scales tried (benchmarks/RESULTS.md), and any point between the two ends without
training again. The blend is linear in every floating-point tensor of the
network; integer buffers (BatchNorm's batch counts) are the fine-tune's. Re-blend a finished run
at another fraction without training:

    python -m modules.interpolation --perceptual lightning_logs/superres_256/checkpoints/last.ckpt \\
        --pixel lightning_logs/superres_256_mse/checkpoints/last.ckpt --pixel_fraction 0.3 \\
        --output lightning_logs/superres_256/checkpoints/interpolated.ckpt
"""

import argparse
from pathlib import Path

import torch

from common.errors import UserInputError
from modules.checkpoints import read_checkpoint


def check_pixel_fraction(pixel_fraction: float, option: str) -> float:
    if not 0.0 <= pixel_fraction <= 1.0:
        raise UserInputError(f"{option}: {pixel_fraction} is not a fraction between 0 and 1.")
    return float(pixel_fraction)


def interpolate_weights(
    perceptual: dict[str, torch.Tensor],
    pixel: dict[str, torch.Tensor],
    pixel_fraction: float,
    prefix: str = "generator.",
    pixel_source: str = "the pixel-loss checkpoint",
) -> dict[str, torch.Tensor]:
    """``perceptual`` with each ``<prefix>*`` float tensor replaced by ``f * pixel + (1 - f) * perceptual``.

    Keys outside ``prefix`` (other networks, metrics' buffers) are the perceptual state's.

    Raises:
        UserInputError: ``pixel`` lacks one of the network's tensors or holds one of another shape
            (the two runs trained different architectures); names ``pixel_source``.
    """
    pixel_fraction = check_pixel_fraction(pixel_fraction, "pixel_fraction")
    blended = dict(perceptual)
    network = [key for key in perceptual if key.startswith(prefix)]
    if not network:
        raise UserInputError(f"the perceptual model has no '{prefix.rstrip('.')}' weights to interpolate.")
    for key in network:
        mine = perceptual[key]
        if key not in pixel or pixel[key].shape != mine.shape:
            found = "lacks it" if key not in pixel else f"holds {tuple(pixel[key].shape)}"
            raise UserInputError(
                f"{pixel_source} does not hold the same network: {key} is {tuple(mine.shape)} here, "
                f"{pixel_source} {found}."
            )
        if mine.is_floating_point():
            theirs = pixel[key].to(device=mine.device, dtype=mine.dtype)
            blended[key] = torch.lerp(mine, theirs, pixel_fraction)
    return blended


def write_interpolated_checkpoint(
    perceptual_checkpoint: str | Path, pixel_checkpoint: str | Path, pixel_fraction: float, output: str | Path
) -> Path:
    """Writes the perceptual checkpoint with its generator blended toward the pixel one's.

    The result holds weights and hyperparameters only (no optimizer state: it is a model to use,
    not a run to resume); ``predict``, ``validate`` and the quality benchmark read it as any other.
    """
    check_pixel_fraction(pixel_fraction, "--pixel_fraction")
    saved = read_checkpoint(perceptual_checkpoint, "--perceptual")
    pixel = read_checkpoint(pixel_checkpoint, "--pixel").get("state_dict", {})
    saved["state_dict"] = interpolate_weights(
        saved.get("state_dict", {}), pixel, pixel_fraction, pixel_source=f"--pixel {pixel_checkpoint}"
    )
    for resumable in ("optimizer_states", "lr_schedulers", "loops", "callbacks"):
        saved.pop(resumable, None)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    torch.save(saved, output)
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--perceptual", required=True, help="checkpoint of the perceptual (feature-loss) fine-tune")
    parser.add_argument("--pixel", required=True, help="checkpoint of the pixel-loss model it started from")
    parser.add_argument("--pixel_fraction", type=float, required=True, help="0: the fine-tune; 1: the pixel model")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    try:
        written = write_interpolated_checkpoint(args.perceptual, args.pixel, args.pixel_fraction, args.output)
    except UserInputError as error:
        parser.exit(2, f"error: {error}\n")
    print(f"{written}: {args.pixel_fraction:g} x {args.pixel} + {1 - args.pixel_fraction:g} x {args.perceptual}")


if __name__ == "__main__":
    main()
