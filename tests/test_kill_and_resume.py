"""A run killed with SIGKILL mid-epoch and resumed from last.ckpt ends where an uninterrupted run ends."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from tests.conftest import CONFIGS, PROCESSES, REPO

pytestmark = PROCESSES

EPOCHS = 3


def _fit(workdir: Path, mnist_dir: Path, *extra: str) -> subprocess.Popen:
    command = [
        sys.executable, str(REPO / "cli.py"), "fit", "--config", str(CONFIGS / "mnist_resnet.yaml"),
        "--data.data_dir", str(mnist_dir), "--data.batch_size", "2", "--model.grid_size", "0",
        "--trainer.max_epochs", str(EPOCHS), "--trainer.enable_progress_bar", "false",
        "--trainer.callbacks", "[]", "--trainer.enable_model_summary", "false", *extra,
    ]
    workdir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def _weights(checkpoint: Path) -> dict:
    return torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path, mnist_dir):
    reference = _fit(tmp_path / "reference", mnist_dir)
    assert reference.wait(timeout=300) == 0, reference.stderr.read().decode()[-2000:]
    checkpoints = Path("lightning_logs/mnist_resnet/checkpoints")
    reference_last = tmp_path / "reference" / checkpoints / "last.ckpt"

    killed = _fit(tmp_path / "killed", mnist_dir)
    killed_last = tmp_path / "killed" / checkpoints / "last.ckpt"
    deadline = time.monotonic() + 300
    # Wait for the end of the first epoch, then let the second epoch get under way.
    while not killed_last.exists() and time.monotonic() < deadline and killed.poll() is None:
        time.sleep(0.05)
    assert killed_last.exists(), "no checkpoint before the kill"
    time.sleep(0.3)
    assert killed.poll() is None, "the run finished before it could be killed"
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    epoch_at_kill = torch.load(killed_last, map_location="cpu", weights_only=False)["epoch"]
    assert epoch_at_kill < EPOCHS - 1

    resumed = _fit(tmp_path / "killed", mnist_dir, "--ckpt_path", "last")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read().decode()[-2000:]
    assert torch.load(killed_last, map_location="cpu", weights_only=False)["epoch"] == EPOCHS - 1

    expected, actual = _weights(reference_last), _weights(killed_last)
    assert expected.keys() == actual.keys()
    for name in expected:
        # On the CPU the resumed run repeats the same arithmetic: the weights are bit-identical.
        assert torch.equal(expected[name], actual[name]), name
