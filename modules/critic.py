"""Pretraining the lesson's critic to tell real photos from a generator's outputs."""

import lightning.pytorch as pl
import torch
from torchmetrics.classification import BinaryAccuracy

from modules.checkpoints import LoadsOlderCheckpoints
from modules.losses.patch_bce import patch_bce
from modules.nets.critic import CriticSpec
from modules.nets.spec import as_spec, spec_dict
from modules.one_cycle import OneCycle, training_steps
from modules.tensorboard import log_training_loss

# The lesson's critic at the width that trains on a CPU (the lesson: 128).
CRITIC = CriticSpec(width=64)


class CriticModule(LoadsOlderCheckpoints, pl.LightningModule):
    """BCE on every patch of the lesson's critic; an image counts as "real" when its mean patch logit > 0.

    ``predict`` scores images: each gets the label ``real`` (1) or ``generated`` (0) and the
    probability of that label.

    Args:
        critic: the critic's architecture.
        in_channels: image channels; linked from the datamodule.
        schedule: the one-cycle schedule (the lesson's ``fit_one_cycle(6, 1e-3)``). On the pets
            photos the spectral-normalised critic sits at chance for its first ~14,000 images (as
            the lesson's did), then passes 0.95 within three epochs; give it the epochs.
        class_names: names of the labels 0 and 1, written by ``predict``.
    """

    def __init__(
        self, critic: CriticSpec | None = None, in_channels: int = 3, schedule: OneCycle | None = None,
        class_names: tuple[str, str] = ("generated", "real"),
    ):
        super().__init__()
        self.save_hyperparameters()
        spec = as_spec(CriticSpec, critic, CRITIC)
        self.hparams.critic = spec_dict(spec)
        self.critic = spec.build(in_channels)
        self.schedule = as_spec(OneCycle, schedule, OneCycle(lr=1e-3, pct_start=0.3, weight_decay=1e-3))
        self.hparams.schedule = spec_dict(self.schedule)
        self.val_acc = BinaryAccuracy()
        self.test_acc = BinaryAccuracy()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.critic(images)  # (B, patches)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return log_training_loss(self, self.training_loss(batch), batch_idx)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_acc)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_acc)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        real = self.real_probability(batch["image"])
        return {"path": batch["path"], "label": (real > 0.5).long(), "probability": torch.maximum(real, 1 - real)}

    def configure_optimizers(self):
        return self.schedule.adamw(self.parameters(), training_steps(self))

    def training_loss(self, batch: dict) -> torch.Tensor:
        """Patch BCE of a batch of labelled images."""
        return patch_bce(self(batch["image"]), batch["label"])

    def real_probability(self, images: torch.Tensor) -> torch.Tensor:
        """(B,) probability that each image is real: the sigmoid of its mean patch logit."""
        return torch.sigmoid(self(images).mean(dim=1))

    def _evaluate(self, batch: dict, split: str, accuracy: BinaryAccuracy) -> None:
        logits = self(batch["image"])
        self.log(f"{split}/loss", patch_bce(logits, batch["label"]), prog_bar=True, sync_dist=True)
        # Probabilities, not logits: BinaryAccuracy reads values inside [0, 1] as probabilities.
        accuracy(torch.sigmoid(logits.mean(dim=1)), batch["label"].long())
        self.log(f"{split}/acc", accuracy, prog_bar=True)
