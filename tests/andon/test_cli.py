"""The console script as a user runs it: exit codes, --json purity, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from andon.cli import main
from andon.scenarios import Catalog, Provenance
from tests.helpers import make_log


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "andon", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_help_and_version():
    out = run("--help")
    assert out.returncode == 0 and "scenarios" in out.stdout and "Exit codes" in out.stdout
    assert run("scenarios", "search", "--help").returncode == 0
    assert run("--version").stdout.startswith("andon ")


def test_usage_error_is_exit_2():
    assert run("scenarios", "frobnicate").returncode == 2
    assert run("scenarios", "stats", "--nope").returncode == 2


def test_init_is_idempotent_and_json_is_one_document(tmp_path):
    first = run("init", str(tmp_path / "ws"), "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"workspace": str(tmp_path / "ws"), "created": True}
    second = run("init", "--workspace", str(tmp_path / "ws"), "--json")
    assert json.loads(second.stdout)["created"] is False
    assert (tmp_path / "ws" / ".git").is_dir() and (tmp_path / "ws" / ".dvc").is_dir()


def test_missing_workspace_is_bad_input_naming_what_to_do(tmp_path):
    out = run("scenarios", "stats", "--workspace", str(tmp_path / "none"))
    assert out.returncode == 2
    assert "andon init" in out.stderr and out.stdout == ""


def test_workspace_from_environment(workspace):
    out = run("scenarios", "stats", "--json", env={"ANDON_WORKSPACE": str(workspace.root)})
    assert out.returncode == 0 and json.loads(out.stdout)["logs"] == 0


@pytest.fixture
def filled(workspace):
    catalog = Catalog(workspace)
    a, _ = catalog.add_log(make_log("a", seed=1, tags=frozenset({"intersection"})), Provenance("import", "test", "1"), "a")
    catalog.add_log(make_log("b", seed=2, tags=frozenset({"night"})), Provenance("import", "test", "1"), "b")
    return workspace, a


def test_curator_flow_in_process(filled, capsys, tmp_path):
    workspace, log_a = filled
    ws = ["--workspace", str(workspace.root)]
    assert main(["scenarios", "search", "tag:intersection", "-tag:night", "--json", *ws]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["total"] == 1 and found["scenarios"][0]["log_id"] == log_a

    assert main(["scenarios", "add", "--log", log_a[:12], "--start-s", "0.2", "--end-s", "1.0",
                 "--tag", "cut_in", "--curator", "ada", "--note", "late merge", "--json", *ws]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["created"] and added["tags"] == ["cut_in"] and added["provenance"]["curator"] == "ada"
    sid = added["scenario_id"]

    assert main(["scenarios", "tag", sid[:8], "+hard", "-cut_in", "--json", *ws]) == 0
    assert json.loads(capsys.readouterr().out)["tags"] == ["hard"]

    png = tmp_path / "bev.png"
    assert main(["scenarios", "show", sid, "--render", str(png), "--json", *ws]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["log"]["name"] == "a" and png.read_bytes()[:4] == b"\x89PNG"

    assert main(["scenarios", "retire", sid, "--reason", "duplicate of another", *ws]) == 0
    capsys.readouterr()
    assert main(["scenarios", "search", "status:retired", "--json", *ws]) == 0
    assert [s["scenario_id"] for s in json.loads(capsys.readouterr().out)["scenarios"]] == [sid]

    assert main(["scenarios", "stats", "--json", *ws]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["scenarios"] == {"active": 2, "retired": 1}
    assert main(["scenarios", "validate", "--json", *ws]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []


def test_bad_inputs_exit_2_with_named_value(filled, capsys):
    workspace, log_a = filled
    ws = ["--workspace", str(workspace.root)]
    assert main(["scenarios", "search", "qa>=lots", *ws]) == 2
    assert "qa>=lots" in capsys.readouterr().err
    assert main(["scenarios", "add", "--log", log_a, "--start-s", "1", "--end-s", "0.5", *ws]) == 2
    assert "--end-s" in capsys.readouterr().err
    assert main(["scenarios", "tag", "nosuchscenario", "+x", *ws]) == 2
    assert main(["scenarios", "show", "nosuchscenario", *ws]) == 2
    assert main(["scenarios", "import", "kitti", "/no/such/path", *ws]) == 2


def test_validate_finds_a_corrupt_blob_and_exits_1(filled, capsys):
    workspace, _ = filled
    victim = max((p for p in (workspace.root / "blobs").rglob("*.npz")), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes()[:100])
    assert main(["scenarios", "validate", "--json", "--workspace", str(workspace.root)]) == 1
    report = json.loads(capsys.readouterr().out)
    assert len(report["problems"]) == 1 and "corrupt" in report["problems"][0]["problem"]


def test_search_table_output(filled, capsys):
    workspace, _ = filled
    assert main(["scenarios", "search", "--workspace", str(workspace.root)]) == 0
    out = capsys.readouterr()
    assert out.out.splitlines()[0].split() == ["scenario", "log", "dur_s", "qa", "status", "tags"]
    assert "2 shown of 2" in out.err
