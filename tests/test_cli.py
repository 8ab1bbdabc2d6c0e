"""Every config through the CLI, plus the CLI's own behaviour: links, errors, lr_find, predict."""

import csv
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from cli import cli_main
from tests.conftest import CONFIGS

MNIST_CONFIGS = sorted(CONFIGS.glob("mnist_*.yaml"))


@pytest.mark.parametrize("config", MNIST_CONFIGS, ids=lambda p: p.stem)
def test_mnist_config_fast_dev_run(config, mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(["fit", "--config", str(config), "--data.data_dir", str(mnist_dir),
                    "--trainer.fast_dev_run", "2"])
    assert cli.trainer.state.finished
    assert cli.model.hparams.num_classes == 10 and cli.model.hparams.in_channels == 1


def test_configs_are_complete():
    for config in sorted(CONFIGS.glob("*.yaml")):
        sections = yaml.safe_load(config.read_text())
        assert {"model", "data", "trainer"} <= set(sections), config.name
        assert "logger" in sections["trainer"] and "callbacks" in sections["trainer"], config.name


def test_short_fit_logs_scalars_images_and_checkpoints(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", "--config", str(CONFIGS / "mnist_resnet.yaml"), "--data.data_dir", str(mnist_dir),
              "--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "2"])
    run = tmp_path / "lightning_logs" / "mnist_resnet" / "version_0"
    events = EventAccumulator(str(run), size_guidance={"images": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/acc", "lr-AdamW"} <= scalars
    assert "hp_metric" not in scalars  # no placeholder of -1
    assert "val/predicted_vs_true" in events.Tags()["images"]
    checkpoints = {p.name for p in (tmp_path / "lightning_logs" / "mnist_resnet" / "checkpoints").iterdir()}
    assert "last.ckpt" in checkpoints and any(name.startswith("best-") for name in checkpoints)


class CrashAtSecondEpoch(pl.Callback):
    """Stands in for a killed run: dies as the second epoch starts, after epoch 1's checkpoint."""

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == 1:
            # A real crash leaves the progress bar open; close it so it does not print at exit.
            trainer.progress_bar_callback.train_progress_bar.close()
            raise RuntimeError("simulated crash")


def test_resume_from_last_checkpoint(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = ["--config", str(CONFIGS / "mnist_resnet.yaml"), "--data.data_dir", str(mnist_dir),
              "--model.grid_size", "0", "--trainer.max_epochs", "2"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        cli_main(["fit", *common], extra_callbacks=[CrashAtSecondEpoch()])
    cli = cli_main(["fit", *common, "--ckpt_path", "last"])
    assert cli.trainer.current_epoch == 2
    assert cli.trainer.global_step == 2 * 4  # 512 images / 128 per batch, twice


def test_unknown_key_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(CONFIGS / "mnist_resnet.yaml"), "--model.learning_rate", "0.1"])
    assert exit_info.value.code != 0
    assert "learning_rate" in capsys.readouterr().err


def test_wrong_type_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(CONFIGS / "mnist_resnet.yaml"), "--data.batch_size", "many"])
    assert exit_info.value.code != 0
    assert "batch_size" in capsys.readouterr().err


def test_missing_data_without_network_is_one_clear_paragraph(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["fit", "--config", str(CONFIGS / "mnist_resnet.yaml"), "--data.data_dir", "empty",
                  "--data.mirrors", "[http://127.0.0.1:9/]"])
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message.startswith("error: MNIST files not found") and "--data.data_dir" in message
    assert "Traceback" not in message


def test_lr_find_saves_plot(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(["lr_find", "--config", str(CONFIGS / "mnist_resnet.yaml"), "--data.data_dir", str(mnist_dir),
                    "--num_training", "12", "--plot_file", "plots/lr.png"])
    with Image.open(tmp_path / "plots" / "lr.png") as plot:
        assert plot.size[0] > 100
    assert cli.model.hparams.schedule["lr"] == 0.05  # the sweep leaves the configured rate alone


def test_predict_writes_csv(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    digits = tmp_path / "digits"
    digits.mkdir()
    for index in range(3):
        Image.fromarray(np.full((28, 28), 40 * index, np.uint8)).save(digits / f"{index}.png")
    cli_main(["predict", "--config", str(CONFIGS / "mnist_resnet.yaml"), "--data.data_dir", str(mnist_dir),
              "--data.predict_dir", str(digits)])
    with open(Path("predictions") / "mnist_resnet.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [Path(row["file"]).name for row in rows] == ["0.png", "1.png", "2.png"]
    assert all(row["label"] in [str(i) for i in range(10)] and 0 < float(row["probability"]) <= 1 for row in rows)
