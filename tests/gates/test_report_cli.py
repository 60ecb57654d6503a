"""`andon report list|show|open|diff` through a parser built with register(): JSON contracts, exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from andon.errors import AndonError
from andon.gates import report_cli
from andon.gates.report_store import write_report
from tests.gates.report_samples import kmpd_gate, map_gate, sample_report
from tests.helpers import andon_json, run_andon

REPO_ROOT = Path(__file__).resolve().parents[2]
# What `andon` does with these commands once andon/cli.py registers them (run in a subprocess).
DRIVER = """
import argparse, sys
from andon.gates.report_cli import register
parser = argparse.ArgumentParser(prog="andon")
register(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


run_cli, cli_json = run_andon, andon_json  # the real `andon` entry point: `report` is wired in andon/cli.py


@pytest.fixture
def reports(workspace):
    """A workspace holding a failing and a passing report: (workspace, failing, passing)."""
    failing = sample_report(workspace.root)
    passing = sample_report(workspace.root, gates=[kmpd_gate(outcome="pass", value=60.0, margin=10.0), map_gate()])
    for report in (failing, passing):
        write_report(workspace, report)
    return workspace, failing, passing


def test_list_json_is_the_contract(reports):
    workspace, failing, passing = reports
    code, doc = cli_json(["report", "list", "--json", "--workspace", str(workspace.root)])
    assert code == 0 and isinstance(doc, list) and len(doc) == 2
    for entry in doc:
        assert {"report_id", "candidate", "verdict", "html_path"} <= set(entry)
        assert entry["verdict"] in ("pass", "fail", "insufficient")
        assert Path(entry["html_path"]).is_absolute() and Path(entry["html_path"]).is_file()
        assert entry["candidate"] == "predictor@7"
    assert {e["report_id"]: e["verdict"] for e in doc} == {failing.report_id: "fail", passing.report_id: "pass"}


def test_list_table_and_an_empty_workspace(workspace, capsys):
    assert run_cli(["report", "list", "--workspace", str(workspace.root)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].split() == ["report", "verdict", "candidate", "baseline", "gate", "set"]
    assert len(out.splitlines()) == 2  # header and rule, no rows
    assert "0 report(s)" in err and "andon gate run" in err
    code, doc = cli_json(["report", "list", "--json", "--workspace", str(workspace.root)])
    assert (code, doc) == (0, [])


def test_show_json_and_text(reports, capsys):
    workspace, failing, _ = reports
    code, doc = cli_json(["report", "show", failing.report_id[:8], "--json", "--workspace", str(workspace.root)])
    assert code == 0 and doc["report_id"] == failing.report_id and doc["verdict"] == "fail"
    assert Path(doc["paths"]["html"]).is_file()
    assert run_cli(["report", "show", failing.report_id, "--workspace", str(workspace.root)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"report {failing.report_id}: FAIL (1 blocking gate failed: km_per_disengagement)")
    assert "km_per_disengagement  system_metric  blocking  FAIL" in out
    assert "note: simulation sim0000000000001: closed-loop sensors approximated" in out


def test_show_check_exits_1_unless_pass(reports):
    workspace, failing, passing = reports
    assert run_cli(["report", "show", failing.report_id, "--check", "--workspace", str(workspace.root)]) == 1
    assert run_cli(["report", "show", passing.report_id, "--check", "--workspace", str(workspace.root)]) == 0


@pytest.mark.parametrize("command", [["show", "deadbeef"], ["open", "deadbeef"], ["diff", "deadbeef", "deadbeef"]])
def test_an_unknown_id_is_bad_input_naming_it(reports, command, capsys):
    workspace, _, _ = reports
    assert run_cli(["report", *command, "--workspace", str(workspace.root)]) == 2
    err = capsys.readouterr().err
    assert "no report 'deadbeef'" in err and "`andon report list`" in err


def test_diff_json_and_text(reports, capsys):
    workspace, failing, passing = reports
    args = ["report", "diff", failing.report_id, passing.report_id, "--workspace", str(workspace.root)]
    code, doc = cli_json([*args, "--json"])
    assert code == 0 and doc["verdict"] == {"a": "fail", "b": "pass", "changed": True}
    assert doc["gates_changed"][0]["name"] == "km_per_disengagement"
    assert run_cli(args) == 0
    out = capsys.readouterr().out
    assert f"{failing.report_id} -> {passing.report_id}: verdict fail -> pass (CHANGED)" in out
    assert "~ gate km_per_disengagement: outcome fail -> pass; value 31.5 -> 60; margin -31.8 -> 10" in out


def test_open_without_a_display_prints_the_path(reports, monkeypatch, capsys):
    workspace, failing, _ = reports
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(report_cli.sys, "platform", "linux")
    opened = []
    monkeypatch.setattr(report_cli.webbrowser, "open", lambda url: opened.append(url) or True)
    assert run_cli(["report", "open", failing.report_id, "--workspace", str(workspace.root)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(workspace.root / "reports" / failing.report_id / "report.html")
    assert opened == [] and "--serve" in err
    monkeypatch.setenv("DISPLAY", ":0")
    assert run_cli(["report", "open", failing.report_id, "--workspace", str(workspace.root)]) == 0
    assert opened == [(workspace.root / "reports" / failing.report_id / "report.html").as_uri()]


def test_has_display():
    assert report_cli.has_display({}, "darwin") and report_cli.has_display({"DISPLAY": ":1"}, "linux")
    assert not report_cli.has_display({}, "linux")


def test_open_serve_serves_the_page_until_interrupted(reports):
    workspace, failing, _ = reports
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, "report", "open", failing.report_id[:10], "--serve",
                             "--port", "0", "--workspace", str(workspace.root)],
                            cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/report.html"), proc.stderr.read()
        with urllib.request.urlopen(url, timeout=30) as response:
            page = response.read().decode("utf-8")
        assert response.status == 200 and 'data-verdict="fail"' in page
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "stopped serving" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_busy_port_is_bad_input(reports, tmp_path):
    server = report_cli.make_server(tmp_path)
    try:
        port = server.server_address[1]
        with pytest.raises(AndonError, match=f"cannot serve on 127.0.0.1:{port}.*--port 0"):
            report_cli.make_server(tmp_path, port=port)
    finally:
        server.server_close()
