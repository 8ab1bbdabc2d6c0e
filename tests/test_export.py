"""Export to ONNX and torch.export: each task's tiny model, checked against its checkpoint; the README's snippet."""

import json
import re
import subprocess
import sys

import numpy as np
import onnxruntime
import pytest
import torch
from PIL import Image

from cli import cli_main
from exporter import export
from predictor import load_predictor
from tests.conftest import CONFIGS, REPO
from tests.test_checkpoint_alone import ONE_STEP, fit_options, make_places, runs, sources  # noqa: F401

# A classifier, a segmenter, a GAN's generator (restoration and super-resolution export through the same
# image-to-image branch, from a plain checkpoint), and a stateful and a stateless language model.
TASKS = ["mnist_resnet", "camvid_unet", "restore_gan", "human_numbers", "human_numbers_model1"]


def _trained(config: str, sources, mnist_dir, tmp_path, trained_checkpoints):  # noqa: F811
    """The config's tiny one-step model (trained once per session), and the folders of its data."""
    places = make_places(tmp_path, sources, mnist_dir)
    if trained_checkpoints.get(config) is None:
        options, _ = fit_options(runs(config), places, sources, tmp_path)
        cli_main(["fit", "--config", str(CONFIGS / f"{config}.yaml"), *options, *ONE_STEP])
        trained_checkpoints.keep(config, tmp_path / "lightning_logs" / config / "checkpoints" / "last.ckpt")
    return trained_checkpoints.get(config), places


@pytest.mark.parametrize("config", TASKS)
def test_both_formats_match_the_checkpoint_on_two_sizes(config, sources, mnist_dir, tmp_path, monkeypatch,  # noqa: F811
                                                        trained_checkpoints):
    monkeypatch.chdir(tmp_path)
    checkpoint, _ = _trained(config, sources, mnist_dir, tmp_path, trained_checkpoints)
    for format, suffix in (("onnx", ".onnx"), ("torch_export", ".pt2")):
        output = tmp_path / "exported" / f"model{suffix}"
        assert export(str(checkpoint), format, str(output)) <= 1e-4  # checked on two batch sizes and image sizes
        info = json.loads(output.with_suffix(".json").read_text())
        assert info["format"] == format and info["file"] == output.name
    if config in ("camvid_unet", "restore_gan"):
        # Any height and width the U-Net takes, odd ones too, beyond the two the check used.
        session = onnxruntime.InferenceSession(str(tmp_path / "exported" / "model.onnx"))
        program = torch.export.load(tmp_path / "exported" / "model.pt2").module()
        image = torch.rand(3, 3, 45, 70)
        with torch.no_grad():
            exported = program(image)
        assert np.abs(session.run(None, {"image": image.numpy()})[0] - exported.numpy()).max() <= 1e-4


def test_export_without_onnx_names_the_extra(sources, mnist_dir, tmp_path, monkeypatch, capsys,  # noqa: F811
                                             trained_checkpoints):
    monkeypatch.chdir(tmp_path)
    checkpoint, _ = _trained("mnist_resnet", sources, mnist_dir, tmp_path, trained_checkpoints)
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # as if the extra were not installed
    with pytest.raises(SystemExit) as stopped:
        cli_main(["export", "--ckpt_path", str(checkpoint), "--format", "onnx", "--output", "model.onnx"])
    assert stopped.value.code == 2
    assert 'pip install -e ".[export]"' in capsys.readouterr().err


def test_the_readme_snippet_segments_a_frame_with_onnxruntime_alone(sources, mnist_dir, tmp_path, monkeypatch,  # noqa: F811
                                                                    trained_checkpoints):
    monkeypatch.chdir(tmp_path)
    checkpoint, places = _trained("camvid_unet", sources, mnist_dir, tmp_path, trained_checkpoints)
    readme = (REPO / "README.md").read_text()
    export_command = re.search(r"python cli\.py export [^\n]*camvid[^\n]*", readme).group(0).split()[2:]
    snippet = re.search(r"```python\n(import json\n.*?)```", readme, re.DOTALL).group(1)
    cli_main([str(checkpoint) if word.endswith("last.ckpt") else word for word in export_command])
    frame = places["frames"] / "val_000.webp"
    Image.open(frame).save(tmp_path / "frame.png")
    # Run as a user would: a fresh interpreter that cannot import the project.
    subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, check=True, env={"PATH": "/usr/bin:/bin"})
    with Image.open(tmp_path / "mask.png") as written:
        colours = np.asarray(written.convert("RGB"))
    expected = load_predictor(checkpoint)(frame).convert("RGB")
    assert np.array_equal(colours, np.asarray(expected))
