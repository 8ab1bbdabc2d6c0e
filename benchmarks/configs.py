"""The configs the benchmarks read, so that they time the model and data ``cli.py fit`` trains."""

from pathlib import Path

import yaml

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


def read_config(name: str) -> dict:
    """The contents of ``configs/<name>``."""
    return yaml.safe_load((CONFIGS / name).read_text())


def model_options(config: dict) -> dict:
    """A copy of the config's model options (``model.init_args``), network sections included."""
    return dict(config["model"]["init_args"])


def data_options(config: dict) -> dict:
    """A copy of the config's data options (``data.init_args``)."""
    return dict(config["data"]["init_args"])


def progress_refresh(config: dict) -> int:
    """The config's progress-bar refresh rate: the bar's cost is part of what Lightning adds."""
    for callback in config["trainer"].get("callbacks", []):
        if callback["class_path"].endswith("TQDMProgressBar"):
            return callback.get("init_args", {}).get("refresh_rate", 1)
    return 1
