"""System metrics: exact Poisson intervals, km per disengagement, per-tag pooling, jerk, progress."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from andon.errors import BadInput
from andon.simulation.system_metrics import (
    aggregate,
    aggregate_per_tag,
    jerk_mps3,
    jerk_stats,
    km_per_disengagement,
    poisson_interval,
    progress_ratio,
    tag_membership,
)


@dataclass
class Row:
    tags: tuple[str, ...]
    km: float
    logged_km: float
    disengagements: int
    collisions: int
    jerk_sq_sum_mps6: float = 0.0
    jerk_samples: int = 0


def test_poisson_interval_matches_garwood_tables():
    assert poisson_interval(0, 0.95) == (0.0, pytest.approx(3.6889, abs=1e-4))
    low, high = poisson_interval(5, 0.95)
    assert (low, high) == (pytest.approx(1.6235, abs=1e-4), pytest.approx(11.668, abs=1e-3))
    low, high = poisson_interval(1, 0.90)
    assert (low, high) == (pytest.approx(0.05129, abs=1e-5), pytest.approx(4.7439, abs=1e-4))


@pytest.mark.parametrize("count,confidence", [(-1, 0.95), (1.5, 0.95), (2, 1.0), (2, 0.0), (2, float("nan"))])
def test_poisson_interval_refuses_bad_input(count, confidence):
    with pytest.raises(BadInput):
        poisson_interval(count, confidence)


def test_km_per_disengagement_maps_the_count_interval():
    value, (low, high) = km_per_disengagement(10.0, 5, 0.95)
    assert value == 2.0
    assert low == pytest.approx(10.0 / 11.668, rel=1e-4) and high == pytest.approx(10.0 / 1.6235, rel=1e-4)
    value, (low, high) = km_per_disengagement(10.0, 0, 0.95)
    assert value is None and high is None and low == pytest.approx(10.0 / 3.6889, rel=1e-4)
    assert km_per_disengagement(0.0, 0) == (None, (0.0, None))
    with pytest.raises(BadInput, match="km"):
        km_per_disengagement(-1.0, 1)


def test_a_scenario_counts_for_each_of_its_tags():
    rows = [Row(("cut_in", "night"), 2.0, 2.0, 1, 0), Row(("cut_in",), 3.0, 4.0, 2, 1), Row((), 5.0, 5.0, 0, 0)]
    per_tag = aggregate_per_tag(rows)
    assert sorted(per_tag) == ["cut_in", "night"]
    cut_in, night = per_tag["cut_in"], per_tag["night"]
    assert (cut_in.scenarios, cut_in.km, cut_in.disengagements, cut_in.collisions) == (2, 5.0, 3, 1)
    assert cut_in.km_per_disengagement == pytest.approx(5.0 / 3)
    assert cut_in.collisions_per_km == pytest.approx(0.2) and cut_in.progress == pytest.approx(5.0 / 6.0)
    assert (night.scenarios, night.km, night.disengagements) == (1, 2.0, 1)
    run = aggregate(rows)
    assert (run.scenarios, run.km, run.disengagements, run.collisions) == (3, 10.0, 3, 1)
    assert run.interval == km_per_disengagement(10.0, 3)[1]
    assert run.to_dict()["interval"] == list(run.interval)


def test_tag_membership_is_a_sorted_zero_one_matrix():
    names, member = tag_membership([("b", "a"), (), ("b", "b")])
    assert names == ["a", "b"]
    assert member.tolist() == [[1, 1], [0, 0], [0, 1]]


def test_empty_runs_and_stationary_egos():
    run = aggregate([])
    assert (run.km, run.disengagements, run.km_per_disengagement, run.collisions_per_km, run.progress) == (
        0.0, 0, None, None, None)
    assert aggregate_per_tag([]) == {}
    assert progress_ratio(0.0, 0.0) is None and progress_ratio(1.0, 2.0) == 0.5


def test_jerk_on_a_known_profile():
    stamps = 1_000 + np.arange(6) * 100_000_000  # 10 Hz
    accel = np.array([0.0, 0.0, 1.0, 1.0, -1.0, -1.0])  # steps of +1 and -2 m/s² in 0.1 s
    np.testing.assert_allclose(jerk_mps3(accel, stamps), [0.0, 10.0, 0.0, -20.0, 0.0])
    rms, max_abs, sq_sum, n = jerk_stats(accel, stamps)
    assert (max_abs, sq_sum, n) == (20.0, 500.0, 5)
    assert rms == pytest.approx(math.sqrt(100.0))
    assert jerk_stats(accel[:1], stamps[:1]) == (0.0, 0.0, 0.0, 0)
    with pytest.raises(BadInput, match="increase"):
        jerk_mps3(accel, stamps[::-1])


def test_pooled_jerk_weights_by_samples():
    rows = [Row(("a",), 1.0, 1.0, 0, 0, jerk_sq_sum_mps6=4.0 * 1, jerk_samples=1),
            Row(("a",), 1.0, 1.0, 0, 0, jerk_sq_sum_mps6=1.0 * 3, jerk_samples=3)]
    assert aggregate(rows).jerk_rms_mps3 == pytest.approx(math.sqrt(7.0 / 4.0))
