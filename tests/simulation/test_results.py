"""Simulation results: the per-scenario reduce (with pictures), sim ids, the result file, reuse, listing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios.records import Log
from andon.simulation import results as res
from andon.simulation.trace import COLLISION, TTC
from tests.helpers import make_log
from tests.simulation._traces import make_trace

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONFIG = {"mode": "closed_loop", "reactive": True, "ttc_threshold_s": 1.5, "seed": 0}
STACK = {"detector": "oracle", "tracker": "default", "predictor": "constant_velocity", "planner": "default"}


def _log(log_id: str = "log-a") -> Log:
    imported = make_log(n_frames=8)  # ego at x = i m, 10 Hz from t = 1 s: the frames of make_trace
    return Log(log_id=log_id, source="test", frames=imported.frames)


def _summaries(tmp_path):
    a = res.summarize_scenario(make_trace("scn-a", events=((1, TTC), (3, COLLISION)), collisions=1), _log(),
                               tmp_path)
    b = res.summarize_scenario(make_trace("scn-b", events=(), tags=("night",), km=0.01, logged_km=0.01), _log(),
                               tmp_path)
    return [a, b]


def test_summarize_counts_and_draws_each_event(tmp_path):
    summary = res.summarize_scenario(make_trace("scn-a", events=((1, TTC), (3, COLLISION)), collisions=1), _log(),
                                     tmp_path)
    assert (summary.disengagements, summary.collisions, summary.tags) == (2, 1, ("cut_in", "synthetic"))
    assert summary.progress == pytest.approx(0.8)
    assert summary.max_abs_jerk_mps3 == pytest.approx(20.0) and summary.jerk_samples == 4
    assert summary.jerk_sq_sum_mps6 == pytest.approx(100.0 + 400.0)
    pictures = [r.picture for r in summary.events]
    assert pictures == ["pictures/scn-a-00-ttc.png", "pictures/scn-a-01-collision.png"]
    for picture in pictures:
        assert (tmp_path / picture).read_bytes()[:8] == PNG_MAGIC
    entry = summary.to_dict()
    assert set(entry) >= {"scenario_id", "log_id", "tags", "km", "logged_km", "disengagements", "collisions",
                          "jerk_rms_mps3", "max_abs_jerk_mps3", "progress", "sensor_approximation"}
    again = res.ScenarioSummary.from_dict(entry, [r.to_dict() for r in summary.events])
    assert again == summary


def test_the_sweep_moves_to_the_replayed_pose():
    log = _log()
    logged = res.sweep_in_replayed_frame(log, 1_200_000_000, np.array([2.0, 0.0, 0.0, 0.0]))
    np.testing.assert_array_equal(logged, log.frames[2].points)  # open loop: as logged
    moved = res.sweep_in_replayed_frame(log, 1_200_000_000, np.array([3.0, 1.0, 0.0, np.pi / 2]))
    # world = logged ego (2, 0) + point; the new ego at (3, 1) heads +y: ego x = world y - 1, ego y = -(world x - 3)
    world = log.frames[2].points[:, :2].astype(np.float64) + [2.0, 0.0]
    expected = np.stack([world[:, 1] - 1.0, -(world[:, 0] - 3.0)], axis=1)
    np.testing.assert_allclose(moved[:, :2], expected, atol=1e-4)
    np.testing.assert_array_equal(moved[:, 2:], log.frames[2].points[:, 2:])
    assert res.sweep_in_replayed_frame(log, 1_234, np.zeros(4)) is None


def test_sim_id_is_stable_and_order_free():
    a = res.sim_id_for(res.sim_inputs(["s2", "s1"], STACK, CONFIG, 0.95, "code1"))
    assert a == res.sim_id_for(res.sim_inputs(["s1", "s2"], dict(reversed(STACK.items())), CONFIG, 0.95, "code1"))
    assert len(a) == 16 and int(a, 16) >= 0
    changed = [res.sim_inputs(["s1"], STACK, CONFIG, 0.95, "code1"),
               res.sim_inputs(["s1", "s2"], {**STACK, "detector": "detector@3"}, CONFIG, 0.95, "code1"),
               res.sim_inputs(["s1", "s2"], STACK, {**CONFIG, "mode": "open_loop"}, 0.95, "code1"),
               res.sim_inputs(["s1", "s2"], STACK, CONFIG, 0.9, "code1"),
               res.sim_inputs(["s1", "s2"], STACK, CONFIG, 0.95, "code2")]
    assert len({a, *(res.sim_id_for(i) for i in changed)}) == 6


def test_result_document_has_the_contract_keys(tmp_path):
    summaries = _summaries(tmp_path)
    inputs = res.sim_inputs(["scn-a", "scn-b", "scn-c"], STACK, CONFIG, 0.95, "code")
    doc = res.result_document(res.sim_id_for(inputs), inputs, [], summaries,
                              [{"scenario_id": "scn-c", "message": "ValueError: bad log"}])
    assert set(doc) >= {"sim_id", "mode", "reactive", "stack", "models", "scenario_ids", "config", "code_version",
                        "km", "disengagements", "km_per_disengagement", "interval", "confidence", "collisions",
                        "collisions_per_km", "jerk_rms_mps3", "progress", "errors", "per_tag", "scenarios", "events"}
    assert (doc["mode"], doc["reactive"], doc["disengagements"], doc["collisions"]) == ("closed_loop", True, 2, 1)
    assert doc["km"] == pytest.approx(0.014) and doc["km_per_disengagement"] == pytest.approx(0.007)
    assert doc["errors"] == [{"scenario_id": "scn-c", "message": "ValueError: bad log"}]
    assert set(doc["per_tag"]) == {"cut_in", "synthetic", "night"}
    night = doc["per_tag"]["night"]
    assert (night["disengagements"], night["km_per_disengagement"], night["interval"][1]) == (0, None, None)
    assert set(night) >= {"km", "disengagements", "km_per_disengagement", "interval", "collisions", "scenarios"}
    assert [e["picture"] for e in doc["events"]] == ["pictures/scn-a-00-ttc.png", "pictures/scn-a-01-collision.png"]
    assert set(doc["events"][0]) >= {"scenario_id", "time_ns", "cause", "causes", "track_ids", "frame_index",
                                     "detail", "picture"}
    json.dumps(doc, allow_nan=False)


def test_publish_reuse_list_and_show(workspace, tmp_path):
    summaries = _summaries(tmp_path)
    inputs = res.sim_inputs(["scn-a", "scn-b"], STACK, CONFIG, 0.95, "code")
    sim_id = res.sim_id_for(inputs)
    assert res.stored_result(workspace, sim_id) is None
    staging = res.staging_dir(workspace, sim_id)
    (staging / "pictures").mkdir()
    (staging / "pictures" / "p.png").write_bytes(PNG_MAGIC)
    doc = res.result_document(sim_id, inputs, ["detector@candidate"], summaries, [])
    path = res.publish(workspace, staging, doc)
    assert path == workspace.root / "simulations" / sim_id / "result.json"
    assert res.stored_result(workspace, sim_id) == doc
    assert (path.parent / "pictures" / "p.png").is_file() and not staging.exists()
    first_bytes = path.read_bytes()

    # a rerun of the same inputs replaces the folder as a whole
    staging = res.staging_dir(workspace, sim_id)
    path = res.publish(workspace, staging, doc)
    assert path.read_bytes() == first_bytes and not (path.parent / "pictures").exists()
    assert sorted(p.name for p in (workspace.root / "simulations").iterdir()) == [sim_id]

    assert [d["sim_id"] for d in res.list_results(workspace)] == [sim_id]
    assert res.load_result(workspace, sim_id[:8])["sim_id"] == sim_id
    with pytest.raises(BadInput, match="andon sim list"):
        res.load_result(workspace, "feedfacefeedface")
    with pytest.raises(BadInput, match="not a simulation id"):
        res.load_result(workspace, "../x")
    path.write_text("{broken")
    assert res.stored_result(workspace, sim_id) is None and res.list_results(workspace) == []
