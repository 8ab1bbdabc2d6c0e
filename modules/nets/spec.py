"""Network specs: the architecture of a network as plain options, stored in every checkpoint.

A LightningModule takes its network as one spec (a dataclass, a YAML section of its own) and
builds the network from it. The spec is saved with the module's hyperparameters as a plain dict,
so ``load_from_checkpoint`` rebuilds the same network, and a later stage (the GAN after the
generator, 256 px after 128 px) reads it from the earlier stage's checkpoint instead of
restating it.
"""

from dataclasses import asdict, fields
from typing import TypeVar

Spec = TypeVar("Spec")


def as_spec(spec_type: type[Spec], value: "Spec | dict | None", default: "Spec | None" = None) -> Spec:
    """``value`` as a ``spec_type``: itself, built from a dict (a checkpoint's), or ``default`` for None.

    Raises:
        ValueError: a dict with keys the spec does not have.
    """
    if value is None:
        return default if default is not None else spec_type()
    if isinstance(value, spec_type):
        return value
    known = {field.name for field in fields(spec_type)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(
            f"{spec_type.__name__} has no option(s) {', '.join(unknown)}; it has {', '.join(sorted(known))}"
        )
    return spec_type(**value)


def spec_dict(spec) -> dict:
    """The spec as the plain dict stored in hyperparameters (tuples become lists, as YAML has them)."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(spec).items()}
