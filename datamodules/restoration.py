"""Pairs of (damaged, original) photos for image restoration and super-resolution."""

import random
import warnings
from pathlib import Path
from typing import Literal

import albumentations as A
import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from common.errors import UserInputError
from common.imagenet import denormalize, normalize_uint8
from common.sizes import ImageSize, cover_size, height_width
from datamodules.augment import augmentation_seed
from datamodules.crappify import Degradation, crappify_folder
from datamodules.image_files import holds_images, list_images, load_image
from datamodules.pets import download_pet_photos

_RESAMPLE = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
_PHOTOS_HINT = "With network access, --data.download true fetches the lesson's Oxford-IIIT Pet photos there."


def resize_to_cover(image: np.ndarray, size: ImageSize, resample) -> np.ndarray:
    """Resizes an (H, W, C) image, keeping its shape, just enough to cover ``size``: for a square
    of side S its short side becomes S."""
    height, width = cover_size(*image.shape[:2], size)
    return np.asarray(Image.fromarray(image).resize((width, height), resample))


def split_by_seed(files: list[Path], val_fraction: float, seed: int) -> tuple[list[Path], list[Path]]:
    """(train, validation): a seeded shuffle of the files sorted by name, the first share held out.

    Depends only on the names, so every datamodule that splits the same photos with the same seed
    holds out the same ones (the critic is validated on photos the generator never trained on).
    """
    order = sorted(files, key=lambda p: p.name)
    random.Random(seed).shuffle(order)
    val_count = max(1, round(len(order) * val_fraction))
    return order[val_count:], order[:val_count]


class PairDataset(Dataset):
    """In-memory (input, target) uint8 pairs of equal size, transformed together."""

    def __init__(self, pairs: list[tuple[np.ndarray, np.ndarray]], names: list[str], transform: A.Compose):
        self.pairs = pairs
        self.names = names
        self.transform = transform

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        damaged, original = self.pairs[index]
        out = self.transform(image=damaged, target=original)
        return {"input": torch.from_numpy(np.array(out["image"])), "target": torch.from_numpy(np.array(out["target"]))}


class RestorationDataModule(pl.LightningDataModule):
    """Photos and their damaged copies: the lesson's crappified pets, or super-resolution inputs.

    ``prepare_data`` damages every photo once into ``cache_dir`` (see ``datamodules.crappify``);
    ``setup`` loads the pairs into memory at the working size: the original resized to cover
    ``image_size`` (for a square, its short side becomes the side), the damaged copy upsampled
    (bilinear by default) to exactly the same size. ``predict`` upsamples its images the same way.
    Training crops, flips and (optionally) slightly rotates/zooms input and target together.

    An unreadable photo is reported by name in a warning and left out; the rest go on. A folder
    with no readable photo is an error.

    Args:
        data_dir: folder of good photos (never modified).
        download: when ``data_dir`` holds no photos, fetch the lesson's Oxford-IIIT Pet photos
            into it (7,390 photos, 790 MB, checked by MD5; see ``datamodules.pets``).
        cache_dir: where damaged copies are written; a sub-folder per degradation setting.
        image_size: the working size, a square's side or (height, width): photos are resized to
            cover it and validated on centre crops of it (the lesson: 128, then 256).
        crop_size: size of the random training crops (``image_size`` when None). Crops smaller
            than the working size keep its degradation (the same upsampling factor) and make
            each update cheaper, so an epoch-limited budget buys more updates.
        batch_size: training batch size.
        eval_batch_size: validation/predict batch size.
        val_fraction: share of photos held out for validation, chosen by ``split_seed``.
        split_seed: seed of the train/validation split and of the damage drawn per photo.
        short_side: damaged image's short side (96 in the lesson).
        quality_min: lowest JPEG quality of the damage.
        quality_max: highest JPEG quality of the damage (equal to ``quality_min`` for a fixed one).
        draw_quality: write the JPEG quality on the image (crappify); off for super-resolution.
        augment: random crop and flip for training (a centre crop of ``crop_size`` otherwise).
        zoom_rotate: with ``augment``, also zoom (1-1.25x) and rotate (up to 10 degrees) three
            pairs in four. Resampling blurs the target as well, so the model learns to aim at
            softer images than the originals: the super-resolution configs turn it off.
        rotate90: with ``augment``, also flip vertically and turn by a multiple of 90 degrees, so
            a pair appears in any of the square's eight orientations (as super-resolution models
            are usually trained). These move pixels without resampling: the target stays sharp.
        crappify_workers: processes that build the cache.
        num_workers: DataLoader workers.
        predict_dir: folder of damaged images to restore with ``predict``.
        upsample: how the damaged copy is brought back to the working size (``bicubic`` gives
            the classic baseline that a restoration model must beat); ``predict`` upsamples its
            images the same way, so the model sees what it was trained on.
    """

    in_channels = 3

    def __init__(
        self,
        data_dir: str = "data/photos",
        download: bool = False,
        cache_dir: str = "data/cache",
        image_size: ImageSize = 128,
        crop_size: ImageSize | None = None,
        batch_size: int = 16,
        eval_batch_size: int = 32,
        val_fraction: float = 0.1,
        split_seed: int = 42,
        short_side: int = 96,
        quality_min: int = 10,
        quality_max: int = 70,
        draw_quality: bool = True,
        augment: bool = True,
        zoom_rotate: bool = True,
        rotate90: bool = False,
        crappify_workers: int = 2,
        num_workers: int = 0,
        predict_dir: str | None = None,
        upsample: Literal["bilinear", "bicubic"] = "bilinear",
    ):
        super().__init__()
        self.save_hyperparameters()
        if not 0 < val_fraction < 1:
            raise UserInputError(f"--data.val_fraction must be between 0 and 1, not {val_fraction}.")
        if crop_size is not None and not all(
            0 < crop <= side for crop, side in zip(height_width(crop_size), height_width(image_size))
        ):
            raise UserInputError(
                f"--data.crop_size must be between 1 and --data.image_size ({image_size}), not {crop_size}."
            )
        if upsample not in _RESAMPLE:
            raise UserInputError(f"--data.upsample must be one of {sorted(_RESAMPLE)}, not {upsample!r}.")
        if not 1 <= quality_min <= quality_max <= 95:
            raise UserInputError(
                f"--data.quality_min/--data.quality_max must satisfy 1 <= min <= max <= 95, "
                f"not {quality_min}/{quality_max}."
            )
        self.degradation = Degradation(short_side, quality_min, quality_max, draw_quality)
        self.train_set: PairDataset | None = None
        self.val_set: PairDataset | None = None
        self.skipped: list[str] = []

    @property
    def damaged_dir(self) -> Path:
        return Path(self.hparams.cache_dir) / f"{self.degradation.tag()}-seed{self.hparams.split_seed}"

    def prepare_data(self) -> None:
        if self.trainer is not None and self.trainer.state.fn == "predict":
            return  # predicting reads only --data.predict_dir
        if self.hparams.download and not holds_images(Path(self.hparams.data_dir)):
            download_pet_photos(Path(self.hparams.data_dir))
        photos = list_images(self.hparams.data_dir, "--data.data_dir", hint=_PHOTOS_HINT)
        problems = crappify_folder(
            photos, self.damaged_dir, self.hparams.split_seed, self.degradation, self.hparams.crappify_workers
        )
        if problems:
            warnings.warn(
                f"{len(problems)} photo(s) could not be read and are left out: " + "; ".join(problems),
                stacklevel=2,
            )

    def setup(self, stage: str) -> None:
        needs_train = stage == "fit"  # validate/test read the held-out photos only
        if stage == "predict" or (self.val_set is not None and (self.train_set is not None or not needs_train)):
            return
        photos = list_images(self.hparams.data_dir, "--data.data_dir", hint=_PHOTOS_HINT)
        usable = [p for p in photos if (self.damaged_dir / f"{p.stem}.jpg").exists()]
        self.skipped = [str(p) for p in photos if p not in usable]
        if not usable:
            raise UserInputError(
                f"None of the {len(photos)} images in {self.hparams.data_dir} could be read "
                f"(nothing in {self.damaged_dir})."
            )
        train_files, val_files = split_by_seed(usable, self.hparams.val_fraction, self.hparams.split_seed)
        size = height_width(self.hparams.image_size)
        crop = height_width(self.hparams.crop_size or self.hparams.image_size)
        zoom_rotate = [A.Affine(scale=(1.0, 1.25), rotate=(-10, 10), p=0.75)] if self.hparams.zoom_rotate else []
        rotate90 = [A.VerticalFlip(), A.RandomRotate90()] if self.hparams.rotate90 else []
        train_transform = A.Compose(
            [*zoom_rotate, A.RandomCrop(*crop), A.HorizontalFlip(), *rotate90]
            if self.hparams.augment else [A.CenterCrop(*crop)],
            additional_targets={"target": "image"}, seed=augmentation_seed(self.trainer),
        )
        val_transform = A.Compose([A.CenterCrop(*size)], additional_targets={"target": "image"})
        if needs_train:
            self.train_set = PairDataset(self._load_pairs(train_files), [p.name for p in train_files], train_transform)
        self.val_set = PairDataset(self._load_pairs(val_files), [p.name for p in val_files], val_transform)

    def _load_pairs(self, files: list[Path]) -> list[tuple[np.ndarray, np.ndarray]]:
        pairs = []
        for path in files:
            original = resize_to_cover(load_image(path, "RGB"), self.hparams.image_size, Image.BICUBIC)
            damaged = load_image(self.damaged_dir / f"{path.stem}.jpg", "RGB")
            height, width = original.shape[:2]
            damaged = np.asarray(Image.fromarray(damaged).resize((width, height), _RESAMPLE[self.hparams.upsample]))
            pairs.append((damaged, original))
        return pairs

    def _loader(self, dataset: Dataset, batch_size: int, shuffle: bool) -> DataLoader:
        return DataLoader(
            dataset, batch_size=batch_size, shuffle=shuffle, num_workers=self.hparams.num_workers,
            persistent_workers=self.hparams.num_workers > 0, drop_last=shuffle and len(dataset) > batch_size,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.hparams.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        if self.hparams.predict_dir is None:
            raise UserInputError("predict needs --data.predict_dir: a folder of images to restore.")
        return self.predict_loader(list_images(self.hparams.predict_dir, "--data.predict_dir"))

    def predict_loader(self, files: list) -> DataLoader:
        """Damaged images to restore, upsampled as training upsampled its inputs; also what the
        one-call predictor reads."""
        dataset = _PredictImages([Path(file) for file in files], self.hparams.image_size,
                                 _RESAMPLE[self.hparams.upsample])
        return DataLoader(dataset, batch_size=1)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        for key in ("input", "target"):
            if key in batch:
                batch[key] = normalize_uint8(batch[key])  # (B, H, W, 3) uint8 -> (B, 3, H, W)
        return batch

    @staticmethod
    def denormalize(images: torch.Tensor) -> torch.Tensor:
        return denormalize(images)


class _PredictImages(Dataset):
    """Images to restore, each resized (by ``resample``) to cover the model's working size."""

    def __init__(self, files: list[Path], image_size: ImageSize, resample):
        self.files = files
        self.image_size = image_size
        self.resample = resample

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        path = self.files[index]
        image = resize_to_cover(load_image(path, "RGB"), self.image_size, self.resample)
        return {"input": torch.from_numpy(image.copy()), "path": str(path)}
