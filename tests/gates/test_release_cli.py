"""`andon release ...` with an injected line (real reports, real MLflow registry, real ledger)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from andon.errors import AndonError
from andon.gates.ledger import Ledger, read_entries, verify
from andon.gates.promotion import apply_moves, plan_rollback
from andon.gates.records import GateResult
from andon.gates.release_cli import register, register_ledger
from andon.gates.report_build import build_report
from andon.gates.report_store import write_report
from andon.models.registry import PREVIOUS, PRODUCTION, Registry


# ----- helpers (the other ledger test modules use them too) --------------------------------------------
def parser(**hooks: Any) -> argparse.ArgumentParser:
    """The `andon` parser with only the release and ledger commands; hooks go to register()."""
    top = argparse.ArgumentParser(prog="andon", allow_abbrev=False)
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    register(commands, **hooks)
    register_ledger(commands)
    return top


def run_cli(argv: Sequence[str], **hooks: Any) -> int:
    """Run `andon ARGV` like andon.cli.main: andon's errors become their exit codes."""
    try:
        args, extras = parser(**hooks).parse_known_args(list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    if extras and not getattr(args, "accepts_extras", False):
        return 2
    args.extras = extras
    try:
        return int(args.func(args) or 0)
    except AndonError as exc:
        print(f"andon: error: {exc}", file=sys.stderr)
        return exc.exit_code


def cli_json(argv: Sequence[str], **hooks: Any) -> tuple[int, Any]:
    """(exit code, the JSON document printed on stdout)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_cli(argv, **hooks)
    text = out.getvalue()
    return code, (json.loads(text) if text.strip() else None)


def sample_gate(outcome: str = "pass", name: str = "km_per_disengagement", severity: str = "blocking") -> GateResult:
    return GateResult(name=name, kind="system_metric", severity=severity, outcome=outcome, value=60.0, bound=50.0,
                      interval=None, margin=10.0, reason=f"km per disengagement ({outcome})")


def write_sample_report(workspace: Any, name: str, candidate: Mapping[str, str], gates: Sequence[GateResult],
                        gate_set: str = "release") -> tuple[Any, Path]:
    """A real report of `gates` for `candidate`, stored in the workspace: (report, html path)."""
    report = build_report(workspace, candidate={"name": name, "models": {n: f"{n}@{v}" for n, v in candidate.items()}},
                          gate_set=gate_set, gate_config={"name": gate_set}, gates=list(gates),
                          inputs={"code_version": "test"})
    return report, write_report(workspace, report).html_path


@dataclass(frozen=True, slots=True)
class FakeLineResult:
    """Shaped like andon.gates.line.LineResult as far as `andon release` reads it."""

    report_id: str
    verdict: str
    candidate: dict[str, str]
    baseline: dict[str, str] | None
    gate_set: str
    require_approval: bool
    html_path: str


class FakeLine:
    """A stand-in for run_line: judges `candidate` with one gate of `outcome` and writes a real report."""

    def __init__(self, candidate: Mapping[str, str], outcome: str = "pass", require_approval: bool = False) -> None:
        self.candidate, self.outcome, self.require_approval = dict(candidate), outcome, require_approval
        self.calls: list[dict[str, Any]] = []

    def __call__(self, workspace: Any, name: str, overrides: Sequence[str], *, dag: str | None,
                 gate: str | None) -> FakeLineResult:
        self.calls.append({"name": name, "overrides": list(overrides), "dag": dag, "gate": gate})
        report, html = write_sample_report(workspace, name, self.candidate, [sample_gate(self.outcome)])
        baseline = {n: v for n, v in ((n, Registry(workspace).aliases(n).get(PRODUCTION)) for n in self.candidate)
                    if v is not None}
        return FakeLineResult(report.report_id, report.verdict, self.candidate, baseline or None,
                              gate or "release", self.require_approval, str(html))


def production(workspace: Any, *names: str) -> dict[str, dict[str, str]]:
    registry = Registry(workspace)
    return {n: {k: v for k, v in registry.aliases(n).items() if k in (PRODUCTION, PREVIOUS)} for n in names}


@pytest.fixture
def models(workspace):
    """detector and predictor, three dummy versions each, in the workspace's registry."""
    from tests.gates.test_promotion import add_versions

    registry = Registry(workspace)
    add_versions(registry, "detector", 3)
    add_versions(registry, "predictor", 3)
    return workspace


def _release(workspace, line, *more: str) -> tuple[int, Any]:
    return cli_json(["release", "predictor", "--workspace", str(workspace.root), "--json", *more], run_line=line)


# ----- release -----------------------------------------------------------------------------------------
def test_pass_promotes_the_candidate_and_records_it(models, monkeypatch):
    monkeypatch.setenv("ANDON_USER", "rel-eng")
    ws = models
    line = FakeLine({"detector": "1", "predictor": "1"})
    code, doc = _release(ws, line, "--dag", "small", "--gate", "strict", "suite.seed=3")
    assert code == 0
    assert line.calls == [{"name": "predictor", "overrides": ["suite.seed=3"], "dag": "small", "gate": "strict"}]
    assert doc["action"] == "release" and doc["verdict"] == "pass" and doc["ledger_seq"] == 1
    assert doc["promoted"] == {"detector": "1", "predictor": "1"} and doc["baseline"] is None
    assert Path(doc["html_path"]).is_file() and doc["gate_set"] == "strict"
    assert production(ws, "detector", "predictor") == {"detector": {PRODUCTION: "1"}, "predictor": {PRODUCTION: "1"}}

    code, doc = _release(ws, FakeLine({"detector": "1", "predictor": "2"}))
    assert code == 0 and doc["promoted"] == {"predictor": "2"} and doc["baseline"] == {"detector": "1", "predictor": "1"}
    assert production(ws, "detector", "predictor") == {"detector": {PRODUCTION: "1"},
                                                      "predictor": {PRODUCTION: "2", PREVIOUS: "1"}}
    entries = read_entries(ws)
    assert [(e.action, e.who, e.report_id) for e in entries] == [("release", "rel-eng", e.report_id) for e in entries]
    assert entries[1].candidate == {"detector": "1", "predictor": "2"} and entries[1].verdict == "pass"
    assert entries[1].details["moves"] == [{"node": "predictor", "alias": PREVIOUS, "before": None, "after": "1"},
                                           {"node": "predictor", "alias": PRODUCTION, "before": "1", "after": "2"}]
    assert verify(ws).ok


@pytest.mark.parametrize("outcome", ["fail", "insufficient"])
def test_a_candidate_that_does_not_pass_moves_nothing(models, outcome, capsys):
    ws = models
    assert _release(ws, FakeLine({"predictor": "1"}))[0] == 0
    capsys.readouterr()
    code = run_cli(["release", "predictor", "--workspace", str(ws.root), "--who", "ann"],
                   run_line=FakeLine({"predictor": "2"}, outcome))
    assert code == 1
    out, err = capsys.readouterr()
    assert f"predictor: {outcome.upper()}, refused; nothing moved" in out and "report.html" in out
    assert "andon release waive" in err
    assert production(ws, "predictor") == {"predictor": {PRODUCTION: "1"}}
    last = read_entries(ws)[-1]
    assert (last.action, last.verdict, last.who, dict(last.candidate)) == ("refuse", outcome, "ann", {"predictor": "2"})
    assert "moves" not in last.details


def test_approval_required_waits_for_the_reviewer_then_promotes(models, capsys):
    ws = models
    line = FakeLine({"predictor": "2"}, require_approval=True)
    code, doc = _release(ws, line)
    assert code == 1 and doc["action"] == "gate" and doc["awaiting_approval"] and doc["promoted"] == {}
    assert production(ws, "predictor") == {"predictor": {}}
    report_id = doc["report_id"]
    assert f"andon release approve --report {report_id}" in capsys.readouterr().err
    assert read_entries(ws)[-1].details["awaiting"] == "approval"

    code, approval = cli_json(["release", "approve", "--report", report_id[:8], "--reviewer", "rita",
                               "--workspace", str(ws.root), "--json"])
    assert code == 0 and approval["report_id"] == report_id and approval["candidate"] == {"predictor": "2"}
    code, doc = _release(ws, line)
    assert code == 0 and doc["promoted"] == {"predictor": "2"} and doc["approved_by"] == ["rita"]
    assert [e.action for e in read_entries(ws)] == ["gate", "approve", "release"]


def test_a_tampered_ledger_stops_the_release_before_the_line_runs(models, capsys):
    ws = models
    assert _release(ws, FakeLine({"predictor": "1"}))[0] == 0
    ledger = Ledger(ws)
    ledger.path.write_text(ledger.path.read_text().replace('"verdict":"pass"', '"verdict":"fail"'))
    line = FakeLine({"predictor": "2"})
    assert run_cli(["release", "predictor", "--workspace", str(ws.root)], run_line=line) == 1
    assert line.calls == [] and "does not verify" in capsys.readouterr().err
    assert production(ws, "predictor") == {"predictor": {PRODUCTION: "1"}}


def test_a_line_without_candidate_versions_is_an_internal_error(models):
    class Empty(FakeLine):
        def __call__(self, *args: Any, **kwargs: Any) -> FakeLineResult:
            result = super().__call__(*args, **kwargs)
            return FakeLineResult(result.report_id, "pass", {}, None, "release", False, result.html_path)

    assert run_cli(["release", "predictor", "--workspace", str(models.root)], run_line=Empty({"predictor": "1"})) == 3
    assert read_entries(models) == []


def test_stray_options_are_bad_input(models):
    line = FakeLine({"predictor": "1"})
    assert run_cli(["release", "predictor", "--workspace", str(models.root), "--bogus"], run_line=line) == 2
    assert line.calls == []


# ----- rollback ----------------------------------------------------------------------------------------
def test_rollback_restores_the_previous_release_and_is_recorded(models):
    ws = models
    _release(ws, FakeLine({"detector": "1", "predictor": "1"}))
    _release(ws, FakeLine({"detector": "2", "predictor": "2"}))
    code, doc = cli_json(["release", "rollback", "predictor", "--reviewer", "ops", "--reason", "too many stops",
                          "--workspace", str(ws.root), "--json"])
    assert code == 0 and doc["production"] == {"detector": "1", "predictor": "1"} and not doc["resumed"]
    assert production(ws, "detector", "predictor") == {"detector": {PRODUCTION: "1", PREVIOUS: "2"},
                                                      "predictor": {PRODUCTION: "1", PREVIOUS: "2"}}
    last = read_entries(ws)[-1]
    assert (last.action, last.who, last.details["reason"], last.details["nodes"]) == (
        "rollback", "ops", "too many stops", ["detector", "predictor"])
    code, doc = cli_json(["release", "rollback", "predictor", "--workspace", str(ws.root), "--json"])
    assert code == 0 and doc["production"] == {"detector": "2", "predictor": "2"}  # rolled forward again
    assert verify(ws).ok


def test_rollback_of_a_first_release_is_bad_input_and_records_nothing(models):
    ws = models
    _release(ws, FakeLine({"predictor": "1"}))
    before = read_entries(ws)
    assert run_cli(["release", "rollback", "predictor", "--workspace", str(ws.root)]) == 2
    assert read_entries(ws) == before and production(ws, "predictor") == {"predictor": {PRODUCTION: "1"}}


def test_an_interrupted_rollback_is_completed_not_repeated(models):
    ws = models
    _release(ws, FakeLine({"predictor": "1"}))
    _release(ws, FakeLine({"predictor": "2"}))
    registry = Registry(ws)
    with Ledger(ws).transaction() as writer:  # the rollback recorded, then the process died after one alias
        moves = plan_rollback(registry, ["predictor"])
        entry = writer.append("rollback", "predictor", {"predictor": "1"}, who="ops",
                              details={"moves": [m.to_dict() for m in moves]})
        apply_moves(registry, moves[:1])
    assert production(ws, "predictor") == {"predictor": {PRODUCTION: "1", PREVIOUS: "1"}}
    code, doc = cli_json(["release", "rollback", "predictor", "--workspace", str(ws.root), "--json"])
    assert code == 0 and doc["resumed"] and doc["ledger_seq"] == entry.seq
    assert production(ws, "predictor") == {"predictor": {PRODUCTION: "1", PREVIOUS: "2"}}
    assert read_entries(ws)[-1].seq == entry.seq  # nothing new appended


def test_an_interrupted_release_is_completed_by_the_next_decision(models):
    ws = models
    _release(ws, FakeLine({"predictor": "1"}))
    moves = [{"node": "predictor", "alias": PREVIOUS, "before": None, "after": "1"},
             {"node": "predictor", "alias": PRODUCTION, "before": "1", "after": "3"}]
    crashed = Ledger(ws).append("release", "predictor", {"predictor": "3"}, who="rel-eng", verdict="pass",
                                details={"moves": moves})  # recorded; the aliases never moved
    code, status = cli_json(["release", "status", "predictor", "--workspace", str(ws.root), "--json"])
    assert code == 0 and status["interrupted"]
    code, doc = _release(ws, FakeLine({"predictor": "3"}))
    assert code == 0 and doc["resumed_ledger_seq"] == crashed.seq and doc["promoted"] == {}
    assert production(ws, "predictor") == {"predictor": {PRODUCTION: "3", PREVIOUS: "1"}}


# ----- status ------------------------------------------------------------------------------------------
def test_status_shows_aliases_and_the_last_decision(models, capsys):
    ws = models
    _release(ws, FakeLine({"detector": "1", "predictor": "1"}))
    _release(ws, FakeLine({"detector": "1", "predictor": "2"}, "fail"))
    code, status = cli_json(["release", "status", "predictor", "--workspace", str(ws.root), "--json"])
    assert code == 0 and status["ledger_ok"] and not status["interrupted"]
    assert status["nodes"]["detector"] == {"candidate": "3", PRODUCTION: "1"}
    assert status["last_decision"]["action"] == "refuse" and status["last_decision"]["seq"] == 2
    capsys.readouterr()
    assert run_cli(["release", "status", "predictor", "--workspace", str(ws.root)]) == 0
    out = capsys.readouterr().out
    assert "last decision: refuse (fail) of detector@1, predictor@2" in out


def test_release_name_may_be_spelled_with_run(models):
    line = FakeLine({"predictor": "1"})
    assert run_cli(["release", "run", "predictor", "--workspace", str(models.root)], run_line=line) == 0
    assert line.calls[0]["name"] == "predictor"
