"""The paired mean bootstrap: its resample definition, quantiles, determinism and fail-closed input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from andon.errors import BadInput
from andon.gates.bootstrap import (
    DRAW_PIECE,
    BootstrapResult,
    default_workers,
    lower_bound,
    map_resample_blocks,
    paired_mean_bootstrap,
    resample_counts,
    resample_indices,
    upper_bound,
)


def test_resample_r_is_the_rth_child_of_the_seed() -> None:
    # The documented definition, spelled with numpy's own spawn: resample r draws n integers in [0, n).
    child = np.random.SeedSequence(7).spawn(4)[3]
    expected = np.random.Generator(np.random.PCG64(child)).integers(0, 50, 50)
    assert np.array_equal(resample_indices(50, 7, 3), expected)


def test_resample_indices_in_pieces_cover_n_and_stay_in_range() -> None:
    n = 2 * DRAW_PIECE + 5
    idx = resample_indices(n, 1, 0)
    assert idx.shape == (n,) and idx.dtype == np.int64 and idx.min() >= 0 and idx.max() < n
    assert np.array_equal(idx, resample_indices(n, 1, 0))
    assert not np.array_equal(idx, resample_indices(n, 1, 1))


def test_resample_counts_are_the_multiplicities_of_the_indices() -> None:
    counts = resample_counts(30, 5, 2, 6)
    assert counts.shape == (4, 30) and (counts.sum(axis=1) == 30).all()
    for row, r in enumerate(range(2, 6)):
        assert np.array_equal(counts[row], np.bincount(resample_indices(30, 5, r), minlength=30))


def test_estimate_and_bounds_are_the_documented_quantiles() -> None:
    values = np.random.default_rng(0).normal(2.0, 1.0, 200)
    result = paired_mean_bootstrap(values, None, 500, 0.9, 3)
    assert result.estimate == pytest.approx(values.mean(), abs=1e-15)
    assert result.replicates is not None and result.replicates.shape == (500,)
    for r in (0, 17, 499):
        assert result.replicates[r] == pytest.approx(values[resample_indices(200, 3, r)].mean(), abs=1e-12)
    assert result.low == np.quantile(result.replicates, 0.1)
    assert result.high == np.quantile(result.replicates, 0.9)
    assert lower_bound(result) == result.low and upper_bound(result) == result.high
    assert result.interval == (result.low, result.high)
    assert result.std_error == pytest.approx(np.std(result.replicates, ddof=1))
    assert result.bias == pytest.approx(np.mean(result.replicates) - values.mean(), abs=1e-15)
    assert (result.resamples, result.confidence, result.seed, result.n, result.undefined) == (500, 0.9, 3, 200, 0)


def test_two_values_hand_computed() -> None:
    # Resample means of {0, 1} take 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4: the 5 % and 95 %
    # quantiles of 2,000 replicates are 0 and 1 (each end has ~500 replicates).
    result = paired_mean_bootstrap([0.0, 1.0], None, 2000, 0.95, 0)
    assert (result.estimate, result.low, result.high) == (0.5, 0.0, 1.0)
    assert set(np.unique(result.replicates)) == {0.0, 0.5, 1.0}


def test_one_scenario_gives_a_degenerate_interval() -> None:
    result = paired_mean_bootstrap([0.3], [0.1], 100, 0.95, 0)
    assert result.estimate == pytest.approx(0.2)
    assert result.low == result.high == result.estimate and result.std_error < 1e-15


def test_paired_difference_resamples_scenarios_jointly() -> None:
    rng = np.random.default_rng(1)
    baseline = rng.normal(0.0, 5.0, 300)  # large between-scenario spread...
    candidate = baseline + 0.1 + rng.normal(0.0, 0.05, 300)  # ...that pairing removes
    paired = paired_mean_bootstrap(candidate, baseline, 1000, 0.95, 0)
    assert paired.estimate == pytest.approx(np.mean(candidate - baseline))
    assert 0.09 < paired.low < paired.estimate < paired.high < 0.11
    # Same seed, same resamples: the paired replicates are the differences of the unpaired ones.
    alone_c = paired_mean_bootstrap(candidate, None, 1000, 0.95, 0)
    alone_b = paired_mean_bootstrap(baseline, None, 1000, 0.95, 0)
    assert np.allclose(paired.replicates, alone_c.replicates - alone_b.replicates, atol=1e-12)


def test_weighted_mean_and_undefined_resamples() -> None:
    values = np.array([1.0, 2.0, 10.0])
    weights = np.array([1.0, 0.0, 0.0])
    result = paired_mean_bootstrap(values, None, 400, 0.95, 4, weights=weights)
    assert result.estimate == 1.0
    # A resample that draws no weight is undefined: exactly those without scenario 0.
    without = sum(1 for r in range(400) if 0 not in resample_indices(3, 4, r))
    assert without > 0 and result.undefined == without
    assert int(np.isnan(result.replicates).sum()) == without
    assert result.low == result.high == 1.0


def test_weighted_mean_is_a_ratio_estimator() -> None:
    values, weights = np.array([1.0, 3.0]), np.array([3.0, 1.0])
    result = paired_mean_bootstrap(values, None, 50, 0.95, 0, weights=weights)
    assert result.estimate == pytest.approx(1.5)  # (3 * 1 + 1 * 3) / 4
    idx = resample_indices(2, 0, 5)
    assert result.replicates[5] == pytest.approx((weights[idx] * values[idx]).sum() / weights[idx].sum())


def test_deterministic_for_a_seed_whatever_the_threads_and_blocks() -> None:
    values = np.random.default_rng(2).exponential(1.0, 3 * DRAW_PIECE // 2)
    one = paired_mean_bootstrap(values, None, 64, 0.95, 11, workers=1)
    three = paired_mean_bootstrap(values, None, 64, 0.95, 11, workers=3)
    assert np.array_equal(one.replicates, three.replicates) and one == three
    more = paired_mean_bootstrap(values, None, 128, 0.95, 11, workers=2)
    assert np.array_equal(more.replicates[:64], one.replicates)  # more resamples extend, never reshuffle
    other = paired_mean_bootstrap(values, None, 64, 0.95, 12)
    assert not np.array_equal(other.replicates, one.replicates)


def test_default_workers_honours_omp_num_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert default_workers() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "not a number")
    assert 1 <= default_workers() <= 8


def test_map_resample_blocks_is_independent_of_block_size() -> None:
    def compute(start: int, stop: int) -> np.ndarray:
        return np.arange(start, stop, dtype=np.float64) ** 2

    expected = np.arange(23, dtype=np.float64) ** 2
    for block, workers in ((1, 1), (5, 2), (23, 4), (100, 1)):
        assert np.array_equal(map_resample_blocks(compute, 23, block, workers), expected)
    with pytest.raises(BadInput, match="workers=0"):
        map_resample_blocks(compute, 23, 5, 0)


def test_agrees_with_scipy_percentile_bootstrap_within_monte_carlo_error() -> None:
    values = np.random.default_rng(5).gamma(2.0, 1.0, 500)
    ours = paired_mean_bootstrap(values, None, 4000, 0.95, 0)
    # Our ends are one-sided at 0.95: scipy's two-sided percentile interval at 0.90.
    theirs = stats.bootstrap((values,), np.mean, n_resamples=4000, confidence_level=0.90, method="percentile",
                             vectorized=True, random_state=np.random.default_rng(1))
    tolerance = 0.25 * ours.std_error
    assert ours.low == pytest.approx(theirs.confidence_interval.low, abs=tolerance)
    assert ours.high == pytest.approx(theirs.confidence_interval.high, abs=tolerance)
    assert ours.std_error == pytest.approx(theirs.standard_error, rel=0.1)


@pytest.mark.parametrize("candidate, baseline, weights, match", [
    ([1.0, math.nan, 2.0, math.nan], None, None, r"candidate: 2 of 4 .*NaN or infinite \(scenario index 1, 3\)"),
    ([1.0, 2.0], [0.0, math.inf], None, r"baseline: 1 of 2 .*scenario index 1"),
    ([1.0, 2.0], None, [1.0, math.nan], r"weights: 1 of 2 .*scenario index 1"),
    (np.full(8, math.nan), None, None, r"8 of 8 .*scenario index 0, 1, 2, 3, 4, \.\.\."),
])
def test_nan_or_infinite_values_fail_closed(candidate, baseline, weights, match) -> None:
    with pytest.raises(BadInput, match=match):
        paired_mean_bootstrap(candidate, baseline, 10, 0.95, 0, weights=weights)


@pytest.mark.parametrize("kwargs, match", [
    ({"candidate": []}, "no scenarios"),
    ({"candidate": [[1.0, 2.0]]}, "1-D"),
    ({"baseline": [1.0]}, "baseline: 1 values but 2 scenarios"),
    ({"candidate": ["a", "b"]}, "must be numbers"),
    ({"weights": [1.0, -1.0]}, "weights: must be >= 0"),
    ({"weights": [0.0, 0.0]}, "positive sum"),
    ({"resamples": 0}, "resamples=0"),
    ({"resamples": 10.5}, "resamples=10.5"),
    ({"resamples": True}, "resamples=True"),
    ({"confidence": 0.5}, "confidence=0.5"),
    ({"confidence": 1.0}, "confidence=1.0"),
    ({"confidence": "0.9"}, "confidence='0.9'"),
    ({"seed": -1}, "seed=-1"),
    ({"seed": 1.5}, "seed=1.5"),
])
def test_bad_input_names_the_value(kwargs, match) -> None:
    args = {"candidate": [1.0, 2.0], "baseline": None, "resamples": 10, "confidence": 0.95, "seed": 0,
            "weights": None} | kwargs
    with pytest.raises(BadInput, match=match):
        paired_mean_bootstrap(**args)


def test_result_round_trips_through_json_form() -> None:
    result = paired_mean_bootstrap([1.0, 2.0, 4.0], None, 20, 0.95, 9)
    data = result.to_dict()
    assert "replicates" not in data and data["method"] == "percentile, one-sided bounds"
    assert BootstrapResult.from_dict(data) == result  # replicates are not compared
    undefined = BootstrapResult(1.0, math.nan, math.nan, 5, 0.95, 0, 1, math.nan, 5)
    assert undefined.to_dict()["low"] is None
    assert math.isnan(BootstrapResult.from_dict(undefined.to_dict()).low)
    with pytest.raises(BadInput, match="missing or malformed"):
        BootstrapResult.from_dict({"estimate": 1.0})


def test_replicates_are_read_only() -> None:
    result = paired_mean_bootstrap([1.0, 2.0], None, 5, 0.95, 0)
    with pytest.raises(ValueError):
        result.replicates[0] = 0.0
