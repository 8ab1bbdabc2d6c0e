"""Every config trains under two-process CPU DDP (gloo); the processes end with identical weights."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import CONFIGS, REPO

# The data each config needs for a tiny run, keyed by config-name prefix: a fixture name and the
# option that points at it.
DATA_OPTION = {"mnist": ("mnist_dir", "--data.data_dir")}


def _configs():
    for config in sorted(CONFIGS.glob("*.yaml")):
        prefix = next((p for p in DATA_OPTION if config.stem.startswith(p)), None)
        if prefix is not None:
            yield pytest.param(config, prefix, id=config.stem)


@pytest.mark.parametrize("config, prefix", list(_configs()))
def test_two_process_ddp_fit(config, prefix, tmp_path, request):
    fixture, option = DATA_OPTION[prefix]
    data = request.getfixturevalue(fixture)
    command = [
        sys.executable, str(REPO / "cli.py"), "fit", "--config", str(config), option, str(data),
        "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.devices", "2",
        "--trainer.max_steps", "3", "--trainer.limit_val_batches", "2", "--trainer.num_sanity_val_steps", "0",
        "--trainer.callbacks+=tests.ddp_probe.WeightDigest",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"ddp_probe.rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert reports[0]["global_step"] == reports[1]["global_step"] == 3
    # Gradients are averaged across processes, so both hold the same weights.
    assert reports[0]["weight_sum"] == reports[1]["weight_sum"]
    assert reports[0]["weight_abs_sum"] == reports[1]["weight_abs_sum"]
    # Validation metrics are reduced across processes: both report the same value.
    metrics = [r["metrics"] for r in reports]
    val_keys = [key for key in metrics[0] if key.startswith("val/")]
    assert val_keys
    for key in val_keys:
        assert metrics[0][key] == pytest.approx(metrics[1][key], rel=1e-6), key
