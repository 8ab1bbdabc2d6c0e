"""``precision: null`` runs bf16-mixed where the hardware has bf16 units and float32 elsewhere."""

import pytest
import torch

import common.hardware
from cli import cli_main
from common.hardware import native_precision
from tests.conftest import CONFIGS


@pytest.fixture
def cpu_only(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize(("instructions", "expected"), [("AMX", "bf16-mixed"), ("AVX-512 BF16", "bf16-mixed"),
                                                         (None, "32-true")])
def test_the_cpu_decides(cpu_only, monkeypatch, instructions, expected):
    monkeypatch.setattr(common.hardware, "cpu_bf16", lambda: instructions)
    assert native_precision("auto") == expected
    assert native_precision("cpu") == expected


def test_a_gpu_without_bf16_runs_float32(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(common.hardware, "cpu_bf16", lambda: "AMX")  # the GPU runs the model, not the CPU
    assert native_precision("auto") == "32-true"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert native_precision("gpu") == "bf16-mixed"


def _fit(mnist_dir, *options: str):
    return cli_main(["fit", "--config", str(CONFIGS / "mnist_resnet.yaml"), "--data.data_dir", str(mnist_dir),
                     "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1",
                     "--trainer.limit_val_batches", "1", "--trainer.accelerator", "cpu", *options])


@pytest.mark.parametrize(("instructions", "expected"), [("AMX", "bf16-mixed"), (None, "32-true")])
def test_null_in_the_config_is_the_native_precision(mnist_dir, tmp_path, monkeypatch, instructions, expected):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(common.hardware, "cpu_bf16", lambda: instructions)
    cli = _fit(mnist_dir, "--trainer.precision", "null")
    assert cli.trainer.precision == expected and cli.trainer.state.finished


def test_a_precision_given_is_kept(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(common.hardware, "cpu_bf16", lambda: "AMX")
    assert _fit(mnist_dir, "--trainer.precision", "32-true").trainer.precision == "32-true"
