"""Torchvision CNNs as U-Net encoders: build, load weights (ImageNet, a local file or none), cut.

An encoder here is an ``nn.Sequential`` of the network's convolutional body, layer by layer, so the
U-Net can read the output of any layer. The body is what fast.ai's ``create_body`` keeps: the
``features`` block of networks that have one (MobileNet, VGG, EfficientNet, DenseNet), otherwise
every child but the last two (a ResNet's average pool and fully connected layer).
"""

from pathlib import Path

import torch
import torchvision
from torch import nn

from common.errors import UserInputError
from common.weights_option import weights_given


def _body_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The convolutional body as (state-dict prefix, layer) pairs, in order."""
    features = getattr(model, "features", None)
    if isinstance(features, nn.Sequential):
        return [(f"features.{name}", layer) for name, layer in features.named_children()]
    return list(model.named_children())[:-2]  # drop the pooling and classifier head


def build_encoder(
    arch: str, weights: str | None = None, cut: int | None = None, in_channels: int = 3,
    option: str = "--model.encoder_weights",
) -> nn.Sequential:
    """A torchvision classifier's convolutional body, optionally pretrained and cut short.

    Networks are built without weights (``weights=None``) and filled by ``load_encoder_weights``
    when training starts: a checkpoint then never needs the weights file it started from.

    Args:
        arch: a torchvision classification model name: ``resnet18``, ``resnet34``, ``resnet50``,
            ``mobilenet_v2``, ``vgg16``, ...
        weights: ``imagenet`` (torchvision's default weights, downloaded once), a path to a state
            dict saved from the torchvision model (classifier keys may be absent, but every key
            of the kept layers must be there with its shape), or None / ``none`` for random
            initialisation.
        cut: keep the body's layers ``[:cut]`` (negative counts from the end). ``-1`` on
            ``mobilenet_v2`` drops its final 1x1 expansion to 1280 channels, which makes the
            U-Net's middle and decoder about ten times larger.
        in_channels: image channels; a first conv for other than 3 channels is replaced (its
            pretrained weights averaged over RGB).
        option: the CLI option that chose ``weights``, named in errors.

    Raises:
        UserInputError: unknown architecture, a weights file that is missing, unreadable or made
            for another network, or ImageNet weights that cannot be downloaded.
    """
    _check_arch(arch)
    layers = _body_layers(torchvision.models.get_model(arch, weights=None))
    kept = layers[:cut] if cut is not None else layers
    if not kept:
        raise UserInputError(f"--model.encoder_cut {cut} leaves no layers of {arch} (it has {len(layers)}).")
    encoder = nn.Sequential(*(layer for _, layer in kept))
    if in_channels != 3:
        _adapt_first_conv(encoder, in_channels)
    load_encoder_weights(encoder, arch, weights, cut, in_channels, option)
    return encoder


def load_encoder_weights(
    encoder: nn.Sequential, arch: str, weights: str | None, cut: int | None = None, in_channels: int = 3,
    option: str = "--model.encoder_weights",
) -> None:
    """Fills an encoder made by ``build_encoder(arch, None, cut, in_channels)`` with pretrained weights.

    The torchvision model's state dict (ImageNet's, or a local file's) is checked against the
    model's key names and shapes, then its kept layers' entries are copied into ``encoder`` in
    place (its memory layout is kept). No second network is built and no random numbers are
    drawn, so loading weights leaves the rest of a seeded run as it would have been.

    Args:
        encoder: the encoder to fill.
        arch: its torchvision architecture.
        weights: ``imagenet`` or a local state-dict path (see ``build_encoder``); None or ``none``
            leave the encoder as it is.
        cut: the cut it was built with.
        in_channels: the image channels it was built for.
        option: the CLI option that chose ``weights``, named in errors.

    Raises:
        UserInputError: as ``build_encoder``.
    """
    if not weights_given(weights):
        return
    _check_arch(arch)
    with torch.device("meta"):  # names and shapes only: nothing is allocated or initialised
        layers = _body_layers(torchvision.models.get_model(arch, weights=None))
        expected = nn.Sequential(*(module for _, module in layers)).state_dict()
    kept = [prefix for prefix, _ in (layers[:cut] if cut is not None else layers)]
    expected = {f"{layers[index][0]}.{key.split('.', 1)[1]}": value for key, value in expected.items()
                for index in [int(key.split(".", 1)[0])]}
    if weights.lower() == "imagenet":
        state = _imagenet_state_dict(arch, option)
    else:
        state = _read_state_dict(Path(weights), option)
        _check_fits(state, expected, kept, arch, Path(weights), option)
    mapped = {f"{index}.{key[len(prefix) + 1:]}": value for index, prefix in enumerate(kept)
              for key, value in state.items() if key.startswith(prefix + ".")}
    if in_channels != 3:
        first = next(f"{name}.weight" for name, module in encoder.named_modules() if isinstance(module, nn.Conv2d))
        mapped[first] = mapped[first].mean(dim=1, keepdim=True).expand(-1, in_channels, -1, -1)
    result = encoder.load_state_dict(mapped, strict=False)
    missing = [key for key in result.missing_keys if not key.endswith("num_batches_tracked")]
    if missing:
        raise UserInputError(f"{option}: the {arch} weights lack {len(missing)} encoder keys (e.g. {missing[0]}).")


def _check_arch(arch: str) -> None:
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise UserInputError(
            f"--model.encoder {arch!r} is not a torchvision classification model; "
            "try resnet18, resnet34, resnet50, mobilenet_v2 or vgg16."
        )


def _imagenet_state_dict(arch: str, option: str) -> dict:
    enum = torchvision.models.get_model_weights(arch).DEFAULT
    try:
        return enum.get_state_dict(progress=False)
    except (OSError, RuntimeError) as error:  # URLError is an OSError
        raise UserInputError(
            f"Cannot download the ImageNet weights of {arch} ({enum}): {error}. Without internet, "
            f"pass a local state dict with {option} PATH, or none."
        ) from error


def _read_state_dict(path: Path, option: str) -> dict:
    if not path.is_file():
        raise UserInputError(f"{option}: file {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors for bad files
        raise UserInputError(f"{option}: cannot read {path} as a state dict: {error}.") from error
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise UserInputError(f"{option}: {path} does not hold a state dict of tensors.")
    return state


def _check_fits(state: dict, expected: dict, kept_prefixes: list[str], arch: str, path: Path, option: str) -> None:
    """Insists that a state dict's body keys are the model's, of the model's shapes, covering the kept layers.

    Keys outside the body (a classifier head) are allowed but not required.
    """
    body_prefixes = {key.split(".")[0] for key in expected}
    in_body = {key: value for key, value in state.items() if key.split(".")[0] in body_prefixes}
    foreign = [key for key in in_body if key not in expected]
    misshapen = [
        f"{key} {tuple(value.shape)} (model: {tuple(expected[key].shape)})"
        for key, value in in_body.items() if key in expected and value.shape != expected[key].shape
    ]
    needed = [key for key in expected if any(key.startswith(prefix + ".") for prefix in kept_prefixes)
              and not key.endswith("num_batches_tracked")]
    missing = [key for key in needed if key not in state]
    if foreign or misshapen or missing:
        problems = []
        if foreign:
            problems.append(f"{len(foreign)} keys {arch} does not have (e.g. {', '.join(foreign[:3])})")
        if misshapen:
            problems.append(f"{len(misshapen)} keys of the wrong shape (e.g. {'; '.join(misshapen[:2])})")
        if missing:
            problems.append(f"{len(missing)} encoder keys missing (e.g. {', '.join(missing[:3])})")
        raise UserInputError(
            f"{option}: {path} does not fit torchvision's {arch}: {'; '.join(problems)}. "
            "Pass a state dict saved from the same torchvision architecture (key names like "
            f"{next(iter(needed), '?')!r}), 'imagenet', or none."
        )


def _adapt_first_conv(encoder: nn.Sequential, in_channels: int) -> None:
    """Swaps the first conv for one taking ``in_channels``, initialised from the mean RGB filter."""
    for parent in encoder.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                conv = nn.Conv2d(
                    in_channels, child.out_channels, child.kernel_size, child.stride, child.padding,
                    child.dilation, child.groups, child.bias is not None,
                )
                with torch.no_grad():
                    conv.weight.copy_(child.weight.mean(dim=1, keepdim=True).expand_as(conv.weight))
                    if conv.bias is not None:
                        conv.bias.copy_(child.bias)
                setattr(parent, name, conv)
                return

