"""Writes ``predict`` segmentation masks as colour PNGs, one per input image."""

from pathlib import Path

import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image


def mask_image(mask: np.ndarray, size: tuple[int, int], palette: np.ndarray) -> Image.Image:
    """A (H, W) class-index mask as a palette PNG image of ``size`` (height, width).

    The image shows in colour and its pixel values are still the class indices, so it reads back
    as labels. Masks predicted at another size are resized by nearest neighbour.
    """
    image = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8), mode="P")
    image.putpalette(np.asarray(palette, dtype=np.uint8).flatten().tolist())
    height, width = size
    if image.size != (width, height):
        image = image.resize((width, height), Image.NEAREST)
    return image


class SegmentationMaskWriter(BasePredictionWriter):
    """Saves each predicted mask as ``<output_dir>/<image stem>.png`` at its image's size.

    Colours come from the model's ``palette()`` (SegNet's CamVid colours, Void black).

    Args:
        output_dir: folder for the masks; created if needed.
    """

    def __init__(self, output_dir: str = "predictions/masks"):
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx=0) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        palette = pl_module.palette().numpy()
        for path, mask, size in zip(prediction["path"], prediction["mask"].cpu().numpy(),
                                    prediction["size"].tolist()):
            mask_image(mask, tuple(size), palette).save(self.output_dir / f"{Path(path).stem}.png")
