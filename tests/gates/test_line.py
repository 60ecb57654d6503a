"""The line on a tiny real stack: `judge` (suites, closed-loop simulation, gates, report), `run_line` and
`andon gate run`, with nothing stood in for.

One module-scoped line (a three-log synthetic fleet, a detection dataset, a detector trained for two
batches by the DAG and the configured tracker) serves every test; the suites and simulations run once
and are reused by content id afterwards, so the module takes well under a minute and a half.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from andon.cli import main as andon
from tests.gates.line_fixtures import (
    CANDIDATE,
    DAG_NAME,
    CountingWorker,
    LineSetup,
    judge_with,
    line,  # noqa: F401 (fixture)
)

REPORT_FILES = ("report.json", "report.md", "report.html")
CONTRACT_GATE_KEYS = {"name", "outcome", "value", "bound", "interval", "reason"}


def report_bytes(setup: LineSetup, report_id: str) -> dict[str, bytes]:
    folder = setup.workspace.root / "reports" / report_id
    return {name: (folder / name).read_bytes() for name in REPORT_FILES}


def outcomes(result: Any) -> dict[str, str]:
    return {g.name: g.outcome for g in result.report.gates}


def gate_cli(setup: LineSetup, *argv: str, dag: Sequence[str] = ("--dag", DAG_NAME)) -> tuple[int, Any, str]:
    """`andon gate run --config-dir CFG --dag line ARGV... worker=sequential`: (exit code, stdout JSON or None,
    stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = andon(["gate", "run", "--config-dir", str(setup.config_dir), "--workspace", str(setup.workspace.root),
                      *dag, "worker=sequential", *argv])
    text = out.getvalue()
    return code, (json.loads(text) if text.strip() else None), err.getvalue()


# ----- judge -------------------------------------------------------------------------------------------
def test_judge_writes_the_report_and_the_verdict_follows_the_blocking_gates(line: LineSetup) -> None:  # noqa: F811
    passed = judge_with(line, "line_pass")
    assert passed.verdict == "pass", [(g.name, g.outcome, g.reason) for g in passed.report.gates]
    assert outcomes(passed) == dict.fromkeys(["collisions", "data", "km_per_disengagement", "provenance"], "pass")
    assert dict(passed.candidate) == {"detector": "1", "tracker": "1"} and passed.baseline is None
    assert passed.gate_set == "line_pass" and not passed.require_approval
    folder = line.workspace.root / "reports" / passed.report_id
    assert Path(passed.html_path) == folder / "report.html"
    assert all((folder / name).is_file() for name in REPORT_FILES)
    stored = json.loads((folder / "report.json").read_text())
    assert stored["report_id"] == passed.report_id and stored["verdict"] == "pass"
    assert stored["candidate"]["models"] == {"detector": "detector@1", "tracker": "tracker@1"}
    assert [s["side"] for s in stored["inputs"]["simulations"]] == ["candidate"]  # no production yet
    assert set(passed.timings_s) >= {"suites", "simulation", "gates", "report", "total"}

    # One blocking suite the tiny detector cannot pass turns the verdict; made advisory, it does not.
    failed = judge_with(line, "line_fail")
    assert failed.verdict == "fail" and failed.report_id != passed.report_id
    suite = failed.report.gate("suites")
    assert suite.outcome == "fail" and "detection_core" in suite.reason and "vehicle_recall_50m" in suite.reason
    assert {n: o for n, o in outcomes(failed).items() if n != "suites"} == outcomes(passed)
    assert [s["suite"] for s in failed.report.inputs["suites"]] == ["detection_core"]
    advisory = judge_with(line, "line_advisory")
    assert advisory.verdict == "pass" and advisory.report.gate("suites").outcome == "fail"
    assert advisory.report.gate("suites").severity == "advisory"
    markdown = (Path(failed.html_path).parent / "report.md").read_text()
    assert "FAIL" in markdown.upper() and "vehicle_recall_50m" in markdown


def test_the_same_inputs_give_the_same_report_byte_for_byte(line: LineSetup) -> None:  # noqa: F811
    first = judge_with(line, "line_fail")
    before = report_bytes(line, first.report_id)
    # Written again from scratch, replaying every suite and simulation: the same id and the same bytes.
    shutil.rmtree(line.workspace.root / "reports" / first.report_id)
    again = judge_with(line, "line_fail", rerun=True)
    assert again.report_id == first.report_id
    assert report_bytes(line, again.report_id) == before
    # Judged once more: the stored suite and simulation results are reused (no worker is even made).
    counting = CountingWorker()
    reused = judge_with(line, "line_fail", make_worker=counting)
    assert counting.made == 0
    assert reused.report_id == first.report_id and report_bytes(line, reused.report_id) == before
    assert reused.timings_s["suites"] + reused.timings_s["simulation"] < again.timings_s["suites"] + \
        again.timings_s["simulation"]


def test_a_suite_that_cannot_run_fails_its_gate_with_the_reason(line: LineSetup) -> None:  # noqa: F811
    result = judge_with(line, "line_unknown_suite")  # a gate set naming a suite that does not exist
    assert result.verdict == "fail"
    gate = result.report.gate("missing_suite")
    assert gate.outcome == "fail" and "no_such_suite" in gate.reason
    assert any("suite no_such_suite could not run" in note and "its gate fails" in note for note in result.report.notes)
    assert {n: o for n, o in outcomes(result).items() if n != "missing_suite"} == \
        dict.fromkeys(["collisions", "data", "km_per_disengagement", "provenance"], "pass")
    stored = json.loads(Path(result.html_path).with_name("report.json").read_text())
    assert any("no_such_suite" in note for note in stored["notes"])
    assert "no_such_suite" in Path(result.html_path).read_text()


def test_an_unknown_candidate_is_bad_input(line: LineSetup) -> None:  # noqa: F811
    from andon.errors import BadInput

    with pytest.raises(BadInput, match="nosuch"):
        judge_with(line, "line_pass", candidate="nosuch@candidate")
    with pytest.raises(BadInput, match="no version at alias 'production'"):
        judge_with(line, "line_pass", candidate="tracker@production")


# ----- run_line ----------------------------------------------------------------------------------------
def test_run_line_runs_nothing_when_the_dag_is_fresh_then_judges(line: LineSetup) -> None:  # noqa: F811
    from andon.gates.line import report_paths, run_line

    result = run_line(line.workspace, "tracker", ["worker=sequential"], dag=DAG_NAME,
                      gate=str(line.gate_file("line_pass")), config_dirs=[str(line.config_dir)])
    assert result.dag_summary.ok and result.dag_summary.message.startswith("nothing to do")
    assert result.verdict == "pass" and dict(result.candidate) == {"detector": "1", "tracker": "1"}
    assert result.report_id == judge_with(line, "line_pass").report_id  # the same judgement as judge's
    assert all(Path(p).is_file() for p in report_paths(result).values())
    assert {"dag", "suites", "simulation", "gates", "report", "total"} <= set(result.timings_s)


# ----- andon gate run ----------------------------------------------------------------------------------
def test_gate_run_prints_the_contract_and_exits_by_the_verdict(line: LineSetup) -> None:  # noqa: F811
    code, doc, _ = gate_cli(line, "--candidate", CANDIDATE, "--json", "gate=line_pass")
    assert code == 0, doc
    assert {"report_id", "verdict", "gates"} <= set(doc) and doc["verdict"] == "pass"
    assert all(set(g) >= CONTRACT_GATE_KEYS for g in doc["gates"])
    assert {g["name"]: g["outcome"] for g in doc["gates"]} == \
        dict.fromkeys(["collisions", "data", "km_per_disengagement", "provenance"], "pass")
    assert all(isinstance(g["reason"], str) and g["reason"] for g in doc["gates"])
    assert doc["report_id"] == judge_with(line, "line_pass").report_id
    assert Path(doc["html_path"]).is_file()

    # `dag=FILE` names the DAG too (taken before Hydra, which reads `dag` as a config group).
    code, doc, err = gate_cli(line, "--candidate", CANDIDATE, "--json", "gate=line_fail", dag=[f"dag={line.dag_file}"])
    assert code == 1 and doc["verdict"] == "fail"
    suites = next(g for g in doc["gates"] if g["name"] == "suites")
    assert suites["outcome"] == "fail" and "detection_core" in suites["reason"]
    assert "verdict: FAIL" in err


def test_gate_run_fails_closed_on_a_suite_that_cannot_run(line: LineSetup) -> None:  # noqa: F811
    code, doc, err = gate_cli(line, "--candidate", CANDIDATE, "--json", "gate=line_unknown_suite")
    assert code == 1 and doc["verdict"] == "fail"
    assert next(g for g in doc["gates"] if g["name"] == "missing_suite")["outcome"] == "fail"
    assert "Traceback" not in err


@pytest.mark.parametrize(("argv", "says"), [
    (("--dag", DAG_NAME), "no candidate: give --candidate"),
    (("--dag", DAG_NAME, "--candidate", "nosuch@candidate"), "nosuch"),
    (("--dag", DAG_NAME, "--candidate", CANDIDATE, "gate=no_such_gate_set"), "no_such_gate_set"),
    (("--dag", DAG_NAME, "--candidate", CANDIDATE, "dag=other"), "the DAG is given twice"),
    (("--dag", "no_such_dag", "--candidate", CANDIDATE), "no DAG config 'no_such_dag'"),
])
def test_gate_run_without_a_usable_candidate_gate_set_or_dag_is_bad_input(line: LineSetup,  # noqa: F811
                                                                         argv: tuple[str, ...], says: str) -> None:
    code, doc, err = gate_cli(line, "--json", *argv, dag=())
    assert code == 2 and doc is None
    assert says in err and "Traceback" not in err
