"""Semantic segmentation with the lesson's U-Net: pixel cross-entropy, accuracy and IoU without Void."""

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassConfusionMatrix

from common.imagenet import denormalize
from common.palettes import segmentation_palette
from common.titled_grid import titled_grid
from modules.checkpoints import LoadsOlderCheckpoints
from modules.freezing import FineTunesAnEncoder, FineTuning
from modules.nets.spec import as_spec, spec_dict
from modules.nets.unet import UNetSpec
from modules.tensorboard import log_training_loss, tensorboard_of

# The lesson's CamVid schedule: frozen at 3e-3, then (encoder, decoder) at slice(lr/400, lr/4)-like rates.
SCHEDULE = FineTuning(lr=3e-3, pct_start=0.9, weight_decay=1e-2, frozen_epochs=0, unfrozen_lr=(3e-4, 1e-3),
                      unfrozen_pct_start=0.8)


class SegmentationModule(FineTunesAnEncoder, LoadsOlderCheckpoints, pl.LightningModule):
    """U-Net segmenter, trained frozen then unfrozen with discriminative rates (the lesson's recipe).

    Pixels labelled ``ignore_index`` (Void) count in neither the loss nor the metrics. Validation
    logs ``val/acc`` (pixel accuracy, fast.ai's ``acc_camvid``), ``val/miou`` (mean IoU over the
    classes present in truth or prediction) and ``val/iou/<class>``, all from one confusion matrix.
    The class names travel with the checkpoint, so predictions from it need no data folder.

    Args:
        net: the U-Net's architecture (the lesson's: ResNet-34 encoder, norm-free decoder).
        encoder_weights: ``imagenet`` (torchvision download), a path to a state dict of the
            torchvision model (e.g. a local copy of ImageNet weights), or None for random weights.
            Loaded only when a fit starts from scratch: checkpoints never need the file.
        num_classes: classes predicted; linked from the datamodule by the CLI.
        in_channels: image channels; linked from the datamodule.
        ignore_index: the Void label, excluded from loss and metrics; linked from the datamodule.
        class_names: the classes' names, for per-class metrics; linked from the datamodule.
        schedule: frozen then unfrozen, each phase a one-cycle schedule (the lesson's recipe).
        grid_size: validation images shown in TensorBoard (image | truth | prediction), 0 for none.
        channels_last: NHWC layout for weights and activations (faster convs on CPU and GPU).
    """

    def __init__(
        self,
        net: UNetSpec | None = None,
        encoder_weights: str | None = None,
        num_classes: int = 11,
        in_channels: int = 3,
        ignore_index: int = 11,
        class_names: list[str] | None = None,
        schedule: FineTuning | None = None,
        grid_size: int = 4,
        channels_last: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.spec = as_spec(UNetSpec, net)
        self.hparams.net = spec_dict(self.spec)
        self.schedule = as_spec(FineTuning, schedule, SCHEDULE)
        self.hparams.schedule = spec_dict(self.schedule)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = self.spec.build(in_channels, num_classes).to(memory_format=self.memory_format)
        self.val_confusion = MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index)
        self.test_confusion = MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.contiguous(memory_format=self.memory_format))  # (B, num_classes, H, W)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return log_training_loss(self, self.training_loss(batch), batch_idx)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_confusion, with_grid=batch_idx == 0)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_confusion)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_confusion)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_confusion)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        masks = self(batch["image"]).argmax(dim=1).to(torch.uint8)  # (B, H, W)
        return {"path": batch["path"], "mask": masks, "size": batch["size"]}

    @property
    def pretrained_encoder(self) -> torch.nn.Module:
        return self.net.encoder

    def load_pretrained(self) -> None:
        """Loads ``encoder_weights`` into the encoder: what a fit from scratch starts from."""
        if self.hparams.encoder_weights:
            self.spec.load_encoder_weights(self.net, self.hparams.encoder_weights)

    def training_loss(self, batch: dict) -> torch.Tensor:
        """Pixel cross-entropy of a batch, Void pixels left out."""
        return F.cross_entropy(self(batch["image"]), batch["mask"], ignore_index=self.hparams.ignore_index)

    def palette(self) -> torch.Tensor:
        """(num_classes + 1, 3) uint8 colours, the last (black) for Void."""
        return torch.from_numpy(segmentation_palette(self.hparams.num_classes, self.hparams.ignore_index))

    # -- helpers ---------------------------------------------------------------------------------

    def _evaluate(self, batch: dict, split: str, confusion: MulticlassConfusionMatrix, with_grid: bool = False) -> None:
        logits = self(batch["image"])
        loss = F.cross_entropy(logits, batch["mask"], ignore_index=self.hparams.ignore_index)
        self.log(f"{split}/loss", loss, prog_bar=True, sync_dist=True)
        confusion.update(logits.argmax(dim=1), batch["mask"])
        if with_grid:
            self._log_grid(batch, logits)

    def _log_metrics(self, split: str, confusion: MulticlassConfusionMatrix) -> None:
        matrix = confusion.compute().double()  # (truth, prediction), Void pixels already dropped
        confusion.reset()
        void = self.hparams.ignore_index
        keep = torch.ones(len(matrix), dtype=torch.bool, device=matrix.device)
        if 0 <= void < len(matrix):
            keep[void] = False  # a Void class inside the range (fast.ai's layout) is no class to score
        hits = matrix.diagonal()
        accuracy = hits.sum() / matrix.sum().clamp(min=1)
        union = matrix.sum(dim=0) + matrix.sum(dim=1) - hits
        iou = hits / union.clamp(min=1)
        present = keep & (union > 0)
        mean_iou = iou[present].mean() if present.any() else torch.zeros((), device=matrix.device)
        self.log(f"{split}/acc", accuracy.float(), prog_bar=True)
        self.log(f"{split}/miou", mean_iou.float(), prog_bar=True)
        names = self._class_names()
        for index in torch.nonzero(keep).flatten().tolist():
            self.log(f"{split}/iou/{names[index]}", iou[index].float())

    def _class_names(self) -> list[str]:
        names = self.hparams.class_names
        if names is None or len(names) != self.hparams.num_classes:
            names = [f"class_{i}" for i in range(self.hparams.num_classes)]
        return list(names)

    def _log_grid(self, batch: dict, logits: torch.Tensor) -> None:
        count = self.hparams.grid_size
        writer = tensorboard_of(self)
        if count == 0 or writer is None:
            return
        images = denormalize(batch["image"][:count].float())
        palette = self.palette().to(images.device)
        truth = batch["mask"][:count].clone()
        truth[(truth < 0) | (truth >= self.hparams.num_classes)] = self.hparams.num_classes  # Void: black
        coloured = [palette[masks].permute(0, 3, 1, 2).float() / 255 for masks in (truth, logits[:count].argmax(dim=1))]
        writer.add_image("val/image_truth_prediction",
                         titled_grid([images, *coloured], ["image", "truth", "prediction"]), self.global_step)
