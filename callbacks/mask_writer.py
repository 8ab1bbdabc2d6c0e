"""Writes ``predict`` segmentation masks as colour PNGs, one per input image."""

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from lightning.pytorch.callbacks import BasePredictionWriter
from PIL import Image

from datamodules.camvid import default_palette


class SegmentationMaskWriter(BasePredictionWriter):
    """Saves each predicted mask as ``<output_dir>/<image stem>.png`` at its image's size.

    The PNGs are palette images: they show in colour (the datamodule's palette, or a fixed one)
    and their pixel values are still the class indices, so they can be read back as labels.

    Args:
        output_dir: folder for the masks; created if needed.
    """

    def __init__(self, output_dir: str = "predictions/masks"):
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx=0) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        palette = self._palette(trainer, pl_module)
        for path, mask, size in zip(prediction["path"], prediction["mask"].cpu().numpy(),
                                    prediction["size"].tolist()):
            image = Image.fromarray(mask, mode="P")
            image.putpalette(palette.flatten().tolist())
            height, width = size
            if image.size != (width, height):
                image = image.resize((width, height), Image.NEAREST)
            image.save(self.output_dir / f"{Path(path).stem}.png")

    @staticmethod
    def _palette(trainer: pl.Trainer, pl_module: pl.LightningModule) -> np.ndarray:
        colours = getattr(trainer.datamodule, "palette", None) if trainer.datamodule is not None else None
        if colours is None:
            colours = default_palette(pl_module.hparams.num_classes)
        return np.asarray(colours, dtype=np.uint8)
