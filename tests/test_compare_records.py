"""Recorded A/B runs side by side: options added, the metric per seed, and the docs' tables kept current."""

import json

import pytest

from benchmarks.compare_records import MARKER, RESULTS, load, main, option_groups, render, update_docs
from benchmarks.reproduce import DOCS

MACHINE = {"cpu": "Test CPU", "cores": 2, "cpu_bf16": None, "gpu": None}


def record(name: str, options: list[str], accuracies: dict[int, float], task: str = "mnist") -> dict:
    runs = [{"seed": seed, "metrics": {"val/acc": value}} for seed, value in accuracies.items()]
    return {"task": task, "name": name, "commit": "abc1234", "machine": MACHINE, "extra_options": options,
            "runs": runs}


def write(folder, *records) -> None:
    for each in records:
        (folder / f"{each['name']}.json").write_text(json.dumps(each))


def test_options_keep_their_values():
    assert option_groups(["--a", "1", "--b=2", "--c", "x", "y"]) == ["--a 1", "--b=2", "--c x y"]


def test_a_row_shows_only_the_options_that_set_it_apart():
    baseline = record("base", ["--trainer.enable_progress_bar", "false"], {0: 0.99, 1: 0.98})
    changed = record("lr", ["--trainer.enable_progress_bar", "false", "--model.lr", "0.1"], {0: 0.995, 1: 0.9})
    other = record("wd", ["--trainer.enable_progress_bar", "false", "--model.wd=0"], {0: 0.99, 1: 0.99})
    lines = render([baseline, changed, other]).splitlines()
    assert lines[0].startswith("| run | options added | seed 0 | seed 1 | lowest | mean |")
    assert lines[2].startswith("| base | none: the config | 0.9900 | 0.9800 | 0.9800 | 0.9850 | Test CPU")
    assert lines[3].startswith("| lr | `--model.lr 0.1` | 0.9950 | 0.9000 | 0.9000 | 0.9475 | Test CPU")
    assert lines[4].startswith("| wd | `--model.wd=0` |")
    assert "commit abc1234" in lines[3] and "progress_bar" not in "".join(lines[2:])
    shown_first = render([changed, other]).splitlines()[2]
    assert shown_first.startswith("| lr | `--model.lr 0.1` |")  # a first row with options of its own shows them


def test_a_seed_a_record_lacks_is_a_dash():
    table = render([record("base", [], {0: 0.99, 1: 0.98}), record("one", ["--x", "1"], {1: 0.97})])
    assert "| one | `--x 1` | - | 0.9700 | 0.9700 | 0.9700 |" in table


def test_missing_records_and_mixed_tasks_are_named(tmp_path):
    with pytest.raises(SystemExit, match="nothing.json"):
        load(["nothing"], tmp_path)
    write(tmp_path, record("a", [], {0: 0.9}), record("b", [], {0: 0.5}, task="human_numbers"))
    with pytest.raises(SystemExit, match="several tasks"):
        load(["a", "b"], tmp_path)


def test_update_docs_rewrites_each_comparison_from_its_records(tmp_path, capsys):
    write(tmp_path, record("a", [], {0: 0.91}), record("b", ["--y", "2"], {0: 0.92}))
    document = tmp_path / "doc.md"
    document.write_text("intro\n<!-- compare:a,b -->\nstale\n<!-- /compare:a,b -->\nafter\n")
    assert update_docs([document], tmp_path) == [document]
    expected = render(load(["a", "b"], tmp_path))
    assert document.read_text() == f"intro\n<!-- compare:a,b -->\n{expected}\n<!-- /compare:a,b -->\nafter\n"
    assert update_docs([document], tmp_path) == []  # already current
    document.write_text("<!-- compare:b -->\n<!-- /compare:b -->\n")  # a new, empty table
    update_docs([document], tmp_path)
    assert document.read_text() == f"<!-- compare:b -->\n{render(load(['b'], tmp_path))}\n<!-- /compare:b -->\n"
    main(["a", "b", "--results", str(tmp_path)])
    assert expected in capsys.readouterr().out


@pytest.mark.parametrize("document", DOCS, ids=lambda path: path.name)
def test_the_docs_comparisons_are_their_records(document):
    for match in MARKER.finditer(document.read_text()):
        names = match[1].split(",")
        assert match[2] == render(load(names, RESULTS)), f"{document.name}'s comparison of {names} is stale"
