"""Bad input for the datamodules not covered in their own test files; none may change the data folder."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from common.errors import UserInputError
from datamodules.critic_data import CriticDataModule
from datamodules.image_folder import ImageFolderDataModule
from datamodules.restoration import RestorationDataModule


def _digest(folder):
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_image_folder_errors_name_the_folder_or_file(photos, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserInputError, match="holds no images"):
        ImageFolderDataModule(data_dir=str(tmp_path / "empty")).setup("fit")
    with pytest.raises(UserInputError, match="fewer than one batch"):
        ImageFolderDataModule(data_dir=str(photos), batch_size=64).setup("fit")
    (photos / "zz_broken.jpg").write_bytes(b"\xff\xd8 broken")
    datamodule = ImageFolderDataModule(data_dir=str(photos), batch_size=2, num_workers=0)
    datamodule.setup("fit")
    with pytest.raises(UserInputError, match="zz_broken.jpg"):
        datamodule.dataset[len(datamodule.dataset) - 1]


def test_image_folder_converts_modes(photos):
    # The fixture holds RGB, palette, RGBA and greyscale files: all come out as RGB squares.
    datamodule = ImageFolderDataModule(data_dir=str(photos), image_size=32, batch_size=4, num_workers=0)
    datamodule.setup("fit")
    shapes = {tuple(datamodule.dataset[i].shape) for i in range(len(datamodule.dataset))}
    assert shapes == {(32, 32, 3)}


def test_critic_data_needs_matching_generated_images(photos, tmp_path):
    generated = tmp_path / "generated"
    generated.mkdir()
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(generated / "unrelated.png")
    with pytest.raises(UserInputError, match="No generated image .* has the name of a photo"):
        CriticDataModule(real_dir=str(photos), generated_dir=str(generated)).setup("fit")


def test_restoration_leaves_the_photo_folder_untouched(photos, tmp_path):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 broken")
    before = _digest(photos)
    datamodule = RestorationDataModule(data_dir=str(photos), cache_dir=str(tmp_path / "cache"), image_size=64,
                                       crappify_workers=1)
    with pytest.warns(UserWarning, match="broken.jpg"):
        datamodule.prepare_data()
    datamodule.setup("fit")
    assert _digest(photos) == before
