"""Label QA against the synthetic fleet's injected label errors (simulation.ground_truth.LabelError).

Held out: QA's thresholds and weights were set looking at seeds 0-4; these tests judge seeds 5-9.
Each 20 s log is cut into 5 s windows; a window is corrupt when an injected error lies in it.

At the fleet's default error rate (2% of labels) every 5 s window holds dozens of errors, so clean
windows come from each log's twin at rate 0 (the fleet draws every label's corruption whatever the
rate, so the twin is the same drive with clean labels). At a rate of 0.05% about half the windows
of each log are clean and most corrupt ones hold a single error: the harder test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from andon.scenarios.logstore import ImportedLog
from andon.scenarios.qa.evaluate import qa_auc
from andon.simulation.fleet import synthesize_log
from andon.simulation.fleet.config import FleetConfig

SEEDS = tuple(range(5, 10))
SPARSE_RATE = 0.0005
MIN_AUC = 0.95


def _logs(rate: float | None, lidar: bool) -> Iterator[ImportedLog]:
    """The held-out logs, one at a time (QA streams them; a log with sweeps holds ~300 MB)."""
    config = FleetConfig(with_lidar=lidar) if rate is None else FleetConfig(label_error_rate=rate, with_lidar=lidar)
    return (synthesize_log(seed, 20.0, config) for seed in SEEDS)


def test_windows_with_a_single_injected_error_score_below_clean_ones() -> None:
    result = qa_auc(_logs(SPARSE_RATE, lidar=False))
    assert result["n_corrupt"] >= 5 and result["n_clean"] >= 5, result
    assert result["auc"] >= MIN_AUC, result


def test_every_kind_of_error_is_found_at_the_fleets_default_rate() -> None:
    result = qa_auc([*_logs(None, lidar=False), *_logs(0.0, lidar=False)])
    assert result["n_clean"] == result["n_corrupt"] == 4 * len(SEEDS)
    assert result["auc"] >= MIN_AUC, result
    assert min(result["n_errors"].values()) >= 20
    for kind, rate in result["per_check_hit_rate"].items():
        assert rate >= 0.9, (kind, result)


@pytest.mark.slow  # ray-casting five 20 s sweeps takes about a minute
def test_with_lidar_sweeps_the_point_check_adds_no_false_alarm() -> None:
    result = qa_auc(_logs(SPARSE_RATE, lidar=True))
    assert result["auc"] >= MIN_AUC, result
    assert result["scores_clean"]["min"] == 1.0, result
