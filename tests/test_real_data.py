"""A few checks on the real datasets; skipped where the shared data folder is absent."""

import pytest

from datamodules.mnist import MNISTDataModule
from tests.conftest import SHARED

MNIST_RAW = SHARED / "data" / "MNIST" / "raw"


@pytest.mark.skipif(not MNIST_RAW.is_dir(), reason=f"real MNIST not found at {MNIST_RAW}")
def test_real_mnist_counts_and_statistics():
    datamodule = MNISTDataModule(data_dir=str(SHARED / "data"), download=False)
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert len(datamodule.train_set) == 60_000 and len(datamodule.val_set) == 10_000
    # The well-known MNIST training-set statistics.
    assert datamodule.mean == pytest.approx(0.1307, abs=1e-4)
    assert datamodule.std == pytest.approx(0.3081, abs=1e-4)
    labels = datamodule.val_set.columns["label"]
    assert labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
