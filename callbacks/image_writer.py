"""Writes images returned by ``predict`` (restored or upscaled photos) to an output folder."""

from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image

from common.errors import UserInputError


def to_image(image: torch.Tensor) -> Image.Image:
    """A (3, H, W) tensor in [0, 1] as an 8-bit RGB image."""
    array = (image.detach().float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(np.ascontiguousarray(array))


class ImageWriter(BasePredictionWriter):
    """Saves each predicted image as ``<output_dir>/<input stem>.png``; never over an input file.

    Expects predictions ``{"path": [input paths], "image": (B, 3, H, W) in [0, 1]}``.

    Args:
        output_dir: folder for the images; created if needed. It may not be an input's folder.
    """

    def __init__(self, output_dir: str = "predictions/images"):
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx=0) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for path, image in zip(prediction["path"], prediction["image"], strict=True):
            source = Path(path)
            if source.parent.resolve() == self.output_dir.resolve():
                raise UserInputError(
                    f"The predict output folder {self.output_dir} is the input folder of {source}: "
                    "choose another output_dir so that no input is overwritten."
                )
            to_image(image).save(self.output_dir / f"{source.stem}.png")
