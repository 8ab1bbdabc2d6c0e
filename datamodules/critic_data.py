"""Real photos against a generator's outputs, labelled 1 and 0, for pretraining the critic."""

import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from datamodules.image_files import list_images, load_image
from datamodules.imagenet import denormalize, normalize_uint8
from datamodules.restoration import resize_short_side, split_by_seed
from modules.errors import UserInputError


def _square(resized: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
    """Crops a ``size`` square from an image whose short side is ``size``: random with ``rng``, else central."""
    top_range, left_range = resized.shape[0] - size, resized.shape[1] - size
    top = int(rng.integers(0, top_range + 1)) if rng is not None else top_range // 2
    left = int(rng.integers(0, left_range + 1)) if rng is not None else left_range // 2
    return resized[top : top + size, left : left + size]


class _LabelledImages(Dataset):
    def __init__(self, items: list[tuple[np.ndarray, int]], size: int, augment: bool):
        self.items, self.size, self.augment = items, size, augment

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        image, label = self.items[index]
        rng = np.random.default_rng() if self.augment else None
        crop = _square(image, self.size, rng)
        if rng is not None and rng.random() < 0.5:
            crop = crop[:, ::-1]
        return {"image": torch.from_numpy(np.ascontiguousarray(crop)), "label": torch.tensor(float(label))}


class CriticDataModule(pl.LightningDataModule):
    """Pairs each real photo with the generated image of the same name; label 1 real, 0 generated.

    The train/validation split is by photo name with ``split_seed``, the same split as
    ``RestorationDataModule``'s, so validation photos are ones the generator never trained on.

    Args:
        real_dir: folder of real photos.
        generated_dir: folder of the generator's outputs (``<stem>.png``), e.g. written by
            ``predict`` with the restoration config.
        image_size: side of the square crops.
        batch_size: training batch size.
        eval_batch_size: validation batch size.
        val_fraction: share of photos held out.
        split_seed: seed of the split (use the generator's).
        num_workers: DataLoader workers.
    """

    in_channels = 3

    def __init__(
        self, real_dir: str = "data/photos", generated_dir: str = "data/generated", image_size: int = 128,
        batch_size: int = 16, eval_batch_size: int = 32, val_fraction: float = 0.1, split_seed: int = 42,
        num_workers: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.train_set: _LabelledImages | None = None
        self.val_set: _LabelledImages | None = None

    def setup(self, stage: str) -> None:
        if self.train_set is not None:
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
        # Real and generated images both at short side = image_size, so that scale gives nothing away.
        size = self.hparams.image_size

        def load(files):
            items = []
            for path in files:
                for source, label in ((path, 1), (generated[path.stem], 0)):
                    items.append((resize_short_side(load_image(source, "RGB"), size, Image.BICUBIC), label))
            return items

        self.train_set = _LabelledImages(load(train), self.hparams.image_size, augment=True)
        self.val_set = _LabelledImages(load(val), self.hparams.image_size, augment=False)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True, drop_last=True,
                          num_workers=self.hparams.num_workers)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.hparams.eval_batch_size, num_workers=self.hparams.num_workers)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        batch["image"] = normalize_uint8(batch["image"])
        return batch

    @staticmethod
    def denormalize(images: torch.Tensor) -> torch.Tensor:
        return denormalize(images)
