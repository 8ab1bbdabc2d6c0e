r"""Two-process step cost of plain ``ddp`` (the modules' own arrangement) against ``find_unused_parameters``.

Under plain DDP the GANs average the stepping network's gradients themselves and frozen encoders
compute gradients they then drop (see ``modules.adversarial`` and ``modules.freezing``); with
``ddp_find_unused_parameters_true`` DDP walks the autograd graph every step to find the
parameters that sat it out. Both fits run through ``cli.py`` in two CPU processes (gloo) on the
same tiny-to-small data, alternating for ``--rounds`` rounds; each reports the wall time of its
steps after ``--warmup`` (rank 0's clock). Runs from the repository root:

    python -m benchmarks.ddp_step --data_dir ../shared/data/pets/images --steps 6 --rounds 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl

REPO = Path(__file__).resolve().parent.parent
STRATEGIES = ("ddp", "ddp_find_unused_parameters_true")
# What each case trains: the config and the options that make it that case.
CASES = {
    "gan": ("restore_gan.yaml", ["--model.generator_checkpoint", "null", "--model.critic_checkpoint", "null",
                                 "--model.switcher", "modules.switchers.FixedSwitcher",
                                 "--model.switcher.critic_steps", "1", "--model.lpips_weights", "null"]),
    "frozen_encoder": ("restore_generator.yaml", ["--model.encoder_weights", "null", "--model.lpips_weights", "null",
                                                  "--model.schedule.frozen_epochs", "10"]),
    "unfrozen_encoder": ("restore_generator.yaml", ["--model.encoder_weights", "null", "--model.lpips_weights", "null",
                                                    "--model.schedule.frozen_epochs", "0"]),
}


class StepClock(pl.Callback):
    """Writes the wall time of the training steps after ``warmup`` to ``path`` (rank 0).

    Args:
        path: JSON file to write.
        warmup: steps left out of the clock.
    """

    def __init__(self, path: str, warmup: int = 2):
        self.path, self.warmup = Path(path), warmup
        self.started = self.ended = 0.0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.warmup and not self.started:
            self.started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.ended = time.perf_counter()  # the last step's end: checkpointing after it is left out

    def on_train_end(self, trainer, pl_module):
        if trainer.is_global_zero:
            steps = trainer.global_step - self.warmup
            self.path.write_text(json.dumps({"seconds": self.ended - self.started, "steps": steps}))


def timed_fit(case: str, strategy: str, args: argparse.Namespace, workdir: Path) -> float:
    """Seconds per step of one two-process fit."""
    config, options = CASES[case]
    report = workdir / f"{case}-{strategy}.json"
    command = [
        sys.executable, str(REPO / "cli.py"), "fit", "--config", str(REPO / "configs" / config),
        "--data.data_dir", args.data_dir, "--data.cache_dir", args.cache_dir, "--data.image_size", str(args.image_size),
        "--data.batch_size", str(args.batch_size), "--data.crappify_workers", "1", *options,
        "--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", strategy,
        "--trainer.max_steps", str(args.steps + args.warmup), "--trainer.limit_val_batches", "0",
        "--trainer.num_sanity_val_steps", "0", "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false", "--trainer.callbacks",
        json.dumps([{"class_path": "benchmarks.ddp_step.StepClock",
                     "init_args": {"path": str(report), "warmup": args.warmup}}]),
        "--trainer.enable_checkpointing", "false",
    ]
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(args.threads)})
    if result.returncode != 0:
        raise SystemExit(f"{case} with {strategy} failed:\n{result.stderr[-3000:]}")
    timing = json.loads(report.read_text())
    return timing["seconds"] / timing["steps"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", required=True, help="folder of photos")
    parser.add_argument("--cache_dir", default=str(Path(tempfile.gettempdir()) / "lesson7-bench" / "cache"))
    parser.add_argument("--cases", nargs="+", default=sorted(CASES), choices=sorted(CASES))
    parser.add_argument("--image_size", type=int, default=96)
    parser.add_argument("--batch_size", type=int, default=4, help="per process")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    args = parser.parse_args(argv)
    # The fits run in a folder of their own: paths given relative to here must still find their data.
    args.data_dir, args.cache_dir = str(Path(args.data_dir).resolve()), str(Path(args.cache_dir).resolve())
    print(f"two CPU processes (gloo), {args.threads} thread(s) each, {args.image_size} px, bs {args.batch_size} per "
          f"process, {args.steps} timed steps x {args.rounds} rounds")
    print("| case | plain ddp s/step | find_unused s/step | ratio find_unused / plain (rounds) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for case in args.cases:
            times = {strategy: [] for strategy in STRATEGIES}
            for _ in range(args.rounds):
                for strategy in STRATEGIES:
                    times[strategy].append(timed_fit(case, strategy, args, Path(folder)))
            ratios = [unused / plain for plain, unused in zip(times["ddp"], times[STRATEGIES[1]], strict=True)]
            print(f"| {case} | {statistics.median(times['ddp']):.3f} | {statistics.median(times[STRATEGIES[1]]):.3f} "
                  f"| {statistics.median(ratios):.3f} ({', '.join(f'{r:.3f}' for r in ratios)}) |")


if __name__ == "__main__":
    main()
