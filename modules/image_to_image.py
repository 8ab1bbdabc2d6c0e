"""What every image-to-image task shares: restoration, super-resolution and the GAN's generator side."""

import warnings

import lightning.pytorch as pl
import torch
from torch import nn

from common.errors import UserInputError
from common.imagenet import denormalize
from common.titled_grid import titled_grid
from common.weights_option import weights_given
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

    With the hyperparameter ``lpips_weights`` (AlexNet's: ``imagenet`` or a local file) they also
    report LPIPS (``val/lpips``, ``val/lpips_input``); without the weights, one warning says it is
    left out.

    Subclasses call ``attach_generator`` in their ``__init__`` and implement ``evaluation_losses``;
    their hyperparameters include ``grid_size`` (validation images shown as damaged | restored |
    original, 0 for none) and ``lpips_weights``.
    """

    output_title = "restored"  # the middle column of the validation grid

    def attach_generator(self, generator: nn.Module, channels_last: bool) -> None:
        """Makes ``generator`` this module's network (``self.generator``), in NHWC layout if ``channels_last``."""
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.generator = generator.to(memory_format=self.memory_format)
        self.val_quality = ImageQualityMetrics()
        self.test_quality = ImageQualityMetrics()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.generator(images.contiguous(memory_format=self.memory_format))

    def setup(self, stage: str) -> None:
        if stage == "predict" or self.val_quality.lpips is not None:
            return
        weights = self.hparams.get("lpips_weights")
        asked = weights_given(weights)
        if asked:
            try:
                self.val_quality.add_lpips(weights)
                self.test_quality.add_lpips(shared=self.val_quality)
                return
            except UserInputError as error:
                problem = str(error)
        else:
            problem = "--model.lpips_weights is none."
        trainer = self._trainer
        monitored = [callback.monitor for callback in trainer.checkpoint_callbacks
                     if "lpips" in str(getattr(callback, "monitor", ""))] if stage == "fit" and trainer else []
        if monitored:  # the best checkpoint could not be chosen: say so now, not at the first validation
            raise UserInputError(
                f"{problem} The best checkpoint is chosen by {monitored[0]}: give --model.lpips_weights, or choose "
                "by PSNR (--checkpoint.monitor val/psnr --checkpoint.mode max)."
            )
        if asked:  # asked for and not to be had; none means none was asked for
            warnings.warn(f"{problem} LPIPS is not reported.", stacklevel=2)

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
        columns = [damaged[:count], output[:count], target[:count]]
        grid = titled_grid(columns, ["damaged", self.output_title, "original"])
        writer.add_image("val/damaged_restored_original", grid, self.global_step)
