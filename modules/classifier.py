"""Image classification: the lesson's MNIST CNN, ResNet-ish and DenseNet-ish nets."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from common.errors import UserInputError
from modules.checkpoints import LoadsOlderCheckpoints
from modules.nets.mnist import MNISTNetSpec
from modules.nets.spec import as_spec, spec_dict
from modules.one_cycle import OneCycle, training_steps
from modules.tensorboard import log_image, log_training_loss


class ClassifierModule(LoadsOlderCheckpoints, pl.LightningModule):
    """Cross-entropy classifier trained with Adam and a one-cycle schedule (``fit_one_cycle``).

    Args:
        net: the network's architecture (see ``modules.nets.mnist``).
        in_channels: image channels; linked from the datamodule by the CLI.
        num_classes: number of classes; linked from the datamodule by the CLI.
        class_names: the classes' names, written by ``predict``; linked from the datamodule.
        schedule: the one-cycle schedule (the lesson's: peak 0.05).
        label_smoothing: share of each target's probability spread over the other classes in the
            training loss (0 is plain cross-entropy); validation loss is always plain.
        grid_size: validation images shown in TensorBoard each epoch (0 for none).
        channels_last: keep weights and activations in NHWC layout, which oneDNN (CPU) and
            cuDNN's tensor cores run faster for these small convs.
    """

    def __init__(
        self,
        net: MNISTNetSpec | None = None,
        in_channels: int = 1,
        num_classes: int = 10,
        class_names: list[str] | None = None,
        schedule: OneCycle | None = None,
        label_smoothing: float = 0.0,
        grid_size: int = 32,
        channels_last: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters()
        if class_names is not None and len(class_names) != num_classes:
            raise UserInputError(f"--model.class_names names {len(class_names)} classes, not {num_classes}.")
        spec = as_spec(MNISTNetSpec, net)
        self.hparams.net = spec_dict(spec)
        self.net = spec.build(in_channels, num_classes)
        self.schedule = as_spec(OneCycle, schedule, OneCycle(lr=0.05, pct_start=0.3, weight_decay=0.01))
        self.hparams.schedule = spec_dict(self.schedule)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.contiguous(memory_format=self.memory_format))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return log_training_loss(self, self.training_loss(batch), batch_idx)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_acc, with_grid=batch_idx == 0)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_acc)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        probabilities = self(batch["image"]).softmax(dim=1)
        confidence, label = probabilities.max(dim=1)
        return {"path": batch["path"], "label": label, "probability": confidence}

    def configure_optimizers(self):
        return self.schedule.adamw(self.parameters(), training_steps(self))

    def training_loss(self, batch: dict) -> torch.Tensor:
        """Cross-entropy of a batch, with the configured label smoothing."""
        return F.cross_entropy(self(batch["image"]), batch["label"], label_smoothing=self.hparams.label_smoothing)

    def _evaluate(self, batch: dict, split: str, accuracy: MulticlassAccuracy, with_grid: bool = False) -> None:
        logits = self(batch["image"])
        accuracy(logits, batch["label"])
        self.log(f"{split}/loss", F.cross_entropy(logits, batch["label"]), prog_bar=True, sync_dist=True)
        self.log(f"{split}/acc", accuracy, prog_bar=True)
        if with_grid:
            self._log_grid(batch, logits)

    def _log_grid(self, batch: dict, logits: torch.Tensor) -> None:
        count = self.hparams.grid_size
        if count == 0:
            return
        datamodule = getattr(self.trainer, "datamodule", None)
        images = batch["image"][:count]
        if hasattr(datamodule, "denormalize"):
            images = datamodule.denormalize(images)  # the data's own statistics (MNIST's, measured)
        predicted = logits[:count].argmax(dim=1).tolist()
        actual = batch["label"][:count].tolist()
        captions = [f"{p} / {a}" for p, a in zip(predicted, actual)]
        wrong = [p != a for p, a in zip(predicted, actual)]
        log_image(self, "val/predicted_vs_true", images, captions, wrong)
