"""What every image-to-image task shares: restoration, super-resolution and the GAN's generator side."""

import lightning.pytorch as pl
import torch
from torch import nn
from torchvision.utils import make_grid

from common.imagenet import denormalize
from modules.checkpoints import LoadsOlderCheckpoints
from modules.image_quality import ImageQualityMetrics
from modules.tensorboard import tensorboard_of


class ImageToImageModule(LoadsOlderCheckpoints, pl.LightningModule):
    """A generator network that maps damaged images to clean ones; validation, test and predict.

    Batches hold ``input`` (the damaged image) and ``target`` (the original), both
    ImageNet-normalised. Validation and test report torchmetrics PSNR and SSIM of the
    de-normalised output against the original, and the same scores of the damaged input itself
    (``val/psnr_input``), so the gain is read off directly, beside the subclass's
    ``evaluation_losses``. ``predict`` returns the restored images in [0, 1].

    Subclasses call ``attach_generator`` in their ``__init__`` and implement ``evaluation_losses``;
    their hyperparameters include ``grid_size`` (validation images shown as damaged | restored |
    original, 0 for none).
    """

    def attach_generator(self, generator: nn.Module, channels_last: bool) -> None:
        """Makes ``generator`` this module's network (``self.generator``), in NHWC layout if ``channels_last``."""
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.generator = generator.to(memory_format=self.memory_format)
        self.val_quality = ImageQualityMetrics()
        self.test_quality = ImageQualityMetrics()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.generator(images.contiguous(memory_format=self.memory_format))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_quality, with_grid=batch_idx == 0)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_quality)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        return {"path": batch["path"], "image": denormalize(self(batch["input"]).float())}

    def evaluation_losses(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms logged by validation and test as ``<split>/<name>``; implemented by subclasses."""
        raise NotImplementedError

    def _evaluate(self, batch: dict, split: str, quality: ImageQualityMetrics, with_grid: bool = False) -> None:
        restored = self(batch["input"])
        losses = self.evaluation_losses(restored, batch["target"])
        self.log_dict({f"{split}/{name}": value for name, value in losses.items()}, sync_dist=True)
        output, target, damaged = (denormalize(x.float()) for x in (restored, batch["target"], batch["input"]))
        quality.update(output, damaged, target)
        self.log_dict(quality.as_log_dict(split), prog_bar=True)
        if with_grid:
            self._log_grid(damaged, output, target)

    def _log_grid(self, damaged: torch.Tensor, output: torch.Tensor, target: torch.Tensor) -> None:
        """TensorBoard grid, one row per image: damaged | restored | original (``grid_size`` rows)."""
        writer = tensorboard_of(self)
        count = self.hparams.grid_size
        if writer is None or count == 0:
            return
        rows = torch.stack([damaged[:count], output[:count], target[:count]], dim=1).flatten(0, 1)  # (3N, C, H, W)
        writer.add_image("val/damaged_restored_original", make_grid(rows.cpu(), nrow=3, padding=2), self.global_step)
