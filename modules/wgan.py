"""The lesson's Wasserstein GAN: DCGAN generator and critic, clipped critic weights."""

import lightning.pytorch as pl
import torch
from torchvision.utils import make_grid

from modules.nets.dcgan import dcgan_critic, dcgan_generator
from modules.switchers import FixedSwitcher, Switcher
from modules.tensorboard import tensorboard_of


class WGANModule(pl.LightningModule):
    """Trains a generator from noise against a Wasserstein critic (Arjovsky et al., 2017).

    The critic maximises ``D(real) - D(fake)`` and its weights are clipped to ``[-clip, clip]``
    after each step (a crude Lipschitz bound); the generator maximises ``D(fake)``. By default
    five critic steps per generator step, Adam with betas (0, 0.99) as in the lesson.

    Args:
        image_size: side of the generated images (a power of two).
        in_channels: image channels; linked from the datamodule.
        noise_dim: length of the noise vector.
        features: width of both networks.
        lr: learning rate of both optimizers.
        optimizer: ``adam`` (betas 0, 0.99) or ``rmsprop`` (the WGAN paper's).
        clip: critic weight clipping bound.
        switcher: who trains at each step; ``FixedSwitcher(5)`` by default.
        samples: images in the TensorBoard grid of samples from a fixed noise batch.
    """

    def __init__(
        self,
        image_size: int = 64,
        in_channels: int = 3,
        noise_dim: int = 100,
        features: int = 64,
        lr: float = 2e-4,
        optimizer: str = "adam",
        clip: float = 0.01,
        switcher: Switcher | None = None,
        samples: int = 64,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["switcher"])
        if optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"--model.optimizer must be 'adam' or 'rmsprop', not {optimizer!r}")
        self.automatic_optimization = False
        self.generator = dcgan_generator(image_size, in_channels, noise_dim, features)
        self.critic = dcgan_critic(image_size, in_channels, features)
        self.switcher = switcher or FixedSwitcher(5)
        fixed = torch.randn(samples, noise_dim, 1, 1, generator=torch.Generator().manual_seed(0))
        self.register_buffer("fixed_noise", fixed)  # the same faces every epoch, to watch them improve

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.generator(noise)

    def training_step(self, real: torch.Tensor, batch_idx: int) -> dict:
        critic_optimizer, generator_optimizer = self.optimizers()
        noise = torch.randn(real.shape[0], self.hparams.noise_dim, 1, 1, device=real.device)
        turn = self.switcher.next_turn()
        if turn == "critic":
            with torch.no_grad():
                fake = self.generator(noise)
            loss = self.critic(fake).mean() - self.critic(real).mean()  # minus the Wasserstein estimate
            critic_optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            critic_optimizer.step()
            with torch.no_grad():
                for parameter in self.critic.parameters():
                    parameter.clamp_(-self.hparams.clip, self.hparams.clip)
        else:
            with self.toggled_optimizer(generator_optimizer):  # no gradients for the critic's weights
                loss = -self.critic(self.generator(noise)).mean()
                generator_optimizer.zero_grad(set_to_none=True)
                self.manual_backward(loss)
                generator_optimizer.step()
        self.switcher.record(turn, loss.item())
        self.log(f"train/{turn}_loss", loss, prog_bar=True)
        return {"loss": loss.detach()}

    def on_train_epoch_end(self) -> None:
        writer = tensorboard_of(self)
        if writer is None or self.hparams.samples == 0:
            return
        was_training = self.generator.training
        self.generator.eval()
        with torch.no_grad():
            images = self.generator(self.fixed_noise).add(1).div(2).clamp(0, 1)
        self.generator.train(was_training)
        writer.add_image("samples", make_grid(images, nrow=8), self.global_step)

    def configure_optimizers(self):
        if self.hparams.optimizer == "adam":
            make = lambda params: torch.optim.Adam(params, lr=self.hparams.lr, betas=(0.0, 0.99))  # noqa: E731
        else:
            make = lambda params: torch.optim.RMSprop(params, lr=self.hparams.lr)  # noqa: E731
        return [make(self.critic.parameters()), make(self.generator.parameters())]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["switcher"] = self.switcher.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.switcher.load_state_dict(checkpoint.get("switcher", {}))
