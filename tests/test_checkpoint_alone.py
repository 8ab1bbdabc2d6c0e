"""A checkpoint is enough: every config trains a step, then its checkpoint alone serves every subcommand.

Each run trains with pretrained-weights files (encoders, the VGG of the feature loss) and earlier
stages' checkpoints where its config uses them. Then the checkpoint is moved to another folder,
every file the run started from is deleted, and ``validate``, ``test``, ``predict`` and the
one-call predictor run from the moved checkpoint alone; their outputs equal the trained model's.
"""

import csv
import os
import shutil
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
import yaml
from PIL import Image

from cli import cli_main
from modules.critic import CriticModule
from modules.nets.critic import CriticSpec
from predictor import Classification, Predictor, load_predictor
from tests.conftest import CONFIGS, write_photos
from tests.test_camvid_data import write_segnet_camvid
from tests.test_restoration import residual_generator, saved_checkpoint

PHOTO_DATA = ["--data.image_size", "64", "--data.crop_size", "null", "--data.batch_size", "2",
              "--data.eval_batch_size", "2", "--data.crappify_workers", "1", "--data.cache_dir", "cache"]
ONE_STEP = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1",
            "--trainer.limit_test_batches", "1", "--trainer.num_sanity_val_steps", "0",
            "--trainer.check_val_every_n_epoch", "1", "--trainer.enable_model_summary", "false"]


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """Data folders and pretrained-weights files, made once; each test links the weights it deletes."""
    root = tmp_path_factory.mktemp("sources")
    weights = root / "weights"
    weights.mkdir()
    torch.save({k: v for k, v in torchvision.models.mobilenet_v2().state_dict().items() if k.startswith("features.")},
               weights / "mobilenet_v2.pth")
    torch.save({k: v for k, v in torchvision.models.vgg16().state_dict().items() if k.startswith("features.")},
               weights / "vgg16.pth")
    torch.save(torchvision.models.resnet34().state_dict(), weights / "resnet34.pth")
    torch.save({k: v for k, v in torchvision.models.alexnet().state_dict().items() if k.startswith("features.")},
               weights / "alexnet.pth")
    photos = write_photos(root / "photos")
    return {"weights": weights, "photos": photos, "camvid": write_segnet_camvid(root / "camvid")}


@dataclass
class Run:
    """One config's tiny run: its fit options (``{name}`` is a file or folder made for the test), the
    files it starts from, what to predict, and which subcommands it has."""

    data: list[str]
    predict: list[str]
    item: str
    starts_from: dict[str, str] = field(default_factory=dict)  # option -> file the test provides
    validates: bool = True


def make_places(tmp_path: Path, sources: dict, mnist_dir: Path) -> dict[str, Path]:
    """The folders a run's options name: data, and inputs to predict (a digit, a photo, a CamVid frame)."""
    frames = tmp_path / "frames"
    frames.mkdir()
    for source in (sources["photos"] / "photo_01.png", sources["camvid"] / "val" / "val_000.webp"):
        shutil.copy(source, frames)
    digits = tmp_path / "digits"
    digits.mkdir()
    Image.fromarray(np.full((28, 28), 120, np.uint8)).save(digits / "3.png")
    return {"mnist": mnist_dir, "photos": sources["photos"], "camvid": sources["camvid"], "frames": frames,
            "digits": digits}


def fit_options(run: "Run", places: dict, sources: dict, tmp_path: Path) -> tuple[list[str], list[Path]]:
    """A tiny fit's options, and the files it starts from (made here: weights linked, checkpoints saved)."""
    started_from = []
    for name in set(run.starts_from.values()):
        path = tmp_path / "start" / name
        path.parent.mkdir(exist_ok=True)
        if name.endswith(".pth"):
            os.link(sources["weights"] / name, path)
        elif name == "critic.ckpt":
            saved_checkpoint(CriticModule(CriticSpec(width=8)), path)
        else:
            saved_checkpoint(residual_generator(residual=name == "residual.ckpt"), path)
        started_from.append(path)
    options = [word.format(**places) for word in run.data]
    options += [word for option, name in run.starts_from.items() for word in (option, str(tmp_path / "start" / name))]
    return options, started_from


def runs(config: str) -> Run:
    if config.startswith("mnist"):
        return Run(["--data.data_dir", "{mnist}"], ["--data.predict_dir", "{digits}"], "{digits}/3.png")
    if config.startswith("human_numbers"):
        return Run(["--data.batch_size", "8"], [], "eight thousand one hundred")
    if config.startswith("camvid"):
        weights = {"camvid_unet": "mobilenet_v2.pth", "camvid_unet_resnet34": "resnet34.pth"}[config]
        return Run(["--data.data_dir", "{camvid}", "--data.image_size", "null", "--data.crop_size", "[32, 48]",
                    "--data.batch_size", "2", "--data.eval_batch_size", "2"],
                   ["--data.predict_dir", "{frames}"], "{frames}/val_000.webp", {"--model.encoder_weights": weights})
    if config == "restore_critic":
        return Run(["--data.real_dir", "{photos}", "--data.generated_dir", "{photos}", "--data.image_size", "64",
                    "--data.batch_size", "2", "--model.critic.width", "8"],
                   ["--data.predict_dir", "{frames}"], "{frames}/photo_01.png")
    if config == "wgan":
        return Run(["--data.data_dir", "{photos}", "--data.image_size", "16", "--data.batch_size", "2",
                    "--data.num_workers", "0", "--model.net.width", "4", "--model.grid_size", "4"],
                   ["--data.predict_count", "2"], "0", validates=False)
    run = Run(["--data.data_dir", "{photos}", *PHOTO_DATA], ["--data.predict_dir", "{frames}"], "{frames}/photo_01.png")
    if config in ("restore_generator", "superres_mse"):
        run.starts_from = {"--model.encoder_weights": "mobilenet_v2.pth"}
    elif config == "restore_gan":
        run.starts_from = {"--model.generator_checkpoint": "generator.ckpt", "--model.critic_checkpoint": "critic.ckpt"}
    else:  # the later super-resolution stages
        run.starts_from = {"--model.generator_checkpoint": "residual.ckpt"}
    if config in ("superres", "superres_256"):
        run.starts_from["--model.feature_weights"] = "vgg16.pth"
    run.starts_from["--model.lpips_weights"] = "alexnet.pth"
    return run


def _outputs(config: Path) -> Path:
    """Where the config's prediction writer writes."""
    for callback in yaml.safe_load(config.read_text())["trainer"]["callbacks"]:
        options = callback.get("init_args") or {}
        if "output_file" in options or "output_dir" in options:
            return Path(options.get("output_file") or options["output_dir"])
    raise AssertionError(f"{config.name} has no prediction writer")


def _assert_same_prediction(expected, actual, decimals: int | None = None) -> None:
    """Equal predictions; probabilities compared to ``decimals`` places (the CSV's 4) when given."""
    if isinstance(expected, Image.Image):
        assert actual.mode == expected.mode and actual.size == expected.size
        assert np.array_equal(np.asarray(actual), np.asarray(expected))
    elif isinstance(expected, Classification) and decimals is not None:
        assert actual.label == expected.label
        assert round(actual.probability, decimals) == round(expected.probability, decimals)
    else:
        assert actual == expected


def _written(output: Path, expected, item: str):
    """The prediction the CLI wrote for ``item``, in the form the predictor returns."""
    if isinstance(expected, Classification):
        row = next(row for row in csv.DictReader(output.open()) if Path(row["file"]).name == Path(item).name)
        return Classification(row["label"], float(row["probability"]))
    if isinstance(expected, Image.Image):
        name = f"sample_{int(item):04d}.png" if item.isdigit() else f"{Path(item).stem}.png"
        with Image.open(output / name) as image:
            image.load()
            return image
    line = next(line for line in output.read_text().splitlines() if line.startswith(f"greedy:  {item} "))
    return line[len(f"greedy:  {item} "):]


def _metrics(cli, split: str) -> dict[str, float]:
    return {k: float(v) for k, v in cli.trainer.callback_metrics.items() if k.startswith(f"{split}/")}


@pytest.mark.parametrize("config", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_the_checkpoint_alone_validates_tests_and_predicts(config, sources, mnist_dir, tmp_path, monkeypatch,
                                                           trained_checkpoints):
    monkeypatch.chdir(tmp_path)
    run = runs(config.stem)
    places = make_places(tmp_path, sources, mnist_dir)
    options, started_from = fit_options(run, places, sources, tmp_path)
    item = run.item.format(**places)

    fit = cli_main(["fit", "--config", str(config), *options, *ONE_STEP])
    assert fit.trainer.global_step >= 1
    expected = Predictor(fit.model, fit.datamodule)(item)
    splits = ("val", "test") if run.validates else ()
    reference = {split: fit.trainer.validate(fit.model, datamodule=fit.datamodule, verbose=False)[0]
                 if split == "val" else fit.trainer.test(fit.model, datamodule=fit.datamodule, verbose=False)[0]
                 for split in splits}
    last = Path(yaml.safe_load(config.read_text())["last_checkpoint"]["dirpath"]) / "last.ckpt"
    trained_checkpoints.keep(config.stem, last)
    moved = tmp_path / "elsewhere" / "model.ckpt"
    moved.parent.mkdir()
    shutil.move(last, moved)
    shutil.rmtree("lightning_logs")
    for path in started_from:
        path.unlink()

    # validate and test: the checkpoint gives the model and the data options (image size, damage).
    limits = ["--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1"]
    # Without the VGG and AlexNet files, the feature-loss terms and LPIPS are left out, each with a warning.
    expected_warnings = {option: text for option, text in (
        ("--model.feature_weights", "feature-loss terms are not reported"),
        ("--model.lpips_weights", "LPIPS is not reported")) if option in run.starts_from}
    for subcommand, split in (("validate", "val"), ("test", "test")):
        if split not in splits:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            evaluated = cli_main([subcommand, "--config", str(config), "--ckpt_path", str(moved), *limits])
        said = " ".join(str(warning.message) for warning in caught)
        assert all(text in said for text in expected_warnings.values()), said
        scores = _metrics(evaluated, split)
        shared = set(scores) & set(reference[split])
        assert any(key in shared for key in (f"{split}/acc", f"{split}/psnr", f"{split}/loss")), sorted(scores)
        for key in shared:
            assert scores[key] == pytest.approx(reference[split][key], rel=1e-5, abs=1e-7), key
    if not run.validates:
        with pytest.raises(SystemExit) as stopped:
            cli_main(["test", "--config", str(config), "--ckpt_path", str(moved)])
        assert stopped.value.code == 2

    cli_main(["predict", "--config", str(config), "--ckpt_path", str(moved),
              *[word.format(**places) for word in run.predict]])
    _assert_same_prediction(expected, _written(_outputs(config), expected, item), decimals=4)
    _assert_same_prediction(expected, load_predictor(moved)(item))
