"""Trainer options that switch a feature off also switch off the configs' callbacks for it.

The configs list ``LearningRateMonitor`` and ``TQDMProgressBar`` (with their settings), and the CLI
adds two ``ModelCheckpoint``s; Lightning refuses ``--trainer.logger false``,
``--trainer.enable_progress_bar false`` or ``--trainer.enable_checkpointing false`` beside them.
Here the option wins: the callbacks that serve the switched-off feature are left out.
"""

from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelCheckpoint, ProgressBar
from lightning.pytorch.cli import SaveConfigCallback

# trainer option -> the callbacks that serve what the option switches off
SERVING = {"logger": (LearningRateMonitor,), "enable_progress_bar": (ProgressBar,),
           "enable_checkpointing": (ModelCheckpoint,)}


def switched_off(trainer_config: dict) -> tuple[type, ...]:
    """The callback classes whose feature ``trainer_config`` switches off (``False``; None is the default, on)."""
    return tuple(kind for option, kinds in SERVING.items() if trainer_config.get(option) is False for kind in kinds)


def without_switched_off(callbacks: list[Callback], trainer_config: dict) -> list[Callback]:
    """``callbacks`` less those that serve a feature ``trainer_config`` switches off."""
    unwanted = switched_off(trainer_config)
    return [callback for callback in callbacks if not isinstance(callback, unwanted)] if unwanted else callbacks


class ConfigBesideLogs(SaveConfigCallback):
    """Saves the run's ``config.yaml`` in the logger's folder, and nowhere without a logger.

    Lightning's callback falls back to the working folder when there is no logger, leaving a
    ``config.yaml`` behind that the next run overwrites.
    """

    def setup(self, trainer, pl_module, stage: str) -> None:
        if trainer.logger is None:
            return
        super().setup(trainer, pl_module, stage)
