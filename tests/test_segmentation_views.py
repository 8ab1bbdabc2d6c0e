"""What a user looks at: the confusion matrix, evenly spread and worst frames, and test-time augmentation."""

import io

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli import cli_main
from common.confusion_image import HIGH, confusion_image, normalise_rows
from common.lowest_scores import LowestScores
from common.test_time_augmentation import averaged_probabilities
from common.titled_grid import TITLE_HEIGHT
from modules.nets.unet import UNetSpec
from modules.segmentation import SegmentationModule, evenly_spaced
from tests.conftest import CONFIGS
from tests.test_camvid_data import HEIGHT, WIDTH

MOBILENET = UNetSpec("mobilenet_v2", encoder_cut=-1)
TINY = ["--data.image_size", "null", "--data.crop_size", "[32, 48]", "--data.batch_size", "2",
        "--data.eval_batch_size", "2", "--model.encoder_weights", "none", "--trainer.enable_model_summary", "false"]


pytestmark = pytest.mark.usefixtures("one_thread")


class Pointwise(torch.nn.Module):
    """A 1x1 convolution: each pixel's logits depend on that pixel alone, so mirroring commutes with it."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv(images)


class LeftHeavy(Pointwise):
    """Pointwise plus a left-to-right ramp on class 0: mirroring the input changes its prediction."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = super().forward(images)
        ramp = torch.linspace(2, -2, images.shape[-1])
        return logits + torch.nn.functional.pad(ramp.expand(1, 1, *images.shape[-2:]), (0, 0, 0, 0, 0, 2))


def test_rows_are_normalised_per_true_class():
    counts = torch.tensor([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    expected = torch.tensor([[0.75, 0.25, 0.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.5]], dtype=torch.float64)
    assert torch.allclose(normalise_rows(counts), expected)  # a class absent from the truth keeps zeros


def test_confusion_image_shades_cells_by_share():
    def full_cells(shares):  # pixels in the colour of share 1 (the text in them is white)
        image = (confusion_image(shares, ["Road", "Pole"]) * 255).round().byte().permute(1, 2, 0).numpy()
        return int((image == HIGH).all(axis=-1).sum()), image.shape

    diagonal, shape = full_cells(torch.eye(2))
    assert shape[2] == 3 and diagonal > 2 * 0.5 * 30 * 30  # two whole cells, less their labels
    assert full_cells(torch.zeros(2, 2))[0] == 0
    assert full_cells(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))[0] == pytest.approx(diagonal / 2, rel=0.05)
    longer_names = confusion_image(torch.eye(2), ["Road", "Pedestrian crossing"])
    assert longer_names.shape[2] > shape[1]  # the names fit beside and above the cells
    with pytest.raises(ValueError):
        confusion_image(torch.eye(3), ["Road", "Pole"])


def test_evenly_spaced_frames_and_the_lowest_scores():
    assert evenly_spaced(4, 101) == [0, 33, 67, 100]
    assert evenly_spaced(4, 3) == [0, 1, 2] and evenly_spaced(0, 10) == [] and evenly_spaced(1, 9) == [4]
    lowest = LowestScores(2)
    for score, item in [(0.9, "a"), (0.2, "b"), (0.5, "c"), (0.2, "d"), (0.1, "e")]:
        lowest.offer(score, item)
    assert list(lowest) == [(0.1, "e"), (0.2, "b")] and not lowest.admits(0.3) and lowest.admits(0.15)


def test_frame_iou_is_the_mean_over_the_classes_each_frame_shows():
    model = SegmentationModule(MOBILENET, num_classes=3, ignore_index=3)
    masks = torch.tensor([[[0, 0, 1, 1]], [[2, 2, 3, 3]], [[3, 3, 3, 3]]])
    predictions = torch.tensor([[[0, 1, 1, 1]], [[2, 2, 0, 1]], [[0, 1, 2, 0]]])
    ious = model._frame_ious(predictions, masks)
    assert ious[:2] == pytest.approx([(1 / 2 + 2 / 3) / 2, 1.0])  # Void pixels count for nothing
    assert np.isnan(ious[2])  # an all-Void frame has no IoU to rank


def test_tta_flip_of_a_flip_symmetric_model_predicts_the_same():
    model = SegmentationModule(MOBILENET, num_classes=3, ignore_index=3, tta={"flip": True, "scales": [1.0]})
    model.net = Pointwise()
    images = torch.randn(2, 3, 25, 37)  # sizes not divisible by two, as CamVid's 360 is not by 32
    with torch.no_grad():
        plain = model(images).softmax(dim=1)
        assert torch.allclose(averaged_probabilities(model, images, True, [1.0]), plain, atol=1e-6)
        assert torch.equal(model.predicted_classes(images), plain.argmax(dim=1))
        rescaled = averaged_probabilities(model, torch.ones(1, 3, 25, 37), True, [0.5, 1.0, 1.5])
        assert rescaled.shape == (1, 3, 25, 37)
        assert torch.allclose(rescaled, model(torch.ones(1, 3, 25, 37)).softmax(dim=1), atol=1e-5)


def test_tta_averages_the_probabilities_of_the_views():
    model = SegmentationModule(MOBILENET, num_classes=3, ignore_index=3, tta={"flip": True, "scales": [1.0]})
    model.net = LeftHeavy()
    images = torch.randn(2, 3, 8, 10)
    with torch.no_grad():
        plain = model(images).softmax(dim=1)
        mirrored = model(images.flip(-1)).flip(-1).softmax(dim=1)
        averaged = averaged_probabilities(model, images, True, [1.0])
        assert not torch.allclose(plain, mirrored, atol=1e-3)  # the views differ, so the mean is a real test
        assert torch.allclose(averaged, (plain + mirrored) / 2, atol=1e-6)
        assert torch.equal(model.predicted_classes(images), averaged.argmax(dim=1))
        assert torch.equal(model.predict_step({"image": images, "path": ["a", "b"], "size": None}, 0)["mask"],
                           averaged.argmax(dim=1).to(torch.uint8))
    model.tta.flip = False
    assert torch.equal(model.predicted_classes(images), plain.argmax(dim=1))  # off: the plain prediction


def _event_image(events: EventAccumulator, tag: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(events.Images(tag)[-1].encoded_image_string)).convert("RGB"))


def test_validation_shows_confusion_matrix_spread_and_worst_frames(camvid_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ["--config", str(CONFIGS / "camvid_unet.yaml"), "--data.data_dir", str(camvid_dir), *TINY]
    fit = cli_main(["fit", *config, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
                    "--trainer.num_sanity_val_steps", "0", "--trainer.check_val_every_n_epoch", "1",
                    "--model.grid_size", "2", "--model.worst_frames", "2"])
    assert not (tmp_path / "data" / "cache").exists()  # plain cross-entropy never counts class frequencies
    events = EventAccumulator(str(tmp_path / "lightning_logs" / "camvid_unet" / "version_0"),
                              size_guidance={"images": 0}).Reload()
    assert {"val/confusion_matrix", "val/image_truth_prediction", "val/worst_frames"} <= set(events.Tags()["images"])

    # The grid's two rows are the first and the last of the three validation frames, not the first batch.
    grid = _event_image(events, "val/image_truth_prediction")
    frames = fit.datamodule.splits["validate"].images
    assert grid.shape[0] == TITLE_HEIGHT + 2 + 2 * (HEIGHT + 2)
    for row, frame in enumerate([frames[0], frames[2]]):
        top = TITLE_HEIGHT + 2 + row * (HEIGHT + 2)
        assert np.abs(grid[top : top + HEIGHT, 2 : 2 + WIDTH].astype(int) - frame).max() <= 1
    worst = _event_image(events, "val/worst_frames")
    assert worst.shape[0] == grid.shape[0]  # two frames, image | truth | prediction

    checkpoint = tmp_path / "lightning_logs" / "camvid_unet" / "checkpoints" / "last.ckpt"
    cli_main(["validate", "--config", str(CONFIGS / "camvid_unet.yaml"), "--ckpt_path", str(checkpoint)])
    folder = tmp_path / "lightning_logs" / "camvid_unet" / "version_1"
    for name in ("confusion_matrix.png", "worst_frames.png"):
        with Image.open(folder / name) as picture:
            assert picture.mode == "RGB" and min(picture.size) > 3 * 30
    events = EventAccumulator(str(folder), size_guidance={"images": 0}).Reload()
    assert {"val/confusion_matrix", "val/worst_frames"} <= set(events.Tags()["images"])
