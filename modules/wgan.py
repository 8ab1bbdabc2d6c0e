"""The lesson's Wasserstein GAN: DCGAN generator and critic, clipped critic weights."""

import torch
from torchvision.utils import make_grid

from common.sizes import ImageSize, height_width
from modules.adversarial import AdversarialModule
from modules.nets.dcgan import DCGANSpec
from modules.nets.spec import as_spec, spec_dict
from modules.switchers import FixedSwitcher, Switcher
from modules.tensorboard import tensorboard_of


class WGANModule(AdversarialModule):
    """Trains a generator from noise against a Wasserstein critic (Arjovsky et al., 2017).

    The critic maximises ``D(real) - D(fake)`` and its weights are clipped to ``[-clip, clip]``
    after each step (a crude Lipschitz bound); the generator maximises ``D(fake)``. By default
    five critic steps per generator step, Adam with betas (0, 0.99) as in the lesson. ``predict``
    draws one image per seed (the same seed gives the same image).

    Args:
        net: the generator's and the critic's architecture.
        image_size: side of the images (a power of two); linked from the datamodule.
        in_channels: image channels; linked from the datamodule.
        lr: learning rate of both optimizers.
        optimizer: ``adam`` (betas 0, 0.99) or ``rmsprop`` (the WGAN paper's).
        clip: critic weight clipping bound.
        switcher: who trains at each step; ``FixedSwitcher(5)`` by default.
        grid_size: images in the TensorBoard grid of samples from a fixed noise batch (0 for none).
    """

    no_test_reason = "it draws images from noise, so no held-out image is there to compare them with"

    def __init__(
        self,
        net: DCGANSpec | None = None,
        image_size: ImageSize = 64,
        in_channels: int = 3,
        lr: float = 2e-4,
        optimizer: str = "adam",
        clip: float = 0.01,
        switcher: Switcher | None = None,
        grid_size: int = 64,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["switcher"])
        if optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"--model.optimizer must be 'adam' or 'rmsprop', not {optimizer!r}")
        height, width = height_width(image_size)
        if height != width:
            raise ValueError(f"the DCGAN nets make square images; --data.image_size is {height}x{width}")
        self.spec = as_spec(DCGANSpec, net)
        self.hparams.net = spec_dict(self.spec)
        self.generator = self.spec.build_generator(height, in_channels)
        self.critic = self.spec.build_critic(height, in_channels)
        self.switcher = switcher or FixedSwitcher(5)
        fixed = torch.randn(grid_size, self.spec.noise_dim, 1, 1, generator=torch.Generator().manual_seed(0))
        self.register_buffer("fixed_noise", fixed)  # the same faces every epoch, to watch them improve

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        return self.generator(noise)

    def critic_loss(self, real: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            fake = self.generator(self._noise(real.shape[0]))
        return self.critic(fake).mean() - self.critic(real).mean()  # minus the Wasserstein estimate

    def generator_losses(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": -self.critic(self.generator(self._noise(real.shape[0]))).mean()}

    def after_critic_step(self) -> None:
        with torch.no_grad():
            for parameter in self.critic.parameters():
                parameter.clamp_(-self.hparams.clip, self.hparams.clip)

    def make_optimizer(self, parameters) -> torch.optim.Optimizer:
        if self.hparams.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=self.hparams.lr, betas=(0.0, 0.99))
        return torch.optim.RMSprop(parameters, lr=self.hparams.lr)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        noise = torch.stack([
            torch.randn(self.spec.noise_dim, 1, 1, generator=torch.Generator().manual_seed(int(seed)))
            for seed in batch["seed"]
        ]).to(self.device)
        return {"path": batch["path"], "image": self(noise).add(1).div(2).clamp(0, 1)}

    def on_train_epoch_end(self) -> None:
        writer = tensorboard_of(self)
        if writer is None or self.hparams.grid_size == 0:
            return
        was_training = self.generator.training
        self.generator.eval()
        with torch.no_grad():
            images = self.generator(self.fixed_noise).add(1).div(2).clamp(0, 1)
        self.generator.train(was_training)
        writer.add_image("samples", make_grid(images, nrow=8), self.global_step)

    def _noise(self, count: int) -> torch.Tensor:
        return torch.randn(count, self.spec.noise_dim, 1, 1, device=self.device)
