"""`andon suite ...` end to end on a tiny synthetic fleet with stand-in models, and its argument handling."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from unittest import mock

import pytest
import yaml

from andon.errors import BadInput
from andon.test_suites.cli import run_overrides
from tests.test_suites.helpers import suite_doc


@pytest.fixture(autouse=True)
def _suite_schema():
    """The app's schema in Hydra's ConfigStore even when andon.config_schemas does not import it yet (the
    store keeps the last registration; registering again is harmless)."""
    from andon.test_suites.suite_config import _register

    _register()


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `andon ARGV`, with `andon suite` registered (whether or not the
    console script wires it yet)."""
    from andon import cli
    from andon.test_suites.cli import register

    original = cli.build_parser

    def build() -> argparse.ArgumentParser:
        parser = original()
        commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        if "suite" not in commands.choices:
            register(commands)
        return parser

    out, err = io.StringIO(), io.StringIO()
    with mock.patch.object(cli, "build_parser", build), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, out.getvalue(), err.getvalue()


def _json(argv: list[str]) -> tuple[int, dict]:
    code, out, err = run_cli(argv)
    assert out.strip(), f"no JSON on stdout (exit {code}): {err[-2000:]}"
    return code, json.loads(out)


# ----- argument handling --------------------------------------------------------------------------------
def test_friendly_flags_become_overrides():
    argv = run_overrides(["detection_core", "--model", "detector@candidate", "--model=predictor@3", "--baseline",
                          "detector@production", "--json", "--workspace", "W", "worker=sequential", "--cfg", "job"])
    assert argv[:2] == ["--cfg", "job"]
    assert set(argv[2:]) == {"worker=sequential", "suite_ref='detection_core'",
                             "models=['detector@candidate','predictor@3']", "baseline=['detector@production']",
                             "json=true", "workspace='W'"}
    assert run_overrides(["-m", "suite=a,b"]) == ["-m", "suite_ref=a,b"]
    with pytest.raises(BadInput, match="one suite"):
        run_overrides(["a", "b"])
    with pytest.raises(BadInput, match="needs a value"):
        run_overrides(["a", "--model"])
    with pytest.raises(BadInput, match="both as a flag"):
        run_overrides(["a", "--json", "json=false"])


def test_list_metrics_and_validate():
    code, entries = _json(["suite", "list", "--json"])
    assert code == 0
    names = {e["name"] for e in entries}
    assert {"detection_core", "detection_night", "pedestrian_crossings", "tracking_core", "prediction_core",
            "closed_loop"} <= names and all(e["error"] is None for e in entries)
    code, metrics = _json(["suite", "metrics", "--json"])
    assert code == 0 and {"detection_recall", "min_fde", "phantom_braking", "lead_lost_s"} <= {m["name"] for m in metrics}
    code, doc = _json(["suite", "validate", "prediction_core", "--json"])
    assert code == 0 and doc["valid"] and doc["modes"] == ["open_loop"]


def test_validate_names_an_unknown_metric_and_refuses_a_typo(tmp_path):
    path = tmp_path / "bad.yaml"
    doc = suite_doc()
    doc["checks"][0]["metric"] = "telepathy"
    path.write_text(yaml.safe_dump(doc))
    code, out, err = run_cli(["suite", "validate", str(path)])
    assert code == 1 and "telepathy" in err
    doc["checks"][0]["metric"] = "detection_recall"
    doc["checks"][0]["treshold"] = 0.5
    path.write_text(yaml.safe_dump(doc))
    code, _, err = run_cli(["suite", "validate", str(path)])
    assert code == 2 and "treshold" in err


# ----- end to end ---------------------------------------------------------------------------------------
@pytest.fixture
def fleet(workspace):
    from tests.models.train_helpers import synthesize

    synthesize(workspace, n_logs=2, duration_s=4.0)
    return workspace


def _run(workspace, *args: str) -> tuple[int, dict]:
    return _json(["suite", "run", *args, "--workspace", str(workspace.root), "--json", "worker=sequential",
                  "progress=false"])


def test_a_suite_run_judges_every_scenario_and_stores_json_junit_and_pictures(fleet):
    code, doc = _run(fleet, "detection_core")
    assert code == (0 if doc["passed"] else 1)
    assert doc["stack"]["detector"] == "oracle" and doc["models"] == [] and doc["baseline_stack"] is None
    assert len(doc["scenario_ids"]) == 2 and doc["modes"] == ["open_loop"]
    assert {c["name"] for c in doc["checks"]} == {"vehicle_recall_50m", "vehicle_recall_50m_pooled",
                                                  "vulnerable_recall_30m", "vehicle_precision_50m_pooled"}
    for check in doc["checks"]:
        assert {"name", "metric", "scope", "severity", "comparator", "threshold", "passed", "value", "baseline_value",
                "n_scenarios", "n_evaluated", "n_failed", "reason"} <= set(check)
    per = [r for r in doc["results"] if r["check"] == "vehicle_recall_50m"]
    assert sorted(r["scenario_id"] for r in per) == sorted(doc["scenario_ids"])
    for row in per:
        assert row["passed"] is (row["value"] >= 0.8) and row["threshold"] == 0.8
        assert {"n_objects", "n_missed", "missed"} <= set(row["evidence"])
    run_dir = Path(doc["result_path"]).parent
    assert run_dir.name == doc["run_id"] and run_dir.parent.name == "suites"
    assert json.loads((run_dir / "result.json").read_text())["run_id"] == doc["run_id"]
    root = ET.parse(run_dir / "junit.xml").getroot()
    assert int(root.find("testsuite").get("tests")) == len(doc["results"])
    # the same inputs reuse the stored run; show reads it back
    code2, again = _run(fleet, "detection_core")
    assert again["reused"] and again["run_id"] == doc["run_id"] and code2 == code
    code3, shown = _json(["suite", "show", doc["run_id"][:8], "--workspace", str(fleet.root), "--json"])
    assert code3 == 0 and shown["results"] == doc["results"]
    # replaying again gives the same bytes (no wall-clock time inside)
    before = {name: (run_dir / name).read_bytes() for name in ("result.json", "junit.xml")}
    _, rerun = _run(fleet, "detection_core", "rerun=true")
    assert not rerun["reused"] and {name: (run_dir / name).read_bytes() for name in before} == before
    code4, runs = _json(["suite", "runs", "--workspace", str(fleet.root), "--json"])
    assert code4 == 0 and [r["run_id"] for r in runs] == [doc["run_id"]] and runs[0]["suite"] == "detection_core"


def test_a_failed_check_gets_a_picture_and_exit_1(fleet, tmp_path):
    strict = suite_doc(name="strict", checks=[
        {"name": "perfect_recall", "metric": "detection_recall", "filters": {"classes": ["vehicle"]},
         "comparator": ">=", "threshold": 1.0}])
    path = tmp_path / "strict.yaml"
    path.write_text(yaml.safe_dump(strict))
    code, doc = _run(fleet, str(path))
    assert code == 1 and not doc["passed"] and doc["blocking_failures"] == 1
    failed = [r for r in doc["results"] if r["passed"] is False]
    assert failed and all(r["picture"] and r["picture"].endswith(".png") for r in failed)
    run_dir = Path(doc["result_path"]).parent
    assert all((run_dir / r["picture"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for r in failed)
    assert all(r["evidence"]["missed"] for r in failed)  # which objects, which frames


def test_a_suite_over_an_empty_selection_fails(fleet, tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text(yaml.safe_dump(suite_doc(name="empty", selector={"query": "tag:no_such_tag"})))
    code, doc = _run(fleet, str(path))
    assert code == 1 and not doc["passed"] and doc["scenario_ids"] == []
    assert "matched no scenario" in doc["reason"] and not doc["checks"][0]["passed"]
    junit = ET.parse(Path(doc["junit_path"])).getroot()
    assert junit.find("testsuite").get("failures") != "0"


def test_an_unknown_metric_fails_the_run(fleet, tmp_path):
    doc = suite_doc(name="mystic")
    doc["checks"].append({"name": "mind", "metric": "telepathy", "comparator": ">=", "threshold": 1.0})
    path = tmp_path / "mystic.yaml"
    path.write_text(yaml.safe_dump(doc))
    code, result = _run(fleet, str(path))
    checks = {c["name"]: c for c in result["checks"]}
    assert code == 1 and not result["passed"] and "unknown metric 'telepathy'" in checks["mind"]["reason"]


def test_a_baseline_run_compares_per_scenario(fleet):
    code, doc = _run(fleet, "tracking_core", "baseline=[]")  # the stand-ins against themselves: no flips
    assert doc["baseline_models"] == [] and doc["baseline_stack"] == doc["stack"]
    rows = [r for r in doc["results"] if r["check"] == "lead_never_lost"]
    assert all(r["baseline_value"] == r["value"] and r["baseline_passed"] == r["passed"] for r in rows)
    assert doc["flips"] == {"regressions": [], "improvements": []}
    code, out, err = run_cli(["suite", "show", doc["run_id"], "--workspace", str(fleet.root)])
    assert code == 0 and "no flips" in err and "lead_never_lost" in err


def test_flips_against_a_baseline_end_to_end(fleet):
    """A tracker that needs 40 hits to confirm (4 s: never, in these drives) loses every lead vehicle: each
    scenario that passes for the stand-ins fails for it, and the flips say so, both ways round."""
    from andon.models.registry import Registry

    registry = Registry(fleet)
    run = registry.client.create_run(registry.experiment_id("andon/dag"), run_name="tracker")
    registry.client.log_dict(run.info.run_id, {"model": {"_target_": "andon.models.tracker.make_tracker",
                                                         "min_hits": 40}}, "node/config.json")
    version = registry.register("tracker", run.info.run_id, "node", {})
    code, doc = _run(fleet, "tracking_core", "--model", "tracker@candidate", "baseline=[]")
    assert code == 1 and doc["stack"]["tracker"] == f"tracker@{version}" and doc["baseline_stack"]["tracker"] == "default"
    assert doc["models"] == [f"tracker@{version}"] and doc["model_refs"] == ["tracker@candidate"]
    per = {r["scenario_id"]: r for r in doc["results"] if r["check"] == "lead_never_lost"}
    regressed = {f["scenario_id"] for f in doc["flips"]["regressions"] if f["check"] == "lead_never_lost"}
    assert regressed and regressed == {sid for sid, r in per.items() if r["baseline_passed"] and not r["passed"]}
    assert all(per[sid]["value"] > per[sid]["baseline_value"] for sid in regressed)
    assert doc["flips"]["improvements"] == []
    code, reverse = _run(fleet, "tracking_core", "--baseline", "tracker@candidate")
    assert code == 0 and {f["scenario_id"] for f in reverse["flips"]["improvements"]
                          if f["check"] == "lead_never_lost"} == regressed
    assert reverse["flips"]["regressions"] == []


def test_bad_input_exits_2(fleet):
    assert run_cli(["suite", "run", "no_such_suite", "--workspace", str(fleet.root), "worker=sequential"])[0] == 2
    assert run_cli(["suite", "run", "detection_core", "--workspace", str(fleet.root), "worker=sequential",
                    "no_such_key=1"])[0] == 2
    assert run_cli(["suite", "run", "detection_core", "--model", "detector", "--workspace", str(fleet.root),
                    "worker=sequential"])[0] == 2
    assert run_cli(["suite", "show", "ffffffffffff", "--workspace", str(fleet.root)])[0] == 2
