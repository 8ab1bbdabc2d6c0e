"""Multi-node launches on one machine: torchrun's two nodes, SLURM's variables, SLURM's stop signal and requeue."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import CONFIGS, PROCESSES, REPO

pytestmark = PROCESSES

TINY_MNIST = ["--config", str(CONFIGS / "mnist_resnet.yaml"), "--model.grid_size", "0",
              "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.enable_progress_bar", "false",
              "--trainer.callbacks", "[tests.ddp_probe.WeightDigest]", "--trainer.enable_model_summary", "false"]
TIMEOUT = 120  # seconds; a hang fails the test instead of the suite
REQUEUE_ATTEMPT = "Requeuing SLURM job 4242 failed"  # logged by Lightning after its signal checkpoint


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _environment(**variables) -> dict:
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith(("SLURM_", "TORCHELASTIC_", "MASTER_", "LOCAL_RANK", "WORLD_SIZE", "RANK"))}
    return {**clean, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", **variables}


def _start(command: list[str], folder: Path, env: dict, name: str) -> subprocess.Popen:
    """Starts ``command`` in ``folder``; its stderr goes to ``<name>.err`` there (a pipe could fill and block it)."""
    process = subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.DEVNULL,
                               stderr=(folder / f"{name}.err").open("w"))
    process.log = folder / f"{name}.err"
    return process


def _finish(processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + TIMEOUT
    for process in processes:
        try:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            pytest.fail(f"the launch hung for {TIMEOUT} s")
        assert process.returncode == 0, process.log.read_text()[-3000:]


def _digests(folder: Path) -> list[dict]:
    return [json.loads((folder / f"ddp_probe.rank{rank}.json").read_text()) for rank in (0, 1)]


def _assert_in_step(reports: list[dict]) -> None:
    assert [report["world_size"] for report in reports] == [2, 2]
    assert reports[0]["global_step"] == reports[1]["global_step"] > 0
    assert reports[0]["weight_sum"] == reports[1]["weight_sum"]
    assert reports[0]["weight_abs_sum"] == reports[1]["weight_abs_sum"]


def test_torchrun_two_nodes_on_localhost(mnist_dir, tmp_path):
    port = _free_port()
    processes = [_start(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
         "--node-rank", str(node), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
         "--rdzv-id", "lesson7-test", str(REPO / "cli.py"), "fit", *TINY_MNIST, "--data.data_dir", str(mnist_dir),
         "--trainer.num_nodes", "2", "--trainer.devices", "1", "--trainer.max_epochs", "1"],
        tmp_path, _environment(), f"node{node}") for node in (0, 1)]
    _finish(processes)
    _assert_in_step(_digests(tmp_path))


def _slurm_task(rank: int, tasks: int, port: int, words: list[str], folder: Path,
                name: str = "task") -> subprocess.Popen:
    """A process started as ``srun`` starts one: one task per node, the variables Lightning reads."""
    variables = {"SLURM_NTASKS": str(tasks), "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": str(tasks),
                 "SLURM_PROCID": str(rank), "SLURM_LOCALID": "0", "SLURM_NODEID": str(rank),
                 "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "lesson7", "SLURM_NODELIST": "127.0.0.1",
                 "MASTER_PORT": str(port)}
    return _start([sys.executable, str(REPO / "cli.py"), "fit", *words], folder, _environment(**variables),
                  f"{name}{rank}")


def test_slurm_variables_two_nodes(mnist_dir, tmp_path):
    port = _free_port()
    words = [*TINY_MNIST, "--data.data_dir", str(mnist_dir), "--trainer.num_nodes", "2", "--trainer.devices", "1",
             "--trainer.max_epochs", "1"]
    _finish([_slurm_task(rank, 2, port, words, tmp_path) for rank in (0, 1)])
    _assert_in_step(_digests(tmp_path))


def test_slurm_stop_signal_saves_a_checkpoint_that_the_requeued_job_resumes(mnist_dir, tmp_path):
    # batch 2: 256 steps an epoch, slow enough to be signalled in the middle of the second epoch
    words = [*TINY_MNIST, "--data.data_dir", str(mnist_dir), "--data.batch_size", "2", "--trainer.devices", "1",
             "--trainer.max_epochs", "3"]
    job = _slurm_task(0, 1, _free_port(), words, tmp_path)
    last = tmp_path / "lightning_logs" / "mnist_resnet" / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + TIMEOUT
    while not last.exists() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert last.exists(), job.log.read_text()[-3000:]
    time.sleep(0.2)
    job.send_signal(signal.SIGUSR1)  # what SLURM sends ahead of the time limit (--signal=SIGUSR1@90)
    saved = tmp_path / "hpc_ckpt_1.ckpt"
    # Lightning saves, then asks `scontrol` to requeue (absent here), and trains on until SLURM kills the
    # job; the job is frozen once the requeue attempt is logged, so it cannot reach the next epoch's end.
    while REQUEUE_ATTEMPT not in job.log.read_text() and job.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    job.send_signal(signal.SIGSTOP)
    assert saved.exists(), job.log.read_text()[-3000:]
    stopped_at = torch.load(saved, map_location="cpu", weights_only=True)["global_step"]
    at_epoch_end = torch.load(last, map_location="cpu", weights_only=True)["global_step"]
    job.kill()  # SLURM ends the job; the requeued one starts afresh
    job.wait()
    assert stopped_at > at_epoch_end  # mid-epoch: the signal's checkpoint is the newer one

    requeued = _slurm_task(0, 1, _free_port(), [*words, "--ckpt_path", "last"], tmp_path, "requeued")
    _finish([requeued])
    log = requeued.log.read_text()
    restored = next(line for line in log.splitlines() if line.startswith("Restoring states from the checkpoint"))
    assert restored.endswith(saved.name)  # the signal's checkpoint, not the last epoch-end one
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == 2  # the run went on to its end
