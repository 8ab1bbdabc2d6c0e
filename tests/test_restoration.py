"""Restoration generator, critic and GAN: networks, steps, checkpoints, configs through the CLI."""

import shutil
from dataclasses import replace
from types import SimpleNamespace

import lightning.pytorch as pl
import pytest
import torch

from cli import cli_main
from common.errors import UserInputError
from modules.critic import CriticModule
from modules.gan import GANModule
from modules.losses.patch_bce import patch_bce
from modules.nets.critic import CriticSpec, gan_critic
from modules.restoration import GENERATOR, RestorationModule
from modules.switchers import FixedSwitcher
from tests.conftest import CONFIGS

CRITIC = CriticSpec(width=8)


def test_critic_scores_patches_and_every_parameter_learns():
    critic = gan_critic(width=8)
    logits = critic(torch.randn(2, 3, 128, 128))
    assert logits.shape == (2, 25)
    patch_bce(logits, torch.tensor([1.0, 0.0])).backward()
    assert all(p.grad is not None for p in critic.parameters())


def test_generator_output_shape_and_range():
    model = RestorationModule(grid_size=0)
    out = model(torch.randn(2, 3, 72, 88))
    assert out.shape == (2, 3, 72, 88)
    assert out.min() >= -3 and out.max() <= 3


def test_generator_overfits_one_pair():
    model = RestorationModule(replace(GENERATOR, self_attention=False), grid_size=0)
    damaged = torch.randn(2, 3, 32, 32)
    target = damaged.clamp(-2, 2)  # learn the identity: the last cross carries the input through
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    start = model.losses(model(damaged), target)["loss"].item()
    for _ in range(40):
        loss = model.losses(model(damaged), target)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.3 * start


def _gan_step_harness(model: GANModule):
    optimizers = [torch.optim.Adam(model.critic.parameters(), lr=1e-3),
                  torch.optim.Adam(model.generator.parameters(), lr=1e-3)]
    model.optimizers = lambda: optimizers
    model._trainer = SimpleNamespace(optimizers=optimizers, world_size=1)  # what the training step reads
    model.manual_backward = lambda loss: loss.backward()
    model.log = lambda *args, **kwargs: None
    model.log_dict = lambda *args, **kwargs: None


def test_gan_steps_change_only_the_network_whose_turn_it_is():
    model = GANModule(critic=CRITIC, switcher=FixedSwitcher(1), grid_size=0)
    _gan_step_harness(model)
    batch = {"input": torch.randn(2, 3, 64, 64), "target": torch.randn(2, 3, 64, 64)}
    generator_before = {k: v.detach().clone() for k, v in model.generator.named_parameters()}
    critic_before = {k: v.detach().clone() for k, v in model.critic.named_parameters()}

    out = model.training_step(batch, 0)  # critic turn
    assert torch.isfinite(out["loss"])
    assert any(not torch.equal(critic_before[k], v) for k, v in model.critic.named_parameters())
    assert all(torch.equal(generator_before[k], v) for k, v in model.generator.named_parameters())

    critic_before = {k: v.detach().clone() for k, v in model.critic.named_parameters()}
    model.critic.zero_grad(set_to_none=True)
    out = model.training_step(batch, 1)  # generator turn
    assert torch.isfinite(out["loss"])
    assert any(not torch.equal(generator_before[k], v) for k, v in model.generator.named_parameters())
    assert all(torch.equal(critic_before[k], v) for k, v in model.critic.named_parameters())
    # The critic only judged: no gradient was computed for its weights, and it can learn again.
    assert all(p.grad is None for p in model.critic.parameters())
    assert all(p.requires_grad for p in model.critic.parameters())


def test_critic_accuracy_reads_the_sign_of_the_mean_patch_logit():
    critic = CriticModule(CRITIC)
    critic.critic = torch.nn.Identity()  # the "image" is its own patch logits
    critic.log = lambda *args, **kwargs: None
    # Small logits, as early in training; a batch of real photos whose mean logits all lie in
    # [0, 1] must not be read as probabilities below 0.5.
    real = torch.tensor([[0.2, 0.1], [0.05, 0.0], [0.4, 0.3]])
    critic.validation_step({"image": real, "label": torch.ones(3)}, 0)
    critic.validation_step({"image": -real, "label": torch.zeros(3)}, 1)
    assert critic.val_acc.compute().item() == 1.0


def saved_checkpoint(module: pl.LightningModule, path) -> str:
    """Saves ``module`` as a Lightning checkpoint at ``path``; returns the path."""
    trainer = pl.Trainer(logger=False, enable_checkpointing=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return str(path)


def residual_generator(residual: bool = True) -> RestorationModule:
    """The restoration configs' generator, residual as super-resolution's or plain as restoration's."""
    return RestorationModule(replace(GENERATOR, residual=residual), grid_size=0)


def _start_fit(module: pl.LightningModule) -> None:
    """What a fit from scratch runs before training: the pretrained networks are loaded."""
    module._trainer = SimpleNamespace(ckpt_path=None)
    module.on_fit_start()
    module._trainer = None


@pytest.mark.parametrize("residual", [False, True], ids=["plain", "residual"])
def test_gan_takes_both_networks_from_their_checkpoints_and_stands_alone(tmp_path, residual):
    generator = RestorationModule(replace(GENERATOR, residual=residual), grid_size=0)
    critic = CriticModule(CriticSpec(width=8, num_blocks=2))
    gan = GANModule(saved_checkpoint(generator, tmp_path / "generator.ckpt"),
                    saved_checkpoint(critic, tmp_path / "critic.ckpt"))
    # The architectures come from the checkpoints: nothing about them was restated.
    assert gan.hparams.generator["residual"] == residual and gan.hparams.critic["num_blocks"] == 2
    _start_fit(gan)
    images = torch.randn(1, 3, 64, 64)
    generator.eval(), gan.eval(), critic.eval()
    # Same weights; only the memory layout (channels-last in RestorationModule) differs.
    assert torch.allclose(gan(images), generator(images), atol=1e-5)
    assert torch.equal(gan.critic(images), critic(images))

    saved_checkpoint(gan, tmp_path / "gan.ckpt")
    (tmp_path / "generator.ckpt").unlink()  # the GAN checkpoint stands on its own
    (tmp_path / "critic.ckpt").unlink()
    restored = GANModule.load_from_checkpoint(tmp_path / "gan.ckpt").eval()
    assert torch.equal(restored(images), gan(images))


def test_gan_rejects_missing_or_mismatched_checkpoint(tmp_path):
    with pytest.raises(UserInputError, match="generator_checkpoint: checkpoint .*nope.ckpt does not exist"):
        GANModule(str(tmp_path / "nope.ckpt"), critic=CRITIC)
    critic = saved_checkpoint(CriticModule(CriticSpec(width=16)), tmp_path / "critic.ckpt")
    gan = GANModule(None, critic, critic=CRITIC)  # an architecture given that the weights do not fit
    with pytest.raises(UserInputError, match="critic_checkpoint: the 'critic' weights in .*critic.ckpt do not fit"):
        _start_fit(gan)


@pytest.fixture
def generated(photos, tmp_path):
    """Stand-in generator outputs: the photos themselves, blurred by a down-and-up resize."""
    from PIL import Image

    folder = tmp_path / "generated"
    folder.mkdir()
    for path in photos.iterdir():
        with Image.open(path) as image:
            small = image.convert("RGB").resize((image.width // 4, image.height // 4))
            small.resize(image.size).save(folder / f"{path.stem}.png")
    return folder


RESTORE_DATA = ["--data.image_size", "64", "--data.batch_size", "4", "--data.eval_batch_size", "4",
                "--data.crappify_workers", "1", "--model.lpips_weights", "null"]
TINY_CRITIC = ["--model.critic.width", "8"]
TINY = ["--model.encoder_weights", "null", "--trainer.fast_dev_run", "2"]


def test_restore_generator_config(photos, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(["fit", "--config", str(CONFIGS / "restore_generator.yaml"), "--data.data_dir", str(photos),
                    "--data.cache_dir", "cache", *RESTORE_DATA, *TINY])
    assert cli.trainer.state.finished
    assert list((tmp_path / "cache").iterdir())  # the crappified cache was written


def test_restore_generator_predict_writes_images_not_over_inputs(photos, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs = tmp_path / "inputs"
    shutil.copytree(photos, inputs)
    cli_main(["predict", "--config", str(CONFIGS / "restore_generator.yaml"), "--data.predict_dir", str(inputs),
              "--data.image_size", "64", "--model.encoder_weights", "null"])
    written = sorted(p.name for p in (tmp_path / "predictions" / "restore_generator").iterdir())
    assert written == sorted(f"{p.stem}.png" for p in photos.iterdir())
    assert sorted(p.name for p in inputs.iterdir()) == sorted(p.name for p in photos.iterdir())


def test_restore_critic_config(photos, generated, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(["fit", "--config", str(CONFIGS / "restore_critic.yaml"), "--data.real_dir", str(photos),
                    "--data.generated_dir", str(generated), "--data.image_size", "64", "--data.batch_size", "4",
                    *TINY_CRITIC, "--trainer.fast_dev_run", "2"])
    assert cli.trainer.state.finished and "val/acc" in cli.trainer.callback_metrics


def test_restore_gan_config(photos, alexnet_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(["fit", "--config", str(CONFIGS / "restore_gan.yaml"), "--data.data_dir", str(photos),
                    "--data.cache_dir", "cache", *RESTORE_DATA, "--model.generator_checkpoint", "null",
                    "--model.critic_checkpoint", "null", *TINY_CRITIC, "--trainer.fast_dev_run", "2",
                    "--model.lpips_weights", str(alexnet_file)])
    assert cli.trainer.state.finished
    assert {"val/lpips", "val/lpips_input", "val/psnr"} <= set(cli.trainer.logged_metrics)


def test_gan_without_lpips_weights_says_so_before_training(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:  # its best checkpoint is the one with the lowest LPIPS
        cli_main(["fit", "--config", str(CONFIGS / "restore_gan.yaml"), "--data.data_dir", str(photos),
                  "--data.cache_dir", "cache", *RESTORE_DATA, "--model.generator_checkpoint", "null",
                  "--model.critic_checkpoint", "null", *TINY_CRITIC, "--model.lpips_weights", "absent.pth"])
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert "--model.lpips_weights: file absent.pth does not exist" in message and "val/lpips" in message


SUPERRES_TINY = ["--model.encoder_weights", "null", "--model.feature_weights", "null",
                 "--model.generator_checkpoint", "null", *RESTORE_DATA]


def test_superres_config_trains_without_touching_the_extractor(photos, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ["fit", "--config", str(CONFIGS / "superres.yaml"), "--data.data_dir", str(photos),
            "--data.cache_dir", "cache", *SUPERRES_TINY, "--trainer.max_epochs", "1",
            "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]
    cli = cli_main(args, extra_callbacks=[])
    model = cli.model
    assert model.feature_loss is not None
    trained_params = {id(p) for group in cli.trainer.optimizers[0].param_groups for p in group["params"]}
    assert not trained_params & {id(p) for p in model.feature_loss.parameters()}
    assert not any(key.startswith("feature_loss.") for key in model.state_dict())
    logged = set(cli.trainer.logged_metrics)
    assert {"val/feat_0", "val/gram_2", "val/pixel", "val/psnr", "val/ssim"} <= logged


def test_extractor_weights_are_bit_identical_after_training(photos, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = cli_main(["fit", "--config", str(CONFIGS / "superres.yaml"), "--data.data_dir", str(photos),
                    "--data.cache_dir", "cache", *SUPERRES_TINY, "--trainer.max_epochs", "1",
                    "--trainer.limit_train_batches", "3", "--trainer.limit_val_batches", "0"], extra_callbacks=[])
    before = {k: v.clone() for k, v in cli.model.feature_loss.extractor.state_dict().items()}
    generator_before = {k: v.clone() for k, v in cli.model.generator.state_dict().items()}
    cli.trainer.fit_loop.max_epochs = 2
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    after = cli.model.feature_loss.extractor.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    # ...while the generator did train.
    assert any(not torch.equal(v, cli.model.generator.state_dict()[k]) for k, v in generator_before.items())


@pytest.mark.parametrize("config", ["superres_256_mse.yaml", "superres_256.yaml"])
def test_superres_256_starts_from_a_checkpoint(config, photos, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = RestorationModule(replace(GENERATOR, residual=True, self_attention=False), grid_size=0)
    saved_checkpoint(model, tmp_path / "small.ckpt")
    cli = cli_main(["fit", "--config", str(CONFIGS / config), "--data.data_dir", str(photos),
                    "--data.cache_dir", "cache", *SUPERRES_TINY, "--data.image_size", "128", "--data.crop_size", "64",
                    "--model.generator_checkpoint", str(tmp_path / "small.ckpt"), "--trainer.fast_dev_run", "1"])
    assert cli.trainer.state.finished
    # The network is the checkpoint's (the config states none) ...
    assert cli.model.hparams.generator == model.hparams.generator
    # ... one small optimizer step away from the checkpoint's weights, not from a fresh initialisation.
    saved = dict(model.generator.named_parameters())
    with torch.no_grad():
        moved = max(float((value - saved[key]).abs().max()) for key, value in cli.model.generator.named_parameters())
    assert moved < 0.01
