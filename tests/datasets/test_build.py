"""Building versions end to end on a real SQLite catalog and a real git + DVC workspace."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import andon.datasets.publish as publish_module
from andon.datasets.build import build_dataset
from andon.datasets.versions import diff_versions, latest_accepted, list_versions, load_version
from andon.errors import BadInput
from andon.scenarios.catalog import Catalog
from andon.workspace import run_tool
from tests.conftest import REPO_ROOT
from tests.datasets.build_helpers import add_logs, make_agents_log, make_spec, whole_scenario

DETECTION_CLASSES = ("vehicle", "pedestrian") * 5


def _logs(n, start=0, **kwargs):
    kwargs.setdefault("classes", DETECTION_CLASSES)
    kwargs.setdefault("n_frames", 20)
    return [make_agents_log(f"log{i}", seed=i, **kwargs) for i in range(start, start + n)]


def _git_log(workspace) -> list[str]:
    return run_tool(["git", "log", "--format=%s"], workspace.root, "git log").splitlines()


def test_build_is_deterministic_and_a_rebuild_is_a_noop(workspace):
    add_logs(workspace, _logs(4))
    spec = make_spec()
    first = build_dataset(workspace, spec, progress=False)
    assert first["built"] and first["status"] == "accepted"
    commits = _git_log(workspace)
    second = build_dataset(workspace, spec, progress=False)
    assert second["dataset_id"] == first["dataset_id"]
    assert not second["built"] and "exists already" in second["message"] and "nothing to do" in second["message"]
    assert _git_log(workspace) == commits  # nothing new committed
    assert len(list_versions(workspace, spec.name)) == 1


def test_same_content_gives_the_same_id_in_another_workspace(workspace, tmp_path):
    from andon.workspace import Workspace

    add_logs(workspace, _logs(3))
    other, _ = Workspace.init(tmp_path / "other")
    add_logs(other, _logs(3))
    spec = make_spec()
    assert build_dataset(workspace, spec, progress=False)["dataset_id"] == \
        build_dataset(other, spec, progress=False)["dataset_id"]
    changed = dataclasses.replace(spec, sampling=dataclasses.replace(spec.sampling, stride=2))
    assert build_dataset(other, changed, progress=False)["dataset_id"] != \
        build_dataset(other, spec, progress=False)["dataset_id"]


def test_version_is_tracked_by_dvc_and_committed(workspace):
    add_logs(workspace, _logs(3))
    doc = build_dataset(workspace, make_spec(name="tracked"), progress=False)
    rel = f"datasets/tracked/{doc['dataset_id']}"
    assert (workspace.root / f"{rel}.dvc").is_file()
    assert rel.split("/")[-1] in (workspace.root / "datasets/tracked/.gitignore").read_text()
    assert run_tool(["git", "ls-files", f"{rel}.dvc"], workspace.root, "git").strip() == f"{rel}.dvc"
    assert _git_log(workspace)[0] == f"dataset tracked {doc['dataset_id']}: accepted"
    assert doc["commit"] == run_tool(["git", "rev-parse", "HEAD"], workspace.root, "git").strip()
    status = run_tool(["dvc", "status", f"{rel}.dvc"], workspace.root, "dvc status")
    assert "changed" not in status and "modified" not in status
    assert "tracked" not in run_tool(["git", "status", "--porcelain"], workspace.root, "git")


def test_version_api_for_the_loaders(workspace):
    ids = add_logs(workspace, _logs(6, n_frames=10))
    spec = make_spec(name="api", split={"train": 0.5, "val": 0.25, "test": 0.25, "salt": "s1"})
    doc = build_dataset(workspace, spec, progress=False)
    version = load_version(workspace, doc["dataset_id"])
    assert version == load_version(workspace, doc["dataset_id"][:6]) == load_version(workspace, "api")
    assert (version.name, version.task, version.status, version.derived_from) == ("api", "detection", "accepted", None)
    assert version.spec["sampling"]["stride"] == 1 and version.transform["name"]
    assert version.checks == doc["checks"] and version.created.endswith("Z")
    frames = {split: version.samples(split) for split in ("train", "val", "test")}
    assert sum(len(f) for f in frames.values()) == 60
    assert list(frames["train"].columns) == ["log_id", "log_manifest", "frame_index", "timestamp_ns"]
    manifests = version.log_manifests()
    assert set(manifests) == set(ids)
    for frame in frames.values():
        assert (frame["log_manifest"] == frame["log_id"].map(manifests)).all()
    seen = [set(f["log_id"]) for f in frames.values()]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    with pytest.raises(BadInput, match="unknown split"):
        version.samples("holdout")
    with pytest.raises(BadInput, match="no dataset version or name"):
        load_version(workspace, "nothing-like-this")


def test_prediction_version_has_track_ids(workspace):
    add_logs(workspace, _logs(2, n_frames=60, classes=("vehicle", "pedestrian", "cyclist")))
    doc = build_dataset(workspace, make_spec(name="pred", task="prediction"), progress=False)
    frame = load_version(workspace, "pred").samples("train")
    assert list(frame.columns) == ["log_id", "log_manifest", "frame_index", "timestamp_ns", "track_id"]
    assert len(frame) == doc["samples"]["train"] > 0


def test_relabelling_shows_in_diff_and_derived_from(workspace):
    ids = add_logs(workspace, _logs(5))
    spec = make_spec(name="rel")
    first = build_dataset(workspace, spec, progress=False)
    sid = whole_scenario(workspace, ids[0])
    with Catalog(workspace) as catalog:
        catalog.tag(sid, add=["reviewed"])
        catalog.set_qa({sid: (0.9, {})})
    add_logs(workspace, _logs(1, start=5))
    second = build_dataset(workspace, spec, progress=False)
    assert second["dataset_id"] != first["dataset_id"] and second["derived_from"] == first["dataset_id"]
    diff = diff_versions(load_version(workspace, first["dataset_id"]), load_version(workspace, second["dataset_id"]))
    assert diff["counts"] == {"added": 1, "removed": 0, "relabelled": 1, "qa_changed": 1}
    (change,) = diff["scenarios"]["relabelled"]
    assert change["scenario_id"] == sid and change["tags_added"] == ["reviewed"]
    assert change["qa_before"] is None and change["qa_after"] == 0.9
    assert diff["tags"]["reviewed"] == {"before": 0, "after": 1, "delta": 1}
    assert diff["classes"]["vehicle"]["delta"] == 100
    assert diff["samples"]["train"]["delta"] == 20


def _retire(workspace, log_ids):
    with Catalog(workspace) as catalog:
        for log_id in log_ids:
            catalog.retire(whole_scenario(workspace, log_id), "bad labels")


def test_exclusion_guard_rejects_then_accepts_with_acknowledgement(workspace):
    ids = add_logs(workspace, [*_logs(8), *_logs(2, start=8, tags=frozenset({"night"}))])
    spec = make_spec(name="excl")
    first = build_dataset(workspace, spec, progress=False)
    assert first["status"] == "accepted"
    _retire(workspace, ids[8:])  # 20% of the scenarios, and every night one

    rejected = build_dataset(workspace, spec, progress=False)
    assert rejected["status"] == "rejected" and rejected["built"]
    (exclusion,) = [c for c in rejected["checks"] if c["name"] == "exclusion"]
    assert not exclusion["passed"] and exclusion["removed_tags"] == ["night"]
    assert "removed_share<=0.2" in exclusion["detail"] and "removed_tag:night" in exclusion["detail"]
    assert any(r.startswith("exclusion:") for r in rejected["reasons"])
    # Stored, with why, but never the latest accepted one.
    stored = load_version(workspace, rejected["dataset_id"])
    assert stored.status == "rejected" and stored.reasons
    assert latest_accepted(workspace, "excl").dataset_id == first["dataset_id"]
    assert load_version(workspace, "excl").dataset_id == first["dataset_id"]

    acked = dataclasses.replace(spec, validation=dataclasses.replace(
        spec.validation, acknowledge=["removed_tag:night", "removed_share<=0.2"]))
    accepted = build_dataset(workspace, acked, progress=False)
    assert accepted["status"] == "accepted", accepted["reasons"]
    assert accepted["derived_from"] == first["dataset_id"]  # the rejected version is no ancestor
    assert load_version(workspace, "excl").dataset_id == accepted["dataset_id"]


def test_a_class_disappearing_needs_acknowledgement(workspace):
    bikes = make_agents_log("bikes", seed=99, classes=("vehicle",) * 9 + ("cyclist",), n_frames=20,
                            tags=frozenset({"bikes"}))
    add_logs(workspace, [*_logs(10), bikes])
    spec = make_spec(name="cls")
    assert build_dataset(workspace, spec, progress=False)["status"] == "accepted"
    dropped = make_spec(name="cls", query={"exclude_tags": ["bikes"]})
    doc = build_dataset(workspace, dropped, progress=False)
    (check,) = [c for c in doc["checks"] if c["name"] == "exclusion"]
    assert doc["status"] == "rejected" and check["removed_classes"] == ["cyclist"]
    assert check["removed_share"] < 0.10  # only the class and the tag trip it
    acked = make_spec(name="cls", query={"exclude_tags": ["bikes"]},
                      validation={"acknowledge": ["removed_class:cyclist", "removed_tag:bikes"]})
    assert build_dataset(workspace, acked, progress=False)["status"] == "accepted"


def test_drift_thresholds_adapt_over_a_sequence_of_versions(workspace):
    spec = make_spec(name="drift", task="prediction")
    add_logs(workspace, _logs(6, n_frames=60, classes=("vehicle",) * 6 + ("pedestrian",) * 2))
    docs = [build_dataset(workspace, spec, progress=False)]
    for i in range(6, 10):  # normal change: one more drive like the others per version
        add_logs(workspace, _logs(1, start=i, n_frames=60, classes=("vehicle",) * 6 + ("pedestrian",) * 2))
        docs.append(build_dataset(workspace, spec, progress=False))
    assert [d["status"] for d in docs] == ["accepted"] * 5
    drift = [c for c in docs[-1]["checks"] if c["name"] == "drift"][0]
    assert drift["passed"]
    range_entry = drift["distributions"]["range_m"]
    assert range_entry["basis"] == "adaptive" and range_entry["history_n"] == 3  # v1..v4 give 3 drifts
    assert range_entry["threshold"] == pytest.approx(max(0.1, range_entry["history_mean"]
                                                        + 3.0 * range_entry["history_std"]))
    earlier = [c for c in docs[2]["checks"] if c["name"] == "drift"][0]
    assert earlier["distributions"]["range_m"]["basis"] == "default"

    # A sudden change: half the data now comes from fast, far, large vehicles.
    add_logs(workspace, [make_agents_log(f"highway{i}", seed=100 + i, n_frames=60, classes=("vehicle",) * 8,
                                         speed_mps=30.0, spread_m=150.0, size_scale=2.0) for i in range(8)])
    sudden = build_dataset(workspace, spec, progress=False)
    drift = [c for c in sudden["checks"] if c["name"] == "drift"][0]
    assert sudden["status"] == "rejected" and not drift["passed"]
    failing = [n for n, e in drift["distributions"].items() if not e["passed"]]
    assert "speed_mps" in failing and all(drift["distributions"][n]["threshold"] > 0 for n in failing)
    assert latest_accepted(workspace, "drift").dataset_id == docs[-1]["dataset_id"]
    # The thresholds are stored with the version.
    stored = load_version(workspace, sudden["dataset_id"])
    assert [c for c in stored.checks if c["name"] == "drift"][0]["distributions"] == drift["distributions"]


def test_bad_labels_reject_the_version(workspace, monkeypatch):
    """A log that bypassed import validation (e.g. from an older andon): NaN boxes and an unknown class."""
    import andon.scenarios.catalog as catalog_module

    bad = make_agents_log("bad", seed=7, n_frames=20)
    bad.frames[3].boxes[0, 4] = np.nan
    bad.frames[4].classes[1] = "truck"
    add_logs(workspace, _logs(2))
    monkeypatch.setattr(catalog_module, "validate_imported", lambda log, origin: None)
    add_logs(workspace, [bad])
    doc = build_dataset(workspace, make_spec(name="bad"), progress=False)
    schema = [c for c in doc["checks"] if c["name"] == "schema"][0]
    assert doc["status"] == "rejected" and not schema["passed"]
    assert schema["problems"]["nonfinite_boxes"] == 1 and schema["problems"]["unknown_classes"] == 1
    assert "truck" in schema["detail"]


def test_boxes_far_outside_the_range_reject_a_detection_version(workspace):
    add_logs(workspace, _logs(2, spread_m=400.0))
    doc = build_dataset(workspace, make_spec(name="far"), progress=False)
    check = [c for c in doc["checks"] if c["name"] == "point_cloud_range"][0]
    assert doc["status"] == "rejected" and not check["passed"] and check["share_outside"] > 0.5
    lenient = make_spec(name="far", validation={"blocking": {"point_cloud_range": False}})
    doc = build_dataset(workspace, lenient, progress=False)
    assert doc["status"] == "accepted"  # reported, not enforced
    assert not [c for c in doc["checks"] if c["name"] == "point_cloud_range"][0]["passed"]


def test_an_empty_split_rejects(workspace):
    add_logs(workspace, _logs(1))
    doc = build_dataset(workspace, make_spec(name="one", split={"train": 0.7, "val": 0.15, "test": 0.15}),
                        progress=False)
    assert doc["status"] == "rejected" and "is empty" in doc["reasons"][0]


def _version_dirs(workspace, name):
    folder = workspace.root / "datasets" / name
    return [p for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []


def test_an_interrupted_build_leaves_no_half_version(workspace, monkeypatch):
    add_logs(workspace, _logs(3))
    spec = make_spec(name="crash")
    commits = _git_log(workspace)

    def crash(temp):
        assert (temp / "version.json").is_file()  # everything was written...
        raise RuntimeError("power cut")  # ...but not renamed into place

    monkeypatch.setattr(publish_module, "_before_rename", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        build_dataset(workspace, spec, progress=False)
    assert _version_dirs(workspace, "crash") == []
    assert not list(workspace.tmp_dir.glob("dataset-build-*"))
    assert _git_log(workspace) == commits
    monkeypatch.undo()
    doc = build_dataset(workspace, spec, progress=False)
    assert doc["built"] and doc["status"] == "accepted"
    assert [p.name for p in _version_dirs(workspace, "crash")] == [doc["dataset_id"]]


def test_a_crash_between_rename_and_commit_is_resumed(workspace, monkeypatch):
    add_logs(workspace, _logs(3))
    spec = make_spec(name="resume")

    def no_commit(*args, **kwargs):
        raise RuntimeError("killed before dvc add")

    monkeypatch.setattr("andon.datasets.build.track", no_commit)
    with pytest.raises(RuntimeError):
        build_dataset(workspace, spec, progress=False)
    (directory,) = _version_dirs(workspace, "resume")
    assert not (directory.parent / f"{directory.name}.dvc").exists()
    monkeypatch.undo()
    doc = build_dataset(workspace, spec, progress=False)
    assert not doc["built"] and doc["dataset_id"] == directory.name
    assert (directory.parent / f"{directory.name}.dvc").is_file()
    assert "(resumed)" in _git_log(workspace)[0]


KILL_SCRIPT = """
import sys, time
from pathlib import Path
import andon.datasets.publish as publish
from andon.datasets.build import build_dataset
from andon.workspace import Workspace
from tests.datasets.build_helpers import make_spec

def hang(temp):
    Path(sys.argv[2]).write_text(str(temp))
    time.sleep(120)

publish._before_rename = hang
build_dataset(Workspace.open(sys.argv[1]), make_spec(name="killed"), progress=False)
"""


def test_a_killed_build_leaves_no_version_and_a_rerun_succeeds(workspace, tmp_path):
    add_logs(workspace, _logs(3))
    marker = tmp_path / "written"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(workspace.root), str(marker)], env=env,
                            cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert marker.exists(), "the build never reached the rename"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _version_dirs(workspace, "killed") == []
    assert len(list(workspace.tmp_dir.glob("dataset-build-*"))) == 1  # the dead build's temp dir
    doc = build_dataset(workspace, make_spec(name="killed"), progress=False)
    assert doc["built"] and doc["status"] == "accepted"
    assert not list(workspace.tmp_dir.glob("dataset-build-*"))  # cleaned by the rerun
    assert json.loads((workspace.root / "datasets/killed" / doc["dataset_id"] / "version.json").read_text())[
        "status"] == "accepted"


def test_a_name_keeps_its_task(workspace):
    add_logs(workspace, _logs(2, n_frames=60))
    build_dataset(workspace, make_spec(name="mixed"), progress=False)
    with pytest.raises(BadInput, match="needs its own name"):
        build_dataset(workspace, make_spec(name="mixed", task="prediction"), progress=False)
