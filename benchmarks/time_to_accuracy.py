"""Trains a config through the CLI and prints wall time per epoch and time to a target metric.

    python -m benchmarks.time_to_accuracy --target 0.995 -- \\
        --config configs/mnist_resnet.yaml --data.data_dir ../shared/data

Everything after ``--`` goes to ``cli.py fit``. The clock starts when fit starts (after imports
and data loading); the total wall time of the process is printed as well.
"""

import argparse
import sys
import time

STARTED = time.perf_counter()

from benchmarks.accuracy_clock import AccuracyClock  # noqa: E402
from cli import cli_main  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metric", default="val/acc")
    parser.add_argument("--target", type=float, required=True)
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    clock = AccuracyClock(args.metric, args.target)
    cli = cli_main(["fit", *argv[split + 1 :]], extra_callbacks=[clock])
    print(clock.report())
    final = float(cli.trainer.callback_metrics[args.metric])
    print(f"final {args.metric}: {final:.4f}; fit {clock.history[-1][1]:.1f} s; "
          f"process {time.perf_counter() - STARTED:.1f} s")


if __name__ == "__main__":
    main()
