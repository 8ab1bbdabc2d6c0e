"""Training-step time of one config in float32 against bf16-mixed, side by side in one process.

Each round fits the config through ``cli.py``'s own command line for ``warmup + steps`` batches of
one epoch, once at ``--trainer.precision 32-true`` and once at ``bf16-mixed``, and times the steps
after the warm-up; the rounds alternate, so both precisions see the same machine load. Options after
``--`` go to the CLI as they are (data folders, weights, ``--model.schedule.frozen_epochs 0`` to time
the unfrozen steps). Runs go to a temporary folder. Example:

    python -m benchmarks.precision_step --config configs/camvid_unet.yaml --steps 8 --rounds 3 -- \\
        --data.data_dir ../shared/data/camvid --model.encoder_weights none

The metric side of the comparison comes from full fits (``benchmarks.reproduce``), not from here.
"""

import argparse
import os
import statistics
import tempfile

import torch

from benchmarks.timing import StepTimer
from common.hardware import describe_machine, machine_in_words, native_precision

PRECISIONS = ("32-true", "bf16-mixed")


def timed_fit(config: str, precision: str, warmup: int, steps: int, options: list[str]) -> float:
    """Seconds per training step of a short fit of ``config`` at ``precision``."""
    from cli import cli_main

    timer = StepTimer(warmup, stop="last_batch")
    cli_main(["fit", "--config", config, *options, "--trainer.precision", precision,
              "--trainer.max_epochs", "1", "--trainer.limit_train_batches", str(warmup + steps),
              "--trainer.limit_val_batches", "0", "--trainer.num_sanity_val_steps", "0",
              "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"],
             extra_callbacks=[timer])
    if not timer.timed_steps:
        raise SystemExit("no step was timed: the data give fewer batches than --warmup + --steps")
    return timer.seconds / timer.timed_steps


def compare(config: str, warmup: int, steps: int, rounds: int, options: list[str]) -> dict:
    """Alternating rounds of both precisions; medians of seconds per step and of the per-round ratios."""
    seconds = {precision: [] for precision in PRECISIONS}
    for _ in range(rounds):
        for precision in PRECISIONS:
            seconds[precision].append(timed_fit(config, precision, warmup, steps, options))
    speedups = [full / half for full, half in zip(seconds["32-true"], seconds["bf16-mixed"])]
    return {"seconds": {p: statistics.median(s) for p, s in seconds.items()},
            "speedup": statistics.median(speedups), "speedups": speedups}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("options", nargs="*", help="after --: options for cli.py fit")
    args = parser.parse_args(argv)
    config = os.path.abspath(args.config)
    # The runs happen in a temporary folder: paths given relative to here must still point there.
    options = [os.path.abspath(word) if not word.startswith("-") and os.path.exists(word) else word
               for word in args.options]
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="precision-step-") as folder:
        os.chdir(folder)
        try:
            result = compare(config, args.warmup, args.steps, args.rounds, options)
        finally:
            os.chdir(here)
    machine = machine_in_words(describe_machine())
    print(f"{os.path.basename(config)}: {args.steps} timed steps after {args.warmup} x {args.rounds} rounds, "
          f"{torch.get_num_threads()} threads; {machine}, native precision {native_precision()}")
    print("| precision | s/step (median) |")
    print("|---|---|")
    for precision, value in result["seconds"].items():
        print(f"| {precision} | {value:.4g} |")
    rounds = ", ".join(f"{value:.3g}" for value in result["speedups"])
    print(f"speed-up bf16-mixed/32-true: {result['speedup']:.3g}x (per round: {rounds})")


if __name__ == "__main__":
    main()
