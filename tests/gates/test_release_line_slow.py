"""The demo's story at a small scale, through the real `andon` CLI (slow: about four minutes on 2 CPUs).

A ten-log synthetic fleet and its datasets; `andon release predictor` trains the default DAG for real
(detector -> tracker -> autolabelled prediction dataset -> predictor, small training), runs a suite,
the closed-loop simulation and the gates, and promotes; a second release retrains only the predictor
and promotes it too; a deliberately worse candidate (the detector trained a few epochs on the narrow
`detection_day`) is refused and nothing moves; the ledger verifies; a rollback restores the previous
predictor; every report is listed with its HTML page.

The gate set is the test's own (`--gate FILE`): the default set's thresholds need the demo's scale,
this one tests the line's mechanics. Its suite and simulation replay three of the logs.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from andon.cli import main as andon
from andon.gates.ledger import read_entries
from andon.models.registry import PREVIOUS, PRODUCTION, Registry
from andon.workspace import Workspace

pytestmark = pytest.mark.slow

NODES = ("detector", "prediction_autolabel", "predictor", "tracker")
# A small detector grid (64 x 64 pillars of 0.8 m) so that twenty epochs take half a minute.
GRID = ["dataset.sampling.voxel_size_m=[0.8,0.8,6.0]",
        "dataset.sampling.point_cloud_range_m=[-25.6,-25.6,-3.0,25.6,25.6,3.0]"]
SMALL = ["trainer.num_workers=0", "trainer.enable_progress_bar=false", "trainer.num_threads=1"]
DETECTOR = ["trainer.max_epochs=20", "trainer.batch_size=2", "optimizer.lr=5e-3", *SMALL]
# The worse candidate: a few epochs on the narrow detection_day (no night, no crossings): worse, yet it
# still detects enough for its own autolabels to make a prediction dataset (the link takes only those).
WORSE_DETECTOR = ["trainer.max_epochs=6", "trainer.batch_size=2", "optimizer.lr=5e-3", *SMALL]
PREDICTOR = ["model.hidden_size=16", "model.neighbour_size=8", "trainer.max_epochs=1", "trainer.limit_train_batches=2",
             "trainer.limit_val_batches=1", "trainer.batch_size=16", *SMALL]
# Two splits of the autolabelled logs (train, val): with few logs a third split is often empty.
AUTOLABEL = ["dataset.split.train=0.5", "dataset.split.val=0.5", "dataset.split.test=0.0"]


def listed(key: str, values: Sequence[str]) -> str:
    """A Hydra override of a list of overrides: key=["a","b"]."""
    return f"{key}=[{','.join(json.dumps(v) for v in values)}]"


def line_overrides(detector: Sequence[str], predictor: Sequence[str] = PREDICTOR) -> list[str]:
    return ["worker=sequential", "dag.nodes.detector.model=detector_small",
            listed("dag.nodes.detector.overrides", detector), listed("dag.nodes.predictor.overrides", predictor),
            listed("dag.nodes.prediction_autolabel.overrides", AUTOLABEL)]


def run(*argv: str) -> tuple[int, Any]:
    """`andon ARGV` in-process: (exit code, the JSON document on stdout, if any)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = andon(list(argv))
    text = out.getvalue()
    return code, (json.loads(text) if text.strip().startswith(("{", "[")) else None)


def aliases(workspace: Workspace) -> dict[str, dict[str, str]]:
    registry = Registry(workspace)
    return {n: {k: v for k, v in registry.aliases(n).items() if k in (PRODUCTION, PREVIOUS)} for n in NODES}


def explain(doc: Any, workspace: Workspace) -> str:
    """Why a release did what it did: each gate of its report."""
    if not doc or not doc.get("report_id"):
        return f"no report: {doc}"
    report = json.loads((workspace.root / "reports" / doc["report_id"] / "report.json").read_text())
    return "\n".join(f"{g['name']}: {g['outcome']} ({g['reason']})" for g in report["gates"])


def make_data(root: Path) -> tuple[Workspace, list[str]]:
    """The workspace (`andon init`), a small fleet, and the datasets the default DAG reads (`andon dataset build`)."""
    from andon.datasets.spec import SplitSpec
    from andon.datasets.split import split_of
    from tests.models.train_helpers import synthesize

    assert run("init", str(root))[0] == 0
    workspace = Workspace.open(root)
    # The tests' coarse fleet (16 beams, 360 rays per beam, a sweep every 5th frame, labels within 30 m).
    log_ids = sorted(synthesize(workspace, n_logs=10, duration_s=8.0))
    salt = next(s for s in (f"s{i}" for i in range(500))
                if {split_of(log, SplitSpec(0.6, 0.2, 0.2, salt=s)) for log in log_ids} == {"train", "val", "test"})
    for dataset, extra in (("detection_synthetic", GRID), ("detection_day", GRID), ("prediction_synthetic", [])):
        code, doc = run("dataset", "build", f"dataset={dataset}", f"workspace={root}", f"dataset.split.salt={salt}",
                        *extra, "json=true")
        assert code == 0 and doc["status"] == "accepted", (dataset, doc)
    return workspace, log_ids


def write_gate_set(folder: Path, replayed: Sequence[str]) -> Path:
    """The test's gate set (and its suite), replaying the logs `replayed`."""
    query = " ".join(["tag:synthetic", *(f"log:{log}" for log in replayed)])
    suite = folder / "line_detection.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "line_detection", "owner": "release-tests", "description": "vehicles near the ego are found",
        "selector": {"query": query},
        "checks": [{"name": "vehicle_recall_30m_pooled", "metric": "detection_recall", "scope": "aggregate",
                    "filters": {"classes": ["vehicle"], "max_range_m": 30.0}, "comparator": ">=",
                    "threshold": 0.3, "severity": "blocking"}]}, sort_keys=False))
    gates = [
        {"name": "data", "kind": "data"},
        {"name": "provenance", "kind": "provenance", "dag": "default"},
        # no regression at all against production (skipped, with a note, before the first release)
        {"name": "detection_map_nonregression", "kind": "model_metric", "model": "detector", "metric": "mAP",
         "eval_dataset": "detection_synthetic", "max_regression": 0.0},
        {"name": "prediction_min_ade", "kind": "model_metric", "model": "predictor", "metric": "minADE_k",
         "eval_dataset": "prediction_synthetic", "max": 50.0, "severity": "advisory"},
        {"name": "detection_suite", "kind": "suite", "suites": [str(suite)]},
        {"name": "km_per_disengagement", "kind": "system_metric", "metric": "km_per_disengagement", "min": 0.001,
         "scenarios": query},
        {"name": "collisions", "kind": "system_metric", "metric": "collisions", "max": 100, "severity": "advisory",
         "scenarios": query},
    ]
    path = folder / "line_slow.yaml"
    path.write_text(yaml.safe_dump({"name": "line_slow", "bootstrap": {"resamples": 200, "seed": 0}, "gates": gates},
                                   sort_keys=False))
    return path


def test_release_promote_refuse_and_roll_back_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANDON_USER", "rel-eng")
    workspace, log_ids = make_data(tmp_path / "ws")
    gate = write_gate_set(tmp_path, log_ids[:3])
    release = ["release", "predictor", "--workspace", str(workspace.root), "--gate", str(gate), "--json"]

    # 1. The first release trains the whole DAG, passes and moves production to every node of the stack.
    code, first = run(*release, *line_overrides(DETECTOR))
    assert code == 0, explain(first, workspace)
    assert first["action"] == "release" and first["verdict"] == "pass" and first["baseline"] is None
    assert first["candidate"] == dict.fromkeys(NODES, "1") and first["promoted"] == dict.fromkeys(NODES, "1")
    assert aliases(workspace) == {n: {PRODUCTION: "1"} for n in NODES}
    report = json.loads(Path(first["html_path"]).with_name("report.json").read_text())
    assert {g["name"]: g["outcome"] for g in report["gates"] if g["severity"] == "blocking"} == dict.fromkeys(
        ["data", "detection_map_nonregression", "detection_suite", "km_per_disengagement", "provenance"], "pass")
    assert "non-regression skipped" in next(g for g in report["gates"]
                                            if g["name"] == "detection_map_nonregression")["reason"]

    # 2. Only the predictor is retrained (another seed): it passes and replaces production's predictor.
    code, second = run(*release, *line_overrides(DETECTOR, [*PREDICTOR, "seed=1"]))
    assert code == 0, explain(second, workspace)
    assert second["candidate"] == {**dict.fromkeys(NODES, "1"), "predictor": "2"}
    assert second["baseline"] == dict.fromkeys(NODES, "1") and second["promoted"] == {"predictor": "2"}
    production = aliases(workspace)
    assert production == {**{n: {PRODUCTION: "1"} for n in NODES}, "predictor": {PRODUCTION: "2", PREVIOUS: "1"}}

    # 3. A deliberately worse candidate is refused: exit 1, nothing moves, the ledger says "refuse".
    worse = [*line_overrides(WORSE_DETECTOR), "dag.nodes.detector.datasets=[detection_day]"]
    code, third = run(*release, *worse)
    assert code == 1, explain(third, workspace)
    assert third["action"] == "refuse" and third["verdict"] != "pass" and third["promoted"] == {}
    assert third["candidate"]["detector"] == "2" and third["baseline"] == second["candidate"]
    assert aliases(workspace) == production
    failing = json.loads(Path(third["html_path"]).with_name("report.json").read_text())
    regression = next(g for g in failing["gates"] if g["name"] == "detection_map_nonregression")
    assert regression["outcome"] != "pass" and regression["value"] < 0, regression
    # A suite that fails for the candidate and passed for production shows as regression flips.
    suite_gate = next(g for g in failing["gates"] if g["name"] == "detection_suite")
    if suite_gate["outcome"] == "fail":
        assert failing["flips"]["regressions"], failing["flips"]
    entries = read_entries(workspace)
    assert [(e.action, e.verdict, e.who) for e in entries] == [("release", "pass", "rel-eng"),
                                                               ("release", "pass", "rel-eng"),
                                                               ("refuse", third["verdict"], "rel-eng")]
    assert entries[-1].report_id == third["report_id"] and "moves" not in entries[-1].details
    assert run("ledger", "verify", "--workspace", str(workspace.root))[0] == 0

    # 4. Rolling back the last release of the predictor restores the previous predictor.
    code, rolled = run("release", "rollback", "predictor", "--workspace", str(workspace.root), "--json")
    assert code == 0 and rolled["production"] == {"predictor": "1"}, rolled
    assert aliases(workspace)["predictor"] == {PRODUCTION: "1", PREVIOUS: "2"}
    assert read_entries(workspace)[-1].action == "rollback"
    assert run("ledger", "verify", "--workspace", str(workspace.root))[0] == 0

    # 5. Every report is listed, with its HTML page.
    code, reports = run("report", "list", "--workspace", str(workspace.root), "--json")
    assert code == 0
    by_id = {r["report_id"]: r for r in reports}
    assert set(by_id) == {first["report_id"], second["report_id"], third["report_id"]}
    assert [by_id[d["report_id"]]["verdict"] for d in (first, second, third)] == ["pass", "pass", third["verdict"]]
    assert all(Path(r["html_path"]).is_file() for r in reports)
