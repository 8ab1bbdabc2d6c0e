"""Image restoration and super-resolution: a U-Net that maps damaged photos back to good ones."""

from typing import Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from datamodules.imagenet import denormalize
from modules.checkpoint_parts import load_part
from modules.freezing import frozen_then_unfrozen_adam, set_frozen
from modules.image_quality import ImageQualityMetrics
from modules.layers import NormType
from modules.losses.feature_loss import FeatureLoss
from modules.nets.unet import unet
from modules.tensorboard import tensorboard_of

PixelLoss = Literal["mse", "l1", "feature"]


class RestorationModule(pl.LightningModule):
    """A U-Net generator trained on (damaged, original) pairs, frozen then unfrozen.

    Both images are ImageNet-normalised; the U-Net's ``y_range`` keeps its outputs in the range
    such images take. Validation reports PSNR and SSIM of the de-normalised output against the
    original, and the same for the damaged input itself (``val/psnr_input``), so the gain is
    read off directly.

    Args:
        encoder: torchvision classifier whose body is the U-Net encoder.
        encoder_weights: ``imagenet``, a local state-dict path, or None.
        encoder_cut: keep the encoder body's layers ``[:encoder_cut]``.
        in_channels: image channels; linked from the datamodule.
        blur: blur after each decoder upsampling (against checkerboard artefacts).
        self_attention: self-attention in the third-from-last decoder block.
        norm: decoder norm: ``weight`` (the lesson's generator), ``batch`` or ``none``.
        y_range: output range (ImageNet-normalised pixels lie within about -2.2..2.7).
        residual: the U-Net predicts a correction to its upsampled input (see ``UNet``); the
            super-resolution configs use it.
        loss: ``mse`` (the lesson's generator pretraining), ``l1``, or ``feature`` (VGG perceptual
            loss: the super-resolution notebook's).
        feature_weights: the VGG16 weights of the feature loss: ``imagenet``, a local path, none.
        feature_layer_weights: weights of the three compared VGG layers.
        frozen_epochs: epochs that train the decoder only; the rest train everything.
        lr: peak rate of the frozen phase.
        unfrozen_lr: (encoder, decoder) peak rates once unfrozen.
        pct_start: warm-up fraction of the frozen phase.
        unfrozen_pct_start: warm-up fraction of the unfrozen phase.
        weight_decay: decoupled weight decay.
        grid_size: validation images shown as damaged | restored | original (0 for none).
        channels_last: NHWC layout for weights and activations.
        init_checkpoint: start the generator from this run's checkpoint (e.g. the 128 px model
            when training at 256 px); a fresh fit, not a resumed one.
    """

    def __init__(
        self,
        encoder: str = "mobilenet_v2",
        encoder_weights: str | None = None,
        encoder_cut: int | None = -1,
        in_channels: int = 3,
        blur: bool = True,
        self_attention: bool = True,
        norm: NormType = "weight",
        y_range: tuple[float, float] = (-3.0, 3.0),
        residual: bool = False,
        loss: PixelLoss = "mse",
        feature_weights: str | None = None,
        feature_layer_weights: tuple[float, float, float] = (5.0, 15.0, 2.0),
        frozen_epochs: int = 1,
        lr: float = 1e-3,
        unfrozen_lr: tuple[float, float] = (1e-5, 1e-4),
        pct_start: float = 0.3,
        unfrozen_pct_start: float = 0.3,
        weight_decay: float = 1e-3,
        grid_size: int = 6,
        channels_last: bool = True,
        init_checkpoint: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.generator = unet(
            encoder, in_channels, encoder_weights, encoder_cut, in_channels,
            blur=blur, self_attention=self_attention, norm=norm, y_range=tuple(y_range),
            residual=residual,
        )
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.generator.to(memory_format=self.memory_format)
        self.feature_loss = FeatureLoss("vgg16", feature_weights, feature_layer_weights) if loss == "feature" else None
        self.val_quality = ImageQualityMetrics()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.generator(images.contiguous(memory_format=self.memory_format))

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.init_checkpoint:
            load_part(self.generator, self.hparams.init_checkpoint, "generator", "--model.init_checkpoint")

    def on_train_epoch_start(self) -> None:
        # From the epoch counter alone, so a resumed run lands in the right phase.
        set_frozen(self.generator.encoder, frozen=self.current_epoch < self.hparams.frozen_epochs)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.losses(self(batch["input"]), batch["target"])
        if batch_idx % self.trainer.log_every_n_steps == 0:
            self.log_dict({f"train/{name}": value for name, value in terms.items() if name != "loss"})
            self.log("train/loss", terms["loss"], prog_bar=True)
        return terms["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        restored = self(batch["input"])
        terms = self.losses(restored, batch["target"])
        self.log_dict({f"val/{name}": value for name, value in terms.items()}, sync_dist=True)
        output, target, damaged = (denormalize(x.float()) for x in (restored, batch["target"], batch["input"]))
        self.val_quality.update(output, damaged, target)
        self.log_dict(self.val_quality.as_log_dict("val"), prog_bar=True)
        if batch_idx == 0:
            log_restoration_grid(self, damaged, output, target)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        return {"path": batch["path"], "image": denormalize(self(batch["input"]).float())}

    def configure_optimizers(self):
        return frozen_then_unfrozen_adam(self, self.generator.encoder)

    def losses(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training loss as ``loss``, plus its parts for the feature loss."""
        if self.feature_loss is not None:
            return self.feature_loss(output.float(), target.float())
        if self.hparams.loss == "l1":
            return {"loss": F.l1_loss(output, target)}
        return {"loss": F.mse_loss(output, target)}


def log_restoration_grid(
    module: pl.LightningModule, damaged: torch.Tensor, output: torch.Tensor, target: torch.Tensor
) -> None:
    """TensorBoard grid, one row per image: damaged | restored | original (``grid_size`` rows)."""
    writer = tensorboard_of(module)
    count = module.hparams.grid_size
    if writer is None or count == 0:
        return
    rows = torch.stack([damaged[:count], output[:count], target[:count]], dim=1).flatten(0, 1)  # (3N, C, H, W)
    writer.add_image("val/damaged_restored_original", make_grid(rows.cpu(), nrow=3, padding=2), module.global_step)
