"""Frozen-then-unfrozen training, as in the lesson: ``freeze(); fit_one_cycle(...); unfreeze();
fit_one_cycle(..., slice(lr_encoder, lr_decoder))`` in one Lightning ``fit``.

The optimizer holds two parameter groups (encoder, decoder) from the start; while the encoder is
frozen its weights simply get no gradient (AdamW skips them), and one scheduler runs two one-cycle
phases back to back (``modules.one_cycle``). Everything depends only on the step and epoch
counters, so a run resumed from a checkpoint continues in the right phase with the right rates.
"""

import lightning.pytorch as pl
from torch import nn

from modules.one_cycle import Phase, one_cycle_adamw, training_steps

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)


def set_frozen(module: nn.Module, frozen: bool, train_norm: bool = True) -> None:
    """Stops (or restarts) gradients to ``module``'s weights.

    With ``train_norm`` the normalisation layers' scales and shifts stay trainable (fast.ai's
    ``train_bn``): ImageNet statistics fit new data poorly, and those few parameters adapt them.
    Batch norm keeps updating its running statistics either way, since the module stays in
    training mode.
    """
    for layer in module.modules():
        keep = train_norm and isinstance(layer, _NORMS)
        for parameter in layer.parameters(recurse=False):
            parameter.requires_grad_(keep or not frozen)


def freeze_for_epoch(module: "pl.LightningModule", encoder: nn.Module) -> None:
    """Freezes ``encoder`` during the first ``frozen_epochs`` epochs (from the module's hyperparameters).

    Decided from the epoch counter alone, so a resumed run lands in the right phase. Call it from
    ``on_train_epoch_start``.
    """
    set_frozen(encoder, frozen=module.current_epoch < module.hparams.frozen_epochs)


def frozen_then_unfrozen(module: "pl.LightningModule", encoder: nn.Module) -> dict:
    """AdamW over (encoder, rest) parameter groups with the lesson's two one-cycle phases.

    Reads ``frozen_epochs``, ``lr``, ``unfrozen_lr``, ``pct_start``, ``unfrozen_pct_start`` and
    ``weight_decay`` from the module's hyperparameters. The frozen phase's share of the steps is
    its share of ``max_epochs``; ``freeze_for_epoch`` freezes the encoder for those epochs.
    """
    hp = module.hparams
    encoder_ids = {id(p) for p in encoder.parameters()}
    trainable = [p for p in module.parameters() if id(p) not in encoder_ids and p.requires_grad]
    groups = [{"params": list(encoder.parameters()), "name": "encoder"}, {"params": trainable, "name": "decoder"}]
    total = training_steps(module)
    epochs = module.trainer.max_epochs if module.trainer.max_epochs and module.trainer.max_epochs > 0 else 1
    frozen = min(total, round(total * min(hp.frozen_epochs, epochs) / epochs))
    phases = []
    if frozen:
        phases.append(Phase(frozen, (hp.lr, hp.lr), hp.pct_start))  # the encoder's rate is unused while frozen
    if total - frozen:
        phases.append(Phase(total - frozen, tuple(hp.unfrozen_lr), hp.unfrozen_pct_start))
    return one_cycle_adamw(groups, phases, hp.weight_decay)
