"""Image restoration and super-resolution: a U-Net that maps damaged photos back to good ones."""

import warnings
from typing import Literal

import torch
import torch.nn.functional as F

from common.errors import UserInputError
from modules.checkpoints import load_part, spec_from_checkpoint
from modules.freezing import FineTunesAnEncoder, FineTuning
from modules.image_to_image import ImageToImageModule
from modules.losses.feature_loss import FeatureLoss
from modules.nets.spec import as_spec, spec_dict
from modules.nets.unet import UNetSpec
from modules.tensorboard import log_training_loss

PixelLoss = Literal["mse", "l1", "feature"]

# The lesson's generator on the encoder that trains on a CPU: MobileNetV2 cut before its 1x1
# expansion, blur, self-attention, weight-normalised decoder, outputs in ImageNet-normalised range.
GENERATOR = UNetSpec(encoder="mobilenet_v2", encoder_cut=-1, norm="weight", blur=True, self_attention=True,
                     y_range=(-3.0, 3.0))
SCHEDULE = FineTuning(lr=1e-3, pct_start=0.3, weight_decay=1e-3, frozen_epochs=1, unfrozen_lr=(1e-5, 1e-4),
                      unfrozen_pct_start=0.3)


class RestorationModule(FineTunesAnEncoder, ImageToImageModule):
    """A U-Net generator trained on (damaged, original) pairs, frozen then unfrozen.

    Both images are ImageNet-normalised; the U-Net's ``y_range`` keeps its outputs in the range
    such images take. Validation and test report PSNR and SSIM against the original, beside the
    damaged input's own (see ``ImageToImageModule``).

    The network comes from ``generator`` or, when that is not given, from the run that saved
    ``generator_checkpoint`` (super-resolution at 256 px starts from the 128 px model that way).
    Pretrained weights (``generator_checkpoint``, else ``encoder_weights``) are loaded only when
    a fit starts from scratch: a checkpoint of this module needs neither.

    Args:
        generator: the U-Net's architecture; None takes the checkpoint's, or the lesson's generator.
        in_channels: image channels; linked from the datamodule.
        encoder_weights: pretrained encoder: ``imagenet``, a local state-dict path, or None.
        generator_checkpoint: start from this run's generator (architecture and weights); a
            fresh fit, not a resumed one.
        loss: ``mse`` (the lesson's generator pretraining), ``l1``, or ``feature`` (VGG perceptual
            loss: the super-resolution notebook's).
        feature_weights: the VGG16 weights of the feature loss: ``imagenet`` or a local path
            (None: random, for tests). Read by ``fit``, and by ``validate``/``test`` when they can
            be had (otherwise those skip the feature-loss terms, with a warning).
        feature_layer_weights: weights of the compared VGG layers, deepest last: the activations
            before the last three max-pools (the lesson's), or with four the one before the second too.
        feature_gram_scale: the extra factor on the feature loss's Gram (style) terms, which
            carry each layer's weight squared: the lesson's 5e3; 0 compares features only.
        feature_pixel_loss: the feature loss's pixel term, ``l1`` (the lesson's) or ``mse``.
        feature_pixel_weight: its weight.
        schedule: frozen then unfrozen, each phase a one-cycle schedule (the lesson's recipe).
        grid_size: validation images shown as damaged | restored | original (0 for none).
        channels_last: NHWC layout for weights and activations.
        lpips_weights: AlexNet's weights for LPIPS: ``imagenet`` or a local state-dict path; None
            leaves LPIPS out.
    """

    def __init__(
        self,
        generator: UNetSpec | None = None,
        in_channels: int = 3,
        encoder_weights: str | None = None,
        generator_checkpoint: str | None = None,
        loss: PixelLoss = "mse",
        feature_weights: str | None = None,
        feature_layer_weights: tuple[float, ...] = (5.0, 15.0, 2.0),
        feature_gram_scale: float = 5e3,
        feature_pixel_loss: Literal["l1", "mse"] = "l1",
        feature_pixel_weight: float = 1.0,
        schedule: FineTuning | None = None,
        grid_size: int = 6,
        channels_last: bool = True,
        lpips_weights: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        if generator is None and generator_checkpoint:
            spec = spec_from_checkpoint(UNetSpec, generator_checkpoint, "generator", "--model.generator_checkpoint")
        else:
            spec = as_spec(UNetSpec, generator, GENERATOR)
        self.hparams.generator = spec_dict(spec)
        self.spec = spec
        self.schedule = as_spec(FineTuning, schedule, SCHEDULE)
        self.hparams.schedule = spec_dict(self.schedule)
        self.attach_generator(spec.build(in_channels, in_channels), channels_last)
        self.feature_loss = (FeatureLoss("vgg16", None, feature_layer_weights, feature_gram_scale,
                                         feature_pixel_loss, feature_pixel_weight) if loss == "feature" else None)
        self._feature_terms = loss == "feature"

    def setup(self, stage: str) -> None:
        super().setup(stage)  # LPIPS
        if self.feature_loss is None or self.hparams.feature_weights is None or stage == "predict":
            return
        try:
            self.feature_loss.load_weights(self.hparams.feature_weights)
        except UserInputError as error:
            if stage == "fit":
                raise
            warnings.warn(f"{error} The feature-loss terms are not reported.", stacklevel=2)
            self._feature_terms = False

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        terms = self.training_losses(batch)
        if batch_idx % self.trainer.log_every_n_steps == 0:
            self.log_dict({f"train/{name}": value for name, value in terms.items() if name != "loss"})
        log_training_loss(self, terms["loss"], batch_idx)
        return terms["loss"]

    @property
    def pretrained_encoder(self) -> torch.nn.Module:
        return self.generator.encoder

    def load_pretrained(self) -> None:
        """What a fit from scratch starts from: the generator of ``generator_checkpoint``, else the
        encoder's ``encoder_weights``."""
        if self.hparams.generator_checkpoint:
            load_part(self.generator, self.hparams.generator_checkpoint, "generator", "--model.generator_checkpoint")
        elif self.hparams.encoder_weights:
            self.spec.load_encoder_weights(self.generator, self.hparams.encoder_weights)

    def training_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        """The training loss of a batch as ``loss``, plus its parts for the feature loss."""
        return self.losses(self(batch["input"]), batch["target"])

    def losses(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        """The training loss as ``loss``, plus its parts for the feature loss."""
        if self.feature_loss is not None:
            return self.feature_loss(output.float(), target.float())
        if self.hparams.loss == "l1":
            return {"loss": F.l1_loss(output, target)}
        return {"loss": F.mse_loss(output, target)}

    def evaluation_losses(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.feature_loss is not None and not self._feature_terms:
            return {}  # the VGG weights are not to be had here: PSNR and SSIM only
        return self.losses(output, target)
