"""The README's resume and predict commands run, word for word, on tiny data after a tiny fit."""

import shlex
from pathlib import Path

import pytest

from cli import cli_main
from tests.conftest import CONFIGS, REPO
from tests.test_checkpoint_alone import ONE_STEP, fit_options, make_places, runs, sources  # noqa: F401

# The README's data and input folders, and the tiny ones that stand in for them.
STAND_INS = {"../shared/data/camvid": "camvid", "../shared/data/pets/images": "photos", "../shared/data": "mnist",
             "my_digits/": "digits", "my_frames/": "frames", "my_damaged_photos/": "frames"}


def readme_commands() -> list[list[str]]:
    """Every ``python cli.py ... --ckpt_path ...`` command in the README's bash blocks, as words."""
    commands, block, lines = [], False, []
    for line in (REPO / "README.md").read_text().splitlines():
        if line.startswith("```"):
            block = line.strip() == "```bash"
            continue
        if block and not line.lstrip().startswith("#"):
            lines.append(line.split(" #")[0].rstrip())
    joined = "\n".join(lines).replace("\\\n", " ")
    for command in joined.splitlines():
        if command.startswith("python cli.py") and "--ckpt_path" in command and " export " not in command:
            commands.append(shlex.split(command)[2:])  # export's command runs in tests/test_export.py
    return commands


COMMANDS = readme_commands()


def test_the_readme_has_resume_and_predict_commands():
    assert {words[0] for words in COMMANDS} == {"fit", "predict"}
    assert len(COMMANDS) >= 5


@pytest.mark.parametrize("words", COMMANDS, ids=lambda words: f"{words[0]}-{Path(words[2]).stem}")
def test_readme_command_runs(words, sources, mnist_dir, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    config = Path(words[words.index("--config") + 1]).stem
    places = make_places(tmp_path, sources, mnist_dir)
    options, _ = fit_options(runs(config), places, sources, tmp_path)
    first = cli_main(["fit", "--config", str(CONFIGS / f"{config}.yaml"), *options, *ONE_STEP])
    command = [str(REPO / word) if word.startswith("configs/") else str(places.get(STAND_INS.get(word), word))
               for word in words]
    if words[0] == "fit":  # the resumed run: one more epoch, as small as the first
        command += ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "1",
                    "--trainer.limit_val_batches", "1"]
    cli = cli_main(command)
    if words[0] == "fit":
        assert cli.trainer.current_epoch == 2 and cli.trainer.global_step == 2 * first.trainer.global_step
    else:
        outputs = [path for path in (tmp_path / "predictions").rglob("*") if path.is_file()]
        assert outputs, "predict wrote nothing"
