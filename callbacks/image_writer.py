"""Writes images returned by ``predict`` (restored or upscaled photos) to an output folder."""

from pathlib import Path

import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image

from modules.errors import UserInputError


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
        images = (prediction["image"].clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        for path, image in zip(prediction["path"], images, strict=True):
            source = Path(path)
            if source.parent.resolve() == self.output_dir.resolve():
                raise UserInputError(
                    f"The predict output folder {self.output_dir} is the input folder of {source}: "
                    "choose another output_dir so that no input is overwritten."
                )
            Image.fromarray(np.ascontiguousarray(image)).save(self.output_dir / f"{source.stem}.png")
