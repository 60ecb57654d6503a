"""The miners against the synthetic fleet's ground truth: event-level precision and recall per tag.

Ten 20 s logs (seeds 0-9), labels only (no lidar: the miners never read points). Every tag the
fleet scripted in these logs must be found with recall >= 0.9, and every tag mined must have
precision >= 0.9 (see andon.scenarios.miners.evaluate for the matching rule).
"""

from __future__ import annotations

import pytest

from andon.scenarios.miners.evaluate import FleetEvaluation, evaluate_fleet

SEEDS = range(10)
DURATION_S = 20.0
MIN_RATE = 0.9


@pytest.fixture(scope="module")
def evaluation() -> FleetEvaluation:
    # Imported here: while the fleet is incomplete these tests error, and the rest of the run goes on.
    from andon.simulation.fleet import synthesize_log
    from andon.simulation.fleet.config import FleetConfig

    config = FleetConfig(with_lidar=False)
    return evaluate_fleet(synthesize_log(seed, duration_s=DURATION_S, config=config) for seed in SEEDS)


def test_every_log_carries_ground_truth(evaluation: FleetEvaluation) -> None:
    assert evaluation.logs == len(SEEDS)


@pytest.mark.parametrize("tag", ["intersection", "traffic_light", "pedestrian_crossing", "cut_in", "vru_near",
                                 "dense_traffic", "high_speed", "stationary", "night"])
def test_precision_and_recall_per_tag(evaluation: FleetEvaluation, tag: str) -> None:
    row = evaluation.rows[tag]
    report = f"{tag}: {row}\n{evaluation.markdown()}"
    if row["recall"] is not None:
        assert row["recall"] >= MIN_RATE, report
    if row["precision"] is not None:
        assert row["precision"] >= MIN_RATE, report
