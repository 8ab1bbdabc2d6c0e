"""Reruns the configs behind the README's results tables, records what they gave, and writes the tables.

    python -m benchmarks.reproduce --task mnist --data_dir ../shared/data --update_docs
    python -m benchmarks.reproduce --task human_numbers --update_docs
    python -m benchmarks.reproduce --task mnist --data_dir DIR --quick --output /tmp/check   # smoke run

Each run is ``cli.py fit`` on a committed config with one seed. Its record holds the metrics at
the end, the epochs, the wall time of the fit and of every epoch, the seed and the precision; the
whole set holds the machine (CPU model, cores, bf16 instructions, GPU), the torch and Lightning
versions and the git commit. ``OUTPUT/<name>.json`` keeps the records and ``OUTPUT/<name>.md`` the
Markdown table made from them; ``--update_docs`` also writes that table into README.md and
benchmarks/RESULTS.md wherever they hold the record's markers (``<!-- reproduce:<name> -->`` ...
``<!-- /reproduce:<name> -->``; the name is the task's, or ``--name`` for an A/B run with extra
options), so that those tables hold nothing the command did not measure.
``--quick`` runs two batches of one epoch per seed: it checks the command, not the model;
``--from_record`` runs nothing and writes the table of the runs already recorded.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import lightning
import torch

from benchmarks.accuracy_clock import AccuracyClock
from cli import cli_main
from common.hardware import describe_machine, machine_in_words

REPO = Path(__file__).resolve().parents[1]
DOCS = (REPO / "README.md", REPO / "benchmarks" / "RESULTS.md")
QUICK = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "2",
         "--trainer.num_sanity_val_steps", "0"]


@dataclass(frozen=True)
class Plan:
    """The runs behind one results table: configs, each trained once per seed, and what is shown.

    ``metrics`` maps a logged metric to its column title; the first (higher is better) is shown
    with its peak over the epochs and summarised over the seeds by its lowest value; every metric
    by its mean. ``lesson`` holds the
    lesson's published figure for a config, with the notebook it comes from.
    """

    configs: tuple[str, ...]
    seeds: tuple[int, ...]
    metrics: dict
    lesson: dict = field(default_factory=dict)
    sources: str = ""
    needs_data: bool = True
    digits: int = 4


HUMAN_NUMBERS_NOTEBOOK = "fast.ai course-v3 nbs/dl1/lesson7-human-numbers.ipynb (sequence-first version)"
PLANS = {
    "mnist": Plan(("mnist_resnet",), (0, 1, 2, 3, 4), {"val/acc": "val/acc"}, {"mnist_resnet": 0.9952},
                  "fast.ai course-v3 nbs/dl1/lesson7-resnet-mnist.ipynb, the ResNet-ish net after 12 epochs"),
    "human_numbers": Plan(
        ("human_numbers_model1", "human_numbers_model2", "human_numbers_model3", "human_numbers_model4",
         "human_numbers"), (0, 1, 2), {"val/acc": "val/acc", "val/ppl": "val/ppl"},
        {"human_numbers_model1": 0.461, "human_numbers_model2": 0.408, "human_numbers_model3": 0.542,
         "human_numbers_model4": 0.577, "human_numbers": 0.755}, HUMAN_NUMBERS_NOTEBOOK + ", last epoch",
        needs_data=False, digits=3),
}


def git_commit() -> str:
    """The checkout's commit, ``+changes`` when files differ from it; ``unknown`` outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                                 capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+changes" if changed else "")


def run_once(config: str, seed: int, plan: Plan, options: list[str]) -> dict:
    """Fits ``config`` with ``seed``; returns what the run gave and how long it took."""
    clock = AccuracyClock(next(iter(plan.metrics)), float("inf"))
    cli = cli_main(["fit", "--config", str(REPO / "configs" / f"{config}.yaml"), "--seed_everything", str(seed),
                    *options], extra_callbacks=[clock])
    trainer = cli.trainer
    ends = [seconds for _, seconds, _ in clock.history]
    return {
        "config": config,
        "seed": seed,
        "precision": str(trainer.precision),
        "metrics": {name: float(trainer.callback_metrics[name]) for name in plan.metrics
                    if name in trainer.callback_metrics},
        "history": [value for _, _, value in clock.history],  # the first metric at each validation
        "epochs": trainer.current_epoch,
        "fit_s": round(time.perf_counter() - clock.started, 2),
        "epoch_s": [round(b - a, 2) for a, b in zip([0.0, *ends], ends)],
    }


def reproduce(task: str, data_dir: str | None, output: Path, quick: bool = False, seeds: list[int] | None = None,
              extra: list[str] | None = None, command: str = "", name: str | None = None,
              configs: list[str] | None = None) -> dict:
    """Runs the task's plan and writes ``output/<name>.json`` and ``.md``; returns the record.

    ``extra`` options go to every fit (an A/B run, recorded under its own ``name``; the task's
    name by default); ``command`` is the invocation, as recorded.
    """
    name = name or task
    plan = PLANS[task]
    if plan.needs_data and data_dir is None:
        raise SystemExit(f"error: --task {task} needs --data_dir (the folder its config reads)")
    options = (["--data.data_dir", data_dir] if plan.needs_data else []) + (QUICK if quick else []) + list(extra or [])
    seeds = list(seeds if seeds is not None else plan.seeds[:2] if quick else plan.seeds)
    record = {
        "task": task,
        "name": name,
        "command": command or f"python -m benchmarks.reproduce --task {task}",
        "quick": quick,
        "commit": git_commit(),
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "machine": describe_machine(),
        "extra_options": list(extra or []),
        "runs": [run_once(config, seed, plan, options) for config in configs or plan.configs for seed in seeds],
    }
    output.mkdir(parents=True, exist_ok=True)
    (output / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    (output / f"{name}.md").write_text(render(record) + "\n")
    return record


def render(record: dict) -> str:
    """The Markdown table of a record: a row per run, lowest and mean per config, the machine."""
    plan = PLANS[record["task"]]
    main, *others = plan.metrics

    def number(value: float | None) -> str:
        return "-" if value is None else f"{value:.{plan.digits}f}"

    titles = [f"{plan.metrics[main]} (peak)", *(plan.metrics[name] for name in others)]
    lesson = ["lesson"] if plan.lesson else []
    lines = ["| config | seed | " + " | ".join([*titles, *lesson]) + " | epochs | s/epoch (median) | fit |",
             "|---|---|" + "---|" * (len(titles) + len(lesson)) + "---|---|---|"]
    for config in dict.fromkeys(run["config"] for run in record["runs"]):
        runs = [run for run in record["runs"] if run["config"] == config]
        for index, run in enumerate(runs):
            metrics = run["metrics"]
            peak = f" ({number(max(run['history']))})" if run["history"] else ""
            cells = [number(metrics.get(main)) + peak, *(number(metrics.get(name)) for name in others)]
            if plan.lesson:
                cells.append(number(plan.lesson.get(config)) if index == 0 else "")
            per_epoch = f"{statistics.median(run['epoch_s']):.1f} s" if run["epoch_s"] else "-"
            lines.append(f"| `{config}.yaml` | {run['seed']} | " + " | ".join(cells) +
                         f" | {run['epochs']} | {per_epoch} | {run['fit_s']:.0f} s |")
        if len(runs) > 1:  # the lowest of the first metric, and the mean of each
            for word, summary, names in (("lowest", min, [main]), ("mean", statistics.mean, list(plan.metrics))):
                cells = [number(summary(run["metrics"][name] for run in runs)) if name in names and all(
                    name in run["metrics"] for run in runs) else "" for name in plan.metrics] + [""] * len(lesson)
                lines.append(f"| {word} | | " + " | ".join(cells) + " | | | |")
    precisions = ", ".join(sorted({run["precision"] for run in record["runs"]}))
    lines.append("")
    lines.append(f"Measured by `{record['command']}` on {machine_in_words(record['machine'])}; "
                 f"precision {precisions}; torch {record['torch']}, Lightning {record['lightning']}, "
                 f"commit {record['commit']}." + (f" Lesson: {plan.sources}." if plan.lesson else ""))
    return "\n".join(lines)


def update_docs(name: str, table: str, documents=DOCS) -> list[Path]:
    """Writes ``table`` between the record's markers in each document that has them; returns those."""
    start, end = f"<!-- reproduce:{name} -->", f"<!-- /reproduce:{name} -->"
    updated = []
    for document in documents:
        text = document.read_text()
        if start not in text:
            continue
        before, rest = text.split(start, 1)
        if end not in rest:
            raise SystemExit(f"error: {document} has {start} but no {end}")
        document.write_text(f"{before}{start}\n{table}\n{end}{rest.split(end, 1)[1]}")
        updated.append(document)
    return updated


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=sorted(PLANS), required=True)
    parser.add_argument("--data_dir", help="the data folder the task's config reads (--data.data_dir)")
    parser.add_argument("--output", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--seeds", type=int, nargs="+", help="instead of the plan's seeds")
    parser.add_argument("--configs", nargs="+", help="some of the plan's configs (an A/B run)")
    parser.add_argument("--name", help="record the runs under this name (an A/B run); the task's by default")
    parser.add_argument("--quick", action="store_true", help="two batches of one epoch per seed: a smoke run")
    parser.add_argument("--update_docs", action="store_true", help="write the table into README.md and RESULTS.md")
    parser.add_argument("--from_record", action="store_true",
                        help="run nothing: write the table of the recorded runs (OUTPUT/<name>.json)")
    args, extra = parser.parse_known_args(argv)
    unknown = set(args.configs or []) - set(PLANS[args.task].configs)
    if unknown:
        parser.error(f"--configs: {sorted(unknown)} are not in the {args.task} plan {list(PLANS[args.task].configs)}")
    if args.quick and args.update_docs:
        parser.error("--quick runs are not results: they cannot --update_docs")
    words = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m benchmarks.reproduce", *(w for w in words if w != "--update_docs")])
    if args.from_record:
        record = json.loads((args.output / f"{args.name or args.task}.json").read_text())
    else:
        record = reproduce(args.task, args.data_dir, args.output, args.quick, args.seeds, extra, command, args.name,
                           args.configs)
    table = render(record)
    print(table)
    if args.update_docs:
        for document in update_docs(record["name"], table):
            print(f"updated {document.relative_to(REPO)}")


if __name__ == "__main__":
    main()
