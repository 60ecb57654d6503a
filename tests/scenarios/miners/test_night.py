"""night: the whole log, only when the meta says so."""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners import night
from andon.simulation.ground_truth import FleetGroundTruth
from tests.scenarios.miners._logs import make_log, ns

POSES = np.zeros((30, 4))


def test_meta_conditions_or_ground_truth_say_night() -> None:
    for meta in ({"conditions": {"night": True}}, {"night": True},
                 {"ground_truth": FleetGroundTruth(seed=1, conditions={"night": True}).to_dict()}):
        (window,) = night.mine(make_log(POSES, meta=meta))
        assert (window.t_start_ns, window.t_end_ns) == (ns(0.0), ns(2.9))


def test_day_or_unknown_is_never_night() -> None:
    for meta in ({}, {"conditions": {"night": False}}, {"conditions": {"rain": True}}, {"night": "maybe"},
                 {"ground_truth": FleetGroundTruth(seed=1, conditions={"night": False}).to_dict()}):
        assert night.mine(make_log(POSES, meta=meta)) == []
