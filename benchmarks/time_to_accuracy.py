"""Trains a config through the CLI and prints wall time per epoch and time to a target metric.

    python benchmarks/time_to_accuracy.py --target 0.995 -- \\
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metric", default="val/acc")
    parser.add_argument("--target", type=float, required=True)
    own, _, fit_args = " ".join(sys.argv[1:]).partition(" -- ")
    args = parser.parse_args(own.split())
    clock = AccuracyClock(args.metric, args.target)
    cli = cli_main(["fit", *fit_args.split()], extra_callbacks=[clock])
    print(clock.report())
    final = float(cli.trainer.callback_metrics[args.metric])
    print(f"final {args.metric}: {final:.4f}; fit {clock.history[-1][1]:.1f} s; "
          f"process {time.perf_counter() - STARTED:.1f} s")


if __name__ == "__main__":
    main()
