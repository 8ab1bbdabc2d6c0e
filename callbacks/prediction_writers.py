"""Writers that turn ``predict`` outputs into files a person can open."""

import csv
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import BasePredictionWriter


def rank_suffixed(path: Path, trainer: pl.Trainer) -> Path:
    """``path`` itself on one process; ``name.rankN.ext`` per process when predicting under DDP."""
    if trainer.world_size == 1:
        return path
    return path.with_name(f"{path.stem}.rank{trainer.global_rank}{path.suffix}")


def label_name(label: int, names: list[str] | None) -> str:
    """A class index as its name, or as the index itself when the classes have no names."""
    return str(names[label]) if names else str(label)


class ClassificationCSVWriter(BasePredictionWriter):
    """Writes one CSV row per predicted image: file, label, probability.

    Args:
        output_file: the CSV to write; its folder is created. Under DDP each process writes
            ``<name>.rank<N>.csv``.
        class_names: names to write instead of class indices; by default the model's
            ``class_names`` (which the classifier takes from its data), else the indices.
    """

    def __init__(self, output_file: str = "predictions/predictions.csv", class_names: list[str] | None = None):
        super().__init__(write_interval="epoch")
        self.output_file = Path(output_file)
        self.class_names = class_names

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        path = rank_suffixed(self.output_file, trainer)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "label", "probability"])
            names = self.class_names or pl_module.hparams.get("class_names")
            for batch in predictions:
                for file, label, probability in zip(batch["path"], batch["label"].tolist(),
                                                    batch["probability"].tolist()):
                    writer.writerow([file, label_name(label, names), f"{probability:.4f}"])
