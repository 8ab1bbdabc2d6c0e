"""The plain PyTorch loops' optimizers: the modules' own, built from the step count a Trainer would work out.

``configure_optimizers`` reads the number of training steps off the Trainer; without one, these
build the same optimizer and schedule through the same ``one_cycle_adamw``.
"""

import lightning.pytorch as pl
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

from modules.freezing import set_frozen
from modules.one_cycle import Phase, one_cycle_adamw

Optimization = tuple[torch.optim.Optimizer, LRScheduler]


def _unpacked(configured: dict) -> Optimization:
    return configured["optimizer"], configured["lr_scheduler"]["scheduler"]


def one_cycle_all(model: pl.LightningModule, total_steps: int) -> Optimization:
    """What ``modules.one_cycle.one_cycle`` gives the classifier, the critic and the language model."""
    hp = model.hparams
    groups = [{"params": [p for p in model.parameters() if p.requires_grad]}]
    return _unpacked(one_cycle_adamw(groups, [Phase(total_steps, (hp.lr,), hp.pct_start)], hp.weight_decay))


def unfrozen_unet(model: pl.LightningModule, encoder: nn.Module, total_steps: int) -> Optimization:
    """What ``frozen_then_unfrozen`` gives a U-Net module with ``frozen_epochs`` 0.

    Two groups (encoder, the rest) under one one-cycle phase at ``unfrozen_lr``; the encoder is
    unfrozen first, as ``on_train_epoch_start`` does in such a run.
    """
    hp = model.hparams
    set_frozen(encoder, frozen=False)
    encoder_ids = {id(p) for p in encoder.parameters()}
    rest = [p for p in model.parameters() if id(p) not in encoder_ids and p.requires_grad]
    groups = [{"params": list(encoder.parameters())}, {"params": rest}]
    phases = [Phase(total_steps, tuple(hp.unfrozen_lr), hp.unfrozen_pct_start)]
    return _unpacked(one_cycle_adamw(groups, phases, hp.weight_decay))


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One plain update: the zero_grad / backward / step that Lightning's loops wrap."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
