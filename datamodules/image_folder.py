"""Any folder of photos as unlabelled images in [-1, 1], for the WGAN; seeds to draw images from for ``predict``."""

import lightning.pytorch as pl
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from common.errors import UserInputError
from common.sizes import ImageSize, cover_size, height_width
from datamodules.image_files import list_images


def thumbnail(path, size: ImageSize) -> np.ndarray:
    """Decodes an image, resizes it to cover ``size`` and centre-crops it to ``size``: (H, W, 3) uint8."""
    height, width = height_width(size)
    try:
        with Image.open(path) as image:
            image.draft("RGB", (width, height))  # JPEG: decode at reduced scale, much faster
            image = image.convert("RGB")
            new_height, new_width = cover_size(image.height, image.width, (height, width))
            resized = image.resize((new_width, new_height), Image.BICUBIC)
    except (OSError, ValueError) as error:
        raise UserInputError(f"Cannot read image {path}: {error}.") from error
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return np.asarray(resized.crop((left, top, left + width, top + height)))


class _Thumbnails(Dataset):
    def __init__(self, files, size: ImageSize, flip: bool):
        self.files, self.size, self.flip = files, size, flip

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = torch.from_numpy(thumbnail(self.files[index], self.size).copy())  # (S, S, 3)
        if self.flip and torch.rand(()) < 0.5:
            image = image.flip(1)
        return image


class ImageFolderDataModule(pl.LightningDataModule):
    """Centre crops of every image in a folder, scaled to [-1, 1] (a tanh generator's range).

    ``predict`` hands out seeds instead of images: the model draws one image from each.

    Args:
        data_dir: folder of images (the lesson used LSUN bedrooms; any photos work).
        image_size: size of the images, a square's side or (height, width).
        batch_size: images per batch.
        flip: random horizontal flips.
        num_workers: DataLoader workers decoding images.
        predict_count: images ``predict`` draws (seeds 0 .. predict_count - 1).
    """

    in_channels = 3

    def __init__(
        self, data_dir: str = "data/photos", image_size: ImageSize = 64, batch_size: int = 64, flip: bool = True,
        num_workers: int = 2, predict_count: int = 16,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.dataset: _Thumbnails | None = None

    @property
    def image_size(self):
        """The images' size: the WGAN's nets are built for it (the CLI links it to the model)."""
        return self.hparams.image_size

    def setup(self, stage: str) -> None:
        if stage == "predict":
            return  # predictions are drawn from seeds, not read
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

    def predict_dataloader(self) -> DataLoader:
        return self.predict_loader(list(range(self.hparams.predict_count)))

    def predict_loader(self, seeds: list) -> DataLoader:
        """Seeds to draw images from, each named ``sample_<seed>``; also what the one-call predictor reads."""
        items = [{"seed": int(seed), "path": f"sample_{int(seed):04d}"} for seed in seeds]
        return DataLoader(items, batch_size=self.hparams.batch_size)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if isinstance(batch, dict):
            return batch  # predict's seeds
        return batch.permute(0, 3, 1, 2).float().div_(127.5).sub_(1)  # (B, S, S, 3) uint8 -> (B, 3, S, S)
