"""Stop a run whose loss has become NaN or infinite, before it overwrites good checkpoints."""

import math

import lightning.pytorch as pl
import torch

from common.errors import UserInputError


class NonFiniteLossError(UserInputError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(pl.Callback):
    """Checks the training step's loss (or every loss in a returned dict) after each batch.

    A NaN model is worse than a stopped run: the error names the step and the checkpoints
    already on disk, which were all written before the loss went bad (checkpoints are only
    written after validation, and this check stops the run first).
    """

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        losses = outputs if isinstance(outputs, dict) else {"loss": outputs}
        # One read of each scalar (no extra tensor op): this runs after every training step.
        values = {name: value.item() for name, value in losses.items() if torch.is_tensor(value) and value.numel() == 1}
        bad = {name: value for name, value in values.items() if not math.isfinite(value)}
        if not bad:
            return
        saved = sorted({
            str(callback.last_model_path or callback.best_model_path)
            for callback in trainer.checkpoint_callbacks
            if getattr(callback, "last_model_path", "") or getattr(callback, "best_model_path", "")
        })
        kept = f"The checkpoints written before it are kept: {', '.join(saved)}." if saved else (
            "No checkpoint had been written yet.")
        described = ", ".join(f"{name} = {value}" for name, value in bad.items())
        raise NonFiniteLossError(
            f"Training stopped at epoch {trainer.current_epoch}, batch {batch_idx} (after {trainer.global_step} "
            f"optimizer steps): {described}. "
            f"{kept} Lower the learning rate (--model.lr), or check the batch for bad values."
        )
