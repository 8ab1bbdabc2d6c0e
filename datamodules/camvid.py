"""CamVid road scenes for segmentation: SegNet's 11-class layout or fast.ai's 32-class layout.

Frames and masks are decoded once, in ``setup``, and kept in memory as uint8 arrays (the 367
training frames at 360x480 are about 190 MB): decoding a .webp costs more than the augmentation
and would otherwise be repeated every epoch. Augmentation (albumentations, image and mask
together) runs per item in the loader; conversion to float and ImageNet normalisation run per
batch after it reaches the device.
"""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import albumentations as A
import cv2
import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from common.class_frequencies import cached_frequencies, count_class_pixels, files_fingerprint
from common.errors import UserInputError
from common.imagenet import denormalize, normalize_uint8
from common.palettes import segmentation_palette
from common.sizes import ImageSize, height_width
from datamodules.augment import augmentation_seed
from datamodules.camvid_download import CAMVID_CODES, download_camvid, holds_camvid, read_codes
from datamodules.image_files import list_images, load_image

SEGNET_CLASSES = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)


def _read_mask(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as mask:
            array = np.asarray(mask)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise UserInputError(f"Cannot read mask {path}: {error}.") from error
    if array.ndim != 2:
        raise UserInputError(
            f"Mask {path} has {array.shape[2]} channels (mode {mask.mode}); masks must hold one class index per "
            "pixel (a single-channel or palette PNG)."
        )
    return array


def _check_labels(mask: np.ndarray, path: Path, num_classes: int, void_index: int) -> None:
    """Stops on a label that is neither a class nor Void: it would index past the model's outputs."""
    bad = (mask >= num_classes) & (mask != void_index)
    if bad.any():
        raise UserInputError(
            f"Mask {path} holds label {int(mask[bad].max())}, outside the {num_classes} classes "
            f"0..{num_classes - 1} (Void = {void_index})."
        )


def _read_checked_mask(path: Path, num_classes: int, void_index: int) -> np.ndarray:
    """A training mask on its own (for counting classes), checked as ``_load_pair`` checks it."""
    if not path.is_file():
        raise UserInputError(f"No mask {path} for a training image.")
    mask = _read_mask(path)
    _check_labels(mask, path, num_classes, void_index)
    return mask


def _load_pair(image_path: Path, mask_path: Path, size: tuple[int, int] | None, num_classes: int,
               void_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Decodes and checks one frame and its mask; resizes both to ``size`` (H, W) if given."""
    if not mask_path.is_file():
        raise UserInputError(f"No mask for image {image_path}: expected {mask_path}.")
    image = load_image(image_path, "RGB")
    mask = _read_mask(mask_path)
    if image.shape[:2] != mask.shape:
        raise UserInputError(
            f"Mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image {image_path} is "
            f"{image.shape[1]}x{image.shape[0]} (width x height); they must match."
        )
    _check_labels(mask, mask_path, num_classes, void_index)
    if size is not None and image.shape[:2] != tuple(size):
        height, width = size
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return np.array(image, order="C"), np.array(mask, dtype=np.uint8, order="C")  # writable copies


class SegmentationDataset(Dataset):
    """In-memory frames and masks, each item passed through an albumentations pipeline.

    Items are ``{"image": (3, H, W) uint8, "mask": (H, W) int64}``.
    """

    def __init__(self, images: list[np.ndarray], masks: list[np.ndarray], transform: A.Compose | None = None):
        self.images, self.masks, self.transform = images, masks, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> dict:
        image, mask = self.images[index], self.masks[index]
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1),  # (3, H, W) uint8
            "mask": torch.from_numpy(np.ascontiguousarray(mask)).long(),  # (H, W)
        }


class PredictDataset(Dataset):
    """Images of a folder for ``predict``, resized to ``size`` (H, W) if given; keeps path and size."""

    def __init__(self, files: list[Path], size: tuple[int, int] | None):
        self.files, self.size = files, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        image = load_image(self.files[index], "RGB")
        original = image.shape[:2]
        if self.size is not None:
            image = cv2.resize(image, (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA)
        return {
            "image": torch.from_numpy(np.array(image)).permute(2, 0, 1),
            "path": str(self.files[index]),
            "size": torch.tensor(original),
        }


class CamVidDataModule(pl.LightningDataModule):
    """CamVid frames and per-pixel class masks, Void excluded from loss and metrics.

    Two layouts are recognised in ``data_dir``:

    - SegNet's 11 classes: ``train/``, ``trainannot/``, ``val/``, ``valannot/`` (optional
      ``test/``, ``testannot/``), masks with the image's stem and ``.png``, value 11 = Void.
    - fast.ai's 32 classes: ``images/``, ``labels/`` (``<stem>_P.png``), ``codes.txt`` (one class
      name per line; the one named ``Void`` is ignored) and ``valid.txt`` (validation file names).

    Args:
        data_dir: the CamVid folder.
        download: when ``data_dir`` holds no CamVid, fetch fast.ai's (the lesson's 32 classes,
            600 MB, checked by MD5; see ``datamodules.camvid_download``) into it.
        batch_size: training batch size.
        eval_batch_size: validation/test batch size.
        image_size: size every frame and mask is resized to when loaded, (height, width) or a
            square's side; None keeps the files' size (360x480 for CamVid; (180, 240) is the
            lesson's half size).
        crop_size: size of the random training crop taken after scaling, (height, width) or a
            square's side; None trains on whole frames. Crops give full-resolution detail (thin
            poles and signs) at a fraction of a full frame's cost; validation always sees whole frames.
        scale_range: random scale of training frames before cropping (1.0 keeps the size).
        rotate_degrees: random rotation of training frames, up to this many degrees either way.
        flip: random horizontal flips.
        brightness_contrast: random brightness and contrast change (image only), up to this much.
        predict_dir: folder of images for ``predict``.
        num_workers: DataLoader worker processes for training (augmentation runs in them).
        cache_dir: where the table of class frequencies (see ``class_frequencies``) is kept, one
            file per data folder; read only when a class-weighted loss asks for it.
    """

    in_channels = 3

    def __init__(
        self,
        data_dir: str = "data/camvid",
        download: bool = False,
        batch_size: int = 8,
        eval_batch_size: int = 4,
        image_size: ImageSize | None = None,
        crop_size: ImageSize | None = None,
        scale_range: tuple[float, float] = (1.0, 1.0),
        rotate_degrees: float = 10.0,
        flip: bool = True,
        brightness_contrast: float = 0.2,
        predict_dir: str | None = None,
        num_workers: int = 0,
        cache_dir: str = "data/cache",
    ):
        super().__init__()
        self.save_hyperparameters()
        root = Path(data_dir)
        self.will_download = download and not holds_camvid(root)
        self.layout = "fastai" if (root / "codes.txt").is_file() or self.will_download else "segnet"
        if self.layout == "fastai":
            self.class_names = list(CAMVID_CODES if self.will_download else read_codes(root))
            self.ignore_index = self.class_names.index("Void") if "Void" in self.class_names else -100
        else:
            self.class_names = list(SEGNET_CLASSES)
            self.ignore_index = len(SEGNET_CLASSES)  # 11: Void
        self.num_classes = len(self.class_names)
        self.palette = segmentation_palette(self.num_classes, self.ignore_index)
        self.splits: dict[str, SegmentationDataset] = {}

    def prepare_data(self) -> None:
        root = Path(self.hparams.data_dir)
        if self.will_download and not holds_camvid(root):
            download_camvid(root)

    def class_frequencies(self) -> list[float]:
        """Per class, its pixels over the pixels of the training frames it appears in (SegNet's ``freq_c``).

        Counted on the training masks at their files' size (resizing keeps the shares) the first
        time, then read from ``cache_dir``; counted again when the training masks change. Void
        counts for no class. Only the class-weighted loss calls this, so other runs never pay for it.

        Raises:
            UserInputError: a training mask is missing or unreadable, or the cached table is unreadable.
        """
        root = Path(self.hparams.data_dir)
        masks = [mask for _, mask in self._pairs("fit")]
        present = [path for path in masks if path.is_file()]
        fingerprint = files_fingerprint(present, self.layout, self.num_classes, self.ignore_index, len(masks))
        folder_key = hashlib.sha1(str(root.resolve()).encode()).hexdigest()[:10]
        cache_file = Path(self.hparams.cache_dir) / f"camvid-class-frequencies-{root.name}-{folder_key}.json"

        def count() -> tuple[np.ndarray, np.ndarray]:
            with ThreadPoolExecutor(max_workers=2) as pool:  # PIL decodes outside the GIL
                read = pool.map(lambda path: _read_checked_mask(path, self.num_classes, self.ignore_index), masks)
                return count_class_pixels(read, self.num_classes, self.ignore_index)

        return cached_frequencies(cache_file, fingerprint, self.class_names, count)

    # -- finding files --------------------------------------------------------------------------

    def _pairs(self, split: str) -> list[tuple[Path, Path]] | None:
        """(image, mask) paths of a split; None when the layout has no such split."""
        root = Path(self.hparams.data_dir)
        if not root.is_dir():
            raise UserInputError(
                f"--data.data_dir: folder {root} does not exist. With network access, --data.download true "
                "fetches fast.ai's CamVid there."
            )
        if self.layout == "segnet":
            folder = {"fit": "train", "validate": "val", "test": "test"}[split]
            if split == "test" and not (root / folder).is_dir():
                return None
            if not (root / folder).is_dir():
                raise UserInputError(
                    f"--data.data_dir: {root} has no {folder}/ folder. Expected SegNet's layout (train/, "
                    "trainannot/, val/, valannot/) or fast.ai's (images/, labels/, codes.txt, valid.txt)."
                )
            images = list_images(root / folder, "--data.data_dir")
            return [(path, root / f"{folder}annot" / f"{path.stem}.png") for path in images]
        if split == "test":
            return None
        valid_file = root / "valid.txt"
        if not valid_file.is_file():
            raise UserInputError(f"--data.data_dir: {root} has codes.txt but no valid.txt listing validation images.")
        valid = {Path(line.strip()).name for line in valid_file.read_text().splitlines() if line.strip()}
        images = list_images(root / "images", "--data.data_dir")
        unknown = valid - {path.name for path in images}
        if unknown:
            raise UserInputError(
                f"{valid_file} lists images not in {root / 'images'}: {', '.join(sorted(unknown)[:3])}."
            )
        chosen = [path for path in images if (path.name in valid) == (split == "validate")]
        return [(path, root / "labels" / f"{path.stem}_P.png") for path in chosen]

    def _load(self, split: str, transform: A.Compose | None) -> SegmentationDataset | None:
        pairs = self._pairs(split)
        if pairs is None:
            return None
        size = height_width(self.hparams.image_size) if self.hparams.image_size is not None else None
        with ThreadPoolExecutor(max_workers=2) as pool:  # PIL decodes outside the GIL
            loaded = list(pool.map(
                lambda pair: _load_pair(*pair, size, self.num_classes, self.ignore_index), pairs
            ))
        return SegmentationDataset([image for image, _ in loaded], [mask for _, mask in loaded], transform)

    # -- Lightning hooks -------------------------------------------------------------------------

    def setup(self, stage: str) -> None:
        if stage == "fit" and "fit" not in self.splits:
            train_set = self._load("fit", None)
            train_set.transform = self.train_transform(train_set.images[0].shape[:2])
            self.splits["fit"] = train_set
        if stage in ("fit", "validate") and "validate" not in self.splits:
            self.splits["validate"] = self._load("validate", None)
        if stage == "test" and "test" not in self.splits:
            self.splits["test"] = self._load("test", None) or self._load("validate", None)

    def train_transform(self, frame_size: tuple[int, int]) -> A.Compose:
        """Flip, scale, rotate and crop (image and mask together), brightness/contrast (image only).

        Args:
            frame_size: (H, W) of the loaded frames; scaled frames return to it when not cropped.
        """
        hp = self.hparams
        void = self.ignore_index if self.ignore_index >= 0 else 0
        steps: list[A.BasicTransform] = []
        if hp.flip:
            steps.append(A.HorizontalFlip(p=0.5))
        low, high = hp.scale_range
        if (low, high) != (1.0, 1.0):
            steps.append(A.RandomScale(scale_limit=(low - 1.0, high - 1.0), p=1.0))
        if hp.rotate_degrees:
            steps.append(A.Rotate(limit=hp.rotate_degrees, border_mode=cv2.BORDER_CONSTANT, fill=0,
                                  fill_mask=void, p=0.75))
        if hp.crop_size is not None:
            height, width = height_width(hp.crop_size)
            steps.append(A.RandomCrop(height, width, pad_if_needed=True, border_mode=cv2.BORDER_CONSTANT,
                                      fill=0, fill_mask=void))
        elif (low, high) != (1.0, 1.0):
            # Scaled frames go back to a common size so they batch.
            steps.append(A.Resize(*frame_size, interpolation=cv2.INTER_LINEAR, mask_interpolation=cv2.INTER_NEAREST))
        if hp.brightness_contrast:
            steps.append(A.RandomBrightnessContrast(hp.brightness_contrast, hp.brightness_contrast, p=0.75))
        return A.Compose(steps, seed=augmentation_seed(self.trainer))

    def _loader(self, dataset: Dataset, batch_size: int, train: bool) -> DataLoader:
        workers = self.hparams.num_workers if train else 0
        return DataLoader(dataset, batch_size=batch_size, shuffle=train, drop_last=train and len(dataset) > batch_size,
                          num_workers=workers, persistent_workers=workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.splits["fit"], self.hparams.batch_size, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.splits["validate"], self.hparams.eval_batch_size, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.splits["test"], self.hparams.eval_batch_size, train=False)

    def predict_dataloader(self) -> DataLoader:
        if self.hparams.predict_dir is None:
            raise UserInputError("predict needs --data.predict_dir: a folder of images to segment.")
        return self.predict_loader(list_images(self.hparams.predict_dir, "--data.predict_dir"))

    def predict_loader(self, files: list) -> DataLoader:
        """Frames to segment, resized to ``image_size`` if set; also what the one-call predictor reads."""
        size = height_width(self.hparams.image_size) if self.hparams.image_size is not None else None
        # One image per batch: folders mix sizes, and each mask is written at its image's size.
        return DataLoader(PredictDataset([Path(file) for file in files], size), batch_size=1, shuffle=False)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        batch["image"] = normalize_uint8(batch["image"], channels_first=True)  # (B, 3, H, W)
        return batch

    @staticmethod
    def denormalize(images: torch.Tensor) -> torch.Tensor:
        """Undoes the normalisation, for showing images: (B, 3, H, W) in [0, 1]."""
        return denormalize(images)
