"""Event-level precision and recall of mined windows against crafted ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios.miners.evaluate import evaluate_fleet, overlaps, precision_recall
from andon.scenarios.miners.windows import Window
from andon.simulation.ground_truth import BehaviourEvent, FleetGroundTruth
from tests.scenarios.miners._logs import ego_from_speeds, make_log, ns


def test_closed_intervals_overlap_when_they_share_an_instant() -> None:
    a = np.array([0, 11, 5, 30, 6]), np.array([10, 20, 5, 40, 9])
    b = np.array([10, 5]), np.array([15, 5])
    # [0, 10] shares its last frame with [10, 15]; an instant matches an interval holding it.
    assert overlaps(*a, *b).tolist() == [[True, True], [True, False], [False, True], [False, False],
                                         [False, False]]


def test_counts_and_rates_per_tag() -> None:
    mined = {"cut_in": [Window(0, 10), Window(20, 30), Window(50, 60)],  # hits e1, hits e1 and e2, misses
             "night": []}
    truth = [BehaviourEvent("cut_in", 5, 25), BehaviourEvent("cut_in", 28, 35), BehaviourEvent("cut_in", 70, 80),
             BehaviourEvent("vru_near", 0, 100)]
    table = precision_recall(mined, truth, ["cut_in", "night", "vru_near"])
    assert table["cut_in"] == {"precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3), "tp": 2, "fp": 1,
                               "fn": 1, "windows": 3, "events": 3}
    assert table["night"] == {"precision": None, "recall": None, "tp": 0, "fp": 0, "fn": 0, "windows": 0,
                              "events": 0}
    assert table["vru_near"]["recall"] == 0.0 and table["vru_near"]["precision"] is None


def test_evaluate_fleet_sums_logs_with_ground_truth() -> None:
    poses = ego_from_speeds(np.r_[np.full(30, 20.0), np.zeros(31)])
    truth = FleetGroundTruth(seed=0, conditions={"night": False}, behaviours=(
        BehaviourEvent("high_speed", ns(0.0), ns(3.0)), BehaviourEvent("stationary", ns(3.0), ns(6.0)),
        BehaviourEvent("vru_near", ns(1.0), ns(2.0))))
    with_truth = make_log(poses, meta={"ground_truth": truth.to_dict()})
    result = evaluate_fleet([with_truth, with_truth, make_log(poses)], ["high_speed", "stationary", "vru_near"])
    assert result.logs == 2
    assert result.rows["high_speed"] == {"precision": 1.0, "recall": 1.0, "tp": 2, "fp": 0, "fn": 0, "windows": 2,
                                         "events": 2}
    assert result.rows["vru_near"]["fn"] == 2 and result.rows["vru_near"]["recall"] == 0.0
    assert result.to_dict()["tags"]["stationary"]["tp"] == 2
    assert "| high_speed | 1.000 | 1.000 | 2 | 0 | 0 | 2 |" in result.markdown()
    with pytest.raises(BadInput, match="unknown miner"):
        evaluate_fleet([with_truth], ["tailgating"])
