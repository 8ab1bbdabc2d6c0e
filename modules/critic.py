"""Pretraining the lesson's critic to tell real photos from a generator's outputs."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import BinaryAccuracy

from modules.nets.critic import gan_critic
from modules.one_cycle import one_cycle_adam


def patch_bce(patch_logits: torch.Tensor, is_real: torch.Tensor | float) -> torch.Tensor:
    """Binary cross-entropy of every patch's logit against its image's label (1 real, 0 generated)."""
    target = torch.as_tensor(is_real, dtype=patch_logits.dtype, device=patch_logits.device)
    target = target.view(-1, 1).expand_as(patch_logits) if target.dim() else target.expand_as(patch_logits)
    return F.binary_cross_entropy_with_logits(patch_logits, target)


class CriticModule(pl.LightningModule):
    """BCE on every patch of ``gan_critic``; an image counts as "real" when its mean patch logit > 0.

    Args:
        in_channels: image channels; linked from the datamodule.
        features: critic width (the lesson: 128).
        num_blocks: stride-2 stages after the stem.
        dropout: critic dropout.
        lr: peak rate of the one-cycle schedule (the lesson's ``fit_one_cycle(6, 1e-3)``). On the
            pets photos the spectral-normalised critic sits at chance for its first ~14,000 images
            (as the lesson's did), then passes 0.95 within three epochs; give it the epochs.
        weight_decay: decoupled weight decay.
        pct_start: share of the steps spent warming up.
    """

    def __init__(
        self, in_channels: int = 3, features: int = 64, num_blocks: int = 3, dropout: float = 0.15,
        lr: float = 1e-3, weight_decay: float = 1e-3, pct_start: float = 0.3,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.critic = gan_critic(in_channels, features, num_blocks, dropout)
        self.val_acc = BinaryAccuracy()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.critic(images)  # (B, patches)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = patch_bce(self(batch["image"]), batch["label"])
        if batch_idx % self.trainer.log_every_n_steps == 0:
            self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self(batch["image"])
        self.log("val/loss", patch_bce(logits, batch["label"]), prog_bar=True, sync_dist=True)
        # Probabilities, not logits: BinaryAccuracy reads values inside [0, 1] as probabilities.
        self.val_acc(torch.sigmoid(logits.mean(dim=1)), batch["label"].long())
        self.log("val/acc", self.val_acc, prog_bar=True)

    def configure_optimizers(self):
        return one_cycle_adam(self, self.hparams.lr, self.hparams.weight_decay, self.hparams.pct_start)
