"""Every config trains under two-process CPU DDP (gloo); the processes end with identical weights."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest

from tests.conftest import CONFIGS, REPO

PHOTO_PAIRS = ("--data.image_size", "64", "--data.batch_size", "2", "--data.eval_batch_size", "2",
               "--data.crappify_workers", "1", "--data.cache_dir", "cache")


@dataclass
class TinyRun:
    """What a config needs for a tiny run: a data fixture, the option naming it, extra options
    (``{data}`` in them stands for the fixture's path)."""

    fixture: str | None
    option: str = "--data.data_dir"
    extra: tuple[str, ...] = ()
    # GANs train one of two networks per step, and frozen encoders take no gradient for a few
    # epochs: their parameters go without gradients in some steps, which DDP must be told.
    strategy: str = "ddp"
    validates: bool = True


TINY_RUNS = {
    "mnist": TinyRun("mnist_dir"),
    "human_numbers": TinyRun(None, extra=("--data.batch_size", "8")),
    "camvid": TinyRun("camvid_dir", extra=(
        "--model.encoder_weights", "none", "--data.crop_size", "[32, 48]", "--data.batch_size", "2",
        "--data.eval_batch_size", "2", "--trainer.check_val_every_n_epoch", "1"),
        strategy="ddp_find_unused_parameters_true"),
    "restore_generator": TinyRun("photos", extra=(*PHOTO_PAIRS, "--model.encoder_weights", "null"),
                                 strategy="ddp_find_unused_parameters_true"),
    "restore_critic": TinyRun("photos", option="--data.real_dir", extra=(
        "--data.generated_dir", "{data}", "--data.image_size", "64", "--data.batch_size", "2",
        "--model.critic.width", "8")),
    "restore_gan": TinyRun("photos", extra=(
        *PHOTO_PAIRS, "--model.generator_checkpoint", "null", "--model.critic_checkpoint", "null",
        "--model.critic.width", "8"), strategy="ddp_find_unused_parameters_true"),
    "superres": TinyRun("photos", extra=(
        *PHOTO_PAIRS, "--model.encoder_weights", "null", "--model.feature_weights", "null",
        "--model.generator_checkpoint", "null", "--data.crop_size", "null",
        "--trainer.check_val_every_n_epoch", "1"), strategy="ddp_find_unused_parameters_true"),
    "wgan": TinyRun("photos", extra=("--data.batch_size", "2", "--data.num_workers", "0"),
                    strategy="ddp_find_unused_parameters_true", validates=False),
}


def _configs():
    for config in sorted(CONFIGS.glob("*.yaml")):
        prefix = next((p for p in TINY_RUNS if config.stem.startswith(p)), None)
        yield pytest.param(config, prefix, id=config.stem)


def test_every_config_has_a_tiny_run():
    assert all(prefix is not None for _, prefix in (param.values for param in _configs()))


@pytest.mark.parametrize("config, prefix", [p for p in _configs() if p.values[1] is not None])
def test_two_process_ddp_fit(config, prefix, tmp_path, request):
    run = TINY_RUNS[prefix]
    path = str(request.getfixturevalue(run.fixture)) if run.fixture else ""
    data = [run.option, path] if run.fixture else []
    extra = [option.format(data=path) for option in run.extra]
    command = [
        sys.executable, str(REPO / "cli.py"), "fit", "--config", str(config), *data, *extra,
        "--trainer.accelerator", "cpu", "--trainer.strategy", run.strategy, "--trainer.devices", "2",
        "--trainer.max_steps", "3", "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "2",
        "--trainer.num_sanity_val_steps", "0",
        "--trainer.callbacks+=tests.ddp_probe.WeightDigest",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"ddp_probe.rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert reports[0]["global_step"] == reports[1]["global_step"] > 0
    # Gradients are averaged across processes, so both hold the same weights.
    assert reports[0]["weight_sum"] == reports[1]["weight_sum"]
    assert reports[0]["weight_abs_sum"] == reports[1]["weight_abs_sum"]
    # Validation metrics are reduced across processes: both report the same value.
    metrics = [r["metrics"] for r in reports]
    val_keys = [key for key in metrics[0] if key.startswith("val/")]
    assert bool(val_keys) == run.validates
    for key in val_keys:
        assert metrics[0][key] == pytest.approx(metrics[1][key], rel=1e-6), key
