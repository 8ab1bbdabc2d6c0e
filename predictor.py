"""One call for one input: ``load_predictor("last.ckpt")("photo.jpg")``, with the training-time preprocessing.

The checkpoint is all it needs: the model is rebuilt from it (network, vocabulary, class names),
and so is the datamodule, whose predict pipeline prepares the input exactly as ``cli.py predict``
does (resizing and upsampling, normalisation statistics). What a call returns depends on the task:

- classifier (MNIST), critic: ``Classification(label, probability)``;
- segmentation (CamVid): a palette ``PIL.Image`` mask at the input's size (pixel values are class
  indices);
- restoration, super-resolution, GAN generator, WGAN: the image as an RGB ``PIL.Image`` (the
  WGAN takes a seed instead of a file);
- language model: the prompt's greedy continuation, as text.
"""

from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.apply_func import move_data_to_device

from callbacks.image_writer import to_image
from callbacks.mask_writer import mask_image
from callbacks.prediction_writers import label_name
from common.errors import UserInputError
from modules.checkpoints import imported, load_module, read_checkpoint


@dataclass(frozen=True)
class Classification:
    """A predicted class and the model's probability for it."""

    label: str
    probability: float


class Predictor:
    """A trained model and the datamodule that prepares its inputs, called on one input at a time.

    Args:
        model: the trained module (put in eval mode here).
        datamodule: its datamodule; ``predict_loader([item])`` prepares one input.
    """

    def __init__(self, model: pl.LightningModule, datamodule: pl.LightningDataModule):
        self.model = model.eval()
        self.datamodule = datamodule

    def __call__(self, item):
        """Predicts for one input: an image path, a text prompt (language model) or a seed (WGAN)."""
        batch = next(iter(self.datamodule.predict_loader([item])))
        batch = self.datamodule.on_after_batch_transfer(move_data_to_device(batch, self.model.device), 0)
        with torch.inference_mode():
            output = self.model.predict_step(batch, 0)
        return self._first(output)

    def _first(self, output: dict):
        """The first (only) prediction of a predict-step output, as a person would want it."""
        if "mask" in output:
            palette = self.model.palette().numpy()
            return mask_image(output["mask"][0].cpu().numpy(), tuple(output["size"][0].tolist()), palette)
        if "image" in output:
            return to_image(output["image"][0])
        if "label" in output:
            names = self.model.hparams.get("class_names")
            return Classification(label_name(int(output["label"][0]), names), float(output["probability"][0]))
        return output["greedy"]


def load_predictor(checkpoint: str | Path, device: str = "cpu", **data_options) -> Predictor:
    """The model and datamodule saved in a ``cli.py fit`` checkpoint, ready for one input at a time.

    Args:
        checkpoint: a ``.ckpt`` written by ``cli.py fit``.
        device: where the model runs.
        data_options: datamodule options to change (e.g. ``image_size``); the rest are the training run's.

    Raises:
        UserInputError: the file is missing or unreadable, or was not written by ``cli.py``.
    """
    data_hparams = read_checkpoint(checkpoint, "checkpoint").get("datamodule_hyper_parameters") or {}
    if "_class_path" not in data_hparams:
        raise UserInputError(
            f"{checkpoint} does not name its data class: load_predictor reads checkpoints written by "
            "`python cli.py fit`. Build a Predictor(model, datamodule) yourself for others."
        )
    model = load_module(checkpoint, map_location=device)
    datamodule = imported(data_hparams["_class_path"]).load_from_checkpoint(checkpoint, **data_options)
    return Predictor(model, datamodule)
