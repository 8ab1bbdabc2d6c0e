"""The lesson's GAN fine-tuning: the pretrained U-Net generator against the pretrained critic."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from datamodules.imagenet import denormalize
from modules.checkpoint_parts import load_part
from modules.critic import patch_bce
from modules.image_quality import ImageQualityMetrics
from modules.layers import NormType
from modules.nets.critic import gan_critic
from modules.nets.unet import unet
from modules.restoration import log_restoration_grid
from modules.switchers import AdaptiveSwitcher, Switcher


class GANModule(pl.LightningModule):
    """Fine-tunes a restoration U-Net against a patch critic, one network per step.

    Each step generates the fakes once. On a critic turn they are detached and the critic learns
    ``mean(BCE(real -> 1), BCE(fake -> 0))``; on a generator turn the generator learns
    ``adversarial_weight * BCE(critic(fake) -> 1) + pixel_weight * MSE(fake, target)``. Whose turn
    it is comes from ``switcher`` (the lesson's adaptive switch by default). The pretrained
    generator and critic are loaded when a fit starts; the architecture options must match them.

    Args:
        generator_checkpoint: a ``RestorationModule`` checkpoint (None: start from scratch).
        critic_checkpoint: a ``CriticModule`` checkpoint (None: start from scratch).
        encoder: generator encoder (as in the restoration config).
        encoder_cut: generator encoder cut.
        in_channels: image channels; linked from the datamodule.
        blur: generator decoder blur.
        self_attention: generator self-attention.
        norm: generator decoder norm.
        y_range: generator output range.
        residual: the generator corrects its input (``UNet(residual=True)``); must match the
            generator checkpoint, whose weights fit either way.
        critic_features: critic width.
        critic_blocks: critic stride-2 stages.
        critic_dropout: critic dropout.
        adversarial_weight: weight of the generator's adversarial term.
        pixel_weight: weight of the generator's pixel (MSE) term.
        lr: Adam rate of both networks (betas 0, 0.99).
        switcher: who trains at each step.
        grid_size: validation rows of damaged | restored | original.
        channels_last: NHWC layout for weights and activations (as the pretrained generator had).
    """

    def __init__(
        self,
        generator_checkpoint: str | None = None,
        critic_checkpoint: str | None = None,
        encoder: str = "mobilenet_v2",
        encoder_cut: int | None = -1,
        in_channels: int = 3,
        blur: bool = True,
        self_attention: bool = True,
        norm: NormType = "weight",
        y_range: tuple[float, float] = (-3.0, 3.0),
        residual: bool = False,
        critic_features: int = 64,
        critic_blocks: int = 3,
        critic_dropout: float = 0.15,
        adversarial_weight: float = 1.0,
        pixel_weight: float = 50.0,
        lr: float = 1e-4,
        switcher: Switcher | None = None,
        grid_size: int = 6,
        channels_last: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["switcher"])
        self.automatic_optimization = False
        self.generator = unet(encoder, in_channels, None, encoder_cut, in_channels, blur=blur,
                              self_attention=self_attention, norm=norm, y_range=tuple(y_range),
                              residual=residual)
        self.critic = gan_critic(in_channels, critic_features, critic_blocks, critic_dropout)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.generator.to(memory_format=self.memory_format)
        self.switcher = switcher or AdaptiveSwitcher()
        self.val_quality = ImageQualityMetrics()
        self._critic_steps = 0

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.generator(images.contiguous(memory_format=self.memory_format))

    def setup(self, stage: str) -> None:
        if stage == "fit":
            generator, critic = self.hparams.generator_checkpoint, self.hparams.critic_checkpoint
            if generator:
                load_part(self.generator, generator, "generator", "--model.generator_checkpoint")
            if critic:
                load_part(self.critic, critic, "critic", "--model.critic_checkpoint")

    def training_step(self, batch: dict, batch_idx: int) -> dict:
        critic_optimizer, generator_optimizer = self.optimizers()
        turn = self.switcher.next_turn()
        if turn == "critic":
            with torch.no_grad():
                fake = self(batch["input"])
            loss = self.critic_loss(batch["target"], fake)
            critic_optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            critic_optimizer.step()
            self._critic_steps += 1
            self.log("train/critic_loss", loss, prog_bar=True)
        else:
            # The critic judges but does not learn on this turn: no gradients for its weights.
            with self.toggled_optimizer(generator_optimizer):
                fake = self(batch["input"])
                adversarial = patch_bce(self.critic(fake), 1.0)
                pixel = F.mse_loss(fake, batch["target"])
                loss = self.hparams.adversarial_weight * adversarial + self.hparams.pixel_weight * pixel
                generator_optimizer.zero_grad(set_to_none=True)
                self.manual_backward(loss)
                generator_optimizer.step()
            self.log_dict({"train/generator_loss": loss, "train/generator_adversarial": adversarial,
                           "train/generator_pixel": pixel}, prog_bar=False)
            self.log("train/critic_steps_per_generator_step", float(self._critic_steps))
            self._critic_steps = 0
        self.switcher.record(turn, loss.item())
        return {"loss": loss.detach()}

    def critic_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return (patch_bce(self.critic(real), 1.0) + patch_bce(self.critic(fake.detach()), 0.0)) / 2

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        restored = self(batch["input"])
        output, target, damaged = (denormalize(x.float()) for x in (restored, batch["target"], batch["input"]))
        self.val_quality.update(output, damaged, target)
        self.log_dict(self.val_quality.as_log_dict("val"), prog_bar=True)
        self.log("val/pixel_loss", F.mse_loss(restored, batch["target"]), sync_dist=True)
        if batch_idx == 0:
            log_restoration_grid(self, damaged, output, target)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        return {"path": batch["path"], "image": denormalize(self(batch["input"]).float())}

    def configure_optimizers(self):
        def adam(params):
            return torch.optim.Adam(params, lr=self.hparams.lr, betas=(0.0, 0.99))

        return [adam(self.critic.parameters()), adam(self.generator.parameters())]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["switcher"] = self.switcher.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.switcher.load_state_dict(checkpoint.get("switcher", {}))
