"""Frozen-then-unfrozen training, as in the lesson: ``freeze(); fit_one_cycle(...); unfreeze();
fit_one_cycle(..., slice(lr_encoder, lr_decoder))`` in one Lightning ``fit``.

The optimizer holds two parameter groups (encoder, decoder) from the start; while the encoder is
frozen its weights simply get no gradient (AdamW skips them), and one scheduler runs two one-cycle
phases back to back (``modules.one_cycle``). Everything depends only on the step and epoch
counters, so a run resumed from a checkpoint continues in the right phase with the right rates.
"""

from dataclasses import dataclass

from torch import nn

from modules.checkpoints import fitting_from_scratch
from modules.distributed import every_parameter_must_get_a_gradient
from modules.one_cycle import OneCycle, Phase, one_cycle_adamw, training_steps

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.GroupNorm, nn.LayerNorm)


def set_frozen(module: nn.Module, frozen: bool, train_norm: bool = True) -> None:
    """Stops (or restarts) gradients to ``module``'s weights.

    With ``train_norm`` the normalisation layers' scales and shifts stay trainable (fast.ai's
    ``train_bn``): ImageNet statistics fit new data poorly, and those few parameters adapt them.
    Batch norm keeps updating its running statistics either way, since the module stays in
    training mode.
    """
    frozen_ids = {id(p) for p in frozen_parameters(module, train_norm)} if frozen else set()
    for parameter in module.parameters():
        parameter.requires_grad_(id(parameter) not in frozen_ids)


def frozen_parameters(module: nn.Module, train_norm: bool = True) -> list[nn.Parameter]:
    """The parameters that freezing ``module`` stops: all but the norm layers' (with ``train_norm``)."""
    return [parameter for layer in module.modules() if not (train_norm and isinstance(layer, _NORMS))
            for parameter in layer.parameters(recurse=False)]


@dataclass
class FineTuning(OneCycle):
    """Frozen then unfrozen, each phase a one-cycle schedule: the lesson's recipe for pretrained encoders.

    Args:
        lr: peak rate of the frozen phase (the encoder is not trained then).
        pct_start: share of the frozen phase spent warming up.
        weight_decay: decoupled (AdamW) weight decay.
        frozen_epochs: epochs that train everything but the encoder (its norm layers still learn).
        unfrozen_lr: (encoder, rest) peak rates once unfrozen: the lesson's ``slice(lr/400, lr/4)``
            idea, a lower rate for pretrained layers.
        unfrozen_pct_start: share of the unfrozen phase spent warming up.
    """

    frozen_epochs: int = 0
    unfrozen_lr: tuple[float, float] = (1e-5, 1e-4)
    unfrozen_pct_start: float = 0.3

    def __post_init__(self) -> None:
        self.unfrozen_lr = (float(self.unfrozen_lr[0]), float(self.unfrozen_lr[1]))

    def is_frozen(self, epoch: int) -> bool:
        """Whether the encoder is frozen in ``epoch``; the epoch counter alone decides, so a resumed run
        lands in the right phase."""
        return epoch < self.frozen_epochs

    def adamw_for(self, encoder: nn.Module, module: nn.Module, total_steps: int, max_epochs: int) -> dict:
        """AdamW over (encoder, the rest of ``module``) parameter groups with the two one-cycle phases.

        The frozen phase's share of the ``total_steps`` is its share of ``max_epochs``.
        """
        encoder_ids = {id(p) for p in encoder.parameters()}
        rest = [p for p in module.parameters() if id(p) not in encoder_ids and p.requires_grad]
        groups = [{"params": list(encoder.parameters()), "name": "encoder"}, {"params": rest, "name": "decoder"}]
        epochs = max_epochs if max_epochs and max_epochs > 0 else 1
        frozen = min(total_steps, round(total_steps * min(self.frozen_epochs, epochs) / epochs))
        phases = []
        if frozen:
            phases.append(Phase(frozen, (self.lr, self.lr), self.pct_start))  # the encoder's rate is unused then
        if total_steps - frozen:
            phases.append(Phase(total_steps - frozen, self.unfrozen_lr, self.unfrozen_pct_start))
        return one_cycle_adamw(groups, phases, self.weight_decay)


class FineTunesAnEncoder:
    """Mixin for LightningModules whose pretrained encoder trains frozen, then unfrozen.

    The module provides ``pretrained_encoder`` (the encoder to freeze), ``schedule`` (a
    ``FineTuning``) and ``load_pretrained`` (what a fit from scratch starts from); this mixin loads
    that when such a fit starts, freezes the encoder for the frozen epochs and builds the optimizer.

    On one process a frozen weight gets no gradient at all. Under plain DDP, whose gradient
    exchange expects a gradient for every parameter at every step, frozen weights keep computing
    theirs, and those are dropped before the optimizer step: the weights stay where they are, as
    on one process, and ``--trainer.strategy ddp`` works across the unfreeze without
    ``find_unused_parameters``.
    """

    pretrained_encoder: nn.Module
    schedule: FineTuning

    def load_pretrained(self) -> None:
        raise NotImplementedError

    def on_fit_start(self) -> None:
        if fitting_from_scratch(self):
            self.load_pretrained()

    def on_train_epoch_start(self) -> None:
        keep_gradients = every_parameter_must_get_a_gradient(self.trainer)
        set_frozen(self.pretrained_encoder, self.schedule.is_frozen(self.current_epoch) and not keep_gradients)

    def on_before_optimizer_step(self, optimizer) -> None:
        if every_parameter_must_get_a_gradient(self.trainer) and self.schedule.is_frozen(self.current_epoch):
            for parameter in frozen_parameters(self.pretrained_encoder):
                parameter.grad = None  # AdamW skips it, as if it had had no gradient

    def configure_optimizers(self):
        return self.schedule.adamw_for(self.pretrained_encoder, self, training_steps(self), self.trainer.max_epochs)
