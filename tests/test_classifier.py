import lightning.pytorch as pl
import torch
import torch.nn.functional as F

from datamodules.mnist import MNISTDataModule
from modules.classifier import ClassifierModule
from modules.nets.mnist import MNISTNetSpec
from modules.one_cycle import OneCycle


def _trainer(tmp_path, **kwargs) -> pl.Trainer:
    defaults = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                    enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    return pl.Trainer(**{**defaults, **kwargs})


def test_overfits_a_tiny_batch():
    model = ClassifierModule(MNISTNetSpec("resnet"))
    images, labels = torch.randn(16, 1, 28, 28), torch.arange(16) % 10
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    start = F.cross_entropy(model(images), labels).item()
    for _ in range(100):
        loss = F.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # The lesson's last layer batch-normalises the logits, which caps how confident a 16-image
    # batch can get (the loss settles near 0.5); far below the 3.1 it starts from.
    assert loss.item() < 0.25 * start


def test_learns_synthetic_digits_through_the_trainer(tmp_path, mnist_dir):
    datamodule = MNISTDataModule(data_dir=str(mnist_dir), download=False, batch_size=32)
    model = ClassifierModule(MNISTNetSpec("resnet"), schedule=OneCycle(lr=0.01), grid_size=0)
    trainer = _trainer(tmp_path, max_epochs=4)
    trainer.fit(model, datamodule=datamodule)
    assert trainer.callback_metrics["val/acc"] > 0.9


def test_checkpoint_round_trip_gives_same_outputs(tmp_path, mnist_dir):
    datamodule = MNISTDataModule(data_dir=str(mnist_dir), download=False, batch_size=64)
    model = ClassifierModule(MNISTNetSpec("densenet"), grid_size=0)
    trainer = _trainer(tmp_path, max_epochs=1, limit_train_batches=3, limit_val_batches=1)
    trainer.fit(model, datamodule=datamodule)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    restored = ClassifierModule.load_from_checkpoint(path)
    assert restored.hparams.net["arch"] == "densenet"
    images = torch.randn(5, 1, 28, 28)
    model.eval()
    restored.eval()
    assert torch.equal(model(images), restored(images))
    # The datamodule's normalisation statistics travel with the checkpoint too.
    fresh = MNISTDataModule(data_dir=str(mnist_dir))
    fresh.load_state_dict(torch.load(path, weights_only=False)["MNISTDataModule"])
    assert (fresh.mean, fresh.std) == (datamodule.mean, datamodule.std)
