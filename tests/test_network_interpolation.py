"""Network interpolation: the blend's arithmetic, the checkpoint it writes, and the callback at the end of a fit."""

from dataclasses import replace

import pytest
import torch

from cli import cli_main
from common.errors import UserInputError
from modules.checkpoints import load_module
from modules.interpolation import interpolate_weights, main, write_interpolated_checkpoint
from modules.restoration import GENERATOR, RestorationModule
from tests.conftest import CONFIGS
from tests.test_restoration import SUPERRES_TINY, saved_checkpoint

SMALL = replace(GENERATOR, residual=True, self_attention=False)


def _states():
    perceptual = {"generator.w": torch.zeros(3), "generator.bn.num_batches_tracked": torch.tensor(7),
                  "other.w": torch.full((2,), 5.0)}
    pixel = {"generator.w": torch.full((3,), 4.0), "generator.bn.num_batches_tracked": torch.tensor(1),
             "other.w": torch.zeros(2)}
    return perceptual, pixel


@pytest.mark.parametrize("fraction, expected", [(0.0, 0.0), (0.25, 1.0), (1.0, 4.0)])
def test_blend_is_linear_in_the_network_only(fraction, expected):
    perceptual, pixel = _states()
    blended = interpolate_weights(perceptual, pixel, fraction)
    assert torch.equal(blended["generator.w"], torch.full((3,), expected))
    assert int(blended["generator.bn.num_batches_tracked"]) == 7  # integer buffers: the fine-tune's
    assert torch.equal(blended["other.w"], perceptual["other.w"])  # outside the network: untouched


def test_blend_rejects_another_network_and_a_fraction_out_of_range():
    perceptual, pixel = _states()
    with pytest.raises(UserInputError, match=r"pixel.ckpt does not hold the same network: generator.w is \(3,\)"):
        interpolate_weights(perceptual, {**pixel, "generator.w": torch.zeros(4)}, 0.5, pixel_source="pixel.ckpt")
    with pytest.raises(UserInputError, match="generator.w .* lacks it"):
        interpolate_weights(perceptual, {"other.w": torch.zeros(2)}, 0.5)
    with pytest.raises(UserInputError, match="1.5 is not a fraction between 0 and 1"):
        interpolate_weights(perceptual, pixel, 1.5)


def test_written_checkpoint_loads_alone_with_blended_weights(tmp_path):
    torch.manual_seed(0)
    pixel, perceptual = RestorationModule(SMALL, grid_size=0), RestorationModule(SMALL, grid_size=0)
    saved_checkpoint(pixel, tmp_path / "pixel.ckpt")
    saved_checkpoint(perceptual, tmp_path / "perceptual.ckpt")
    main(["--perceptual", str(tmp_path / "perceptual.ckpt"), "--pixel", str(tmp_path / "pixel.ckpt"),
          "--pixel_fraction", "0.4", "--output", str(tmp_path / "blend.ckpt")])
    blend = RestorationModule.load_from_checkpoint(tmp_path / "blend.ckpt", map_location="cpu")
    assert blend.hparams.generator == perceptual.hparams.generator
    mine, theirs = dict(perceptual.generator.named_parameters()), dict(pixel.generator.named_parameters())
    for key, value in blend.generator.named_parameters():
        assert torch.allclose(value, 0.4 * theirs[key] + 0.6 * mine[key], atol=1e-6), key
    assert "optimizer_states" not in torch.load(tmp_path / "blend.ckpt", weights_only=True)


def test_cli_names_the_unreadable_file(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    perceptual = saved_checkpoint(RestorationModule(SMALL, grid_size=0), tmp_path / "perceptual.ckpt")
    with pytest.raises(SystemExit) as stopped:
        main(["--perceptual", perceptual, "--pixel", str(tmp_path / "notes.txt"), "--pixel_fraction", "0.3",
              "--output", str(tmp_path / "blend.ckpt")])
    assert stopped.value.code == 2
    assert "--pixel: cannot read checkpoint" in capsys.readouterr().err and not (tmp_path / "blend.ckpt").exists()
    with pytest.raises(UserInputError, match="--pixel_fraction: -0.1"):
        write_interpolated_checkpoint(perceptual, perceptual, -0.1, tmp_path / "blend.ckpt")


def _fit_superres_256(photos, start: str, *extra: str):
    return cli_main(["fit", "--config", str(CONFIGS / "superres_256.yaml"), "--data.data_dir", str(photos),
                     "--data.cache_dir", "cache", *SUPERRES_TINY, "--data.image_size", "128", "--data.crop_size", "64",
                     "--model.generator_checkpoint", start, "--trainer.max_epochs", "1",
                     "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", *BLEND, *extra])


# As a user adds it: `python cli.py fit --config configs/superres_256.yaml ... <these two>`.
BLEND = ["--trainer.callbacks+=callbacks.network_interpolation.NetworkInterpolation",
         "--trainer.callbacks.pixel_fraction=0.3"]


def test_superres_256_fit_also_writes_the_blend_of_its_end_and_its_start(photos, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    start = RestorationModule(SMALL, grid_size=0)
    cli = _fit_superres_256(photos, saved_checkpoint(start, tmp_path / "start.ckpt"))
    written = tmp_path / "lightning_logs" / "superres_256" / "checkpoints" / "interpolated.ckpt"
    blend = load_module(written, map_location="cpu")
    fraction = next(c for c in cli.trainer.callbacks if type(c).__name__ == "NetworkInterpolation").pixel_fraction
    began, ended = dict(start.generator.named_parameters()), dict(cli.model.generator.named_parameters())
    moved = [key for key in began if not torch.equal(began[key], ended[key])]
    assert moved  # the fit trained, so the blend differs from both ends
    for key, value in blend.generator.named_parameters():
        assert torch.allclose(value, fraction * began[key] + (1 - fraction) * ended[key], atol=1e-6), key
    # The run's own last checkpoint keeps the trained weights, not the blend.
    last = load_module(written.parent / "last.ckpt", map_location="cpu")
    assert all(torch.equal(value, ended[key]) for key, value in last.generator.named_parameters())


def test_blend_without_a_pixel_model_stops_before_training(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        cli_main(["fit", "--config", str(CONFIGS / "superres_256.yaml"), "--data.data_dir", str(photos),
                  "--data.cache_dir", "cache", *SUPERRES_TINY, "--data.image_size", "64",
                  "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", *BLEND])
    assert stopped.value.code == 2
    assert "NetworkInterpolation needs the pixel-loss model" in capsys.readouterr().err
    assert not (tmp_path / "lightning_logs" / "superres_256" / "checkpoints").exists()
