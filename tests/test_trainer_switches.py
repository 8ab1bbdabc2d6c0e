"""Trainer options that switch a feature off run, although the configs list callbacks for it."""

import pytest
from lightning.pytorch.callbacks import Callback

from cli import cli_main
from tests.conftest import CONFIGS

FEW_STEPS = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]


def fit(mnist_dir, *options: str):
    return cli_main(["fit", "--config", str(CONFIGS / "mnist_resnet.yaml"), "--data.data_dir", str(mnist_dir),
                     *FEW_STEPS, *options])


def test_without_a_logger_nothing_is_logged_and_no_config_is_left_behind(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = fit(mnist_dir, "--trainer.logger", "false")
    assert cli.trainer.state.finished and cli.trainer.logger is None
    assert not list(tmp_path.rglob("config.yaml")) and not list(tmp_path.rglob("events.out.tfevents*"))
    assert (tmp_path / "lightning_logs" / "mnist_resnet" / "checkpoints" / "last.ckpt").is_file()


def test_without_a_progress_bar(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = fit(mnist_dir, "--trainer.enable_progress_bar", "false")
    assert cli.trainer.state.finished and cli.trainer.progress_bar_callback is None
    assert list(tmp_path.rglob("config.yaml"))  # beside the logs, where the logger writes


def test_without_checkpoints(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = fit(mnist_dir, "--trainer.enable_checkpointing", "false")
    assert cli.trainer.state.finished and cli.trainer.checkpoint_callbacks == []
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.parametrize("callbacks", [["--trainer.callbacks=[]"],
                                       ["--trainer.callbacks+=EarlyStopping", "--trainer.callbacks.monitor=val/loss"]],
                         ids=["none", "one_more"])
def test_callbacks_from_the_command_line(mnist_dir, tmp_path, monkeypatch, callbacks):
    monkeypatch.chdir(tmp_path)
    cli = fit(mnist_dir, *callbacks)
    kinds = {type(callback).__name__ for callback in cli.trainer.callbacks}
    assert cli.trainer.state.finished and ("EarlyStopping" in kinds) == (len(callbacks) == 2)
    assert ("LearningRateMonitor" in kinds) == (len(callbacks) == 2)


MESSAGE = "`NeedsAnAbsentPackage` requires `absent`. Install it by running `pip install absent`."


class NeedsAnAbsentPackage(Callback):
    """Stands for a callback whose optional package is not installed (``RichModelSummary`` without rich)."""

    def __init__(self):
        raise ModuleNotFoundError(MESSAGE)


def test_a_callback_whose_package_is_missing_stops_with_one_line(mnist_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        fit(mnist_dir, f"--trainer.callbacks+={__name__}.NeedsAnAbsentPackage")
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"error: {MESSAGE}"
