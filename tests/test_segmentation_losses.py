"""Segmentation losses for unbalanced classes: weighted cross-entropy, focal, Lovász-softmax, and their mixes."""

import json
from functools import cache

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cli import cli_main
from common.class_frequencies import count_class_pixels, frequencies
from common.errors import UserInputError
from modules.losses.class_balance import median_frequency_weights
from modules.losses.focal import focal_loss
from modules.losses.lovasz_softmax import lovasz_softmax
from modules.nets.unet import UNetSpec
from modules.segmentation import SegmentationModule
from tests.conftest import CONFIGS
from tests.test_segmentation import SMALL

MOBILENET = UNetSpec("mobilenet_v2", encoder_cut=-1)
CLASSES = 4
# Each choice as the module is configured: loss, cross_entropy_weight.
CHOICES = {"cross_entropy": ("cross_entropy", 0.0), "weighted_cross_entropy": ("weighted_cross_entropy", 0.0),
           "focal": ("focal", 0.0), "lovasz": ("lovasz", 0.0), "lovasz+ce": ("lovasz", 0.5),
           "focal+ce": ("focal", 1.0), "weighted+ce": ("weighted_cross_entropy", 0.3)}
FREQUENCIES = [0.5, 0.25, 0.1, 0.05]


pytestmark = pytest.mark.usefixtures("one_thread")


def module(choice: str, void: int = CLASSES) -> SegmentationModule:
    """The module configured for ``choice``; built once per test run (the losses keep no state)."""
    return _built(choice, void)


@cache
def _built(choice: str, void: int) -> SegmentationModule:
    loss, mix = CHOICES[choice]
    return SegmentationModule(MOBILENET, num_classes=CLASSES, ignore_index=void, loss=loss, cross_entropy_weight=mix,
                              class_frequencies=FREQUENCIES)


def masks_with_void(void: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    masks = torch.randint(0, CLASSES, (2, 6, 8), generator=generator)
    masks[:, :, :2] = void  # a Void band, as CamVid's unlabelled borders
    return masks


def matching_logits(masks: torch.Tensor, void: int) -> torch.Tensor:
    """Logits that put (almost) all probability on the true class; Void pixels get random ones."""
    logits = F.one_hot(masks.clamp(max=CLASSES - 1), CLASSES).permute(0, 3, 1, 2).float() * 30
    return torch.where((masks == void).unsqueeze(1), torch.randn_like(logits), logits)


@pytest.mark.parametrize("choice", sorted(CHOICES))
def test_loss_vanishes_on_matching_predictions_and_not_on_random_ones(choice):
    model = module(choice)
    masks = masks_with_void(CLASSES)
    assert model.pixel_loss(matching_logits(masks, CLASSES), masks) < 1e-3
    assert model.pixel_loss(torch.randn(2, CLASSES, 6, 8), masks) > 0.1


@pytest.mark.parametrize("choice", sorted(CHOICES))
def test_gradients_are_finite(choice):
    masks = masks_with_void(CLASSES)
    random, matching = torch.randn(2, CLASSES, 6, 8) * 3, matching_logits(masks, CLASSES)
    for logits in (random, matching):
        logits.requires_grad_(True)
        module(choice).pixel_loss(logits, masks).backward()
        assert torch.isfinite(logits.grad).all()
    assert random.grad.abs().sum() > 1e-3  # wrong predictions: a gradient to descend


@pytest.mark.parametrize("void", [CLASSES, 1], ids=["void_outside_classes", "void_a_class"])
@pytest.mark.parametrize("choice", sorted(CHOICES))
def test_void_pixels_do_not_change_the_loss(choice, void):
    model = module(choice, void)
    masks = masks_with_void(void)
    logits = torch.randn(2, CLASSES, 6, 8)
    changed = logits.clone()
    changed[(masks == void).unsqueeze(1).expand_as(logits)] = torch.randn(int((masks == void).sum()) * CLASSES) * 10
    assert not torch.equal(changed, logits)
    assert model.pixel_loss(changed, masks) == pytest.approx(float(model.pixel_loss(logits, masks)), rel=1e-6)
    logits.requires_grad_(True)
    model.pixel_loss(logits, masks).backward()
    assert logits.grad[(masks == void).unsqueeze(1).expand_as(logits)].abs().max() == 0


def test_median_frequency_weights_of_a_known_table():
    # Present classes 0.5, 0.25, 0.1, 0.05: median (0.25 + 0.1) / 2 = 0.175; the absent class weighs 1.
    weights = median_frequency_weights([0.5, 0.25, 0.0, 0.1, 0.05])
    assert weights.tolist() == pytest.approx([0.35, 0.7, 1.0, 1.75, 3.5])
    assert median_frequency_weights([0.6, 0.3, 0.1]).tolist() == pytest.approx([0.5, 1.0, 3.0])


def test_frequencies_count_only_the_images_a_class_appears_in():
    void = 3
    first = np.array([[0, 0, 1, 1], [0, 0, 3, 3]], np.uint8)  # 8 pixels: class 0 x4, class 1 x2, Void x2
    second = np.array([[2, 2, 2, 0]], np.uint8)  # 4 pixels: class 2 x3, class 0 x1
    class_pixels, image_pixels = count_class_pixels([first, second], num_classes=4, void_index=void)
    assert class_pixels.tolist() == [5, 2, 3, 0] and image_pixels.tolist() == [12, 8, 4, 0]
    assert frequencies(class_pixels, image_pixels) == pytest.approx([5 / 12, 2 / 8, 3 / 4, 0.0])


def test_weighted_cross_entropy_weighs_each_pixel_by_its_class():
    model = module("weighted_cross_entropy")
    masks = masks_with_void(CLASSES)
    logits = torch.randn(2, CLASSES, 6, 8)
    weights = torch.tensor([0.35, 0.7, 1.75, 3.5])  # median (0.25 + 0.1) / 2 over FREQUENCIES
    assert model.class_weights.tolist() == pytest.approx(weights.tolist())
    valid = masks != CLASSES
    per_pixel = -F.log_softmax(logits, dim=1).gather(1, masks.clamp(max=CLASSES - 1).unsqueeze(1)).squeeze(1)
    pixel_weights = weights[masks.clamp(max=CLASSES - 1)] * valid
    expected = (per_pixel * pixel_weights).sum() / pixel_weights.sum()
    assert model.pixel_loss(logits, masks) == pytest.approx(float(expected), rel=1e-5)


def test_lovasz_equals_one_minus_iou_on_hard_predictions():
    truth = torch.tensor([[[0, 0, 1, 1, 2, 9]]])  # 9: Void
    predicted = torch.tensor([[[0, 1, 1, 1, 0, 2]]])
    logits = F.one_hot(predicted, 3).permute(0, 3, 1, 2).float() * 50
    # IoU over the five labelled pixels: class 0 1/3, class 1 2/3, class 2 0/1 (its one pixel missed).
    expected = ((1 - 1 / 3) + (1 - 2 / 3) + (1 - 0)) / 3
    assert lovasz_softmax(logits, truth, ignore_index=9) == pytest.approx(expected, abs=1e-6)


def test_focal_loss_is_cross_entropy_at_gamma_zero_and_fades_right_pixels_above():
    masks = masks_with_void(CLASSES)
    logits = torch.randn(2, CLASSES, 6, 8) * 2
    cross_entropy = F.cross_entropy(logits, masks, ignore_index=CLASSES)
    assert focal_loss(logits, masks, gamma=0.0, ignore_index=CLASSES) == pytest.approx(float(cross_entropy), rel=1e-5)
    # One pixel right with p = 0.9 and one wrong with p = 0.1 for its class: factors 0.1 ** 2 and 0.9 ** 2.
    two_pixels = torch.tensor([[0.9, 0.1], [0.9, 0.1]]).log().T.reshape(1, 2, 1, 2)  # (B, C, H, W)
    expected = (0.01 * -np.log(0.9) + 0.81 * -np.log(0.1)) / 2
    assert focal_loss(two_pixels, torch.tensor([[[0, 1]]]), gamma=2.0) == pytest.approx(expected, rel=1e-5)


def test_mixes_add_cross_entropy_and_plain_cross_entropy_is_unchanged():
    masks = masks_with_void(CLASSES)
    logits = torch.randn(2, CLASSES, 6, 8)
    cross_entropy = F.cross_entropy(logits, masks, ignore_index=CLASSES)
    assert torch.equal(module("cross_entropy").pixel_loss(logits, masks), cross_entropy)  # the default, as before
    mixed = module("lovasz+ce").pixel_loss(logits, masks)
    assert mixed == pytest.approx(float(lovasz_softmax(logits, masks, CLASSES) + 0.5 * cross_entropy), rel=1e-6)
    with pytest.raises(UserInputError, match="cross_entropy_weight"):
        SegmentationModule(MOBILENET, num_classes=CLASSES, ignore_index=CLASSES, cross_entropy_weight=0.5)
    with pytest.raises(UserInputError, match="3 values for 4 classes"):
        SegmentationModule(MOBILENET, num_classes=CLASSES, ignore_index=CLASSES, loss="weighted_cross_entropy",
                           class_frequencies=[0.5, 0.3, 0.2])


def test_weighted_fit_counts_frequencies_once_and_the_checkpoint_keeps_them(camvid_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    options = ["--config", str(CONFIGS / "camvid_unet.yaml"), "--data.data_dir", str(camvid_dir),
               "--model.encoder_weights", "none", *SMALL, "--trainer.max_epochs", "1",
               "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
               "--trainer.num_sanity_val_steps", "0", "--trainer.check_val_every_n_epoch", "1"]
    fit = cli_main(["fit", *options, "--model.loss", "weighted_cross_entropy", "--data.cache_dir", "cache"])
    tables = list((tmp_path / "cache").glob("*.json"))
    assert len(tables) == 1
    counted = json.loads(tables[0].read_text())["frequencies"]
    assert fit.model.hparams.class_frequencies == pytest.approx(counted) and len(counted) == 11
    assert fit.model.class_weights.tolist() == pytest.approx(median_frequency_weights(counted).tolist())

    checkpoint = tmp_path / "lightning_logs" / "camvid_unet" / "checkpoints" / "last.ckpt"
    loaded = SegmentationModule.load_from_checkpoint(checkpoint)  # needs neither the data nor the cache
    assert loaded.hparams.class_frequencies == pytest.approx(counted)
    assert torch.equal(loaded.class_weights, fit.model.class_weights.cpu())
    assert "class_weights" not in loaded.state_dict()  # old checkpoints, without it, still load strictly
