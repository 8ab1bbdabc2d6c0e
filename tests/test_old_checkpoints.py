"""Checkpoints saved before networks had sections of their own still load: same weight names, upgraded options."""

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from cli import cli_main
from modules.checkpoints import upgrade_hyperparameters
from modules.classifier import ClassifierModule
from modules.critic import CriticModule
from modules.gan import GANModule
from modules.nets.critic import CriticSpec
from predictor import load_predictor
from scripts.upgrade_checkpoint import upgrade_checkpoint
from tests.conftest import CONFIGS
from tests.test_restoration import residual_generator, saved_checkpoint

# Hyperparameters as the command line saved them before the change (read off such checkpoints).
OLD = {
    "ClassifierModule": {"arch": "resnet", "channels": [8, 16, 32, 16], "in_channels": 1, "num_classes": 10,
                         "lr": 0.05, "weight_decay": 0.01, "pct_start": 0.3, "label_smoothing": 0.1, "grid_size": 32,
                         "channels_last": True},
    "LanguageModelModule": {"arch": "model5", "vocab_size": 31, "hidden_dim": 64, "num_layers": 2, "lr": 0.01},
    "SegmentationModule": {"encoder": "mobilenet_v2", "encoder_weights": "gone.pth", "encoder_cut": -1,
                           "num_classes": 11, "norm": "none", "blur": False, "self_attention": False,
                           "last_cross": True, "frozen_epochs": 6},
    "RestorationModule": {"encoder": "mobilenet_v2", "encoder_weights": "gone.pth", "encoder_cut": -1, "blur": True,
                          "self_attention": True, "norm": "weight", "y_range": [-3.0, 3.0], "residual": True,
                          "loss": "mse", "init_checkpoint": "gone.ckpt"},
    "CriticModule": {"in_channels": 3, "features": 32, "num_blocks": 3, "dropout": 0.15, "lr": 0.001},
    "GANModule": {"generator_checkpoint": "g.ckpt", "critic_checkpoint": "c.ckpt", "encoder": "mobilenet_v2",
                  "encoder_cut": -1, "blur": True, "self_attention": True, "norm": "weight", "y_range": [-3.0, 3.0],
                  "residual": False, "critic_features": 32, "critic_blocks": 3, "critic_dropout": 0.15, "lr": 0.0001},
    "WGANModule": {"image_size": 64, "noise_dim": 100, "features": 64, "samples": 64, "clip": 0.01},
}
NEW_SECTIONS = {
    "ClassifierModule": {"net": {"arch": "resnet", "widths": [8, 16, 32, 16]},
                         "schedule": {"lr": 0.05, "pct_start": 0.3, "weight_decay": 0.01}},
    "LanguageModelModule": {"net": {"arch": "model5", "hidden_dim": 64, "num_layers": 2}, "schedule": {"lr": 0.01}},
    "SegmentationModule": {"net": {"encoder": "mobilenet_v2", "encoder_cut": -1, "norm": "none", "blur": False,
                                   "self_attention": False, "last_cross": True}, "schedule": {"frozen_epochs": 6}},
    "RestorationModule": {"generator": {"encoder": "mobilenet_v2", "encoder_cut": -1, "blur": True,
                                        "self_attention": True, "norm": "weight", "y_range": [-3.0, 3.0],
                                        "residual": True}, "generator_checkpoint": "gone.ckpt"},
    "CriticModule": {"critic": {"width": 32, "num_blocks": 3, "dropout": 0.15}, "schedule": {"lr": 0.001}},
    "GANModule": {"generator": {"encoder": "mobilenet_v2", "encoder_cut": -1, "blur": True, "self_attention": True,
                                "norm": "weight", "y_range": [-3.0, 3.0], "residual": False},
                  "critic": {"width": 32, "num_blocks": 3, "dropout": 0.15}},
    "WGANModule": {"net": {"noise_dim": 100, "width": 64}, "grid_size": 64, "image_size": 64},
}


RENAMED = {"channels": "widths", "features": "width", "critic_features": "width", "critic_blocks": "num_blocks",
           "critic_dropout": "dropout", "init_checkpoint": "generator_checkpoint", "samples": "grid_size"}


def _old_layout(new_hparams: dict, class_name: str) -> dict:
    """Today's hyperparameters of a module written back in the old flat layout (the inverse of the upgrade)."""
    old = {key: value for key, value in new_hparams.items() if not isinstance(value, dict) and key not in (
        "generator_checkpoint", "grid_size") or key in OLD[class_name]}
    for key in OLD[class_name]:
        if key in old:
            continue
        name = RENAMED.get(key, key)
        sections = [new_hparams["critic"]] if key.startswith("critic_") and "critic" in new_hparams else [
            value for value in new_hparams.values() if isinstance(value, dict)]
        old[key] = new_hparams[name] if name in new_hparams and not isinstance(new_hparams[name], dict) else next(
            section[name] for section in sections if name in section)
    return old


@pytest.mark.parametrize("class_name", sorted(OLD))
def test_flat_options_become_the_network_sections(class_name):
    old = {"_class_path": f"modules.somewhere.{class_name}", **OLD[class_name]}
    upgraded = upgrade_hyperparameters(old)
    for key, value in NEW_SECTIONS[class_name].items():
        assert upgraded[key] == value, key
    flat = {"encoder", "channels", "features", "critic_features", "samples", "init_checkpoint", "hidden_dim",
            "frozen_epochs"}
    assert not flat & set(upgraded)
    assert upgrade_hyperparameters(upgraded) == upgraded  # today's layout is left as it is
    assert upgrade_hyperparameters(OLD[class_name], class_name) == {k: v for k, v in upgraded.items()
                                                                     if k != "_class_path"}


def test_an_old_cli_checkpoint_predicts_as_before_and_converts(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = ["--config", str(CONFIGS / "mnist_resnet.yaml"), "--data.data_dir", str(mnist_dir)]
    cli_main(["fit", *config, "--model.net.arch", "densenet", "--trainer.max_epochs", "1"])
    new = tmp_path / "lightning_logs" / "mnist_resnet" / "checkpoints" / "last.ckpt"
    saved = torch.load(new, weights_only=True)
    saved["hyper_parameters"] = _old_layout(saved["hyper_parameters"], "ClassifierModule")
    assert "arch" in saved["hyper_parameters"] and "net" not in saved["hyper_parameters"]
    old = tmp_path / "old.ckpt"
    torch.save(saved, old)

    digits = tmp_path / "digits"
    digits.mkdir()
    Image.fromarray(np.full((28, 28), 90, np.uint8)).save(digits / "a.png")
    rows = {}
    for name, checkpoint in (("new", new), ("old", old)):
        cli_main(["predict", *config, "--ckpt_path", str(checkpoint), "--data.predict_dir", str(digits)])
        with open("predictions/mnist_resnet.csv") as handle:
            rows[name] = list(csv.DictReader(handle))
    assert rows["old"] == rows["new"]
    assert load_predictor(old)(digits / "a.png") == load_predictor(new)(digits / "a.png")

    # load_from_checkpoint upgrades the old options itself: the DenseNet comes back, not the default ResNet.
    current = ClassifierModule.load_from_checkpoint(new).eval()
    images = torch.randn(2, 1, 28, 28)
    assert torch.equal(ClassifierModule.load_from_checkpoint(old).eval()(images), current(images))
    assert upgrade_checkpoint(old, tmp_path / "upgraded.ckpt")
    assert torch.load(tmp_path / "upgraded.ckpt", weights_only=True)["hyper_parameters"]["net"]["arch"] == "densenet"
    upgraded = ClassifierModule.load_from_checkpoint(tmp_path / "upgraded.ckpt").eval()
    assert torch.equal(upgraded(images), current(images))


def test_the_gan_starts_from_old_generator_and_critic_checkpoints(tmp_path):
    parts = {}
    for name, module in (("RestorationModule", residual_generator(residual=False)),
                         ("CriticModule", CriticModule(CriticSpec(width=8, num_blocks=2)))):
        path = tmp_path / f"{name}.ckpt"
        saved_checkpoint(module, path)
        checkpoint = torch.load(path, weights_only=True)
        checkpoint["hyper_parameters"] = {"_class_path": f"modules.x.{name}",
                                          **_old_layout(checkpoint["hyper_parameters"], name)}
        torch.save(checkpoint, path)
        parts[name] = (str(path), module)
    gan = GANModule(parts["RestorationModule"][0], parts["CriticModule"][0])
    assert gan.hparams.critic == {"width": 8, "num_blocks": 2, "dropout": 0.15}
    assert gan.hparams.generator["residual"] is False
