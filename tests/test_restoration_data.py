import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from common.errors import UserInputError
from datamodules.crappify import Degradation, crappify_folder, degrade
from datamodules.restoration import RestorationDataModule


def _digest(folder):
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_crappify_is_deterministic_and_never_touches_sources(photos, tmp_path):
    before = _digest(photos)
    first, second = tmp_path / "a", tmp_path / "b"
    assert crappify_folder(sorted(photos.iterdir()), first, seed=3, degradation=Degradation(), workers=2) == []
    assert crappify_folder(sorted(photos.iterdir())[::-1], second, seed=3, degradation=Degradation(), workers=1) == []
    assert _digest(first) == _digest(second)
    assert _digest(photos) == before
    with Image.open(first / "photo_00.jpg") as small:
        assert min(small.size) == 96 and small.mode == "RGB"


def test_crappify_depends_on_the_seed():
    photo = Image.fromarray(np.full((120, 160, 3), 90, np.uint8))
    qualities = {degrade(photo, "x.png", seed, Degradation())[1] for seed in range(20)}
    assert len(qualities) > 5 and all(10 <= q <= 70 for q in qualities)


def test_crappify_skips_done_files_and_reports_unreadable_ones(photos, tmp_path):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    cache = tmp_path / "cache"
    problems = crappify_folder(sorted(photos.iterdir()), cache, seed=0, degradation=Degradation(), workers=1)
    assert len(problems) == 1 and "broken.jpg" in problems[0]
    stamp = (cache / "photo_03.jpg").stat().st_mtime_ns
    crappify_folder(sorted(photos.iterdir()), cache, seed=0, degradation=Degradation(), workers=1)
    assert (cache / "photo_03.jpg").stat().st_mtime_ns == stamp
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_datamodule_pairs_split_and_unreadable_photo(photos, tmp_path):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    datamodule = RestorationDataModule(
        data_dir=str(photos), cache_dir=str(tmp_path / "cache"), image_size=64, batch_size=4, val_fraction=0.25,
        crappify_workers=1,
    )
    with pytest.warns(UserWarning, match="broken.jpg"):
        datamodule.prepare_data()
    datamodule.setup("fit")
    assert datamodule.skipped == [str(photos / "broken.jpg")]
    assert len(datamodule.train_set) == 9 and len(datamodule.val_set) == 3
    assert not set(datamodule.train_set.names) & set(datamodule.val_set.names)
    batch = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    assert batch["input"].shape == batch["target"].shape == (4, 3, 64, 64)
    # Input and target are cropped and flipped together: the damaged copy follows the original.
    inputs, targets = datamodule.denormalize(batch["input"]), datamodule.denormalize(batch["target"])
    correlation = torch.corrcoef(torch.stack([inputs.flatten(), targets.flatten()]))[0, 1]
    assert correlation > 0.8


def test_split_is_seeded(photos, tmp_path):
    def names(seed):
        datamodule = RestorationDataModule(
            data_dir=str(photos), cache_dir=str(tmp_path / "cache"), image_size=64, split_seed=seed, crappify_workers=1
        )
        datamodule.prepare_data()
        datamodule.setup("fit")
        return datamodule.val_set.names

    assert names(1) == names(1) != names(2)


def test_validate_loads_only_the_held_out_photos_with_the_same_split(photos, tmp_path):
    options = dict(data_dir=str(photos), cache_dir=str(tmp_path / "cache"), image_size=64, val_fraction=0.25,
                   crappify_workers=1)
    for_fit, for_validate = RestorationDataModule(**options), RestorationDataModule(**options)
    for datamodule, stage in ((for_fit, "fit"), (for_validate, "validate")):
        datamodule.prepare_data()
        datamodule.setup(stage)
    assert for_validate.train_set is None  # the training pairs are never decoded
    assert for_validate.val_set.names == for_fit.val_set.names
    for_validate.setup("fit")  # a later fit still gets its training pairs
    assert len(for_validate.train_set) == len(for_fit.train_set)


def test_empty_folder_and_bad_options(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="holds no images"):
        RestorationDataModule(data_dir=str(tmp_path / "empty"), cache_dir=str(tmp_path / "c")).prepare_data()
    with pytest.raises(UserInputError, match="val_fraction"):
        RestorationDataModule(val_fraction=1.5)
    with pytest.raises(UserInputError, match="quality_min"):
        RestorationDataModule(quality_min=80, quality_max=20)
    with pytest.raises(UserInputError, match="--data.upsample"):
        RestorationDataModule(upsample="lanczos")


def test_upsample_changes_only_the_damaged_input(photos, tmp_path):
    def validation_pairs(upsample):
        datamodule = RestorationDataModule(
            data_dir=str(photos), cache_dir=str(tmp_path / "cache"), image_size=64, crappify_workers=1,
            upsample=upsample,
        )
        datamodule.prepare_data()
        datamodule.setup("fit")
        return datamodule.val_set.pairs

    bilinear, bicubic = validation_pairs("bilinear"), validation_pairs("bicubic")
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(bilinear, bicubic, strict=True))  # same originals
    assert any(not np.array_equal(a[0], b[0]) for a, b in zip(bilinear, bicubic, strict=True))


def _turns(image: np.ndarray, rotate90: bool) -> list[np.ndarray]:
    """``image`` and its mirror image; with ``rotate90``, all eight orientations of the square."""
    mirrors = [image, image[:, ::-1]]
    if not rotate90:
        return mirrors
    return [np.rot90(mirror, k) for mirror in mirrors for k in range(4)]


def _placements(crop: np.ndarray, image: np.ndarray, rotate90: bool = False) -> set[tuple[int, int, int]]:
    """(orientation, y, x) of every exact window of ``image``'s orientations (``_turns``) equal to ``crop``."""
    found = set()
    for turn, candidate in enumerate(_turns(image, rotate90)):
        if any(size < crop_size for size, crop_size in zip(candidate.shape, crop.shape)):
            continue
        windows = np.lib.stride_tricks.sliding_window_view(candidate, crop.shape)  # (Y, X, 1, h, w, C)
        ys, xs = np.nonzero((windows == crop).all(axis=(-3, -2, -1))[:, :, 0])
        found.update((turn, int(y), int(x)) for y, x in zip(ys, xs))
    return found


def _is_window_of(crop: np.ndarray, image: np.ndarray, rotate90: bool = False) -> bool:
    return bool(_placements(crop, image, rotate90))


@pytest.mark.parametrize("zoom_rotate", [False, True])
def test_zoom_rotate_is_the_only_augmentation_that_resamples_the_target(zoom_rotate, photos, tmp_path):
    datamodule = RestorationDataModule(
        data_dir=str(photos), cache_dir=str(tmp_path / "cache"), image_size=48, crappify_workers=1,
        zoom_rotate=zoom_rotate,
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    dataset = datamodule.train_set
    exact = [_is_window_of(dataset[i]["target"].numpy(), dataset.pairs[i][1]) for i in range(len(dataset))]
    # Without zoom/rotation every target is a plain crop of the original, pixel for pixel; with it
    # (three pairs in four) most are resampled.
    assert all(exact) if not zoom_rotate else not all(exact)


def test_rotate90_turns_pairs_together_without_resampling(photos, tmp_path):
    datamodule = RestorationDataModule(
        data_dir=str(photos), cache_dir=str(tmp_path / "cache"), image_size=48, crappify_workers=1,
        zoom_rotate=False, rotate90=True,
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    dataset = datamodule.train_set
    samples = [dataset[i] for i in range(len(dataset)) for _ in range(4)]
    originals = [dataset.pairs[i][1] for i in range(len(dataset)) for _ in range(4)]
    # Every target is still a pixel-exact crop, of some orientation of the original ...
    assert all(_is_window_of(s["target"].numpy(), o, rotate90=True) for s, o in zip(samples, originals))
    # ... and input and target are cut and turned together.
    for index in range(3):
        sample, (damaged, original) = dataset[index], dataset.pairs[index]
        target_at = _placements(sample["target"].numpy(), original, rotate90=True)
        assert target_at & _placements(sample["input"].numpy(), damaged, rotate90=True)
    # Some targets are turned beyond a horizontal flip (each does so with probability 3/4).
    assert not all(_is_window_of(s["target"].numpy(), o) for s, o in zip(samples, originals))


def test_crop_size_shrinks_training_crops_only(photos, tmp_path):
    datamodule = RestorationDataModule(
        data_dir=str(photos), cache_dir=str(tmp_path / "cache"), image_size=64, crop_size=32, batch_size=4,
        eval_batch_size=4, crappify_workers=1, zoom_rotate=False,
    )
    datamodule.prepare_data()
    datamodule.setup("fit")
    train = datamodule.on_after_batch_transfer(next(iter(datamodule.train_dataloader())), 0)
    val = datamodule.on_after_batch_transfer(next(iter(datamodule.val_dataloader())), 0)
    assert train["input"].shape == train["target"].shape == (4, 3, 32, 32)
    assert val["input"].shape[1:] == val["target"].shape[1:] == (3, 64, 64)
    # A crop of the working-size pair, so the damage is still that of the 64 px upsampling.
    sample = datamodule.train_set[0]
    assert _is_window_of(sample["target"].numpy(), datamodule.train_set.pairs[0][1])
    # Without augmentation the training crop is the centre one, still of crop_size.
    datamodule.hparams.augment = False
    datamodule.train_set = datamodule.val_set = None
    datamodule.setup("fit")
    target, original = datamodule.train_set[0]["target"].numpy(), datamodule.train_set.pairs[0][1]
    top, left = (original.shape[0] - 32) // 2, (original.shape[1] - 32) // 2
    assert np.array_equal(target, original[top : top + 32, left : left + 32])
    with pytest.raises(UserInputError, match="--data.crop_size"):
        RestorationDataModule(image_size=64, crop_size=96)
