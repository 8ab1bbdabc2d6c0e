"""What DDP's gradient exchange needs from modules whose parameters sit out some steps."""

import lightning.pytorch as pl
from torch.nn.parallel import DistributedDataParallel


def every_parameter_must_get_a_gradient(trainer: "pl.Trainer") -> bool:
    """Whether the run is under DDP without ``find_unused_parameters``.

    DDP's gradient hooks then wait, at every step, for a gradient of every parameter that
    required one when the model was wrapped: a parameter that sits a step out (a frozen encoder,
    the GAN network whose turn it is not) would stall the exchange. With
    ``find_unused_parameters`` DDP looks for such parameters itself, at the cost of a walk of the
    autograd graph every step.
    """
    if trainer.world_size == 1:
        return False
    model = trainer.strategy.model
    return isinstance(model, DistributedDataParallel) and not model.find_unused_parameters
