"""fast.ai's CamVid archive (the lesson's data: 701 frames at 720x960, 32 classes), on request.

It unpacks to the layout ``CamVidDataModule`` calls fast.ai's: ``images/``, ``labels/``,
``codes.txt`` and ``valid.txt``. The class names are known before the download, so the model can
be built with the right number of outputs while only one process fetches the data.
"""

from pathlib import Path, PurePosixPath

from common.errors import UserInputError
from datamodules.download import download_and_unpack

CAMVID_URLS = ["https://s3.amazonaws.com/fast-ai-imagelocal/camvid.tgz"]
CAMVID_MD5 = "648371e4f3a833682afb39b08a3ce2aa"  # 598,913,237 bytes
CAMVID_CODES = (
    "Animal", "Archway", "Bicyclist", "Bridge", "Building", "Car", "CartLuggagePram", "Child", "Column_Pole",
    "Fence", "LaneMkgsDriv", "LaneMkgsNonDriv", "Misc_Text", "MotorcycleScooter", "OtherMoving", "ParkingBlock",
    "Pedestrian", "Road", "RoadShoulder", "Sidewalk", "SignSymbol", "Sky", "SUVPickupTruck", "TrafficCone",
    "TrafficLight", "Train", "Tree", "Truck_Bus", "Tunnel", "VegetationMisc", "Void", "Wall",
)


def holds_camvid(root: Path) -> bool:
    """Whether ``root`` already holds CamVid in either layout (fast.ai's or SegNet's)."""
    return (root / "codes.txt").is_file() or (root / "train").is_dir()


def read_codes(root: Path) -> tuple[str, ...]:
    return tuple(line.strip() for line in (root / "codes.txt").read_text().splitlines() if line.strip())


def download_camvid(root: Path) -> None:
    """Downloads and unpacks fast.ai's CamVid into ``root``, checking the archive's MD5.

    Raises:
        UserInputError: no network, a checksum mismatch, or an archive whose classes are not
            ``CAMVID_CODES``; names ``--data.data_dir``.
    """
    try:
        download_and_unpack(CAMVID_URLS, CAMVID_MD5, root, _below_top_folder)
    except OSError as error:
        raise UserInputError(
            f"--data.data_dir {root} holds no CamVid, and downloading fast.ai's CamVid failed ({error}). "
            "Point --data.data_dir at a CamVid folder, or run once with network access."
        ) from error
    if read_codes(root) != CAMVID_CODES:
        raise UserInputError(f"{root / 'codes.txt'} from {CAMVID_URLS[0]} does not list the expected 32 classes.")


def _below_top_folder(member: str) -> str | None:
    """``camvid/images/x.png`` -> ``images/x.png``: the archive's top folder is ``root`` itself."""
    parts = PurePosixPath(member).parts
    return str(PurePosixPath(*parts[1:])) if len(parts) > 1 else None
