"""CamVidDataModule on tiny synthetic frames and masks, in both layouts, and its errors."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from common.errors import UserInputError
from common.palettes import segmentation_palette
from datamodules import camvid
from datamodules.camvid import CamVidDataModule

HEIGHT, WIDTH = 48, 64

pytestmark = pytest.mark.usefixtures("one_thread")



def synthetic_scene(rng: np.random.Generator, classes: int, void: int) -> tuple[np.ndarray, np.ndarray]:
    """A frame of horizontal bands, one class each (plus a Void band), the colour telling the class."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    bands = rng.permutation(classes)[:4]
    for row, label in enumerate(np.array_split(np.arange(HEIGHT), 4)):
        mask[label] = bands[row]
    mask[:, rng.integers(0, WIDTH - 6) :][:, :3] = void  # a thin Void pole
    colours = segmentation_palette(classes)[np.minimum(mask, classes)]
    frame = np.clip(colours + rng.normal(0, 12, colours.shape), 0, 255).astype(np.uint8)
    return frame, mask


def write_segnet_camvid(root: Path, train: int = 6, val: int = 3, seed: int = 0) -> Path:
    """SegNet's layout: train/ trainannot/ val/ valannot/, .webp frames and .png masks (Void = 11)."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", train), ("val", val)):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for index in range(count):
            frame, mask = synthetic_scene(rng, 11, 11)
            Image.fromarray(frame).save(root / split / f"{split}_{index:03d}.webp", lossless=True)
            Image.fromarray(mask).save(root / f"{split}annot" / f"{split}_{index:03d}.png")
    return root


def write_fastai_camvid(root: Path, count: int = 6, seed: int = 1) -> Path:
    """fast.ai's layout: images/, labels/<stem>_P.png, codes.txt (5 classes, Void third), valid.txt."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "codes.txt").write_text("Animal\nCar\nVoid\nRoad\nSky\n")
    for index in range(count):
        frame, mask = synthetic_scene(rng, 5, 2)
        Image.fromarray(frame).save(root / "images" / f"f{index}.png")
        Image.fromarray(mask).save(root / "labels" / f"f{index}_P.png")
    (root / "valid.txt").write_text("f4.png\nf5.png\n")
    return root


@pytest.fixture
def segnet_dir(tmp_path) -> Path:
    return write_segnet_camvid(tmp_path / "camvid")


def test_segnet_layout_batches(segnet_dir):
    data = CamVidDataModule(str(segnet_dir), batch_size=4, eval_batch_size=2, crop_size=(32, 40),
                            scale_range=(0.7, 1.2))
    assert (data.num_classes, data.ignore_index, data.in_channels) == (11, 11, 3)
    assert data.class_names[2] == "Pole" and len(data.palette) == 12
    data.setup("fit")
    batch = data.on_after_batch_transfer(next(iter(data.train_dataloader())), 0)
    assert batch["image"].shape == (4, 3, 32, 40) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (4, 32, 40) and batch["mask"].dtype == torch.int64
    assert set(batch["mask"].unique().tolist()) <= set(range(12))  # padding and rotation fill with Void
    val = data.on_after_batch_transfer(next(iter(data.val_dataloader())), 0)
    assert val["image"].shape == (2, 3, HEIGHT, WIDTH)  # validation: whole, unaugmented frames
    frame = np.asarray(Image.open(sorted((segnet_dir / "val").iterdir())[0]))
    restored = (data.denormalize(val["image"][:1])[0].permute(1, 2, 0) * 255).round().byte().numpy()
    assert np.abs(restored.astype(int) - frame).max() <= 1


def test_image_size_resizes_frames_and_masks(segnet_dir):
    data = CamVidDataModule(str(segnet_dir), batch_size=2, image_size=(24, 32), rotate_degrees=0)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    assert batch["image"].shape == (2, 3, 24, 32) and batch["mask"].shape == (2, 24, 32)


def test_fastai_layout(tmp_path):
    data = CamVidDataModule(str(write_fastai_camvid(tmp_path / "camvid")), batch_size=2)
    assert data.layout == "fastai" and data.num_classes == 5 and data.ignore_index == 2
    assert data.class_names == ["Animal", "Car", "Void", "Road", "Sky"]
    assert tuple(data.palette[2]) == (0, 0, 0)
    data.setup("fit")
    assert len(data.splits["fit"]) == 4 and len(data.splits["validate"]) == 2


@pytest.mark.parametrize("problem", ["size", "label", "missing_mask", "unreadable", "no_folder"])
def test_bad_data_is_named(segnet_dir, problem):
    frame = segnet_dir / "train" / "train_002.webp"
    mask = segnet_dir / "trainannot" / "train_002.png"
    named = {"size": mask, "label": mask, "missing_mask": mask, "unreadable": frame, "no_folder": segnet_dir}[problem]
    if problem == "size":
        Image.fromarray(np.zeros((HEIGHT + 2, WIDTH), np.uint8)).save(mask)
    elif problem == "label":
        Image.fromarray(np.full((HEIGHT, WIDTH), 200, np.uint8)).save(mask)
    elif problem == "missing_mask":
        mask.unlink()
    elif problem == "unreadable":
        frame.write_bytes(b"not a webp")
    else:
        for path in sorted((segnet_dir / "val").iterdir()):
            path.unlink()
        (segnet_dir / "val").rmdir()
    data = CamVidDataModule(str(segnet_dir))
    with pytest.raises(UserInputError, match=str(named.name)):
        data.setup("fit")


def test_predict_loader_keeps_paths_and_sizes(segnet_dir):
    data = CamVidDataModule(str(segnet_dir), predict_dir=str(segnet_dir / "val"), image_size=(24, 32))
    batch = next(iter(data.predict_dataloader()))
    assert batch["image"].shape == (1, 3, 24, 32)
    assert batch["size"].tolist() == [[HEIGHT, WIDTH]] and batch["path"][0].endswith("val_000.webp")
    with pytest.raises(UserInputError, match="predict_dir"):
        CamVidDataModule(str(segnet_dir)).predict_dataloader()


def test_class_frequencies_are_counted_once_then_read_from_the_cache(segnet_dir, tmp_path, monkeypatch):
    data = CamVidDataModule(str(segnet_dir), cache_dir=str(tmp_path / "cache"))
    masks = [np.asarray(Image.open(path)) for path in sorted((segnet_dir / "trainannot").iterdir())]
    pixels = [sum(int((mask == c).sum()) for mask in masks) for c in range(11)]
    frame_pixels = [sum(mask.size for mask in masks if (mask == c).any()) for c in range(11)]
    expected = [p / f if f else 0.0 for p, f in zip(pixels, frame_pixels)]
    assert data.class_frequencies() == pytest.approx(expected)
    assert sum(value > 0 for value in expected) >= 4  # the synthetic bands show several classes

    def no_decoding(path):
        raise AssertionError(f"{path} decoded again")

    monkeypatch.setattr(camvid, "_read_mask", no_decoding)
    assert CamVidDataModule(str(segnet_dir), cache_dir=str(tmp_path / "cache")).class_frequencies() == expected
    monkeypatch.undo()

    changed = segnet_dir / "trainannot" / "train_000.png"
    Image.fromarray(np.full((HEIGHT, WIDTH), 2, np.uint8)).save(changed)  # all Pole: the table is stale
    assert data.class_frequencies()[2] > expected[2]

    (table,) = (tmp_path / "cache").glob("*.json")
    table.write_text("{not json")
    with pytest.raises(UserInputError, match=table.name):
        data.class_frequencies()
