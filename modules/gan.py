"""The lesson's GAN fine-tuning: the pretrained U-Net generator against the pretrained critic."""

import torch
import torch.nn.functional as F

from modules.adversarial import AdversarialModule
from modules.checkpoints import fitting_from_scratch, load_part, spec_from_checkpoint
from modules.critic import CRITIC
from modules.image_to_image import ImageToImageModule
from modules.losses.patch_bce import patch_bce
from modules.nets.critic import CriticSpec
from modules.nets.spec import as_spec, spec_dict
from modules.nets.unet import UNetSpec
from modules.restoration import GENERATOR
from modules.switchers import AdaptiveSwitcher, Switcher


class GANModule(AdversarialModule, ImageToImageModule):
    """Fine-tunes a restoration U-Net against a patch critic, one network per step.

    Each step generates the fakes once. On a critic turn they are detached and the critic learns
    ``mean(BCE(real -> 1), BCE(fake -> 0))``; on a generator turn the generator learns
    ``adversarial_weight * BCE(critic(fake) -> 1) + pixel_weight * MSE(fake, target)``. Whose turn
    it is comes from ``switcher`` (the lesson's adaptive switch by default).

    Both networks come from their pretraining runs' checkpoints, architecture and weights: the
    specs are read when the module is built (and saved in its own checkpoints), the weights when a
    fit starts from scratch. Validation, test and predict are the generator's
    (``ImageToImageModule``).

    Args:
        generator_checkpoint: a ``RestorationModule`` (or ``GANModule``) checkpoint: the generator.
        critic_checkpoint: a ``CriticModule`` (or ``GANModule``) checkpoint: the critic.
        generator: the generator's architecture; None takes ``generator_checkpoint``'s (or the
            lesson's generator, with no checkpoint).
        critic: the critic's architecture; None takes ``critic_checkpoint``'s.
        in_channels: image channels; linked from the datamodule.
        adversarial_weight: weight of the generator's adversarial term.
        pixel_weight: weight of the generator's pixel (MSE) term.
        lr: Adam rate of both networks (betas 0, 0.99).
        switcher: who trains at each step.
        grid_size: validation rows of damaged | restored | original.
        channels_last: NHWC layout for the generator's weights and activations.
        lpips_weights: AlexNet's weights for LPIPS: ``imagenet`` or a local state-dict path; None
            leaves LPIPS out.
    """

    output_title = "after the GAN"

    def __init__(
        self,
        generator_checkpoint: str | None = None,
        critic_checkpoint: str | None = None,
        generator: UNetSpec | None = None,
        critic: CriticSpec | None = None,
        in_channels: int = 3,
        adversarial_weight: float = 1.0,
        pixel_weight: float = 50.0,
        lr: float = 1e-4,
        switcher: Switcher | None = None,
        grid_size: int = 6,
        channels_last: bool = True,
        lpips_weights: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["switcher"])
        if generator is None and generator_checkpoint:
            generator = spec_from_checkpoint(UNetSpec, generator_checkpoint, "generator",
                                             "--model.generator_checkpoint")
        if critic is None and critic_checkpoint:
            critic = spec_from_checkpoint(CriticSpec, critic_checkpoint, "critic", "--model.critic_checkpoint")
        generator_spec, critic_spec = as_spec(UNetSpec, generator, GENERATOR), as_spec(CriticSpec, critic, CRITIC)
        self.hparams.generator, self.hparams.critic = spec_dict(generator_spec), spec_dict(critic_spec)
        self.attach_generator(generator_spec.build(in_channels, in_channels), channels_last)
        self.critic = critic_spec.build(in_channels)
        self.switcher = switcher or AdaptiveSwitcher()

    def on_fit_start(self) -> None:
        if fitting_from_scratch(self):
            self.load_pretrained()

    def load_pretrained(self) -> None:
        """What a fit from scratch starts from: the weights of ``generator_checkpoint`` and ``critic_checkpoint``."""
        for part in ("generator", "critic"):
            checkpoint = self.hparams[f"{part}_checkpoint"]
            if checkpoint:
                load_part(getattr(self, part), checkpoint, part, f"--model.{part}_checkpoint")

    def critic_loss(self, batch: dict) -> torch.Tensor:
        with torch.no_grad():
            fake = self(batch["input"])
        return (patch_bce(self.critic(batch["target"]), 1.0) + patch_bce(self.critic(fake), 0.0)) / 2

    def generator_losses(self, batch: dict) -> dict[str, torch.Tensor]:
        fake = self(batch["input"])
        adversarial = patch_bce(self.critic(fake), 1.0)
        pixel = F.mse_loss(fake, batch["target"])
        loss = self.hparams.adversarial_weight * adversarial + self.hparams.pixel_weight * pixel
        return {"loss": loss, "adversarial": adversarial, "pixel": pixel}

    def evaluation_losses(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pixel_loss": F.mse_loss(output, target)}

    def make_optimizer(self, parameters) -> torch.optim.Optimizer:
        return torch.optim.Adam(parameters, lr=self.hparams.lr, betas=(0.0, 0.99))
