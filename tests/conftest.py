"""Shared fixtures: tiny synthetic datasets written to temporary folders, never downloads."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from datamodules.idx import write_idx

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
# Real data for the few tests that use it: $LESSON7_SHARED, else the folder beside the checkout.
SHARED = Path(os.environ.get("LESSON7_SHARED", REPO.parent / "shared"))


def synthetic_digits(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 uint8 "digits": class k is a bright 6x6 square at one of ten places, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, count).astype(np.uint8)
    images = rng.integers(0, 40, (count, 28, 28)).astype(np.uint8)
    for image, label in zip(images, labels):
        row, col = 3 + 12 * (label // 5), 2 + 5 * (label % 5)
        image[row : row + 6, col : col + 6] = 255
    return images, labels


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """A data_dir holding tiny MNIST-format files (gzip) in torchvision's MNIST/raw layout."""
    root = tmp_path_factory.mktemp("mnist")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, count, seed in (("train", 512, 0), ("t10k", 128, 1)):
        images, labels = synthetic_digits(count, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return root


@pytest.fixture
def photos(tmp_path):
    """Twelve small synthetic "photos" of different sizes and modes (RGB, palette, RGBA, grey)."""
    return write_photos(tmp_path / "photos")


def write_photos(folder: Path) -> Path:
    """Writes the twelve synthetic photos of the ``photos`` fixture into ``folder``."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(12):
        height, width = 150 + 7 * index, 200 - 3 * index
        gradient = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
        pixels = (gradient + rng.normal(0, 20, (height, width, 3))).clip(0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        mode = ["RGB", "P", "RGBA", "L"][index % 4]
        image = image.convert(mode) if mode != "P" else image.quantize(64)
        image.save(folder / f"photo_{index:02d}.png")
    return folder


@pytest.fixture
def camvid_dir(tmp_path) -> Path:
    """A tiny CamVid in SegNet's layout (see ``tests.test_camvid_data``)."""
    from tests.test_camvid_data import write_segnet_camvid

    return write_segnet_camvid(tmp_path / "camvid")


@pytest.fixture(scope="session")
def alexnet_file(tmp_path_factory) -> Path:
    """A (random) AlexNet's convolutional layers, saved as the offline LPIPS weights are."""
    import torchvision

    path = tmp_path_factory.mktemp("lpips") / "alexnet_features.pth"
    model = torchvision.models.alexnet()
    torch.save({k: v for k, v in model.state_dict().items() if k.startswith("features.")}, path)
    return path


def pytest_configure(config):
    """Under pytest-xdist every worker, and each process it starts, computes on one thread: two workers
    of two threads each on two cores would leave every small op waiting for a descheduled thread."""
    if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
        torch.set_num_threads(1)
        os.environ["OMP_NUM_THREADS"] = "1"


# Tests that start processes of their own (DDP, cluster launchers, a killed run) share one xdist group.
PROCESSES = pytest.mark.xdist_group("processes")


@pytest.fixture(autouse=True)
def _small_and_seeded():
    torch.manual_seed(0)
    yield


class TrainedCheckpoints:
    """The checkpoints of the tiny one-step fits of ``tests.test_checkpoint_alone``, kept by config
    name, so that tests that only need some trained model (export) do not train it again."""

    def __init__(self, folder: Path):
        self.folder = folder

    def keep(self, config: str, checkpoint: Path) -> None:
        shutil.copy(checkpoint, self.folder / f"{config}.ckpt")

    def get(self, config: str) -> Path | None:
        path = self.folder / f"{config}.ckpt"
        return path if path.exists() else None


@pytest.fixture(scope="session")
def trained_checkpoints(tmp_path_factory) -> TrainedCheckpoints:
    return TrainedCheckpoints(tmp_path_factory.mktemp("trained"))


@pytest.fixture
def one_thread():
    """Tiny tensors run as fast on one thread, and two threads crawl when other jobs share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
