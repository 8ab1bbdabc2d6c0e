"""Any folder of photos as unlabelled square images in [-1, 1], for the WGAN."""

import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from datamodules.image_files import list_images
from modules.errors import UserInputError


def square_thumbnail(path, size: int) -> np.ndarray:
    """Decodes an image, resizes its short side to ``size`` and centre-crops a square (H, W, 3)."""
    try:
        with Image.open(path) as image:
            image.draft("RGB", (size, size))  # JPEG: decode at reduced scale, much faster
            image = image.convert("RGB")
            scale = size / min(image.size)
            resized = image.resize(
                (max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.BICUBIC
            )
    except (OSError, ValueError) as error:
        raise UserInputError(f"Cannot read image {path}: {error}.") from error
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    return np.asarray(resized.crop((left, top, left + size, top + size)))


class _Thumbnails(Dataset):
    def __init__(self, files, size: int, flip: bool):
        self.files, self.size, self.flip = files, size, flip

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = torch.from_numpy(square_thumbnail(self.files[index], self.size).copy())  # (S, S, 3)
        if self.flip and torch.rand(()) < 0.5:
            image = image.flip(1)
        return image


class ImageFolderDataModule(pl.LightningDataModule):
    """Square crops of every image in a folder, scaled to [-1, 1] (a tanh generator's range).

    Args:
        data_dir: folder of images (the lesson used LSUN bedrooms; any photos work).
        image_size: side of the square images.
        batch_size: images per batch.
        flip: random horizontal flips.
        num_workers: DataLoader workers decoding images.
    """

    in_channels = 3

    def __init__(
        self, data_dir: str = "data/photos", image_size: int = 64, batch_size: int = 64, flip: bool = True,
        num_workers: int = 2,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.dataset: _Thumbnails | None = None

    def setup(self, stage: str) -> None:
        files = list_images(self.hparams.data_dir, "--data.data_dir")
        if len(files) < self.hparams.batch_size:
            raise UserInputError(
                f"--data.data_dir {self.hparams.data_dir} holds {len(files)} images, fewer than one batch "
                f"(--data.batch_size {self.hparams.batch_size})."
            )
        self.dataset = _Thumbnails(files, self.hparams.image_size, self.hparams.flip)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.dataset, batch_size=self.hparams.batch_size, shuffle=True, drop_last=True,
            num_workers=self.hparams.num_workers, persistent_workers=self.hparams.num_workers > 0,
        )

    def on_after_batch_transfer(self, batch: torch.Tensor, dataloader_idx: int) -> torch.Tensor:
        return batch.permute(0, 3, 1, 2).float().div_(127.5).sub_(1)  # (B, S, S, 3) uint8 -> (B, 3, S, S)
