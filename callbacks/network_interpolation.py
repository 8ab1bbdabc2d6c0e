"""At the end of a perceptual fine-tune, also save its network blended with the pixel-loss model it started from."""

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_info

from common.errors import UserInputError
from modules.checkpoints import read_checkpoint
from modules.interpolation import check_pixel_fraction, interpolate_weights


class NetworkInterpolation(pl.Callback):
    """Writes ``filename`` beside the run's checkpoints when the fit ends: the trained generator's
    weights moved ``pixel_fraction`` of the way back to the pixel-loss model's (``modules.interpolation``
    says why). The run's own checkpoints are untouched; the blend holds no optimizer state.

    Args:
        pixel_fraction: 0 keeps the fine-tune, 1 gives back the pixel-loss model.
        pixel_checkpoint: the pixel-loss model; None takes the module's ``generator_checkpoint``,
            the one the fine-tune started from.
        filename: name of the blended checkpoint, in the checkpoint folder (else the trainer's root dir).
    """

    def __init__(self, pixel_fraction: float, pixel_checkpoint: str | None = None, filename: str = "interpolated.ckpt"):
        self.pixel_fraction = check_pixel_fraction(pixel_fraction, "NetworkInterpolation.pixel_fraction")
        self.pixel_checkpoint = pixel_checkpoint
        self.filename = filename
        self._pixel_state: dict | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Reads the pixel model before training, so a missing or mismatched file stops the run at once."""
        if stage != "fit":
            return
        source = self.pixel_checkpoint or pl_module.hparams.get("generator_checkpoint")
        option = "NetworkInterpolation.pixel_checkpoint" if self.pixel_checkpoint else "--model.generator_checkpoint"
        if not source:
            raise UserInputError(
                "NetworkInterpolation needs the pixel-loss model: set its pixel_checkpoint, or "
                "--model.generator_checkpoint to the checkpoint the fine-tune starts from."
            )
        self._pixel_state = read_checkpoint(source, option).get("state_dict", {})
        self._source = f"{option} {source}"
        interpolate_weights(pl_module.state_dict(), self._pixel_state, self.pixel_fraction, pixel_source=self._source)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._pixel_state is None or trainer.sanity_checking or trainer.fast_dev_run:
            return
        trained = {key: value.detach().clone() for key, value in pl_module.state_dict().items()}
        pl_module.load_state_dict(
            interpolate_weights(trained, self._pixel_state, self.pixel_fraction, pixel_source=self._source)
        )
        folder = trainer.checkpoint_callback.dirpath if trainer.checkpoint_callback else trainer.default_root_dir
        path = Path(folder) / self.filename
        trainer.save_checkpoint(path, weights_only=True)  # every rank: it holds the barrier
        pl_module.load_state_dict(trained)
        rank_zero_info(f"NetworkInterpolation: {path} holds the generator blended {self.pixel_fraction:g} toward "
                       f"{self._source}; score it with benchmarks.restoration_quality --checkpoint NAME={path}")
