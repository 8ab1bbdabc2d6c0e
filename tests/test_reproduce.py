"""The reproduce command: a quick run records what it measured, and the docs' tables are its output."""

import json
import re

import pytest

from benchmarks.reproduce import DOCS, PLANS, main, render, update_docs
from tests.conftest import REPO

RESULTS = REPO / "benchmarks" / "results"


def test_a_quick_run_records_metrics_times_machine_and_versions(mnist_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    main(["--task", "mnist", "--data_dir", str(mnist_dir), "--quick", "--output", str(tmp_path / "out"),
          "--trainer.enable_progress_bar", "false"])
    record = json.loads((tmp_path / "out" / "mnist.json").read_text())
    assert record["quick"] and record["task"] == record["name"] == "mnist"
    assert record["torch"] and record["lightning"] and record["commit"]
    assert record["machine"]["cpu"] and record["machine"]["cores"] >= 1
    assert record["extra_options"] == ["--trainer.enable_progress_bar", "false"]
    assert [run["seed"] for run in record["runs"]] == list(PLANS["mnist"].seeds[:2])
    for run in record["runs"]:
        assert 0.0 <= run["metrics"]["val/acc"] <= 1.0
        assert run["epochs"] == 1 and len(run["epoch_s"]) == 1 and run["fit_s"] >= run["epoch_s"][0] > 0
        assert run["precision"] == "32-true"  # the config's
    table = (tmp_path / "out" / "mnist.md").read_text()
    assert table.strip() == render(record) and table in capsys.readouterr().out
    assert table.count("| `mnist_resnet.yaml` |") == 2 and "| lowest |" in table and "| mean |" in table
    assert record["machine"]["cpu"] in table and "--quick" in table


def test_quick_runs_cannot_update_the_docs(mnist_dir, tmp_path):
    with pytest.raises(SystemExit) as stopped:
        main(["--task", "mnist", "--data_dir", str(mnist_dir), "--quick", "--update_docs"])
    assert stopped.value.code == 2


def test_tables_go_between_the_markers_and_nowhere_else(tmp_path):
    document = tmp_path / "doc.md"
    document.write_text("intro\n<!-- reproduce:mnist -->\nold table\n<!-- /reproduce:mnist -->\nafter\n")
    other = tmp_path / "other.md"
    other.write_text("no markers\n")
    assert update_docs("mnist", "| new |", [document, other]) == [document]
    assert document.read_text() == "intro\n<!-- reproduce:mnist -->\n| new |\n<!-- /reproduce:mnist -->\nafter\n"
    assert other.read_text() == "no markers\n"
    document.write_text("<!-- reproduce:mnist -->\nunclosed\n")
    with pytest.raises(SystemExit, match="no <!-- /reproduce:mnist -->"):
        update_docs("mnist", "| new |", [document])


@pytest.mark.parametrize("document", DOCS, ids=lambda path: path.name)
def test_the_docs_tables_are_the_latest_recorded_runs(document):
    text = document.read_text()
    names = re.findall(r"<!-- reproduce:(\w+) -->", text)
    for name in names:
        record = json.loads((RESULTS / f"{name}.json").read_text())
        assert not record["quick"], f"{name}.json is a smoke run"
        assert record["name"] == name and record["task"] in PLANS
        shown = text.split(f"<!-- reproduce:{name} -->\n", 1)[1].split(f"\n<!-- /reproduce:{name} -->", 1)[0]
        assert shown == render(record), f"{document.name}'s {name} table differs from benchmarks/results/{name}.json"
