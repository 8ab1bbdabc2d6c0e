"""Every config trains under two-process CPU DDP (gloo); the processes end with identical weights."""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import CONFIGS, PROCESSES, REPO

pytestmark = PROCESSES

PHOTO_PAIRS = ("--data.image_size", "64", "--data.batch_size", "2", "--data.eval_batch_size", "2",
               "--data.crappify_workers", "1", "--data.cache_dir", "cache", "--model.lpips_weights", "{alexnet}")


FREEZE_ONE_EPOCH = ("--model.schedule.frozen_epochs", "1")  # two epochs: frozen, then unfrozen


@dataclass
class TinyRun:
    """What a config needs for a tiny run: a data fixture, the option naming it, extra options
    (``{data}`` in them stands for the fixture's path)."""

    fixture: str | None
    option: str = "--data.data_dir"
    extra: tuple[str, ...] = ()
    validates: bool = True


TINY_RUNS = {
    "mnist": TinyRun("mnist_dir"),
    "human_numbers": TinyRun(None, extra=("--data.batch_size", "8")),
    "camvid": TinyRun("camvid_dir", extra=(
        "--model.encoder_weights", "none", "--data.crop_size", "[32, 48]", "--data.batch_size", "2",
        "--data.eval_batch_size", "2", "--trainer.check_val_every_n_epoch", "1", *FREEZE_ONE_EPOCH)),
    "restore_generator": TinyRun("photos", extra=(*PHOTO_PAIRS, "--model.encoder_weights", "null",
                                                  *FREEZE_ONE_EPOCH)),
    "restore_critic": TinyRun("photos", option="--data.real_dir", extra=(
        "--data.generated_dir", "{data}", "--data.image_size", "64", "--data.batch_size", "2",
        "--model.critic.width", "8")),
    "restore_gan": TinyRun("photos", extra=(
        *PHOTO_PAIRS, "--model.generator_checkpoint", "null", "--model.critic_checkpoint", "null",
        "--model.critic.width", "8")),
    "superres": TinyRun("photos", extra=(
        *PHOTO_PAIRS, "--model.encoder_weights", "null", "--model.feature_weights", "null",
        "--model.generator_checkpoint", "null", "--data.crop_size", "null",
        "--trainer.check_val_every_n_epoch", "1", *FREEZE_ONE_EPOCH)),
    "wgan": TinyRun("photos", extra=("--data.batch_size", "2", "--data.num_workers", "0"), validates=False),
}


# One config per code path that DDP can break: each LightningModule with its datamodule, the stateless
# language model, and automatic precision (bf16-mixed where the CPU has it) with the feature loss. The
# other configs change only widths, encoders or the pixel loss of a module listed here; they train in
# one process in tests.test_checkpoint_alone.
DDP_CONFIGS = ("mnist_resnet", "human_numbers", "human_numbers_model1", "camvid_unet", "restore_generator",
               "restore_critic", "restore_gan", "superres_256", "wgan")


def _configs():
    for config in sorted(CONFIGS.glob("*.yaml")):
        prefix = next((p for p in TINY_RUNS if config.stem.startswith(p)), None)
        yield pytest.param(config, prefix, id=config.stem)


def test_every_config_has_a_tiny_run():
    assert all(prefix is not None for _, prefix in (param.values for param in _configs()))


def _module_and_data(config: Path) -> tuple[str, str]:
    settings = yaml.safe_load(config.read_text())
    return settings["model"]["class_path"], settings["data"]["class_path"]


def test_every_module_and_datamodule_pair_trains_under_ddp():
    covered = {_module_and_data(CONFIGS / f"{name}.yaml") for name in DDP_CONFIGS}
    for config in sorted(CONFIGS.glob("*.yaml")):
        assert _module_and_data(config) in covered, f"{config.name}: add a config of its module to DDP_CONFIGS"


@pytest.mark.parametrize("config, prefix", [p for p in _configs() if p.values[0].stem in DDP_CONFIGS])
def test_two_process_ddp_fit(config, prefix, tmp_path, request):
    run = TINY_RUNS[prefix]
    path = str(request.getfixturevalue(run.fixture)) if run.fixture else ""
    data = [run.option, path] if run.fixture else []
    extra = [option.format(data=path, alexnet=request.getfixturevalue("alexnet_file")) for option in run.extra]
    command = [
        sys.executable, str(REPO / "cli.py"), "fit", "--config", str(config), *data, *extra,
        # Plain ddp for every config: GANs and frozen encoders need no find_unused_parameters.
        "--trainer.accelerator", "cpu", "--trainer.strategy", "ddp", "--trainer.devices", "2",
        "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2",
        "--trainer.num_sanity_val_steps", "0",
        "--trainer.callbacks+=tests.ddp_probe.WeightDigest",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-3000:]
    reports = [json.loads((tmp_path / f"ddp_probe.rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["world_size"] for r in reports] == [2, 2]
    assert reports[0]["global_step"] == reports[1]["global_step"] > 0
    assert reports[0]["epoch"] == 2  # past the unfreeze, where the config freezes its encoder
    if FREEZE_ONE_EPOCH[0] in run.extra:
        # Under DDP the frozen encoder computes gradients (DDP's exchange wants one for every
        # parameter) and drops them before the step: in the frozen epoch its weights must not move,
        # and once unfrozen they learn.
        assert [r["frozen_moved_in_first_epoch"] for r in reports] == [0.0, 0.0]
        assert reports[0]["frozen_moved"] > 0
    # Gradients are averaged across processes, so both hold the same weights.
    assert reports[0]["weight_sum"] == reports[1]["weight_sum"]
    assert reports[0]["weight_abs_sum"] == reports[1]["weight_abs_sum"]
    # Validation metrics are reduced across processes: both report the same value.
    metrics = [r["metrics"] for r in reports]
    val_keys = [key for key in metrics[0] if key.startswith("val/")]
    assert bool(val_keys) == run.validates
    for key in val_keys:
        assert metrics[0][key] == pytest.approx(metrics[1][key], rel=1e-6), key


def _two_processes(config: str, options: list[str], workdir, timeout: float = 60, strategy: str = "ddp"):
    """Runs ``cli.py fit`` in two CPU processes; a hang becomes a failure after ``timeout`` seconds."""
    command = [sys.executable, str(REPO / "cli.py"), "fit", "--config", str(CONFIGS / config), *options,
               "--trainer.accelerator", "cpu", "--trainer.strategy", strategy, "--trainer.devices", "2",
               "--trainer.num_sanity_val_steps", "0", "--trainer.callbacks+=tests.ddp_probe.WeightDigest"]
    try:
        result = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
    except subprocess.TimeoutExpired:
        pytest.fail(f"the two processes hung: no end within {timeout:.0f} s")
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads((workdir / f"ddp_probe.rank{rank}.json").read_text()) for rank in (0, 1)]


def test_gan_processes_take_the_same_turns_when_their_local_losses_straddle_the_threshold(photos, alexnet_file,
                                                                                          tmp_path):
    # Rank 0's local critic loss sits 10 below the true one, rank 1's 10 above: either side of
    # the switcher's 0.65. The switcher must decide from the loss both processes agree on.
    reports = _two_processes("restore_gan.yaml", [
        "--model", "tests.ddp_probe.StraddlingGAN", "--data.data_dir", str(photos),
        *(option.format(alexnet=alexnet_file) for option in PHOTO_PAIRS),
        "--model.generator_checkpoint", "null", "--model.critic_checkpoint", "null", "--model.critic.width", "8",
        "--trainer.max_steps", "6", "--trainer.limit_val_batches", "1"], tmp_path)
    turns = [report["turns"] for report in reports]
    assert turns[0] == turns[1] and len(turns[0]) == 6
    assert "generator" in turns[0]  # the true loss is under the threshold once the critic has learnt a little
    assert reports[0]["weight_sum"] == reports[1]["weight_sum"]
    assert reports[0]["weight_abs_sum"] == reports[1]["weight_abs_sum"]


def test_weighted_loss_and_tta_agree_across_processes(camvid_dir, tmp_path):
    # Both processes count the class frequencies (into one cache file, at the same time), train on the
    # weights they imply past the unfreeze, and validate flipped views: weights and metrics must agree.
    reports = _two_processes("camvid_unet.yaml", [
        "--data.data_dir", str(camvid_dir), *TINY_RUNS["camvid"].extra, "--data.cache_dir", str(tmp_path / "cache"),
        "--model.loss", "weighted_cross_entropy", "--model.cross_entropy_weight", "0.5", "--model.tta.flip", "true",
        "--trainer.max_epochs", "2", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"],
        tmp_path, timeout=120)
    assert reports[0]["epoch"] == 2 and reports[0]["global_step"] == reports[1]["global_step"] > 0
    assert reports[0]["weight_sum"] == reports[1]["weight_sum"]
    assert reports[0]["weight_abs_sum"] == reports[1]["weight_abs_sum"]
    assert reports[0]["metrics"]["val/miou"] == pytest.approx(reports[1]["metrics"]["val/miou"], rel=1e-6)
    assert len(list((tmp_path / "cache").glob("*.json"))) == 1 and not list((tmp_path / "cache").glob("*.partial"))
