"""Frozen-then-unfrozen training, as in the lesson: ``freeze(); fit_one_cycle(...); unfreeze();
fit_one_cycle(..., slice(lr_encoder, lr_decoder))`` in one Lightning ``fit``.

The optimizer holds two parameter groups (encoder, decoder) from the start; while the encoder is
frozen its weights simply get no gradient (AdamW skips them), and one scheduler runs two one-cycle
schedules back to back. Everything depends only on the step and epoch counters, so a run resumed
from a checkpoint continues in the right phase with the right rates.
"""

import math

import lightning.pytorch as pl
import torch
from torch import nn
from torch.optim.lr_scheduler import LRScheduler

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


class PhasedOneCycle(LRScheduler):
    """One-cycle schedules run back to back, with a peak rate per parameter group in each phase.

    In each phase the rate warms from ``peak / div_factor`` to ``peak`` (cosine) over
    ``pct_start`` of its steps while beta1 falls from 0.95 to 0.85, then anneals to
    ``peak / (div_factor * final_div_factor)`` with beta1 back at 0.95: fast.ai's ``fit_one_cycle``.

    Args:
        optimizer: an Adam-style optimizer (its ``betas`` are scheduled).
        phases: per phase ``(steps, [peak rate per group], pct_start)``.
        div_factor: start rate = peak / div_factor.
        final_div_factor: end rate = start rate / final_div_factor.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, phases: list[tuple[int, list[float], float]],
                 div_factor: float = 25.0, final_div_factor: float = 1e4):
        self.phases = [(max(int(steps), 1), [float(lr) for lr in lrs], float(pct)) for steps, lrs, pct in phases]
        for _, lrs, _ in self.phases:
            if len(lrs) != len(optimizer.param_groups):
                raise ValueError(f"{len(lrs)} rates for {len(optimizer.param_groups)} parameter groups")
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        super().__init__(optimizer)

    @staticmethod
    def _cosine(start: float, end: float, fraction: float) -> float:
        return end + (start - end) / 2 * (1 + math.cos(math.pi * min(max(fraction, 0.0), 1.0)))

    def _phase_at(self, step: int) -> tuple[int, list[float], float, int]:
        for steps, lrs, pct in self.phases:
            if step < steps:
                return steps, lrs, pct, step
            step -= steps
        steps, lrs, pct = self.phases[-1]
        return steps, lrs, pct, steps  # past the end: stay at the final rate

    def get_lr(self) -> list[float]:
        steps, peaks, pct, step = self._phase_at(self.last_epoch)
        warm = max(pct * steps, 1.0)
        if step <= warm:
            fraction, start_div, end_div, beta = step / warm, self.div_factor, 1.0, (0.95, 0.85)
        else:
            fraction = (step - warm) / max(steps - warm, 1.0)
            start_div, end_div, beta = 1.0, self.div_factor * self.final_div_factor, (0.85, 0.95)
        beta1 = self._cosine(*beta, fraction)
        rates = []
        for group, peak in zip(self.optimizer.param_groups, peaks):
            rates.append(self._cosine(peak / start_div, peak / end_div, fraction))
            group["betas"] = (beta1, group["betas"][1])
        return rates


def frozen_then_unfrozen_adam(module: "pl.LightningModule", encoder: torch.nn.Module) -> dict:
    """AdamW over (encoder, rest) parameter groups with the lesson's two one-cycle phases.

    Reads ``frozen_epochs``, ``lr``, ``unfrozen_lr``, ``pct_start``, ``unfrozen_pct_start`` and
    ``weight_decay`` from the module's hyperparameters. The frozen phase's share of the steps is
    its share of ``max_epochs``; the module freezes the encoder for those epochs itself.
    """
    hp = module.hparams
    encoder_ids = {id(p) for p in encoder.parameters()}
    trainable = [p for p in module.parameters() if id(p) not in encoder_ids and p.requires_grad]
    groups = [{"params": list(encoder.parameters()), "name": "encoder"}, {"params": trainable, "name": "decoder"}]
    optimizer = torch.optim.AdamW(groups, lr=hp.lr, betas=(0.95, 0.99), weight_decay=hp.weight_decay,
                                  fused=module.device.type in ("cpu", "cuda"))
    total = max(int(module.trainer.estimated_stepping_batches), 1)
    epochs = module.trainer.max_epochs if module.trainer.max_epochs and module.trainer.max_epochs > 0 else 1
    frozen = min(total, round(total * min(hp.frozen_epochs, epochs) / epochs))
    phases = []
    if frozen:
        phases.append((frozen, [hp.lr, hp.lr], hp.pct_start))  # the encoder's rate is unused while frozen
    if total - frozen:
        phases.append((total - frozen, list(hp.unfrozen_lr), hp.unfrozen_pct_start))
    scheduler = PhasedOneCycle(optimizer, phases)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
