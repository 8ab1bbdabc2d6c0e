"""LPIPS: torchmetrics' metric, its AlexNet from a local file the same as loaded the standard way."""

from pathlib import Path

import pytest
import torch
import torchvision
from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

from common.errors import UserInputError
from modules.perceptual import PerceptualSimilarity


@pytest.fixture(scope="module")
def alexnet(tmp_path_factory) -> tuple[torchvision.models.AlexNet, Path]:
    """A (random) AlexNet and its convolutional layers saved as the offline weights file is."""
    torch.manual_seed(3)
    model = torchvision.models.alexnet()
    path = tmp_path_factory.mktemp("weights") / "alexnet_features.pth"
    torch.save({k: v for k, v in model.state_dict().items() if k.startswith("features.")}, path)
    return model, path


def _images(seed: int) -> torch.Tensor:
    return torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_zero_for_identical_images_positive_for_a_distortion(alexnet):
    metric = PerceptualSimilarity(str(alexnet[1]))
    images = _images(0)
    metric.update(images, images.clone())
    assert metric.compute().item() == pytest.approx(0.0, abs=1e-6)
    metric.reset()
    metric.update((images + 0.1 * torch.randn_like(images)).clamp(0, 1), images)
    noisy = metric.compute().item()
    metric.reset()
    metric.update((images + 0.3 * torch.randn_like(images)).clamp(0, 1), images)
    assert 0 < noisy < metric.compute().item()  # more noise, further apart


def test_local_file_gives_the_standard_metrics_value(alexnet, tmp_path, monkeypatch):
    model, path = alexnet
    # torchmetrics' own construction, with the same AlexNet where torchvision looks for its
    # downloaded weights (the hub cache), so that nothing is downloaded.
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(model.state_dict(), checkpoints / Path(torchvision.models.AlexNet_Weights.DEFAULT.url).name)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    standard = LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)
    ours = PerceptualSimilarity(str(path))
    first, second = _images(1), _images(2)
    for metric in (standard, ours):
        metric.update(first, second)
    assert ours.compute().item() == pytest.approx(standard.compute().item(), rel=1e-6)


def test_weights_stay_frozen_and_out_of_the_state_dict(alexnet):
    metric = PerceptualSimilarity(str(alexnet[1]))
    assert metric.state_dict() == {} and not any(p.requires_grad for p in metric.parameters())
    holder = torch.nn.ModuleDict({"lpips": metric, "net": torch.nn.Linear(2, 2)})
    assert set(holder.state_dict()) == {"net.weight", "net.bias"}
    holder.load_state_dict(holder.state_dict())  # strict: the left-out weights are not "missing"
    with pytest.raises(RuntimeError, match="net.weight"):
        holder.load_state_dict({"net.bias": torch.zeros(2)})  # every other key is still checked


def test_missing_or_foreign_weights_are_named(tmp_path):
    with pytest.raises(UserInputError, match=r"--model.lpips_weights: file .*absent.pth does not exist"):
        PerceptualSimilarity(str(tmp_path / "absent.pth"))
    foreign = tmp_path / "vgg.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, foreign)
    with pytest.raises(UserInputError, match="alexnet"):
        PerceptualSimilarity(str(foreign))
