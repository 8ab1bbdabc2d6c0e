"""MNIST from its four IDX files, held in memory as uint8 tensors."""

from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, RandomSampler

from common.errors import UserInputError
from datamodules.augment import random_pad_crop, random_rotate_scale
from datamodules.batched import TensorBatchDataset, keep_batch
from datamodules.download import download_verified
from datamodules.idx import read_idx
from datamodules.image_files import list_images, load_image

# The canonical files and their MD5 sums (as torchvision lists them).
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c"),
}
MNIST_MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]


class MNISTDataModule(pl.LightningDataModule):
    """MNIST digits: the 60k training images for training, the 10k test images for validation.

    As in the lesson, the official test set doubles as the validation set (and is also served to
    ``test``). Images stay uint8 on the host; conversion, augmentation and normalisation happen
    per batch after it reaches the device.

    All training randomness (shuffling and crops) comes from one generator, seeded from
    ``seed_everything`` and saved in checkpoints, so a run resumed from ``last.ckpt`` sees exactly
    the batches an uninterrupted run would have seen.

    Args:
        data_dir: folder holding the IDX files, either directly or in torchvision's ``MNIST/raw``.
        batch_size: training batch size.
        eval_batch_size: validation/test/predict batch size.
        padding: random zero-padding before the 28x28 crop (the lesson's ``rand_pad(3, 28)``);
            0 turns it off.
        rotate_degrees: random turns of up to this many degrees either way (0: none; the lesson
            has none).
        zoom: random zoom between these factors (1, 1: none).
        plain_final_epochs: the last this many epochs train on the images as they are, without
            augmentation, so that the weights and the batch-norm statistics settle on the
            images that validation shows (0: augment to the end, as the lesson does).
        download: fetch the canonical files into ``data_dir/MNIST/raw`` when they are absent.
        mirrors: base URLs to download from, tried in order.
        predict_dir: folder of digit images (white on black, any size) for ``predict``.
        num_workers: DataLoader workers; batches are slices of in-memory tensors, so 0 is fastest.
    """

    num_classes = 10
    in_channels = 1
    class_names = [str(digit) for digit in range(10)]

    def __init__(
        self,
        data_dir: str = "data",
        batch_size: int = 128,
        eval_batch_size: int = 1024,
        padding: int = 3,
        rotate_degrees: float = 0.0,
        zoom: tuple[float, float] = (1.0, 1.0),
        plain_final_epochs: int = 0,
        download: bool = True,
        mirrors: list[str] = MNIST_MIRRORS,  # noqa: B006 - read only; a list so YAML can replace it
        predict_dir: str | None = None,
        num_workers: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        # Placeholders until ``setup`` measures the training images or a checkpoint restores them.
        self.mean = 0.1307
        self.std = 0.3081
        self.train_set: TensorBatchDataset | None = None
        self.val_set: TensorBatchDataset | None = None
        self.generator = torch.Generator()

    def _candidate_folders(self) -> list[Path]:
        root = Path(self.hparams.data_dir)
        return [root / "MNIST" / "raw", root]

    def _find(self, stem: str) -> Path | None:
        for folder in self._candidate_folders():
            for name in (stem, stem + ".gz"):
                if (folder / name).is_file():
                    return folder / name
        return None

    def prepare_data(self) -> None:
        missing = [(stem, md5) for stem, md5 in MNIST_FILES.values() if self._find(stem) is None]
        if not missing:
            return
        looked = " and ".join(str(folder) for folder in self._candidate_folders())
        names = ", ".join(stem for stem, _ in missing)
        how_to = (
            "Point --data.data_dir at a folder that holds the four MNIST IDX files (plain or .gz), "
            "directly or under MNIST/raw/"
        )
        if not self.hparams.download:
            raise UserInputError(f"MNIST files not found: {names} (looked in {looked}). {how_to}.")
        target = self._candidate_folders()[0]
        for stem, md5 in missing:
            urls = [mirror + stem + ".gz" for mirror in self.hparams.mirrors]
            try:
                download_verified(urls, target / (stem + ".gz"), md5)
            except OSError as error:
                raise UserInputError(
                    f"MNIST files not found: {names} (looked in {looked}), and downloading "
                    f"{stem}.gz failed ({error}). {how_to}, or run once with network access."
                ) from error

    def setup(self, stage: str) -> None:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        self.generator.manual_seed(torch.initial_seed() + rank)
        if self.train_set is not None:
            return
        paths = {key: self._find(stem) for key, (stem, _) in MNIST_FILES.items()}
        absent = [MNIST_FILES[key][0] for key, path in paths.items() if path is None]
        if absent and stage == "predict":
            return  # normalisation statistics come from the checkpoint's datamodule state
        if absent:
            looked = " and ".join(str(folder) for folder in self._candidate_folders())
            raise UserInputError(f"MNIST files not found: {', '.join(absent)} (looked in {looked}).")
        train_images = read_idx(paths["train_images"], expected_dims=3)
        train_labels = read_idx(paths["train_labels"], expected_dims=1).long()
        test_images = read_idx(paths["test_images"], expected_dims=3)
        test_labels = read_idx(paths["test_labels"], expected_dims=1).long()
        for images, labels, key in ((train_images, train_labels, "train"), (test_images, test_labels, "test")):
            if len(images) != len(labels):
                raise UserInputError(
                    f"{paths[key + '_images']} holds {len(images)} images but "
                    f"{paths[key + '_labels']} holds {len(labels)} labels."
                )
            if labels.numel() and int(labels.max()) >= self.num_classes:
                raise UserInputError(f"{paths[key + '_labels']} has label {int(labels.max())}; MNIST has 0..9.")
        # Normalisation statistics come from the training images only.
        pixels = train_images.float().div_(255)
        self.mean, self.std = pixels.mean().item(), pixels.std().item()
        self.train_set = TensorBatchDataset(image=train_images, label=train_labels)
        self.val_set = TensorBatchDataset(image=test_images, label=test_labels)

    def _loader(self, dataset: TensorBatchDataset, batch_size: int, shuffle: bool) -> DataLoader:
        # Under DDP, Lightning swaps the RandomSampler for a DistributedSampler (seeded, per epoch).
        sampler = RandomSampler(dataset, generator=self.generator) if shuffle else None
        return DataLoader(
            dataset, batch_size=batch_size, sampler=sampler, collate_fn=keep_batch,
            num_workers=self.hparams.num_workers, persistent_workers=self.hparams.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, self.hparams.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, self.hparams.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        if self.hparams.predict_dir is None:
            raise UserInputError("predict needs --data.predict_dir: a folder of digit images.")
        return self.predict_loader(list_images(self.hparams.predict_dir, "--data.predict_dir"))

    def predict_loader(self, files: list) -> DataLoader:
        """Digit images (white on black), resized to 28x28; also what the one-call predictor reads."""
        images = torch.stack([torch.from_numpy(load_image(path, "L", size=(28, 28))) for path in files])
        dataset = TensorBatchDataset(image=images, path=[str(path) for path in files])
        return self._loader(dataset, self.hparams.eval_batch_size, shuffle=False)

    def on_after_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        images = batch["image"].unsqueeze(1).float().div_(255)  # (B, 28, 28) uint8 -> (B, 1, 28, 28)
        if self.trainer is not None and self.trainer.training and self._augments_this_epoch():
            images = random_rotate_scale(images, self.hparams.rotate_degrees, tuple(self.hparams.zoom), self.generator)
            images = random_pad_crop(images, self.hparams.padding, mode="zeros", generator=self.generator)
        batch["image"] = (images - self.mean) / self.std
        return batch

    def _augments_this_epoch(self) -> bool:
        if self.hparams.plain_final_epochs <= 0:
            return True
        max_epochs = self.trainer.max_epochs
        if max_epochs is None or max_epochs < 0:  # no end to count back from
            return True
        return self.trainer.current_epoch < max_epochs - self.hparams.plain_final_epochs

    def denormalize(self, images: torch.Tensor) -> torch.Tensor:
        """Undoes the normalisation, for showing images: (B, 1, H, W) in [0, 1]."""
        return (images * self.std + self.mean).clamp(0, 1)

    def state_dict(self) -> dict:
        return {"mean": self.mean, "std": self.std, "generator": self.generator.get_state()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.mean, self.std = state_dict["mean"], state_dict["std"]
        if "generator" in state_dict:
            self.generator.set_state(state_dict["generator"])
