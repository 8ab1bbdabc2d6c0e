"""Several recorded runs of one task side by side, seed by seed: what a change did to the result.

    python -m benchmarks.compare_records mnist mnist_lr01 mnist_ema   # print the table
    python -m benchmarks.compare_records --update_docs                # rewrite every such table in the docs

Each A/B run of ``benchmarks.reproduce`` (``--name``) keeps its own record in
``benchmarks/results``. Its full table says how long each seed took; the question an A/B asks is
shorter: did the change move the first metric on every seed, or only within the seeds' spread?
This table answers it in one row per record: the options it gave that not every record gave (so
the config as it was at the record's commit, plus these), the metric per seed, its lowest and
mean, and where it was measured. The docs hold it between
``<!-- compare:A,B,C -->`` and ``<!-- /compare:A,B,C -->``, so that the table is a function of the
records its marker names and nothing else.
"""

import argparse
import json
import re
import statistics
from pathlib import Path

from benchmarks.reproduce import DOCS, PLANS, REPO
from common.hardware import machine_in_words

RESULTS = REPO / "benchmarks" / "results"
MARKER = re.compile(r"<!-- compare:([\w,]+) -->\n(?:(.*?)\n)?<!-- /compare:\1 -->", re.DOTALL)


def option_groups(tokens: list[str]) -> list[str]:
    """``["--a", "1", "--b=2"]`` as ``["--a 1", "--b=2"]``: each option with its values."""
    groups: list[list[str]] = []
    for token in tokens:
        if token.startswith("--") or not groups:
            groups.append([token])
        else:
            groups[-1].append(token)
    return [" ".join(group) for group in groups]


def load(names: list[str], results: Path = RESULTS) -> list[dict]:
    """The records called ``names``, which must exist and belong to one task."""
    records = []
    for name in names:
        path = results / f"{name}.json"
        if not path.exists():
            raise SystemExit(f"error: no record {path} (run benchmarks.reproduce with --name {name} first)")
        records.append(json.loads(path.read_text()))
    tasks = {record["task"] for record in records}
    if len(tasks) > 1:
        raise SystemExit(f"error: records {names} belong to several tasks {sorted(tasks)}; compare one task's")
    return records


def render(records: list[dict]) -> str:
    """The table: one row per record, with the options that set it apart from the others."""
    plan = PLANS[records[0]["task"]]
    metric = next(iter(plan.metrics))
    seeds = sorted({run["seed"] for record in records for run in record["runs"]})
    shared = set.intersection(*(set(option_groups(record["extra_options"])) for record in records))
    lines = [f"| run | options added | {' | '.join(f'seed {seed}' for seed in seeds)} | lowest | mean | measured on |",
             "|---|---|" + "---|" * len(seeds) + "---|---|---|"]
    for record in records:
        values = {run["seed"]: run["metrics"][metric] for run in record["runs"] if metric in run["metrics"]}
        added = [option for option in option_groups(record["extra_options"]) if option not in shared]
        options = " ".join(f"`{option}`" for option in added) or "none: the config"
        cells = [f"{values[seed]:.{plan.digits}f}" if seed in values else "-" for seed in seeds]
        summary = [f"{min(values.values()):.{plan.digits}f}", f"{statistics.mean(values.values()):.{plan.digits}f}"] \
            if values else ["-", "-"]
        lines.append(f"| {record['name']} | {options} | " + " | ".join(cells + summary) +
                     f" | {machine_in_words(record['machine'])}, commit {record['commit']} |")
    lines.append("")
    lines.append(f"{plan.metrics[metric]} at the end of each run; each row's own table and command are in "
                 f"`benchmarks/results/<run>.md`.")
    return "\n".join(lines)


def update_docs(documents=DOCS, results: Path = RESULTS) -> list[Path]:
    """Rewrites every comparison table in ``documents`` from the records its marker names."""
    updated = []
    for document in documents:
        text = document.read_text()
        new = MARKER.sub(lambda match: f"<!-- compare:{match[1]} -->\n{render(load(match[1].split(','), results))}"
                                       f"\n<!-- /compare:{match[1]} -->", text)
        if new != text:
            document.write_text(new)
            updated.append(document)
    return updated


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="records to compare, one row each")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--update_docs", action="store_true",
                        help="rewrite every <!-- compare:... --> table in README.md and RESULTS.md")
    args = parser.parse_args(argv)
    if not args.names and not args.update_docs:
        parser.error("name the records to compare, or --update_docs")
    if args.names:
        print(render(load(args.names, args.results)))
    if args.update_docs:
        for document in update_docs(results=args.results):
            print(f"updated {document.relative_to(REPO)}")


if __name__ == "__main__":
    main()
