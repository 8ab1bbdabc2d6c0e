"""Rewrites a checkpoint saved before networks had sections of their own into today's layout.

    python scripts/upgrade_checkpoint.py OLD.ckpt [NEW.ckpt]

The weights keep their names (``net.``, ``generator.``, ``critic.``); only the hyperparameters
change: the flat architecture options (``encoder``, ``blur``, ``critic_features``, ...) become the
network's section (``generator: {encoder: ..., blur: ...}``) and renamed options get their new
names. ``cli.py`` and ``load_predictor`` read old checkpoints as they are; this makes them load
with ``SomeModule.load_from_checkpoint`` too. Without NEW.ckpt the file is rewritten in place.
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modules.checkpoints import read_checkpoint, upgrade_hyperparameters  # noqa: E402


def upgrade_checkpoint(source: Path, destination: Path, class_name: str = "") -> bool:
    """Writes ``source`` with upgraded hyperparameters to ``destination``; whether anything changed.

    ``class_name`` names the module class (``RestorationModule``, ...) for checkpoints that do not
    (the CLI's name theirs).
    """
    checkpoint = read_checkpoint(source, "checkpoint")
    hparams = checkpoint.get("hyper_parameters") or {}
    upgraded = upgrade_hyperparameters(hparams, class_name)
    checkpoint["hyper_parameters"] = upgraded
    torch.save(checkpoint, destination)
    return upgraded != hparams


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("destination", type=Path, nargs="?")
    parser.add_argument("--module", default="", help="module class name, for checkpoints not saved by cli.py")
    args = parser.parse_args(argv)
    changed = upgrade_checkpoint(args.source, args.destination or args.source, args.module)
    print(f"{args.destination or args.source}: {'upgraded' if changed else 'already in the current layout'}")


if __name__ == "__main__":
    main()
