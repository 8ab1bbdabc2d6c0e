import lightning.pytorch as pl
import pytest
import torch

from callbacks.finite_loss import NonFiniteLossError, StopOnNonFiniteLoss
from datamodules.mnist import MNISTDataModule
from modules.classifier import ClassifierModule


class PoisonedAtStep(ClassifierModule):
    """A classifier whose loss turns NaN from a given step on."""

    def __init__(self, poison_step: int = 20, **kwargs):
        super().__init__(**kwargs)
        self.poison_step = poison_step

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.global_step >= self.poison_step else loss


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, mnist_dir):
    datamodule = MNISTDataModule(data_dir=str(mnist_dir), download=False, batch_size=32)  # 16 steps/epoch
    last = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, filename="last", monitor=None)
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[last, StopOnNonFiniteLoss()],
    )
    with pytest.raises(NonFiniteLossError, match=r"epoch 1, batch 4 .*: loss = nan.*last.ckpt"):
        trainer.fit(PoisonedAtStep(poison_step=20, grid_size=0), datamodule=datamodule)
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] == 16  # written after the first epoch, before the loss went bad
    assert all(torch.isfinite(value).all() for value in checkpoint["state_dict"].values() if value.is_floating_point())
