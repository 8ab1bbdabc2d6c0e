"""Semantic segmentation with the lesson's U-Net: pixel losses for unbalanced classes, accuracy and IoU
without Void, test-time augmentation, and pictures of where the model fails."""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from torchmetrics.classification import MulticlassConfusionMatrix
from torchmetrics.functional.classification import multiclass_confusion_matrix
from torchvision.utils import save_image

from common.confusion_image import confusion_image, normalise_rows
from common.errors import UserInputError
from common.imagenet import denormalize
from common.lowest_scores import LowestScores
from common.palettes import segmentation_palette
from common.test_time_augmentation import TestTimeAugmentation, averaged_probabilities
from common.titled_grid import titled_grid
from modules.checkpoints import LoadsOlderCheckpoints
from modules.freezing import FineTunesAnEncoder, FineTuning
from modules.losses.class_balance import median_frequency_weights
from modules.losses.focal import focal_loss
from modules.losses.lovasz_softmax import lovasz_softmax
from modules.nets.spec import as_spec, spec_dict
from modules.nets.unet import UNetSpec
from modules.tensorboard import log_training_loss, tensorboard_of

# The lesson's CamVid schedule: frozen at 3e-3, then (encoder, decoder) at slice(lr/400, lr/4)-like rates.
SCHEDULE = FineTuning(lr=3e-3, pct_start=0.9, weight_decay=1e-2, frozen_epochs=0, unfrozen_lr=(3e-4, 1e-3),
                      unfrozen_pct_start=0.8)
SegmentationLoss = Literal["cross_entropy", "weighted_cross_entropy", "focal", "lovasz"]
COLUMNS = ["image", "truth", "prediction"]


@dataclass
class ShownFrame:
    """A validation frame kept for a picture: its place in the validation set, uint8 image and masks."""

    index: int
    image: torch.Tensor  # (3, H, W) uint8
    truth: torch.Tensor  # (H, W) uint8, Void as num_classes
    prediction: torch.Tensor  # (H, W) uint8


class SegmentationModule(FineTunesAnEncoder, LoadsOlderCheckpoints, pl.LightningModule):
    """U-Net segmenter, trained frozen then unfrozen with discriminative rates (the lesson's recipe).

    Pixels labelled ``ignore_index`` (Void) count in neither the loss nor the metrics. Validation
    logs ``val/acc`` (pixel accuracy, fast.ai's ``acc_camvid``), ``val/miou`` (mean IoU over the
    classes present in truth or prediction) and ``val/iou/<class>``, all from one confusion matrix,
    and shows in TensorBoard the confusion matrix, frames spread over the validation set and the
    frames with the lowest IoU; ``validate`` also writes the last two pictures as PNG files into
    the logger's folder. The class names travel with the checkpoint, so predictions from it need
    no data folder.

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
        loss: the pixel loss, trained on and reported as ``val/loss``: ``cross_entropy``;
            ``weighted_cross_entropy`` (median-frequency class weights, as SegNet trains CamVid:
            rare classes such as poles weigh more); ``focal`` (fades out pixels already right);
            ``lovasz`` (Lovász-softmax, a surrogate of the IoU that mIoU averages).
        cross_entropy_weight: plain cross-entropy added to ``loss`` with this weight (0: ``loss``
            alone); steadies the IoU surrogate's early gradients, for instance.
        focal_gamma: the focal loss's exponent; 0 is cross-entropy, larger fades right pixels faster.
        class_frequencies: per class, its pixels over the pixels of the training frames it appears
            in; asked of the datamodule (``class_frequencies()``) when the weighted loss starts, or
            given here; kept in the checkpoint.
        grid_size: validation frames shown in TensorBoard (image | truth | prediction), evenly
            spaced over the validation set; 0 for none.
        worst_frames: validation frames with the lowest IoU shown (and written by ``validate``); 0 for none.
        tta: test-time augmentation of validate, test and predict (and fit's validation): ``flip``,
            ``scales``; the metrics are those of the averaged prediction. Off by default.
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
        loss: SegmentationLoss = "cross_entropy",
        cross_entropy_weight: float = 0.0,
        focal_gamma: float = 2.0,
        class_frequencies: list[float] | None = None,
        grid_size: int = 4,
        worst_frames: int = 4,
        tta: TestTimeAugmentation | None = None,
        channels_last: bool = True,
    ):
        super().__init__()
        self.save_hyperparameters()
        if loss == "cross_entropy" and cross_entropy_weight:
            raise UserInputError(
                "--model.cross_entropy_weight adds cross-entropy to another --model.loss (weighted_cross_entropy, "
                "focal, lovasz); with loss cross_entropy it would only scale it."
            )
        self.spec = as_spec(UNetSpec, net)
        self.hparams.net = spec_dict(self.spec)
        self.schedule = as_spec(FineTuning, schedule, SCHEDULE)
        self.hparams.schedule = spec_dict(self.schedule)
        self.tta = as_spec(TestTimeAugmentation, tta)
        self.hparams.tta = spec_dict(self.tta)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = self.spec.build(in_channels, num_classes).to(memory_format=self.memory_format)
        self.val_confusion = MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index)
        self.test_confusion = MulticlassConfusionMatrix(num_classes, ignore_index=ignore_index)
        # Not persistent: the weights follow from the hyperparameters, and older checkpoints lack them.
        self.register_buffer("class_weights", None, persistent=False)
        if class_frequencies is not None:
            self._set_class_frequencies(class_frequencies)
        self.worst = LowestScores(worst_frames)
        self.spread: list[ShownFrame] = []
        self._spread_indices: set[int] = set()
        self._frames_seen = 0
        self._showing = False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.contiguous(memory_format=self.memory_format))  # (B, num_classes, H, W)

    def setup(self, stage: str) -> None:
        if self.hparams.loss == "weighted_cross_entropy" and self.class_weights is None and stage != "predict":
            self._set_class_frequencies(self._class_frequencies_of_the_data())

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return log_training_loss(self, self.training_loss(batch), batch_idx)

    def on_validation_epoch_start(self) -> None:
        self._showing = tensorboard_of(self) is not None or self._validating_alone()
        self._frames_seen = 0
        self.spread.clear()
        self.worst.clear()
        self._spread_indices = set(evenly_spaced(self.hparams.grid_size, self._validation_frame_count()))

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        predictions = self._evaluate(batch, "val", self.val_confusion)
        if self._showing:
            self._keep_frames(batch, predictions)
        self._frames_seen += len(predictions)

    def on_validation_epoch_end(self) -> None:
        counts = self._log_metrics("val", self.val_confusion)
        if self._showing:
            self._show_pictures(counts)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_confusion)

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test", self.test_confusion)

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        masks = self.predicted_classes(batch["image"]).to(torch.uint8)  # (B, H, W)
        return {"path": batch["path"], "mask": masks, "size": batch["size"]}

    @property
    def pretrained_encoder(self) -> torch.nn.Module:
        return self.net.encoder

    def load_pretrained(self) -> None:
        """Loads ``encoder_weights`` into the encoder: what a fit from scratch starts from."""
        if self.hparams.encoder_weights:
            self.spec.load_encoder_weights(self.net, self.hparams.encoder_weights)

    def training_loss(self, batch: dict) -> torch.Tensor:
        """The chosen pixel loss of a batch, Void pixels left out."""
        return self.pixel_loss(self(batch["image"]), batch["mask"])

    def pixel_loss(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``loss`` (plus ``cross_entropy_weight`` x cross-entropy) of (B, C, H, W) logits against (B, H, W) masks."""
        void = self.hparams.ignore_index
        choice = self.hparams.loss
        if choice == "cross_entropy":
            return F.cross_entropy(logits, masks, ignore_index=void)
        if choice == "weighted_cross_entropy":
            weights = self._class_weights().float()
            loss = F.cross_entropy(logits.float(), masks, weight=weights, ignore_index=void)  # one dtype for both
        elif choice == "focal":
            loss = focal_loss(logits, masks, gamma=self.hparams.focal_gamma, ignore_index=void)
        else:
            loss = lovasz_softmax(logits, masks, ignore_index=void)
        if self.hparams.cross_entropy_weight:
            loss = loss + self.hparams.cross_entropy_weight * F.cross_entropy(logits, masks, ignore_index=void)
        return loss

    def predicted_classes(self, images: torch.Tensor, logits: torch.Tensor | None = None) -> torch.Tensor:
        """(B, H, W) class per pixel: the most likely one, averaged over the ``tta`` views if enabled.

        Args:
            images: (B, 3, H, W) normalised images.
            logits: ``self(images)`` when already computed (reused as the plain view).
        """
        if not self.tta.enabled:
            return (self(images) if logits is None else logits).argmax(dim=1)
        return averaged_probabilities(self, images, self.tta.flip, self.tta.scales, plain_logits=logits).argmax(dim=1)

    def palette(self) -> torch.Tensor:
        """(num_classes + 1, 3) uint8 colours, the last (black) for Void."""
        return torch.from_numpy(segmentation_palette(self.hparams.num_classes, self.hparams.ignore_index))

    # -- helpers ---------------------------------------------------------------------------------

    def _evaluate(self, batch: dict, split: str, confusion: MulticlassConfusionMatrix) -> torch.Tensor:
        """Logs the loss, counts the prediction into ``confusion``; returns the (B, H, W) prediction."""
        logits = self(batch["image"])
        self.log(f"{split}/loss", self.pixel_loss(logits, batch["mask"]), prog_bar=True, sync_dist=True)
        predictions = self.predicted_classes(batch["image"], logits)
        confusion.update(predictions, batch["mask"])
        return predictions

    def _log_metrics(self, split: str, confusion: MulticlassConfusionMatrix) -> torch.Tensor:
        """Logs accuracy, mIoU and per-class IoU; returns the (truth, prediction) pixel counts."""
        matrix = confusion.compute()  # (truth, prediction), Void pixels already dropped
        confusion.reset()
        accuracy, iou, scored, keep = confusion_scores(matrix, self.hparams.ignore_index)
        mean_iou = iou[scored].mean() if scored.any() else torch.zeros((), device=matrix.device)
        self.log(f"{split}/acc", accuracy.float(), prog_bar=True)
        self.log(f"{split}/miou", mean_iou.float(), prog_bar=True)
        names = self._class_names()
        for index in torch.nonzero(keep).flatten().tolist():
            self.log(f"{split}/iou/{names[index]}", iou[index].float())
        return matrix

    def _class_names(self) -> list[str]:
        names = self.hparams.class_names
        if names is None or len(names) != self.hparams.num_classes:
            names = [f"class_{i}" for i in range(self.hparams.num_classes)]
        return list(names)

    def _set_class_frequencies(self, frequencies: list[float]) -> None:
        """Keeps the frequencies in the hyperparameters (so in checkpoints) and their weights as a buffer."""
        frequencies = [float(value) for value in frequencies]
        if len(frequencies) != self.hparams.num_classes:
            raise UserInputError(
                f"--model.class_frequencies has {len(frequencies)} values for {self.hparams.num_classes} classes."
            )
        self.hparams.class_frequencies = frequencies
        self.class_weights = median_frequency_weights(frequencies).to(self.device)

    def _class_frequencies_of_the_data(self) -> list[float]:
        datamodule = self.trainer.datamodule
        count = getattr(datamodule, "class_frequencies", None)
        if not callable(count):
            raise UserInputError(
                "--model.loss weighted_cross_entropy needs the training masks' class frequencies: give "
                "--model.class_frequencies (one per class) or use a datamodule that counts them (CamVidDataModule)."
            )
        frequencies = count()
        rank_zero_info("Class frequencies of the training masks: " + ", ".join(
            f"{name} {value:.4f}" for name, value in zip(self._class_names(), frequencies)))
        return frequencies

    def _class_weights(self) -> torch.Tensor:
        if self.class_weights is None:
            raise UserInputError(
                "--model.loss weighted_cross_entropy has no class frequencies: give --model.class_frequencies, "
                "or train through the Trainer with a datamodule that counts them."
            )
        return self.class_weights

    # -- pictures ----------------------------------------------------------------------------------

    def _validating_alone(self) -> bool:
        """Whether this is ``validate`` (not fit's validation) on the main process: pictures become files."""
        trainer = self.trainer
        return trainer.state.fn == TrainerFn.VALIDATING and trainer.is_global_zero and not trainer.sanity_checking

    def _validation_frame_count(self) -> int:
        """Frames this validation pass will see (``limit_val_batches`` included), or ``grid_size`` if unknown."""
        loader = self.trainer.val_dataloaders
        loader = loader[0] if isinstance(loader, list | tuple) and loader else loader
        batches = self.trainer.num_val_batches[0] if self.trainer.num_val_batches else 0
        batch_size = getattr(loader, "batch_size", None)
        try:
            frames = len(loader.dataset)
        except (AttributeError, TypeError):
            return self.hparams.grid_size
        if not batch_size or not math.isfinite(batches):
            return min(frames, self.hparams.grid_size)
        return int(min(frames, batches * batch_size))

    def _keep_frames(self, batch: dict, predictions: torch.Tensor) -> None:
        """Copies off the device the batch's frames that a picture will show."""
        first = self._frames_seen
        ious = self._frame_ious(predictions, batch["mask"]) if self.worst.k else None
        for offset in range(len(predictions)):
            if first + offset in self._spread_indices:
                self.spread.append(self._shown_frame(batch, predictions, offset, first + offset))
            if ious is not None and not math.isnan(ious[offset]) and self.worst.admits(ious[offset]):
                self.worst.offer(ious[offset], self._shown_frame(batch, predictions, offset, first + offset))

    def _frame_ious(self, predictions: torch.Tensor, masks: torch.Tensor) -> list[float]:
        """Per frame, the mean IoU of the classes in its truth or prediction (NaN for an all-Void frame)."""
        ious = []
        for prediction, mask in zip(predictions, masks):
            matrix = multiclass_confusion_matrix(prediction, mask, self.hparams.num_classes,
                                                 ignore_index=self.hparams.ignore_index, validate_args=False)
            _, iou, scored, _ = confusion_scores(matrix, self.hparams.ignore_index)
            ious.append(float(iou[scored].mean()) if scored.any() else math.nan)
        return ious

    def _shown_frame(self, batch: dict, predictions: torch.Tensor, offset: int, index: int) -> ShownFrame:
        image = (denormalize(batch["image"][offset : offset + 1].float())[0] * 255).round().byte().cpu()
        truth = batch["mask"][offset].clone()
        truth[(truth < 0) | (truth >= self.hparams.num_classes)] = self.hparams.num_classes  # Void: black
        return ShownFrame(index, image, truth.to(torch.uint8).cpu(), predictions[offset].to(torch.uint8).cpu())

    def _frames_grid(self, frames: list[ShownFrame]) -> torch.Tensor:
        """image | truth | prediction, a row per frame, in SegNet's colours."""
        palette = self.palette()
        images = torch.stack([frame.image for frame in frames]).float() / 255
        coloured = [palette[torch.stack(masks).long()].permute(0, 3, 1, 2).float() / 255
                    for masks in ([frame.truth for frame in frames], [frame.prediction for frame in frames])]
        return titled_grid([images, *coloured], COLUMNS)

    def _show_pictures(self, counts: torch.Tensor) -> None:
        """The confusion matrix and the frame grids, to TensorBoard; from ``validate`` also to PNG files."""
        _, _, _, keep = confusion_scores(counts, self.hparams.ignore_index)
        shown = torch.nonzero(keep).flatten().cpu()
        names = [self._class_names()[index] for index in shown.tolist()]
        pictures = {"confusion_matrix": confusion_image(normalise_rows(counts.cpu()[shown][:, shown]), names)}
        if self.spread:
            pictures["image_truth_prediction"] = self._frames_grid(self.spread)
        worst = [frame for _, frame in self.worst]
        if worst:
            pictures["worst_frames"] = self._frames_grid(worst)
        writer = tensorboard_of(self)
        if writer is not None:
            for tag, picture in pictures.items():
                writer.add_image(f"val/{tag}", picture, self.global_step)
            if worst:
                writer.add_text("val/worst_frames", ", ".join(
                    f"frame {frame.index}: IoU {iou:.3f}" for iou, frame in self.worst), self.global_step)
        if self._validating_alone():
            folder = Path(self.trainer.log_dir or ".")
            folder.mkdir(parents=True, exist_ok=True)
            written = []
            for tag in ("confusion_matrix", "worst_frames"):
                if tag in pictures:
                    save_image(pictures[tag], folder / f"{tag}.png")
                    written.append(str(folder / f"{tag}.png"))
            ranked = ", ".join(f"{frame.index} (IoU {iou:.3f})" for iou, frame in self.worst)
            rank_zero_info(f"validate: wrote {' and '.join(written)}"
                           + (f"; worst frames, by index in the validation set: {ranked}" if ranked else ""))


def confusion_scores(matrix: torch.Tensor, void: int) -> tuple[torch.Tensor, ...]:
    """Accuracy and per-class IoU of a (truth, prediction) count matrix whose Void pixels are already out.

    Returns:
        (accuracy, iou, scored, keep): ``keep`` marks the classes that are not Void (a Void class
        inside the range, fast.ai's layout, is no class to score), ``scored`` those of them present
        in truth or prediction, the ones mIoU averages.
    """
    matrix = matrix.double()
    keep = torch.ones(len(matrix), dtype=torch.bool, device=matrix.device)
    if 0 <= void < len(matrix):
        keep[void] = False
    hits = matrix.diagonal()
    accuracy = hits.sum() / matrix.sum().clamp(min=1)
    union = matrix.sum(dim=0) + matrix.sum(dim=1) - hits
    iou = hits / union.clamp(min=1)
    return accuracy, iou, keep & (union > 0), keep


def evenly_spaced(count: int, total: int) -> list[int]:
    """``count`` indices spread from the first to the last of ``total`` (all of them if fewer)."""
    if count <= 0 or total <= 0:
        return []
    if count >= total:
        return list(range(total))
    if count == 1:
        return [total // 2]
    return sorted({round(i * (total - 1) / (count - 1)) for i in range(count)})
