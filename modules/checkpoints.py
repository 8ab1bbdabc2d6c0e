"""Reading checkpoints: a network's spec and weights from another run's, and older layouts upgraded.

Training starts from pretrained sources (an encoder's ImageNet weights, an earlier stage's
checkpoint) only when it starts from scratch; a resumed run, ``validate``, ``test``, ``predict``
and ``load_from_checkpoint`` take everything from the checkpoint they are given.
"""

from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn

from common.errors import UserInputError
from modules.nets.spec import Spec, as_spec


def read_checkpoint(checkpoint: str | Path, option: str) -> dict:
    """The contents of a Lightning checkpoint (tensors and plain values only).

    Raises:
        UserInputError: the file is missing or unreadable; names ``option``.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise UserInputError(f"{option}: checkpoint {path} does not exist.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and runtime errors for damaged files
        raise UserInputError(f"{option}: cannot read checkpoint {path}: {error}.") from error


def fitting_from_scratch(module: pl.LightningModule) -> bool:
    """Whether the running fit starts afresh (True) or resumes from a checkpoint, which holds every weight.

    Valid from ``on_fit_start`` on: Lightning knows the fit's checkpoint by then.
    """
    return module.trainer.ckpt_path is None


def spec_from_checkpoint(spec_type: type[Spec], checkpoint: str, part: str, option: str) -> Spec:
    """The spec of network ``part`` (``generator``, ``critic``, ``net``) saved in a checkpoint's hyperparameters.

    Raises:
        UserInputError: the checkpoint is unreadable or was saved by a module without that network.
    """
    saved = read_checkpoint(checkpoint, option)
    hparams = upgrade_hyperparameters(saved.get("hyper_parameters", {}))
    if not isinstance(hparams.get(part), dict):
        raise UserInputError(
            f"{option}: checkpoint {checkpoint} describes no '{part}' network (it was saved by "
            f"{hparams.get('_class_path', 'a module without one')})."
        )
    return as_spec(spec_type, hparams[part])


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
    state = read_checkpoint(checkpoint, option).get("state_dict", {})
    part = {key[len(prefix) + 1 :]: value for key, value in state.items() if key.startswith(prefix + ".")}
    try:
        module.load_state_dict(part)
    except RuntimeError as error:
        raise UserInputError(
            f"{option}: the '{prefix}' weights in {checkpoint} do not fit this model's {prefix}: "
            f"{str(error).splitlines()[0]}"
        ) from error


# Hyperparameters of checkpoints saved before networks had specs of their own: the flat options
# that now form each network's section, per module class.
_UNET_OPTIONS = ("encoder", "encoder_cut", "norm", "blur", "self_attention", "last_cross", "y_range", "residual")
_FLAT_NETWORK_OPTIONS = {
    "ClassifierModule": {"net": {"arch": "arch", "channels": "widths"}},
    "SegmentationModule": {"net": {name: name for name in _UNET_OPTIONS}},
    "RestorationModule": {"generator": {name: name for name in _UNET_OPTIONS}},
    "CriticModule": {"critic": {"features": "width", "num_blocks": "num_blocks", "dropout": "dropout"}},
    "GANModule": {"generator": {name: name for name in _UNET_OPTIONS},
                  "critic": {"critic_features": "width", "critic_blocks": "num_blocks", "critic_dropout": "dropout"}},
    "WGANModule": {"net": {"noise_dim": "noise_dim", "features": "width"}},
    "LanguageModelModule": {"net": {"arch": "arch", "hidden_dim": "hidden_dim", "num_layers": "num_layers"}},
}
_RENAMED_OPTIONS = {"RestorationModule": {"init_checkpoint": "generator_checkpoint"},
                    "WGANModule": {"samples": "grid_size"}}


def module_class_name(hparams: dict, fallback: str = "") -> str:
    """The class name a checkpoint's hyperparameters were saved by (the CLI stores ``_class_path``)."""
    return str(hparams.get("_class_path", fallback)).rsplit(".", 1)[-1]


def upgrade_hyperparameters(hparams: dict, class_name: str = "") -> dict:
    """A checkpoint's hyperparameters in today's layout (a network section per network).

    Checkpoints saved before the layout changed still load: their flat architecture options are
    gathered into the network sections and renamed options get their new names. Hyperparameters
    already in today's layout come back unchanged.

    Args:
        hparams: the checkpoint's ``hyper_parameters``.
        class_name: the module class, when the hyperparameters do not name it (``_class_path``).
    """
    name = module_class_name(hparams, class_name)
    sections = _FLAT_NETWORK_OPTIONS.get(name, {})
    if not sections or any(isinstance(hparams.get(section), dict) for section in sections):
        return dict(hparams)
    if not any(old in hparams for options in sections.values() for old in options):
        return dict(hparams)
    upgraded = dict(hparams)
    for section, options in sections.items():
        spec = {}  # options the old layout did not have take the spec's defaults, as they did then
        for old, new in options.items():
            if old in upgraded:
                spec[new] = upgraded.pop(old)
        upgraded[section] = spec
    for old, new in _RENAMED_OPTIONS.get(name, {}).items():
        if old in upgraded:
            upgraded[new] = upgraded.pop(old)
    return upgraded
