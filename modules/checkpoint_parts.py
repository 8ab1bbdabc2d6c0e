"""Starting a network from part of another run's Lightning checkpoint."""

from pathlib import Path

import torch
from torch import nn

from modules.errors import UserInputError


def load_part(module: nn.Module, checkpoint: str, prefix: str, option: str) -> None:
    """Loads the ``<prefix>.*`` weights of a Lightning checkpoint into ``module``, strictly.

    Args:
        module: the network to fill.
        checkpoint: path of a ``.ckpt`` file.
        prefix: attribute name of the network in the module that saved the checkpoint.
        option: the CLI option that named the file, quoted in errors.

    Raises:
        UserInputError: the file is missing, unreadable, or its weights do not fit ``module``.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise UserInputError(f"{option}: checkpoint {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False).get("state_dict", {})
    except Exception as error:  # pickle, zip and runtime errors for damaged files
        raise UserInputError(f"{option}: cannot read checkpoint {path}: {error}.") from error
    part = {key[len(prefix) + 1 :]: value for key, value in state.items() if key.startswith(prefix + ".")}
    try:
        module.load_state_dict(part)
    except RuntimeError as error:
        raise UserInputError(
            f"{option}: the '{prefix}' weights in {path} do not fit this model's {prefix} "
            f"(set the architecture options to those of the run that saved it): {str(error).splitlines()[0]}"
        ) from error
