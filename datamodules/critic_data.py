"""Real photos against a generator's outputs, labelled 1 and 0, for pretraining the critic."""

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from common.errors import UserInputError
from common.imagenet import denormalize, normalize_uint8
from common.sizes import ImageSize, height_width
from datamodules.augment import augmentation_seed
from datamodules.image_files import list_images, load_image
from datamodules.restoration import resize_to_cover, split_by_seed


def _crop(resized: np.ndarray, size: tuple[int, int], rng: np.random.Generator | None) -> np.ndarray:
    """Crops (height, width) ``size`` from an image that covers it: random with ``rng``, else central."""
    top_range, left_range = resized.shape[0] - size[0], resized.shape[1] - size[1]
    top = int(rng.integers(0, top_range + 1)) if rng is not None else top_range // 2
    left = int(rng.integers(0, left_range + 1)) if rng is not None else left_range // 2
    return resized[top : top + size[0], left : left + size[1]]


class _LabelledImages(Dataset):
    """Labelled images cropped (randomly and flipped with ``augment``, from a generator seeded by ``seed``)."""

    def __init__(self, items: list[tuple[np.ndarray, int]], size: ImageSize, augment: bool, seed: int = 0):
        self.items, self.size, self.augment, self.seed = items, height_width(size), augment, seed
        self.rng: np.random.Generator | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        image, label = self.items[index]
        if self.augment and self.rng is None:  # one generator per loader worker, each its own stream
            worker = torch.utils.data.get_worker_info()
            self.rng = np.random.default_rng(self.seed + (worker.id if worker is not None else 0))
        rng = self.rng if self.augment else None
        crop = _crop(image, self.size, rng)
        if rng is not None and rng.random() < 0.5:
            crop = crop[:, ::-1]
        return {"image": torch.from_numpy(np.array(crop)), "label": torch.tensor(float(label))}


class _ImagesToScore(Dataset):
    """Images for ``predict``: resized to cover the working size and centre-cropped, as validation's."""

    def __init__(self, files: list[Path], size: ImageSize):
        self.files, self.size = files, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        image = resize_to_cover(load_image(self.files[index], "RGB"), self.size, Image.BICUBIC)
        return {"image": torch.from_numpy(np.array(_crop(image, height_width(self.size), None))),
                "path": str(self.files[index])}


class CriticDataModule(pl.LightningDataModule):
    """Pairs each real photo with the generated image of the same name; label 1 real, 0 generated.

    The train/validation split is by photo name with ``split_seed``, the same split as
    ``RestorationDataModule``'s, so validation photos are ones the generator never trained on.

    Args:
        real_dir: folder of real photos.
        generated_dir: folder of the generator's outputs (``<stem>.png``), e.g. written by
            ``predict`` with the restoration config.
        image_size: size of the crops, a square's side or (height, width).
        batch_size: training batch size.
        eval_batch_size: validation batch size.
        val_fraction: share of photos held out.
        split_seed: seed of the split (use the generator's).
        num_workers: DataLoader workers.
        predict_dir: folder of images for ``predict`` to score as real or generated.
    """

    in_channels = 3

    def __init__(
        self, real_dir: str = "data/photos", generated_dir: str = "data/generated", image_size: ImageSize = 128,
        batch_size: int = 16, eval_batch_size: int = 32, val_fraction: float = 0.1, split_seed: int = 42,
        num_workers: int = 0, predict_dir: str | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.train_set: _LabelledImages | None = None
        self.val_set: _LabelledImages | None = None

    def setup(self, stage: str) -> None:
        if self.train_set is not None or stage == "predict":
            return
        real = {p.stem: p for p in list_images(self.hparams.real_dir, "--data.real_dir")}
        generated = {p.stem: p for p in list_images(self.hparams.generated_dir, "--data.generated_dir")}
        shared = sorted(set(real) & set(generated))
        if not shared:
            raise UserInputError(
                f"No generated image in {self.hparams.generated_dir} has the name of a photo in "
                f"{self.hparams.real_dir}; write the generator's outputs there first (see the README)."
            )
        train, val = split_by_seed([real[s] for s in shared], self.hparams.val_fraction, self.hparams.split_seed)
        # Real and generated images both resized to cover image_size, so that scale gives nothing away.
        size = self.hparams.image_size

        def load(files):
            items = []
            for path in files:
                for source, label in ((path, 1), (generated[path.stem], 0)):
                    items.append((resize_to_cover(load_image(source, "RGB"), size, Image.BICUBIC), label))
            return items

        self.train_set = _LabelledImages(load(train), self.hparams.image_size, augment=True,
                                         seed=augmentation_seed(self.trainer))
        self.val_set = _LabelledImages(load(val), self.hparams.image_size, augment=False)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.hparams.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.eval_batch_size, num_workers=self.hparams.num_workers)

    def test_dataloader(self) -> DataLoader:
        """The held-out photos (and their generated copies): the validation split, as there is no other."""
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        if self.hparams.predict_dir is None:
            raise UserInputError("predict needs --data.predict_dir: a folder of images to score.")
        return self.predict_loader(list_images(self.hparams.predict_dir, "--data.predict_dir"))

    def predict_loader(self, files: list) -> DataLoader:
        """Images to score, at the working size; also what the one-call predictor reads."""
        dataset = _ImagesToScore([Path(file) for file in files], self.hparams.image_size)
        return DataLoader(dataset, batch_size=self.hparams.eval_batch_size)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        batch["image"] = normalize_uint8(batch["image"])
        return batch

    @staticmethod
    def denormalize(images: torch.Tensor) -> torch.Tensor:
        return denormalize(images)
