"""Sample enumeration: detection frames with points, prediction agents seen over the whole window."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from andon.datasets.materialise import match_frames, materialise, native_period_ns, window_mask
from andon.errors import BadInput
from andon.scenarios.catalog import Catalog, NewScenario
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Frame
from tests.datasets.build_helpers import PROVENANCE, add_logs, make_agents_log, make_spec, whole_scenario


def _materialise(workspace, spec, pinned=()):
    with Catalog(workspace) as catalog:
        return materialise(catalog, spec, list(pinned), progress=False)


def _rows(samples):
    return list(zip(*(samples[k].tolist() for k in samples), strict=True))


def test_detection_samples_frames_with_points_at_the_stride(workspace):
    # Lidar on every 3rd frame only (AV2's sample has 1 sweep in 156 frames).
    (log_id,) = add_logs(workspace, [make_agents_log("sparse", n_frames=30, points_every=3)])
    mat = _materialise(workspace, make_spec(sampling={"stride": 2}))
    frames = mat.samples["train"]["frame_index"].tolist()
    assert frames == [0, 6, 12, 18, 24]  # frames with points: 0, 3, 6, ...; every 2nd of them
    assert mat.log_ids == [log_id] and set(mat.samples["train"]["log_index"].tolist()) == {0}
    assert mat.statistics["histograms"]["points_per_frame"]["counts"] != [0] * 17
    assert sum(mat.statistics["histograms"]["points_per_frame"]["counts"]) == 5
    assert mat.statistics["classes"]["vehicle"] == 5  # one vehicle box in each sampled frame


def test_detection_respects_scenario_windows(workspace):
    (log_id,) = add_logs(workspace, [make_agents_log("windows", n_frames=30, points_every=1, source="other")])
    with Catalog(workspace) as catalog:
        row = catalog.log_row(log_id)
        t0 = row["t_start_ns"]
        catalog.add_scenarios([NewScenario(log_id, t0 + 500_000_000, t0 + 900_000_000, frozenset({"mined"}),
                                           PROVENANCE),
                               NewScenario(log_id, t0 + 2_000_000_000, t0 + 2_100_000_000, frozenset({"mined"}),
                                           PROVENANCE)])
    spec = make_spec(query={"sources": [], "tags": ["mined"]})
    mat = _materialise(workspace, spec)
    assert mat.samples["train"]["frame_index"].tolist() == [5, 6, 7, 8, 9, 20, 21]
    assert len(mat.scenarios) == 2 and mat.statistics["tags"] == {"mined": 2}


def _log_with_gaps() -> ImportedLog:
    """Three pedestrians at 0.4 s; `b` is missing in frame 10, `c` appears only from frame 5."""
    frames = []
    for i in range(30):
        ids = [t for t in ("a", "b", "c") if not (t == "b" and i == 10) and not (t == "c" and i < 5)]
        boxes = np.array([[float(i) + k, 2.0 * k, 0.85, 0.5, 0.5, 1.7, 0.0] for k, _ in enumerate(ids)])
        frames.append(Frame(timestamp_ns=i * 400_000_000, ego_pose=(0.0, 0.0, 0.0, 0.0), boxes=boxes,
                            classes=["pedestrian"] * len(ids), track_ids=ids))
    return ImportedLog(source="test", name="gaps", frames=frames)


def _brute_force(log: ImportedLog, history: int, horizon: int) -> set[tuple[int, str]]:
    """The definition, one agent at a time (frames are exactly one step apart here)."""
    present = {(i, t) for i, f in enumerate(log.frames) for t in f.track_ids}
    found = set()
    for i, frame in enumerate(log.frames):
        for track in frame.track_ids:
            steps = range(i - history + 1, i + horizon + 1)
            if all(0 <= j < len(log.frames) and (j, track) in present for j in steps):
                found.add((i, track))
    return found


def test_prediction_agents_must_be_seen_over_history_and_horizon(workspace):
    log = _log_with_gaps()
    add_logs(workspace, [log])
    spec = make_spec(task="prediction", sampling={"step_s": 0.4, "history_steps": 8, "horizon_steps": 12,
                                                  "max_agents_per_frame": None, "stride": 1})
    mat = _materialise(workspace, spec)
    got = {(f, t) for f, t in zip(mat.samples["train"]["frame_index"].tolist(),
                                  mat.samples["train"]["track_id"].tolist(), strict=True)}
    assert got == _brute_force(log, 8, 12)
    assert (7, "a") in got and (17, "a") in got and (18, "a") not in got  # 7 back, 12 ahead
    assert not any(t == "b" and 3 <= f <= 17 for f, t in got)  # its gap at frame 10 is in every window
    assert min(f for f, t in got if t == "c") == 12
    assert set(mat.samples["train"]) == {"log_index", "frame_index", "timestamp_ns", "track_id"}


def test_prediction_steps_may_skip_native_frames_and_caps_agents(workspace):
    # 10 Hz log, 0.5 s steps: t0 needs frames t0 - 1.5 s ... t0 + 3 s.
    log = make_agents_log("ten_hz", n_frames=60, classes=("vehicle",) * 5 + ("static",))
    add_logs(workspace, [log])
    spec = make_spec(task="prediction", sampling={"step_s": 0.5, "history_steps": 4, "horizon_steps": 6,
                                                  "max_agents_per_frame": 3, "stride": 1})
    mat = _materialise(workspace, spec)
    frames = mat.samples["train"]["frame_index"]
    assert frames.min() == 15 and frames.max() == 29
    assert np.bincount(frames)[15:30].tolist() == [3] * 15  # capped at 3 of the 5 vehicles; static never
    # The kept agents are the nearest to the ego.
    ranges = {f"a{k}": float(np.hypot(*log.frames[20].boxes[k, :2])) for k in range(5)}
    nearest = sorted(ranges, key=ranges.get)[:3]
    assert sorted(mat.samples["train"]["track_id"][frames == 20].tolist()) == sorted(nearest)


def test_query_include_exclude_and_time_clip(workspace):
    ids = add_logs(workspace, [make_agents_log(f"l{i}", n_frames=20, seed=i) for i in range(3)])
    scenarios = [whole_scenario(workspace, log_id) for log_id in ids]
    base = make_spec()
    spec = dataclasses.replace(base, query=dataclasses.replace(base.query, exclude_ids=[scenarios[0]]))
    mat = _materialise(workspace, spec)
    assert {s["scenario_id"] for s in mat.scenarios} == set(scenarios[1:])
    other = make_spec(query={"sources": ["nothing"], "include_ids": [scenarios[2][:8]]})
    assert [s["scenario_id"] for s in _materialise(workspace, other).scenarios] == [scenarios[2]]
    clipped = make_spec(query={"t_start_ns": 1_500_000_000})
    mat = _materialise(workspace, clipped)
    assert mat.samples["train"]["frame_index"].min() == 5
    assert all(s["t_start_ns"] == 1_500_000_000 for s in mat.scenarios)


def test_unknown_ids_and_empty_queries_are_bad_input(workspace):
    add_logs(workspace, [make_agents_log("one", n_frames=5)])
    with pytest.raises(BadInput, match="no scenario"):
        _materialise(workspace, make_spec(query={"include_ids": ["deadbeef0000"]}))
    with pytest.raises(BadInput, match="matches no active scenario"):
        _materialise(workspace, make_spec(query={"sources": ["nowhere"]}))


def test_pinned_scenarios_pull_their_logs_into_test(workspace):
    ids = add_logs(workspace, [make_agents_log(f"p{i}", n_frames=10, seed=i) for i in range(6)])
    pinned = whole_scenario(workspace, ids[3])
    mat = _materialise(workspace, make_spec(split={"train": 1.0, "val": 0.0, "test": 0.0}), pinned=[pinned])
    assert mat.log_splits[ids[3]] == "test"
    assert {mat.log_ids[i] for i in mat.samples["test"]["log_index"].tolist()} == {ids[3]}
    assert mat.pinned_test["scenario_ids"] == [pinned] and len(mat.pinned_test["sha256"]) == 64


def test_helpers():
    stamps = np.array([0, 100, 200, 400], dtype=np.int64)
    assert match_frames(stamps, np.array([0, 149, 160, 300, 390, 1000]), 50).tolist() == [0, 1, 2, -1, 3, -1]
    assert native_period_ns(stamps) == 100.0
    assert native_period_ns(stamps[:1]) is None

    class W:
        def __init__(self, a, b):
            self.t_start_ns, self.t_end_ns = a, b

    assert window_mask(np.arange(10), [W(2, 3), W(3, 5), W(8, 8)]).tolist() == [
        False, False, True, True, True, True, False, False, True, False]
