"""Every benchmark script runs one tiny step on synthetic data and prints the lines RESULTS.md quotes."""

import math
import re
import time

import lightning.pytorch as pl
import pytest
import torch
import torchvision

from benchmarks import (
    camvid_step,
    ddp_step,
    lm_step,
    mnist_step,
    precision_step,
    restoration_quality,
    restoration_step,
    time_to_accuracy,
    timing,
)
from modules.critic import CriticModule
from modules.gan import GANModule
from modules.losses.feature_loss import FeatureLoss
from modules.nets.critic import CriticSpec
from modules.switchers import FixedSwitcher
from tests.conftest import CONFIGS, PROCESSES
from tests.test_restoration import residual_generator, saved_checkpoint

ONE_STEP = ["--steps", "1", "--rounds", "1"]
RATIO = re.compile(r"^ratio lightning/plain(?: \(throughput\))?: (\S+) \(per round: (\S+)\)$", re.MULTILINE)
TABLE_ROW = re.compile(r"^\| (.+?) +\| +(\S+) \| +(\S+) \|(?: +(\S+) \|)?$", re.MULTILINE)


@pytest.fixture(autouse=True)
def _logs_in_tmp(tmp_path, monkeypatch):
    """The Lightning runs' TensorBoard logs go to the test's folder."""
    monkeypatch.setattr(timing, "LOG_DIR", str(tmp_path / "logs"))


def _ratio(output: str) -> float:
    """The throughput ratio a step benchmark ends with; it must be a positive, finite number."""
    match = RATIO.search(output)
    assert match, output
    ratio = float(match.group(1))
    assert math.isfinite(ratio) and ratio > 0
    assert float(match.group(2)) == ratio  # one round: its ratio is the median
    return ratio


def test_mnist_step(mnist_dir, capsys):
    mnist_step.main(["--data_dir", str(mnist_dir), "--batch_size", "16", *ONE_STEP])
    output = capsys.readouterr().out
    assert "MNIST resnet, bs 16, 1 timed steps x 1 rounds" in output
    assert re.search(r"^plain loop: \d+\.\d steps/s \(median\)$", output, re.MULTILINE)
    _ratio(output)


def test_camvid_step(camvid_dir, capsys):
    camvid_step.main(["--data_dir", str(camvid_dir), "--crop", "32", "48", "--batch_size", "2", *ONE_STEP])
    output = capsys.readouterr().out
    assert "CamVid U-Net mobilenet_v2 (cut -1), crops 32x48, bs 2, 1 timed steps x 1 rounds" in output
    assert re.search(r"^lightning: +\d+\.\d{3} s/step \(median\)$", output, re.MULTILINE)
    _ratio(output)


def test_lm_step(capsys):
    lm_step.main(["--epochs", "1", "--rounds", "1", "--clock", "cpu"])
    output = capsys.readouterr().out
    assert "human numbers model5, bs 64, bptt 20, 30 timed steps x 1 rounds, 1 threads, cpu clock" in output
    _ratio(output)


@pytest.fixture(scope="module")
def starting_points(tmp_path_factory):
    """What the restoration runs can start from: encoder weights and earlier stages' checkpoints, random."""
    folder = tmp_path_factory.mktemp("starting_points")
    features = torchvision.models.mobilenet_v2().state_dict()
    torch.save({k: v for k, v in features.items() if k.startswith("features.")}, folder / "mobilenet_v2.pth")
    return {
        "--encoder_weights": str(folder / "mobilenet_v2.pth"),
        "--generator_checkpoint": saved_checkpoint(residual_generator(residual=False), folder / "generator.ckpt"),
        "--critic_checkpoint": saved_checkpoint(CriticModule(CriticSpec(width=8)), folder / "critic.ckpt"),
    }


@pytest.mark.parametrize(("module", "starts_from"), [
    ("generator", ["--encoder_weights"]),
    ("superres", []),  # its generator's architecture from superres_mse.yaml, random weights
    ("critic", []),
    ("gan", ["--generator_checkpoint", "--critic_checkpoint"]),
    ("wgan", []),
])
def test_restoration_step(module, starts_from, photos, starting_points, tmp_path, capsys):
    data = ["--real_dir", str(photos), "--generated_dir", str(photos)] if module == "critic" else \
        ["--data_dir", str(photos), "--cache_dir", str(tmp_path / "cache")]
    sources = [word for option in starts_from for word in (option, starting_points[option])]
    size = "32" if module == "wgan" else "64"
    restoration_step.main(["--module", module, *data, *sources, "--image_size", size, "--batch_size", "2",
                           "--num_workers", "0", "--critic_steps", "1", "--peak_memory", *ONE_STEP])
    output = capsys.readouterr().out
    assert re.search(rf"^{module} \(\w+\.yaml.*\), (32x32|64x64), bs 2, 32-true, 1 timed steps x 1 rounds, cpu",
                     output, re.MULTILINE), output
    assert "peak memory (" in output
    _ratio(output)


def _as_cli_wrote_it(module: pl.LightningModule, path, upsample: str) -> str:
    """A checkpoint of ``module`` as ``cli.py fit`` writes one: it names its class and its data options."""
    saved_checkpoint(module, path)
    checkpoint = torch.load(path, weights_only=False)
    checkpoint["hyper_parameters"]["_class_path"] = f"{type(module).__module__}.{type(module).__qualname__}"
    checkpoint["datamodule_hyper_parameters"] = {"upsample": upsample}
    torch.save(checkpoint, path)
    return str(path)


def test_restoration_quality(photos, tmp_path, capsys):
    restored = _as_cli_wrote_it(residual_generator(residual=True), tmp_path / "restored.ckpt", "bicubic")
    gan = _as_cli_wrote_it(GANModule(critic=CriticSpec(width=8), switcher=FixedSwitcher(1), grid_size=0),
                           tmp_path / "gan.ckpt", "bilinear")
    vgg = tmp_path / "vgg16.pth"
    torch.save({f"features.{k}": v for k, v in FeatureLoss("vgg16").extractor.state_dict().items()}, vgg)
    grid = tmp_path / "grid.png"
    restoration_quality.main([
        "--data_dir", str(photos), "--cache_dir", str(tmp_path / "cache"), "--image_size", "64", "--batch_size", "4",
        "--feature_weights", str(vgg), "--checkpoint", f"residual={restored}", "--checkpoint", f"gan={gan}",
        "--grid", str(grid),
    ])
    output = capsys.readouterr().out
    assert "| image | PSNR (dB) | SSIM | feature loss |" in output
    rows = {name: [float(value) for value in values] for name, *values in TABLE_ROW.findall(output)}
    assert set(rows) == {"input, bicubic", "input, bilinear", "residual", "gan"}, output
    assert all(math.isfinite(value) for scores in rows.values() for value in scores)
    # The untrained residual U-Net returns its input: it scores as the bicubic input it was given.
    assert rows["residual"][:2] == pytest.approx(rows["input, bicubic"][:2], abs=0.05)
    assert grid.is_file() and f"saved to {grid}" in output


def test_time_to_accuracy(mnist_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    time_to_accuracy.main([
        "--target", "0.0", "--", "--config", str(CONFIGS / "mnist_resnet.yaml"), "--data.data_dir", str(mnist_dir),
        "--data.download", "false", "--data.batch_size", "16", "--trainer.max_epochs", "1",
        "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps",
        "0", "--trainer.enable_model_summary", "false",
    ])
    output = capsys.readouterr().out
    assert re.search(r"^epoch +0 +\d+\.\d s  val/acc \d\.\d{4}$", output, re.MULTILINE), output
    assert re.search(r"^val/acc >= 0\.0: \d+\.\d s$", output, re.MULTILINE), output
    assert re.search(r"^final val/acc: \d\.\d{4}; fit \d+\.\d s; process \d+\.\d s$", output, re.MULTILINE), output


@PROCESSES
def test_ddp_step(photos, tmp_path, capsys):
    # The GAN: the case whose config chooses its checkpoints by a metric the timed runs never compute.
    ddp_step.main(["--data_dir", str(photos), "--cache_dir", str(tmp_path / "cache"), "--cases", "gan",
                   "--image_size", "64", "--batch_size", "2", "--warmup", "1", *ONE_STEP])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| gan |")]
    assert len(rows) == 1
    plain, unused, ratio = (float(cell.split()[0]) for cell in rows[0].strip("| ").split(" | ")[1:])
    assert plain > 0 and unused > 0 and ratio == pytest.approx(unused / plain, rel=0.01)


def test_precision_step(mnist_dir, capsys):
    precision_step.main(["--config", str(CONFIGS / "mnist_resnet.yaml"), "--steps", "2", "--warmup", "1",
                         "--rounds", "1", "--", "--data.data_dir", str(mnist_dir), "--data.download", "false",
                         "--data.batch_size", "16", "--model.grid_size", "0"])
    output = capsys.readouterr().out
    rows = re.findall(r"^\| (32-true|bf16-mixed) \| (\S+) \|$", output, re.MULTILINE)
    seconds = {precision: float(value) for precision, value in rows}
    assert set(seconds) == {"32-true", "bf16-mixed"} and all(value > 0 for value in seconds.values()), output
    speedup = re.search(r"^speed-up bf16-mixed/32-true: (\S+)x \(per round: (\S+)\)$", output, re.MULTILINE)
    assert float(speedup.group(1)) == pytest.approx(seconds["32-true"] / seconds["bf16-mixed"], rel=0.01), output


@pytest.mark.parametrize("stop", ["epoch_end", "last_batch"])
def test_step_timer_stops_where_told(stop):
    timer = timing.StepTimer(warmup=1, stop=stop)
    for batch_idx in range(3):
        timer.on_train_batch_start(None, None, None, batch_idx)
        time.sleep(0.01)
        timer.on_train_batch_end(None, None, None, None, batch_idx)
    time.sleep(0.2)  # the epoch's end: checkpoints and logs
    timer.on_train_epoch_end(None, None)
    assert timer.timed_steps == 2
    if stop == "last_batch":
        assert 0.02 <= timer.seconds < 0.2
    else:
        assert timer.seconds >= 0.22


def test_step_timer_rejects_an_unknown_stop():
    with pytest.raises(ValueError, match="unknown stop"):
        timing.StepTimer(warmup=1, stop="validation")
