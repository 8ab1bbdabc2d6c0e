"""The lesson's restoration and super-resolution photos: Oxford-IIIT Pet, fetched on request.

The archive is the one torchvision's ``OxfordIIITPet`` reads (7,390 photos of 37 breeds, about
790 MB), checked against the same MD5. Only the photos are kept, flat in one folder, which is what
``RestorationDataModule`` reads; the archive is deleted once unpacked.
"""

from pathlib import Path

from common.errors import UserInputError
from datamodules.download import download_and_unpack
from datamodules.image_files import has_image_suffix

PET_IMAGES_URLS = ["https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz"]
PET_IMAGES_MD5 = "5c4f3ee8e5d25df40f4fd59a7f44e54c"


def download_pet_photos(folder: Path, option: str = "--data.data_dir") -> None:
    """Downloads the Oxford-IIIT Pet photos into ``folder`` (created if needed).

    Raises:
        UserInputError: no network, or the archive did not match its checksum; names ``option``.
    """
    try:
        download_and_unpack(PET_IMAGES_URLS, PET_IMAGES_MD5, folder, _photo_name)
    except OSError as error:
        raise UserInputError(
            f"{option} {folder} holds no photos, and downloading the Oxford-IIIT Pet photos failed "
            f"({error}). Point {option} at a folder of photos, or run once with network access."
        ) from error


def _photo_name(member: str) -> str | None:
    """The photos only, flat in the folder (the archive keeps them under ``images/``)."""
    name = Path(member).name
    return name if has_image_suffix(name) else None
