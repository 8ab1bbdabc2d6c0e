"""LPIPS (Zhang et al., 2018), torchmetrics' AlexNet variant, with its backbone from a weights enum or a local file.

torchmetrics builds the backbone with torchvision's ImageNet weights, which it downloads. Here the
same metric (torchmetrics' network, its packaged linear layers, its compute) is built with a
random backbone, which then takes the ImageNet weights from torchvision's weights enum (online)
or from a local state dict of torchvision's ``alexnet`` (offline), the way the other weights
options do.
"""

from pathlib import Path

import torch
import torchvision
from torchmetrics import Metric
from torchmetrics.functional.image.lpips import _NoTrainLpips
from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

from common.errors import UserInputError
from modules.checkpoints import keep_out_of_checkpoints


class PerceptualSimilarity(LearnedPerceptualImagePatchSimilarity):
    """torchmetrics' LPIPS-Alex (mean over images) of images in [0, 1]; lower is more alike, 0 for identical.

    Its weights are frozen, take no gradient and are left out of any state dict (like the
    feature loss's VGG, they are rebuilt from their source instead of stored in checkpoints).

    Args:
        backbone_weights: ``imagenet`` (torchvision's weights enum, downloaded once) or a path to a
            state dict of torchvision's ``alexnet`` (``features.*`` keys; the classifier may be absent).
        option: the CLI option that named the weights, quoted in errors.
        shared: another instance whose networks this one uses (no second copy of the weights).

    Raises:
        UserInputError: the weights cannot be had (no network, a missing or foreign file).
    """

    def __init__(self, backbone_weights: str = "imagenet", option: str = "--model.lpips_weights",
                 shared: "PerceptualSimilarity | None" = None):
        Metric.__init__(self)  # the parent's __init__ would download the backbone itself
        self.reduction, self.normalize = "mean", True
        self.add_state("all_scores", default=[], dist_reduce_fx=None)
        if shared is not None:
            self.net = shared.net
        else:
            self.net = _NoTrainLpips(net="alex", pnet_rand=True)  # torchmetrics' LPIPS, pretrained linear layers
            self._load_backbone(backbone_weights, option)
        keep_out_of_checkpoints(self, "net")

    def _load_backbone(self, weights: str, option: str) -> None:
        state = _alexnet_state_dict(weights, option)
        backbone = self.net.net  # slice1..slice5 hold torchvision's alexnet.features layers by their index
        mapped = {}
        for key in backbone.state_dict():
            _, index, parameter = key.split(".")
            source = f"features.{index}.{parameter}"
            if source not in state:
                raise UserInputError(f"{option}: {weights} has no {source}: pass a state dict of torchvision's "
                                     "alexnet.")
            mapped[key] = state[source]
        try:
            backbone.load_state_dict(mapped)
        except RuntimeError as error:
            raise UserInputError(f"{option}: {weights} does not fit torchvision's alexnet: "
                                 f"{str(error).splitlines()[-1].strip()}") from error


def _alexnet_state_dict(weights: str, option: str) -> dict:
    if weights.lower() == "imagenet":
        enum = torchvision.models.AlexNet_Weights.DEFAULT
        try:
            return enum.get_state_dict(progress=False)
        except (OSError, RuntimeError) as error:  # URLError is an OSError
            raise UserInputError(
                f"{option}: cannot download AlexNet's ImageNet weights ({error}); pass a local state dict of "
                "torchvision's alexnet, or none."
            ) from error
    path = Path(weights)
    if not path.is_file():
        raise UserInputError(f"{option}: file {path} does not exist.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # pickle, zip and runtime errors for damaged files
        raise UserInputError(f"{option}: cannot read {path} as a state dict: {error}.") from error
    return state.get("state_dict", state) if isinstance(state, dict) else {}

