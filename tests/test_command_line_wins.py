"""With ``--ckpt_path``, options given on the command line beat the checkpoint's; the rest come from it."""

import shutil

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from PIL import Image

from cli import cli_main
from common.imagenet import normalize_uint8
from datamodules.restoration import resize_to_cover
from modules.one_cycle import Phase, PhasedOneCycle
from predictor import load_predictor
from tests.conftest import CONFIGS

MNIST = str(CONFIGS / "mnist_resnet.yaml")
LAST = "lightning_logs/mnist_resnet/checkpoints/last.ckpt"


@pytest.fixture
def trained(mnist_dir, tmp_path, monkeypatch):
    """A one-epoch MNIST run in ``tmp_path``; its options are the config's (lr 0.05, grid 32, smoothing 0.1)."""
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", "--config", MNIST, "--data.data_dir", str(mnist_dir), "--trainer.max_epochs", "1"])
    return ["--config", MNIST, "--data.data_dir", str(mnist_dir)]


def test_a_resumed_fit_trains_at_the_rate_given_on_the_command_line(trained):
    cli = cli_main(["fit", *trained, "--ckpt_path", "last", "--model.schedule.lr", "0.2", "--trainer.max_epochs", "2"])
    assert cli.model.hparams.schedule["lr"] == 0.2
    scheduler = cli.trainer.lr_scheduler_configs[0].scheduler
    assert scheduler.phases == [Phase(8, (0.2,), 0.3)]  # 2 epochs of 4 steps, at the new peak
    # The rates of the resumed steps are the new schedule's, from the step the first run stopped at.
    expected = PhasedOneCycle(torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))]), scheduler.phases)
    for _ in range(cli.trainer.global_step):
        expected.step()
    assert scheduler.get_last_lr() == pytest.approx(expected.get_last_lr())
    assert torch.load(LAST, weights_only=True)["hyper_parameters"]["schedule"]["lr"] == 0.2


@pytest.mark.parametrize("subcommand, option, value", [
    ("validate", "grid_size", 3), ("test", "label_smoothing", 0.3), ("predict", "grid_size", 5),
])
def test_an_option_on_the_command_line_beats_the_checkpoint(trained, subcommand, option, value, tmp_path):
    digits = tmp_path / "digits"
    digits.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(digits / "0.png")
    cli = cli_main([subcommand, *trained, "--ckpt_path", LAST, f"--model.{option}", str(value),
                    "--data.predict_dir", str(digits)])
    assert cli.model.hparams[option] == value
    assert cli.model.hparams.schedule["lr"] == 0.05  # the options not given come from the checkpoint


def test_checkpoint_options_beat_the_config_file(trained, tmp_path):
    # A run trained with other options than its config's is rebuilt with them even when the
    # config file is given again: only the command line beats the checkpoint.
    cli_main(["fit", *trained, "--model.net.widths", "[4, 8, 16, 8]", "--trainer.max_epochs", "1",
              "--last_checkpoint.dirpath", "narrow"])
    cli = cli_main(["validate", *trained, "--ckpt_path", "narrow/last.ckpt"])
    assert cli.model.hparams.net["widths"] == [4, 8, 16, 8]


def test_camvid_predict_with_encoder_weights_none_needs_no_weights_file(camvid_dir, tmp_path, monkeypatch):
    """The README's segmentation predict command, after the weights file it trained from is gone."""
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "mobilenet.pth"
    import torchvision

    torch.save({k: v for k, v in torchvision.models.mobilenet_v2().state_dict().items() if k.startswith("features.")},
               weights)
    config = ["--config", str(CONFIGS / "camvid_unet.yaml"), "--data.data_dir", str(camvid_dir)]
    cli_main(["fit", *config, "--model.encoder_weights", str(weights), "--data.crop_size", "[32, 48]",
              "--data.batch_size", "2", "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "1",
              "--trainer.check_val_every_n_epoch", "1"])
    weights.unlink()
    cli = cli_main(["predict", *config, "--model.encoder_weights", "none", "--data.predict_dir",
                    str(camvid_dir / "val"), "--ckpt_path", "lightning_logs/camvid_unet/checkpoints/last.ckpt"])
    assert cli.model.hparams.encoder_weights == "none"  # the command line's, not the deleted file
    assert len(list((tmp_path / "predictions" / "camvid_unet").glob("*.png"))) == 3


class GeneratorInputs(pl.Callback):
    """Records what the generator is fed during predict."""

    def __init__(self):
        self.inputs: list[torch.Tensor] = []

    def on_predict_start(self, trainer, pl_module):
        pl_module.generator.register_forward_pre_hook(lambda _module, args: self.inputs.append(args[0].detach()))


def test_superres_predict_feeds_the_net_the_upsampling_it_trained_on(photos, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", "--config", str(CONFIGS / "superres_mse.yaml"), "--data.data_dir", str(photos),
              "--data.cache_dir", "cache", "--data.image_size", "64", "--data.batch_size", "4",
              "--data.crappify_workers", "1", "--model.encoder_weights", "null", "--model.lpips_weights", "null",
              "--trainer.max_epochs", "1",
              "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "0"])
    inputs = tmp_path / "small"
    inputs.mkdir()
    shutil.copy(photos / "photo_00.png", inputs)
    # The restoration config upsamples bilinearly; the checkpoint's data options say bicubic, and win.
    recorder = GeneratorInputs()
    checkpoint = tmp_path / "lightning_logs" / "superres_mse" / "checkpoints" / "last.ckpt"
    cli_main(["predict", "--config", str(CONFIGS / "restore_generator.yaml"), "--data.predict_dir", str(inputs),
              "--ckpt_path", str(checkpoint)], extra_callbacks=[recorder])
    with Image.open(photos / "photo_00.png") as image:
        pixels = np.asarray(image.convert("RGB"))
    bicubic = normalize_uint8(torch.from_numpy(resize_to_cover(pixels, 64, Image.BICUBIC).copy())[None])
    bilinear = normalize_uint8(torch.from_numpy(resize_to_cover(pixels, 64, Image.BILINEAR).copy())[None])
    assert len(recorder.inputs) == 1 and recorder.inputs[0].shape == bicubic.shape
    assert torch.equal(recorder.inputs[0].contiguous(), bicubic)
    assert not torch.equal(bicubic, bilinear)  # the two would be told apart

    predictor = load_predictor(checkpoint)
    predictor.model.generator.register_forward_pre_hook(lambda _m, args: recorder.inputs.append(args[0].detach()))
    predictor(inputs / "photo_00.png")
    assert torch.equal(recorder.inputs[-1].contiguous(), bicubic)
