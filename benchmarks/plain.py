"""The plain PyTorch loops' optimizers: the modules' own, built from the step count a Trainer would work out.

``configure_optimizers`` reads the number of training steps off the Trainer; without one, these
build the same optimizer and schedule through the module's own ``schedule`` (``OneCycle`` or ``FineTuning``).
"""

import lightning.pytorch as pl
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from modules.freezing import set_frozen

Optimization = tuple[torch.optim.Optimizer, LRScheduler]


def _unpacked(configured: dict) -> Optimization:
    return configured["optimizer"], configured["lr_scheduler"]["scheduler"]


def one_cycle_all(model: pl.LightningModule, total_steps: int) -> Optimization:
    """What the classifier, the critic and the language model configure: their ``OneCycle`` over every parameter."""
    return _unpacked(model.schedule.adamw(model.parameters(), total_steps))


def unfrozen_unet(model: pl.LightningModule, encoder: nn.Module, total_steps: int) -> Optimization:
    """What a U-Net module whose ``schedule.frozen_epochs`` is 0 configures: (encoder, rest) groups, one phase.

    The encoder is unfrozen first, as ``on_train_epoch_start`` does in such a run.
    """
    if model.schedule.frozen_epochs:
        raise ValueError("the plain loop times the unfrozen phase: set schedule.frozen_epochs to 0")
    set_frozen(encoder, frozen=False)
    return _unpacked(model.schedule.adamw_for(encoder, model, total_steps, max_epochs=1))


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One plain update: the zero_grad / backward / step that Lightning's loops wrap."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
