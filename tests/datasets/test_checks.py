"""Each check on crafted inputs: fails on a bad version, passes on a good one."""

from __future__ import annotations

import numpy as np
import pytest

from andon.datasets.drift import PSI_EPSILON, check_drift, drift_between, psi, thresholds
from andon.datasets.exclusion import check_exclusion, parse_acknowledgements
from andon.datasets.sanity import SanityAccumulator, check_point_cloud_range, check_schema
from andon.datasets.statistics import HISTOGRAM_EDGES, StatisticsAccumulator, bin_counts, histogram_summary
from andon.datasets.validation import check_splits, verdict
from andon.errors import BadInput

GOOD_BOXES = np.array([[10.0, 2.0, 0.8, 4.5, 1.9, 1.6, 0.3], [-5.0, 1.0, 0.9, 0.6, 0.6, 1.7, -3.0]])


def _sanity(boxes=GOOD_BOXES, classes=("vehicle", "pedestrian"), stamps=(0, 100, 200)) -> dict:
    acc = SanityAccumulator()
    acc.add_log("log-a", np.array(stamps, dtype=np.int64), np.zeros((len(stamps), 4)), np.asarray(boxes),
                np.array(classes))
    acc.add_range(np.asarray(boxes), [-51.2, -51.2, -3, 51.2, 51.2, 3])
    return acc.to_dict()


def test_schema_passes_on_good_data():
    check = check_schema(_sanity(), blocking=True)
    assert check["passed"] and check["name"] == "schema" and check["boxes_checked"] == 2


@pytest.mark.parametrize(("change", "problem"), [
    ({"boxes": GOOD_BOXES * np.array([1, 1, 1, 1, np.nan, 1, 1])}, "nonfinite_boxes"),
    ({"boxes": GOOD_BOXES * np.array([1, 1, 1, -1, 1, 1, 1])}, "nonpositive_sizes"),
    ({"boxes": GOOD_BOXES + np.array([0, 0, 0, 0, 0, 0, 4.0])}, "yaw_out_of_range"),
    ({"classes": ("vehicle", "truck")}, "unknown_classes"),
    ({"stamps": (0, 100, 100)}, "nonincreasing_timestamps"),
])
def test_schema_fails_naming_the_problem(change, problem):
    check = check_schema(_sanity(**change), blocking=True)
    assert not check["passed"] and check["problems"][problem] >= 1
    assert problem in check["detail"] and "log-a" in check["detail"]


def test_bad_sample_frames_fail_the_schema():
    acc = SanityAccumulator()
    acc.add_sample_frames("log-a", np.array([0, 5]), n_frames=3)
    assert not check_schema(acc.to_dict(), True)["passed"]


def test_point_cloud_range_share():
    assert check_point_cloud_range(_sanity(), [-51.2, -51.2, -3, 51.2, 51.2, 3], 0.5, True)["passed"]
    far = GOOD_BOXES + np.array([500.0, 0, 0, 0, 0, 0, 0])
    check = check_point_cloud_range(_sanity(boxes=far), [-51.2, -51.2, -3, 51.2, 51.2, 3], 0.5, True)
    assert not check["passed"] and check["share_outside"] == 1.0 and "100.0%" in check["detail"]


def _samples(**logs_per_split):
    """(samples per split, log ids per split) of samples naming these logs."""
    names = ("train", "val", "test")
    return ({n: len(logs_per_split.get(n, [])) for n in names}, {n: set(logs_per_split.get(n, [])) for n in names})


def test_splits_check():
    fractions = {"train": 0.7, "val": 0.15, "test": 0.15}
    good = check_splits(*_samples(train=["a", "a"], val=["b"], test=["c"]), {"a": "train", "b": "val", "c": "test"},
                        [{"scenario_id": "s", "log_id": "c"}], fractions, True)
    assert good["passed"], good["detail"]
    empty = check_splits(*_samples(train=["a"], test=["c"]), {"a": "train", "c": "test"}, [], fractions, True)
    assert not empty["passed"] and "split val is empty" in empty["detail"]
    leak = check_splits(*_samples(train=["a"], val=["b"], test=["a"]), {"a": "train", "b": "val"}, [], fractions, True)
    assert not leak["passed"] and leak["logs_in_two_splits"] == 1
    pinned = check_splits(*_samples(train=["a"], val=["b"], test=["c"]), {"a": "train", "b": "val", "c": "test"},
                          [{"scenario_id": "s", "log_id": "a"}], fractions, True)
    assert not pinned["passed"] and "pinned" in pinned["detail"]
    nothing = check_splits(*_samples(), {}, [], fractions, True)
    assert not nothing["passed"] and "no samples" in nothing["detail"]
    only_train = check_splits(*_samples(train=["a"]), {"a": "train"}, [], {"train": 1.0, "val": 0.0, "test": 0.0}, True)
    assert only_train["passed"]


PREVIOUS = {"dataset_id": "prev", "scenario_ids": {f"s{i}" for i in range(10)},
            "tags": {"night": 2, "test": 10}, "classes": {"vehicle": 100, "cyclist": 3, "static": 0}}


def test_exclusion_guard_without_and_with_acknowledgement():
    ids = {f"s{i}" for i in range(2, 10)}  # 20% removed, both night scenarios among them
    tags, classes = {"test": 8}, {"vehicle": 80, "cyclist": 0}
    check = check_exclusion(ids, tags, classes, PREVIOUS, 0.10, [], True)
    assert not check["passed"]
    assert check["removed_share"] == pytest.approx(0.2)
    assert check["removed_tags"] == ["night"] and check["removed_classes"] == ["cyclist"]
    assert "removed_share<=0.2" in check["detail"] and "removed_tag:night" in check["detail"]
    assert "removed_class:cyclist" in check["detail"]

    partial = check_exclusion(ids, tags, classes, PREVIOUS, 0.10, ["removed_tag:night", "removed_share<=0.3"], True)
    assert not partial["passed"] and "cyclist" in partial["detail"] and "night" not in partial["needed"][0]

    acked = ["removed_tag:night", "removed_class:cyclist", "removed_share<=0.25"]
    ok = check_exclusion(ids, tags, classes, PREVIOUS, 0.10, acked, True)
    assert ok["passed"] and sorted(ok["acknowledged"]) == sorted(["removed_share<=0.25", *acked[:2]])

    too_small = check_exclusion(ids, tags, classes, PREVIOUS, 0.10, [*acked[:2], "removed_share<=0.1"], True)
    assert not too_small["passed"]


def test_exclusion_passes_small_removals_and_first_versions():
    ids = {f"s{i}" for i in range(1, 10)} | {"new"}
    assert check_exclusion(ids, {"night": 1, "test": 10}, {"vehicle": 90, "cyclist": 1}, PREVIOUS, 0.10, [],
                           True)["passed"]
    assert check_exclusion(ids, {}, {}, None, 0.10, [], True)["passed"]


def test_acknowledgements_parse_or_fail():
    acks = parse_acknowledgements(["removed_tag:night", "removed_class:cyclist", "removed_share<=0.3"])
    assert acks.removed_share_max == 0.3 and acks.removed_tags == {"night"} and acks.removed_classes == {"cyclist"}
    for bad in ("removed_tags:night", "removed_share<=lots", "removed_share<=2"):
        with pytest.raises(BadInput, match="acknowledge"):
            parse_acknowledgements([bad])


def _stats(rng: np.random.Generator, n: int = 500, speed: float = 5.0, spread: float = 30.0) -> dict:
    acc = StatisticsAccumulator()
    boxes = np.column_stack([rng.uniform(-spread, spread, (n, 2)), np.full(n, 0.8),
                             rng.normal([4.5, 1.9, 1.6], 0.2, (n, 3)), rng.uniform(-3, 3, n)])
    velocities = rng.normal(speed, 1.0, (n, 2)) / np.sqrt(2)
    acc.add_boxes("train", boxes, np.array(["vehicle"] * (n - n // 5) + ["pedestrian"] * (n // 5)), velocities)
    acc.add("track_length_s", rng.uniform(2, 8, n // 10))
    return acc.to_dict()


def test_psi_basics():
    assert psi(np.array([10, 20, 30]), np.array([10, 20, 30])) == 0.0
    assert psi(np.array([10, 20, 30]), np.array([1, 2, 3])) == pytest.approx(0.0)
    assert psi(np.array([100, 0]), np.array([0, 100])) == pytest.approx(2 * (1 - PSI_EPSILON) * np.log(1 / PSI_EPSILON))


def test_drift_thresholds_adapt_to_history():
    rng = np.random.default_rng(0)
    history = [_stats(rng) for _ in range(5)]
    names = sorted(drift_between(history[0], history[1], 30))
    default = thresholds(history[:3], names, k=3.0, floor=0.1, min_history=3, default=0.25, min_count=30)
    assert all(t["basis"] == "default" and t["threshold"] == 0.25 for t in default.values())
    adaptive = thresholds(history, names, k=3.0, floor=0.1, min_history=3, default=0.25, min_count=30)
    assert adaptive["range_m"]["basis"] == "adaptive" and adaptive["range_m"]["history_n"] == 4
    assert adaptive["range_m"]["threshold"] >= 0.1
    observed = [drift_between(a, b, 30)["range_m"] for a, b in zip(history[:-1], history[1:], strict=True)]
    expected = max(0.1, np.mean(observed) + 3.0 * np.std(observed))
    assert adaptive["range_m"]["threshold"] == pytest.approx(expected)


def test_drift_check_passes_a_normal_change_and_fails_a_sudden_one():
    rng = np.random.default_rng(1)
    history = [_stats(rng) for _ in range(5)]
    normal = check_drift(_stats(rng), ("v5", history[-1]), history, 3.0, 0.1, 3, 0.25, 30, True)
    assert normal["passed"], normal["detail"]
    assert normal["distributions"]["range_m"]["basis"] == "adaptive"
    sudden = check_drift(_stats(rng, speed=25.0, spread=120.0), ("v5", history[-1]), history, 3.0, 0.1, 3, 0.25,
                         30, True)
    assert not sudden["passed"]
    assert not sudden["distributions"]["speed_mps"]["passed"] and "speed_mps" in sudden["detail"]
    assert sudden["distributions"]["speed_mps"]["threshold"] > 0  # stored with the result


def test_drift_skips_distributions_with_too_few_values():
    rng = np.random.default_rng(2)
    a, b = _stats(rng, n=20), _stats(rng, n=20, speed=30.0)
    check = check_drift(b, ("a", a), [a], 3.0, 0.1, 3, 0.25, 30, True)
    assert check["passed"] and check["distributions"]["speed_mps"]["psi"] is None
    assert check_drift(b, None, [], 3.0, 0.1, 3, 0.25, 30, True)["passed"]


def test_verdict_only_blocking_failures_reject():
    checks = [{"name": "a", "passed": False, "blocking": False, "detail": "meh"},
              {"name": "b", "passed": True, "blocking": True, "detail": "ok"}]
    assert verdict(checks) == ("accepted", [])
    checks.append({"name": "c", "passed": False, "blocking": True, "detail": "bad"})
    assert verdict(checks) == ("rejected", ["c: bad"])


def test_histograms_have_fixed_edges_and_keep_outliers():
    edges = HISTOGRAM_EDGES["range_m"]
    counts = bin_counts(np.array([-1.0, 0.0, 2.5, 1e9, np.nan, np.inf]), edges)
    assert counts.sum() == 4 and counts[0] == 3 and counts[-1] == 1
    assert len(counts) == len(edges) - 1
    summary = histogram_summary({"edges": edges.tolist(), "counts": counts.tolist()})
    assert summary["n"] == 4 and summary["p50"] == 2.5
    assert histogram_summary({"edges": [0, 1], "counts": [0]}) == {"n": 0, "p50": None, "p90": None}
