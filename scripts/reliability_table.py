"""Feeds each kind of bad input to the code that reads it and prints the message it gives.

    python scripts/reliability_table.py > table.md

Makes its bad inputs in a temporary folder; the rows are those of docs/reliability.md.
"""

import contextlib
import gzip
import io
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cli import cli_main  # noqa: E402
from common.errors import UserInputError  # noqa: E402
from datamodules.camvid import CamVidDataModule  # noqa: E402
from datamodules.idx import write_idx  # noqa: E402
from datamodules.mnist import MNISTDataModule  # noqa: E402
from datamodules.restoration import RestorationDataModule  # noqa: E402
from modules.gan import GANModule  # noqa: E402
from modules.losses.feature_loss import FeatureLoss  # noqa: E402
from modules.nets.critic import CriticSpec  # noqa: E402
from modules.nets.unet import UNetSpec  # noqa: E402

ROOT = Path(tempfile.mkdtemp())
CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def row(case: str, action) -> None:
    stderr = io.StringIO()
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(stderr):
            warnings.simplefilter("always")
            action()
        relevant = [str(w.message) for w in caught
                    if issubclass(w.category, UserWarning) and "could not" in str(w.message)]
        message = f"(warning, run goes on) {relevant[0]}" if relevant else "no error"
    except UserInputError as error:
        message = str(error)
    except SystemExit:
        # jsonargparse's explanation: the lines naming the rejected option and why.
        lines = [line.strip() for line in stderr.getvalue().splitlines()]
        start = next((i for i, line in enumerate(lines) if line.startswith("- Problem with")), None)
        message = " ".join(lines[start : start + 3]) if start is not None else " ".join(lines[-2:])
    message = message.replace(str(ROOT), "<dir>").replace("|", "\\|")
    print(f"| {case} | {message} |")


def mnist(folder: Path) -> Path:
    raw = folder / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, count in (("train", 20), ("t10k", 10)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", np.zeros((count, 28, 28), np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(count, np.uint8))
    return raw


def camvid(folder: Path) -> Path:
    for split in ("train", "val"):
        (folder / split).mkdir(parents=True)
        (folder / f"{split}annot").mkdir()
        for index in range(2):
            Image.fromarray(np.full((24, 32, 3), 60, np.uint8)).save(folder / split / f"{index}.png")
            Image.fromarray(np.full((24, 32), 3, np.uint8)).save(folder / f"{split}annot" / f"{index}.png")
    return folder


def main() -> None:
    print("| bad input | message |")
    print("|---|---|")
    row("MNIST: empty data folder, no download", lambda: MNISTDataModule(
        data_dir=str(ROOT / "empty"), download=False).prepare_data())
    raw = mnist(ROOT / "magic")
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x12\x34\x56\x78" + bytes(50)))
    row("MNIST: IDX file with a wrong magic number", lambda: MNISTDataModule(
        data_dir=str(ROOT / "magic"), download=False).setup("fit"))
    raw = mnist(ROOT / "short")
    data = gzip.decompress((raw / "t10k-images-idx3-ubyte.gz").read_bytes())
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(data[:-300]))
    row("MNIST: truncated IDX file", lambda: MNISTDataModule(data_dir=str(ROOT / "short"), download=False).setup("fit"))
    raw = mnist(ROOT / "labels")
    write_idx(raw / "train-labels-idx1-ubyte.gz", np.full(20, 12, np.uint8))
    row("MNIST: label out of range", lambda: MNISTDataModule(
        data_dir=str(ROOT / "labels"), download=False).setup("fit"))

    good = camvid(ROOT / "camvid")

    def broken_camvid(name: str, damage) -> Path:
        folder = ROOT / name
        shutil.copytree(good, folder)
        damage(folder)
        return folder

    def camvid_setup(folder: Path):
        return lambda: CamVidDataModule(data_dir=str(folder)).setup("fit")

    (ROOT / "empty_camvid").mkdir()
    row("CamVid: empty data folder", camvid_setup(ROOT / "empty_camvid"))
    row("CamVid: corrupt image", camvid_setup(broken_camvid(
        "corrupt", lambda f: (f / "train" / "0.png").write_bytes(b"\x89PNG garbage"))))
    row("CamVid: mask missing", camvid_setup(broken_camvid("nomask", lambda f: (f / "trainannot" / "1.png").unlink())))
    row("CamVid: mask and image differ in size", camvid_setup(broken_camvid(
        "size", lambda f: Image.fromarray(np.zeros((20, 32), np.uint8)).save(f / "trainannot" / "0.png"))))
    row("CamVid: label out of range", camvid_setup(broken_camvid(
        "label", lambda f: Image.fromarray(np.full((24, 32), 40, np.uint8)).save(f / "trainannot" / "0.png"))))
    row("CamVid: RGB mask instead of class indices", camvid_setup(broken_camvid(
        "rgbmask", lambda f: Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(f / "trainannot" / "0.png"))))
    row("CamVid: RGBA and greyscale frames", camvid_setup(broken_camvid("modes", lambda f: (
        Image.fromarray(np.full((24, 32, 4), 90, np.uint8)).save(f / "train" / "0.png"),
        Image.fromarray(np.full((24, 32), 90, np.uint8)).save(f / "train" / "1.png")))))
    unet = UNetSpec("mobilenet_v2", encoder_cut=-1)
    row("U-Net: missing encoder weights file", lambda: unet.load_encoder_weights(
        unet.build(3, 3), str(ROOT / "nowhere.pth")))
    torch_like = ROOT / "other.pth"
    import torch

    torch.save({"features.0.weight": torch.zeros(3)}, torch_like)
    row("U-Net: weights file of another network", lambda: unet.load_encoder_weights(
        unet.build(3, 3), str(torch_like)))
    row("Feature loss: missing VGG weights file", lambda: FeatureLoss(weights=str(ROOT / "vgg.pth")))

    (ROOT / "photos_empty").mkdir()
    row("Restoration: empty photo folder", lambda: RestorationDataModule(
        data_dir=str(ROOT / "photos_empty"), cache_dir=str(ROOT / "cache0")).prepare_data())
    photos = ROOT / "photos"
    photos.mkdir()
    for index in range(3):
        Image.fromarray(np.full((120, 160, 3), 50 * index, np.uint8)).save(photos / f"p{index}.png")
    Image.fromarray(np.full((120, 160, 4), 99, np.uint8)).save(photos / "rgba.png")
    Image.fromarray(np.full((120, 160), 99, np.uint8)).save(photos / "grey.png")
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    row("Restoration: corrupt photo among good ones (RGBA and greyscale are converted)",
        lambda: RestorationDataModule(data_dir=str(photos), cache_dir=str(ROOT / "cache1"),
                                      crappify_workers=1).prepare_data())
    row("GAN: missing pretrained generator checkpoint", lambda: GANModule(
        str(ROOT / "generator.ckpt"), critic=CriticSpec(width=8)))
    row("Config: unknown key", lambda: cli_main(["fit", "--config", str(CONFIGS / "human_numbers.yaml"),
                                                  "--model.learning_rate", "0.1"]))
    row("Config: wrong type", lambda: cli_main(["fit", "--config", str(CONFIGS / "human_numbers.yaml"),
                                                 "--data.batch_size", "many"]))


if __name__ == "__main__":
    main()
