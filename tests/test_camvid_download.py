"""--data.download for CamVid: fast.ai's archive unpacked into an empty folder (the network is faked)."""

import tarfile

import pytest

import datamodules.camvid_download as camvid_download
import datamodules.download as download
from common.errors import UserInputError
from datamodules.camvid import CamVidDataModule
from datamodules.download import unpack_tar
from tests.test_camvid_data import write_fastai_camvid


def _fake_download(tmp_path, codes: tuple[str, ...]):
    """A stand-in for ``download_verified`` that writes a small archive laid out as fast.ai's."""
    source = write_fastai_camvid(tmp_path / "source" / "camvid")
    (source / "codes.txt").write_text("\n".join(codes) + "\n")

    def download(urls, destination, md5, timeout):
        assert urls == camvid_download.CAMVID_URLS and md5 == camvid_download.CAMVID_MD5
        with tarfile.open(destination, "w:gz") as tar:
            tar.add(source, arcname="camvid")

    return download


def test_download_unpacks_fastai_camvid_and_knows_its_classes_beforehand(tmp_path, monkeypatch):
    # Labels 0..4 of the synthetic frames are valid among the 32 classes.
    monkeypatch.setattr(download, "download_verified", _fake_download(tmp_path, camvid_download.CAMVID_CODES))
    root = tmp_path / "camvid"
    data = CamVidDataModule(str(root), download=True, batch_size=2)
    # Known before anything is fetched, so the CLI can size the model's head.
    assert data.layout == "fastai" and data.num_classes == 32 and data.class_names[30] == "Void"
    data.prepare_data()
    assert sorted(p.name for p in root.iterdir()) == ["codes.txt", "images", "labels", "valid.txt"]
    data.setup("fit")
    assert len(data.splits["fit"]) == 4 and len(data.splits["validate"]) == 2
    # Present now: a second module reads it and downloads nothing.
    monkeypatch.setattr(download, "download_verified", lambda *args, **kwargs: pytest.fail("downloaded again"))
    again = CamVidDataModule(str(root), download=True)
    again.prepare_data()
    assert again.num_classes == 32


def test_download_with_other_classes_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "download_verified", _fake_download(tmp_path, ("Road", "Sky", "Void")))
    data = CamVidDataModule(str(tmp_path / "camvid"), download=True)
    with pytest.raises(UserInputError, match="codes.txt.*expected 32 classes"):
        data.prepare_data()


def test_download_without_network_names_the_option(tmp_path, monkeypatch):
    def offline(urls, destination, md5, timeout):
        raise OSError(f"{urls[0]}: Temporary failure in name resolution")

    monkeypatch.setattr(download, "download_verified", offline)
    data = CamVidDataModule(str(tmp_path / "camvid"), download=True)
    with pytest.raises(UserInputError, match=r"--data.data_dir .*camvid holds no CamVid.*name resolution"):
        data.prepare_data()


def test_missing_folder_without_download_says_how_to_get_it(tmp_path):
    data = CamVidDataModule(str(tmp_path / "nowhere"))
    with pytest.raises(UserInputError, match="does not exist.*--data.download true"):
        data.setup("fit")


def test_unpacking_refuses_members_outside_the_folder(tmp_path):
    archive = tmp_path / "evil.tar"
    (tmp_path / "payload.txt").write_text("x")
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "payload.txt", arcname="camvid/../../escaped.txt")
    with pytest.raises(OSError, match="outside"):
        unpack_tar(archive, tmp_path / "root", camvid_download._below_top_folder)
    assert not (tmp_path / "escaped.txt").exists()
