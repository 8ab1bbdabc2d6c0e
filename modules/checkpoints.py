"""Reading checkpoints: a network's spec and weights from another run's, and older layouts upgraded.

Training starts from pretrained sources (an encoder's ImageNet weights, an earlier stage's
checkpoint) only when it starts from scratch; a resumed run, ``validate``, ``test``, ``predict``
and ``load_from_checkpoint`` take everything from the checkpoint they are given.
"""

import importlib
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


# Hyperparameters of checkpoints saved before networks and schedules had sections of their own:
# the flat options that now form each section, per module class.
_UNET_OPTIONS = ("encoder", "encoder_cut", "norm", "blur", "self_attention", "last_cross", "y_range", "residual")
_ONE_CYCLE = {name: name for name in ("lr", "pct_start", "weight_decay")}
_FINE_TUNING = {**_ONE_CYCLE, **{name: name for name in ("frozen_epochs", "unfrozen_lr", "unfrozen_pct_start")}}
_FLAT_OPTIONS = {
    "ClassifierModule": {"net": {"arch": "arch", "channels": "widths"}, "schedule": _ONE_CYCLE},
    "SegmentationModule": {"net": {name: name for name in _UNET_OPTIONS}, "schedule": _FINE_TUNING},
    "RestorationModule": {"generator": {name: name for name in _UNET_OPTIONS}, "schedule": _FINE_TUNING},
    "CriticModule": {"critic": {"features": "width", "num_blocks": "num_blocks", "dropout": "dropout"},
                     "schedule": _ONE_CYCLE},
    "GANModule": {"generator": {name: name for name in _UNET_OPTIONS},
                  "critic": {"critic_features": "width", "critic_blocks": "num_blocks", "critic_dropout": "dropout"}},
    "WGANModule": {"net": {"noise_dim": "noise_dim", "features": "width"}},
    "LanguageModelModule": {"net": {"arch": "arch", "hidden_dim": "hidden_dim", "num_layers": "num_layers"},
                            "schedule": _ONE_CYCLE},
}
_RENAMED_OPTIONS = {"RestorationModule": {"init_checkpoint": "generator_checkpoint"},
                    "WGANModule": {"samples": "grid_size"}}


def module_class_name(hparams: dict, fallback: str = "") -> str:
    """The class name a checkpoint's hyperparameters were saved by (the CLI stores ``_class_path``)."""
    return str(hparams.get("_class_path", fallback)).rsplit(".", 1)[-1]


def upgrade_hyperparameters(hparams: dict, class_name: str = "") -> dict:
    """A checkpoint's hyperparameters in today's layout (a section per network, one for the schedule).

    Checkpoints saved before the layout changed still load: their flat options are gathered into
    the sections and renamed options get their new names. Hyperparameters already in today's
    layout come back unchanged.

    Args:
        hparams: the checkpoint's ``hyper_parameters``.
        class_name: the module class, when the hyperparameters do not name it (``_class_path``).
    """
    name = module_class_name(hparams, class_name)
    upgraded = dict(hparams)
    for section, options in _FLAT_OPTIONS.get(name, {}).items():
        if isinstance(upgraded.get(section), dict) or not any(old in upgraded for old in options):
            continue
        # Options the old layout did not have take the section's defaults, as they did then.
        upgraded[section] = {new: upgraded.pop(old) for old, new in options.items() if old in upgraded}
    for old, new in _RENAMED_OPTIONS.get(name, {}).items():
        if old in upgraded:
            upgraded[new] = upgraded.pop(old)
    return upgraded


class LoadsOlderCheckpoints:
    """Mixin for the LightningModules: ``load_from_checkpoint`` reads checkpoints of the older flat layout.

    Lightning rebuilds a module from the hyperparameters a checkpoint stores and drops the ones the
    module no longer takes: an old checkpoint would come back with default sections, silently
    another network. Upgraded first, it comes back as it was saved.
    """

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        stored = read_checkpoint(checkpoint_path, "checkpoint").get("hyper_parameters") or {}
        upgraded = upgrade_hyperparameters(stored, cls.__name__)
        changed = {key: value for key, value in upgraded.items() if key not in stored or stored[key] != value}
        return super().load_from_checkpoint(checkpoint_path, *args, **{**changed, **kwargs})


def load_module(checkpoint: str | Path, **overrides) -> pl.LightningModule:
    """The module a ``cli.py fit`` checkpoint was saved by, rebuilt from the checkpoint alone.

    Args:
        checkpoint: the ``.ckpt`` file.
        overrides: hyperparameters to change (``map_location`` too), as for ``load_from_checkpoint``.

    Raises:
        UserInputError: the file is missing or unreadable, or does not name its class.
    """
    hparams = read_checkpoint(checkpoint, "checkpoint").get("hyper_parameters") or {}
    if "_class_path" not in hparams:
        raise UserInputError(
            f"{checkpoint} does not name its module class (checkpoints written by `python cli.py fit` do): "
            "call SomeModule.load_from_checkpoint on it."
        )
    return imported(hparams["_class_path"]).load_from_checkpoint(checkpoint, **overrides)


def imported(class_path: str) -> type:
    """The class a dotted path names (``modules.gan.GANModule``)."""
    module, name = class_path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def keep_out_of_checkpoints(module: nn.Module, child: str) -> None:
    """Leaves ``module.<child>``'s weights out of state dicts, and out of what loading one expects.

    For frozen pretrained networks (a feature loss's VGG, LPIPS's AlexNet) that are rebuilt from
    their source instead of stored in every checkpoint. Loading fills their entries with the
    weights they hold, so a strict load still checks every other key.
    """

    def drop(_module, state_dict, prefix, _local_metadata):
        for key in [key for key in state_dict if key.startswith(f"{prefix}{child}.")]:
            del state_dict[key]

    def fill(state_dict, prefix, *_):
        for key, value in getattr(module, child).state_dict(prefix=f"{prefix}{child}.").items():
            state_dict.setdefault(key, value)

    module._register_state_dict_hook(drop)
    module._register_load_state_dict_pre_hook(fill)
