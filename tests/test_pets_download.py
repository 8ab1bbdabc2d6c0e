"""--data.download: the Oxford-IIIT Pet photos fetched into an empty folder (the network is faked)."""

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

import datamodules.download as download
import datamodules.pets as pets
from common.errors import UserInputError
from datamodules.restoration import RestorationDataModule


def _jpeg_bytes(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def _fake_archive(urls, destination, md5, timeout):
    assert urls == pets.PET_IMAGES_URLS and md5 == pets.PET_IMAGES_MD5
    with tarfile.open(destination, "w:gz") as tar:
        members = {"images/Bengal_1.jpg": _jpeg_bytes(0), "images/Bengal_2.jpg": _jpeg_bytes(1),
                   "images/notes.mat": b"not a photo", "../outside.jpg": _jpeg_bytes(2)}
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_download_fills_an_empty_folder_with_the_photos_only(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "download_verified", _fake_archive)
    folder = tmp_path / "pets"
    datamodule = RestorationDataModule(data_dir=str(folder), cache_dir=str(tmp_path / "cache"), download=True,
                                       crappify_workers=1)
    datamodule.prepare_data()
    # Flat, photos only, nothing written outside the folder, the archive gone.
    assert sorted(p.name for p in folder.iterdir()) == ["Bengal_1.jpg", "Bengal_2.jpg", "outside.jpg"]
    assert not (tmp_path / "outside.jpg").exists()
    assert len(list(datamodule.damaged_dir.iterdir())) == 3
    # A folder that already holds photos is never downloaded into again.
    monkeypatch.setattr(download, "download_verified", lambda *args, **kwargs: pytest.fail("downloaded again"))
    datamodule.prepare_data()


def test_download_without_network_names_the_option(tmp_path, monkeypatch):
    def offline(urls, destination, md5, timeout):
        raise OSError(f"{urls[0]}: Temporary failure in name resolution")

    monkeypatch.setattr(download, "download_verified", offline)
    datamodule = RestorationDataModule(data_dir=str(tmp_path / "pets"), download=True)
    with pytest.raises(UserInputError, match=r"--data.data_dir .*pets holds no photos.*name resolution"):
        datamodule.prepare_data()


def test_an_empty_folder_without_download_says_how_to_get_photos(tmp_path):
    (tmp_path / "empty").mkdir()
    datamodule = RestorationDataModule(data_dir=str(tmp_path / "empty"))
    with pytest.raises(UserInputError, match=r"holds no images.*--data.download true"):
        datamodule.prepare_data()
