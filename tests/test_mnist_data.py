import gzip
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from common.errors import UserInputError
from datamodules.augment import random_pad_crop, random_rotate_scale
from datamodules.idx import read_idx, write_idx
from datamodules.mnist import MNISTDataModule


def test_reads_gzip_and_raw_idx(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b", array)
    assert torch.equal(read_idx(tmp_path / "a.gz", 3), torch.from_numpy(array))
    assert torch.equal(read_idx(tmp_path / "b", 3), torch.from_numpy(array))


def test_wrong_magic_names_the_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x56\x78" + bytes(100))
    with pytest.raises(UserInputError, match="train-images-idx3-ubyte is not an unsigned-byte IDX"):
        read_idx(path, 3)


def test_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.zeros((10, 28, 28), np.uint8))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(UserInputError, match=r"x.gz is truncated"):
        read_idx(path, 3)


def test_corrupt_gzip_names_the_file(tmp_path):
    path = tmp_path / "y.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(UserInputError, match="Cannot read MNIST file .*y.gz"):
        read_idx(path, 3)


def test_setup_serves_train_and_test_in_memory(mnist_dir):
    datamodule = MNISTDataModule(data_dir=str(mnist_dir), download=False, batch_size=64)
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert len(datamodule.train_set) == 512 and len(datamodule.val_set) == 128
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["image"].shape == (64, 28, 28) and batch["image"].dtype == torch.uint8
    assert batch["label"].shape == (64,)
    # Statistics are measured on the training images.
    pixels = datamodule.train_set.columns["image"].float() / 255
    assert datamodule.mean == pytest.approx(pixels.mean().item())
    assert datamodule.std == pytest.approx(pixels.std().item())


def test_raw_files_directly_in_data_dir(tmp_path, mnist_dir):
    for path in (mnist_dir / "MNIST" / "raw").iterdir():
        (tmp_path / path.stem).write_bytes(gzip.decompress(path.read_bytes()))
    datamodule = MNISTDataModule(data_dir=str(tmp_path), download=False)
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert len(datamodule.val_set) == 128


def test_missing_folder_without_download_is_a_clear_error(tmp_path):
    datamodule = MNISTDataModule(data_dir=str(tmp_path / "nowhere"), download=False)
    with pytest.raises(UserInputError, match="MNIST files not found.*nowhere.*--data.data_dir"):
        datamodule.prepare_data()


def test_failed_download_is_a_clear_error_and_leaves_nothing(tmp_path):
    # Port 9 on the loopback refuses connections at once: a network that does not answer.
    datamodule = MNISTDataModule(data_dir=str(tmp_path), mirrors=["http://127.0.0.1:9/"])
    with pytest.raises(UserInputError, match="downloading train-images-idx3-ubyte.gz failed"):
        datamodule.prepare_data()
    leftovers = list((tmp_path / "MNIST" / "raw").iterdir()) if (tmp_path / "MNIST").exists() else []
    assert leftovers == []


def test_download_writes_verified_file(tmp_path, mnist_dir, monkeypatch):
    # A local "mirror" (file:// URLs) serving files whose checksums we declare.
    import datamodules.mnist as mnist_module
    from datamodules.download import md5_of

    mirror = mnist_dir / "MNIST" / "raw"
    files = {key: (stem, md5_of(mirror / (stem + ".gz"))) for key, (stem, _) in mnist_module.MNIST_FILES.items()}
    monkeypatch.setattr(mnist_module, "MNIST_FILES", files)
    datamodule = MNISTDataModule(data_dir=str(tmp_path), mirrors=[mirror.as_uri() + "/"])
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert len(datamodule.train_set) == 512


def test_label_file_with_out_of_range_label(tmp_path, mnist_dir):
    shutil.copytree(mnist_dir, tmp_path / "copy")
    labels = tmp_path / "copy" / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz"
    write_idx(labels, np.full(512, 12, np.uint8))
    datamodule = MNISTDataModule(data_dir=str(tmp_path / "copy"), download=False)
    with pytest.raises(UserInputError, match="train-labels-idx1-ubyte.gz has label 12"):
        datamodule.setup("fit")


@pytest.mark.parametrize("mode, torch_mode", [("zeros", "constant"), ("reflect", "reflect")])
def test_random_pad_crop_takes_crops_of_the_padded_image(mode, torch_mode):
    images = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6) + 1
    crops = random_pad_crop(images, padding=2, mode=mode)
    assert crops.shape == images.shape
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2), mode=torch_mode)
    for crop, source in zip(crops, padded):
        windows = source.unfold(1, 6, 1).unfold(2, 6, 1)  # (1, 5, 5, 6, 6): every 6x6 window
        assert any(torch.equal(crop[0], windows[0, r, c]) for r in range(5) for c in range(5))
    assert torch.equal(random_pad_crop(images, padding=0), images)


def test_random_pad_crop_varies_offsets():
    images = torch.randn(64, 1, 28, 28)
    crops = random_pad_crop(images, padding=3)
    assert (crops != images).flatten(1).any(dim=1).float().mean() > 0.8


def test_random_rotate_scale_turns_and_zooms_about_the_centre():
    bar = torch.zeros(1, 1, 29, 29)
    bar[0, 0, 14, 4:25] = 1.0  # a horizontal bar through the centre
    assert torch.equal(random_rotate_scale(bar, 0.0), bar)
    turned = random_rotate_scale(bar.expand(16, 1, 29, 29).clone(), 90.0)
    assert torch.allclose(turned[:, 0, 14, 14], torch.ones(16), atol=1e-5)  # the centre stays put
    column_share = turned[:, 0, :, 14].sum(1) / turned[:, 0].sum((1, 2))
    assert column_share.min() < 0.2 and column_share.max() > 0.5  # small and large turns both drawn
    zoomed = random_rotate_scale(bar, 0.0, (0.5, 0.5))  # half size: the bar spans half the width
    assert zoomed[0, 0, 14].gt(0.5).sum().item() == pytest.approx(11, abs=1)
    generator = torch.Generator().manual_seed(3)
    again = torch.Generator().manual_seed(3)
    images = torch.rand(4, 1, 28, 28)
    assert torch.equal(random_rotate_scale(images, 10.0, (0.9, 1.1), generator),
                       random_rotate_scale(images, 10.0, (0.9, 1.1), again))


def test_augmentation_only_while_training(mnist_dir):
    datamodule = MNISTDataModule(data_dir=str(mnist_dir), download=False)
    datamodule.setup("fit")
    batch = next(iter(datamodule.val_dataloader()))
    first = datamodule.on_after_batch_transfer(dict(batch), 0)["image"]
    second = datamodule.on_after_batch_transfer(dict(batch), 0)["image"]
    assert first.shape == (128, 1, 28, 28) and torch.equal(first, second)
    assert abs(first.mean().item()) < 0.5  # normalised


@pytest.mark.parametrize("plain_final_epochs, augmented", [(0, [True, True, True]), (1, [True, True, False]),
                                                          (3, [False, False, False])])
def test_the_final_epochs_can_train_on_plain_images(mnist_dir, plain_final_epochs, augmented):
    datamodule = MNISTDataModule(data_dir=str(mnist_dir), download=False, plain_final_epochs=plain_final_epochs)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    plain = (batch["image"].unsqueeze(1).float() / 255 - datamodule.mean) / datamodule.std
    for epoch, expected in enumerate(augmented):
        datamodule.trainer = SimpleNamespace(training=True, max_epochs=3, current_epoch=epoch)
        images = datamodule.on_after_batch_transfer(dict(batch), 0)["image"]
        assert (not torch.equal(images, plain)) == expected, f"epoch {epoch}"


def test_predict_folder_and_errors(tmp_path):
    folder = tmp_path / "digits"
    folder.mkdir()
    datamodule = MNISTDataModule(data_dir=str(tmp_path), download=False, predict_dir=str(folder))
    with pytest.raises(UserInputError, match="holds no images"):
        datamodule.predict_dataloader()
    Image.fromarray(np.zeros((40, 30, 3), np.uint8)).save(folder / "a.png")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(UserInputError, match="broken.png"):
        datamodule.predict_dataloader()
    (folder / "broken.png").unlink()
    batch = next(iter(datamodule.predict_dataloader()))
    assert batch["image"].shape == (1, 28, 28) and batch["path"] == [str(folder / "a.png")]
