"""Semantic segmentation with the lesson's U-Net: pixel cross-entropy, accuracy and IoU without Void."""


import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassConfusionMatrix
from torchvision.utils import make_grid

from datamodules.camvid import default_palette
from modules.freezing import frozen_then_unfrozen_adam, set_frozen
from modules.layers import NormType
from modules.nets.unet import unet
from modules.tensorboard import tensorboard_of


class SegmentationModule(pl.LightningModule):
    """U-Net segmenter, trained frozen then unfrozen with discriminative rates (the lesson's recipe).

    Pixels labelled ``ignore_index`` (Void) count in neither the loss nor the metrics. Validation
    logs ``val/acc`` (pixel accuracy, fast.ai's ``acc_camvid``), ``val/miou`` (mean IoU over the
    classes present in truth or prediction) and ``val/iou/<class>``, all from one confusion matrix.

    Args:
        encoder: torchvision classifier whose body is the encoder (``resnet34``, ``mobilenet_v2``, ...).
        encoder_weights: ``imagenet`` (torchvision download), a path to a state dict of the
            torchvision model (e.g. a local copy of ImageNet weights), or None for random weights.
        encoder_cut: keep the encoder body's layers ``[:encoder_cut]`` (``-1`` on ``mobilenet_v2``
            drops the 1x1 expansion to 1280 channels); None keeps all.
        num_classes: classes predicted; linked from the datamodule by the CLI.
        in_channels: image channels; linked from the datamodule.
        ignore_index: the Void label, excluded from loss and metrics; linked from the datamodule.
        norm: decoder norm: ``none`` (the lesson's CamVid U-Net), ``batch`` or ``weight``.
        blur: blur after each decoder upsampling.
        self_attention: self-attention in the third-from-last decoder block.
        last_cross: concatenate the input image before the last ``res_block``.
        frozen_epochs: epochs that train the decoder only (the encoder's norm layers still learn);
            the rest train everything.
        lr: peak rate of the frozen phase (decoder).
        unfrozen_lr: (encoder, decoder) peak rates once unfrozen: the lesson's ``slice(lr/400, lr/4)``
            idea, a lower rate for pretrained layers.
        pct_start: fraction of the frozen phase spent warming up.
        unfrozen_pct_start: fraction of the unfrozen phase spent warming up.
        weight_decay: decoupled (AdamW) weight decay.
        grid_size: validation images shown in TensorBoard (image | truth | prediction), 0 for none.
        channels_last: NHWC layout for weights and activations (faster convs on CPU and GPU).
    """

    def __init__(
        self,
        encoder: str = "resnet34",
        encoder_weights: str | None = None,
        encoder_cut: int | None = None,
        num_classes: int = 11,
        in_channels: int = 3,
        ignore_index: int = 11,
        norm: NormType = "none",
        blur: bool = False,
        self_attention: bool = False,
        last_cross: bool = True,
        frozen_epochs: int = 0,
        lr: float = 3e-3,
        unfrozen_lr: tuple[float, float] = (3e-4, 1e-3),
        pct_start: float = 0.9,
        unfrozen_pct_start: float = 0.8,
        weight_decay: float = 1e-2,
        grid_size: int = 4,
        channels_last: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.net = unet(encoder, num_classes, encoder_weights, encoder_cut, in_channels,
                        norm=norm, blur=blur, self_attention=self_attention, last_cross=last_cross)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        self.val_confusion = MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index)
        self.test_confusion = MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.contiguous(memory_format=self.memory_format))  # (B, num_classes, H, W)

    def on_train_epoch_start(self) -> None:
        # Decided from the epoch counter alone, so a resumed run lands in the right phase.
        set_frozen(self.net.encoder, frozen=self.current_epoch < self.hparams.frozen_epochs)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = F.cross_entropy(self(batch["image"]), batch["mask"], ignore_index=self.hparams.ignore_index)
        if batch_idx % self.trainer.log_every_n_steps == 0:
            self.log("train/loss", loss, prog_bar=True)  # each log costs ~1 ms: only when written
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        logits = self._evaluate(batch, "val", self.val_confusion)
        if batch_idx == 0:
            self._log_grid(batch, logits)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_confusion)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        masks = self(batch["image"]).argmax(dim=1).to(torch.uint8)  # (B, H, W)
        return {"path": batch["path"], "mask": masks, "size": batch["size"]}

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val", self.val_confusion)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_confusion)

    def configure_optimizers(self):
        return frozen_then_unfrozen_adam(self, self.net.encoder)

    # -- helpers ---------------------------------------------------------------------------------

    def _evaluate(self, batch: dict, split: str, confusion: MulticlassConfusionMatrix) -> torch.Tensor:
        logits = self(batch["image"])
        loss = F.cross_entropy(logits, batch["mask"], ignore_index=self.hparams.ignore_index)
        self.log(f"{split}/loss", loss, prog_bar=True, sync_dist=True)
        confusion.update(logits.argmax(dim=1), batch["mask"])
        return logits

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
        names = getattr(getattr(self.trainer, "datamodule", None), "class_names", None)
        if names is None or len(names) != self.hparams.num_classes:
            names = [f"class_{i}" for i in range(self.hparams.num_classes)]
        return list(names)

    def palette(self) -> torch.Tensor:
        """(num_classes + 1, 3) uint8 colours, the last (black) for Void: the datamodule's if it has one."""
        colours = getattr(getattr(self.trainer, "datamodule", None), "palette", None) if self._trainer else None
        if colours is None or len(colours) != self.hparams.num_classes + 1:
            colours = default_palette(self.hparams.num_classes)
        return torch.as_tensor(np.asarray(colours), dtype=torch.uint8)

    def _log_grid(self, batch: dict, logits: torch.Tensor) -> None:
        count = self.hparams.grid_size
        writer = tensorboard_of(self)
        if count == 0 or writer is None:
            return
        images = batch["image"][:count]
        datamodule = getattr(self.trainer, "datamodule", None)
        if datamodule is not None and hasattr(datamodule, "denormalize"):
            images = datamodule.denormalize(images)
        palette = self.palette().to(images.device)
        truth = batch["mask"][:count].clone()
        truth[(truth < 0) | (truth >= self.hparams.num_classes)] = self.hparams.num_classes  # Void: black
        tiles = []
        for image, true, predicted in zip(images, truth, logits[:count].argmax(dim=1)):
            tiles += [image.float(), palette[true].permute(2, 0, 1).float() / 255,
                      palette[predicted].permute(2, 0, 1).float() / 255]  # each (3, H, W)
        writer.add_image("val/image_truth_prediction", make_grid(torch.stack(tiles).cpu(), nrow=3, padding=2),
                         self.global_step)
