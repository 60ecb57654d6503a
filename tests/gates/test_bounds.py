"""Exact Poisson / binomial bounds, km-per-disengagement gates, sample sizes and the three outcomes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from andon.errors import BadInput
from andon.gates.bootstrap import BootstrapResult
from andon.gates.bounds import (
    binomial_lower,
    binomial_upper,
    collision_probability_upper_bound,
    collision_rate_upper_bound,
    collisions_outcome,
    decide,
    decision_margin,
    km_needed_to_show,
    km_per_disengagement_bounds,
    km_per_disengagement_interval,
    km_per_disengagement_lower_bound,
    more_scenarios_needed,
    poisson_interval,
    poisson_lower,
    poisson_upper,
    rate_lower_bound,
    rate_ratio_bounds,
    rate_ratio_upper_bound,
    rate_upper_bound,
    scenarios_needed,
)


def poisson_cdf(k: int, mu: float) -> float:
    """P(X <= k) for X ~ Poisson(mu), by the series (hand formula, no scipy)."""
    return sum(math.exp(-mu) * mu**i / math.factorial(i) for i in range(k + 1))


# ---------------------------------------------------------------------------------------------
# Poisson (Garwood)
# ---------------------------------------------------------------------------------------------

def test_poisson_bounds_hand_computed() -> None:
    # D = 0: P(X = 0) = exp(-mu) = 0.05 -> mu = -ln 0.05 = 2.9957 (the "rule of three").
    assert poisson_upper(0, 0.95) == pytest.approx(-math.log(0.05), rel=1e-12)
    assert poisson_lower(0, 0.95) == 0.0
    # D = 1: P(X >= 1) = 1 - exp(-mu) = 0.05 -> mu = -ln 0.95; upper solves exp(-mu)(1 + mu) = 0.05.
    assert poisson_lower(1, 0.95) == pytest.approx(-math.log(0.95), rel=1e-12)
    assert poisson_upper(1, 0.95) == pytest.approx(4.743865, abs=1e-6)
    assert poisson_cdf(1, poisson_upper(1, 0.95)) == pytest.approx(0.05, abs=1e-12)
    # Tabulated one-sided 95 % upper limits (Gehrels 1986): 6.296 for 2 events, 7.754 for 3.
    assert poisson_upper(2, 0.95) == pytest.approx(6.296, abs=1e-3)
    assert poisson_upper(3, 0.95) == pytest.approx(7.754, abs=1e-3)


@pytest.mark.parametrize("count", [0, 1, 2, 5, 17, 100, 1000])
@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.999])
def test_poisson_bounds_match_chi2_quantiles(count: int, confidence: float) -> None:
    assert poisson_upper(count, confidence) == pytest.approx(stats.chi2.ppf(confidence, 2 * count + 2) / 2, rel=1e-10)
    expected_lower = 0.0 if count == 0 else stats.chi2.ppf(1 - confidence, 2 * count) / 2
    assert poisson_lower(count, confidence) == pytest.approx(expected_lower, rel=1e-10)
    if count < 50:
        assert poisson_cdf(count, poisson_upper(count, confidence)) == pytest.approx(1 - confidence, abs=1e-10)
        if count:
            assert 1 - poisson_cdf(count - 1, poisson_lower(count, confidence)) == pytest.approx(1 - confidence,
                                                                                                abs=1e-10)


def test_two_sided_garwood_interval_hand_values() -> None:
    low, high = poisson_interval(0, 0.95)
    assert low == 0.0 and high == pytest.approx(-math.log(0.025), rel=1e-12)  # 3.689
    low, high = poisson_interval(1, 0.95)
    assert low == pytest.approx(-math.log(0.975), rel=1e-12)  # 0.0253
    assert high == pytest.approx(5.5716, abs=1e-4)


def test_upper_bound_covers_the_true_mean_at_least_at_its_confidence() -> None:
    # Exactness: over the Poisson distribution of counts, P(upper(D) >= mu) >= 0.95.
    for mu in (0.3, 2.0, 7.5):
        ks = np.arange(0, 80)
        probability = stats.poisson.pmf(ks, mu)
        covered = np.array([poisson_upper(int(k), 0.95) >= mu for k in ks])
        assert probability[covered].sum() >= 0.95


def test_rates_divide_by_exposure() -> None:
    assert rate_upper_bound(0, 1000.0, 0.95) == pytest.approx(2.995732 / 1000, rel=1e-6)
    assert rate_lower_bound(4, 2.0, 0.9) == pytest.approx(poisson_lower(4, 0.9) / 2.0)


# ---------------------------------------------------------------------------------------------
# Km per disengagement
# ---------------------------------------------------------------------------------------------

def test_km_per_disengagement_bounds() -> None:
    assert km_per_disengagement_lower_bound(100.0, 0, 0.95) == pytest.approx(100 / 2.995732, rel=1e-6)
    low, high = km_per_disengagement_bounds(100.0, 0, 0.95)
    assert high == math.inf and low == pytest.approx(33.381, abs=1e-3)
    low, high = km_per_disengagement_bounds(500.0, 4, 0.95)
    assert low == pytest.approx(500 / poisson_upper(4, 0.95)) and high == pytest.approx(500 / poisson_lower(4, 0.95))
    assert low < 500 / 4 < high


def test_km_per_disengagement_interval_is_two_sided_with_null_for_infinite() -> None:
    low, high = km_per_disengagement_interval(100.0, 0, 0.95)
    assert low == pytest.approx(100 / 3.688879, rel=1e-6) and high is None
    low, high = km_per_disengagement_interval(100.0, 1, 0.95)
    assert low == pytest.approx(100 / 5.571643, rel=1e-6) and high == pytest.approx(100 / 0.025318, rel=1e-4)


def test_km_needed_to_show_reaches_the_floor_exactly() -> None:
    # Floor 50 km per disengagement with 2 disengagements: 50 * 6.2958 = 314.8 km in total.
    total = km_needed_to_show(50.0, 2, 0.95)
    assert total == pytest.approx(50 * 6.295794, rel=1e-6)
    assert km_per_disengagement_lower_bound(total, 2, 0.95) == pytest.approx(50.0, rel=1e-12)
    assert km_needed_to_show(50.0, 2, 0.95, observed_km=100.0) == pytest.approx(total - 100.0)
    assert km_needed_to_show(50.0, 2, 0.95, observed_km=1000.0) == 0.0
    # With none observed yet: the rule of three.
    assert km_needed_to_show(10.0, 0, 0.95) == pytest.approx(29.957, abs=1e-3)


# ---------------------------------------------------------------------------------------------
# Binomial and the ratio of two rates
# ---------------------------------------------------------------------------------------------

def test_binomial_bounds_hand_computed() -> None:
    # x = 0 of n: (1 - p)^n = 0.05 -> p = 1 - 0.05^(1/n); x = n: p^n = 0.05.
    assert binomial_upper(0, 10, 0.95) == pytest.approx(1 - 0.05 ** (1 / 10), rel=1e-12)
    assert binomial_lower(10, 10, 0.95) == pytest.approx(0.05 ** (1 / 10), rel=1e-12)
    assert binomial_lower(0, 10, 0.95) == 0.0 and binomial_upper(10, 10, 0.95) == 1.0


@pytest.mark.parametrize("x, n", [(1, 1), (1, 10), (3, 7), (50, 100), (999, 1000)])
def test_binomial_bounds_match_beta_quantiles(x: int, n: int) -> None:
    assert binomial_lower(x, n, 0.95) == pytest.approx(stats.beta.ppf(0.05, x, n - x + 1), rel=1e-9)
    if x < n:
        assert binomial_upper(x, n, 0.95) == pytest.approx(stats.beta.ppf(0.95, x + 1, n - x), rel=1e-9)
        assert stats.binom.cdf(x, n, binomial_upper(x, n, 0.95)) == pytest.approx(0.05, abs=1e-9)


def test_rate_ratio_hand_computed() -> None:
    # Candidate 0 disengagements, production 10, equal km: p_U = 1 - 0.05^(1/10), rho_U = p_U / (1 - p_U).
    p_u = 1 - 0.05 ** (1 / 10)
    assert rate_ratio_upper_bound(0, 100.0, 10, 100.0, 0.95) == pytest.approx(p_u / (1 - p_u), rel=1e-12)
    # Twice the candidate's km halves the ratio bounds.
    a = rate_ratio_bounds(3, 100.0, 6, 100.0, 0.95)
    b = rate_ratio_bounds(3, 200.0, 6, 100.0, 0.95)
    assert b == pytest.approx((a[0] / 2, a[1] / 2))


def test_rate_ratio_bound_is_the_conditional_binomial_test() -> None:
    # At rho = upper bound, P(D1 <= observed | N) = 1 - confidence under Binomial(N, p(rho)).
    d1, e1, d2, e2 = 4, 300.0, 9, 250.0
    rho = rate_ratio_upper_bound(d1, e1, d2, e2, 0.95)
    p = rho * e1 / (rho * e1 + e2)
    assert stats.binom.cdf(d1, d1 + d2, p) == pytest.approx(0.05, abs=1e-9)
    low, high = rate_ratio_bounds(d1, e1, d2, e2, 0.95)
    assert low < (d1 / e1) / (d2 / e2) < high == rho


def test_rate_ratio_without_information_or_without_baseline_events() -> None:
    assert rate_ratio_bounds(0, 10.0, 0, 10.0, 0.95) == (0.0, math.inf)
    assert rate_ratio_upper_bound(3, 10.0, 0, 10.0, 0.95) == math.inf
    assert rate_ratio_bounds(0, 10.0, 5, 10.0, 0.95)[0] == 0.0


# ---------------------------------------------------------------------------------------------
# Collisions
# ---------------------------------------------------------------------------------------------

def test_collisions() -> None:
    assert collisions_outcome(0) == "pass" and collisions_outcome(1) == "fail"
    assert collision_rate_upper_bound(0, 1000.0, 0.95) == pytest.approx(-math.log(0.05) / 1000, rel=1e-12)
    assert collision_probability_upper_bound(0, 300, 0.95) == pytest.approx(1 - 0.05 ** (1 / 300), rel=1e-12)
    with pytest.raises(BadInput, match="collisions=-1"):
        collisions_outcome(-1)


# ---------------------------------------------------------------------------------------------
# Sample sizes
# ---------------------------------------------------------------------------------------------

def test_scenarios_needed_normal_approximation() -> None:
    # z(0.95) = 1.6449: (1.6449 * 1 / 0.1)^2 = 270.6 -> 271.
    assert scenarios_needed(1.0, 0.1, 0.95) == 271
    assert scenarios_needed(0.0, 0.1, 0.95) == 1
    assert scenarios_needed(1.0, 0.0, 0.95) is None
    # At that n the one-sided bound's half-width fits the margin.
    assert 1.6448536 * 1.0 / math.sqrt(271) <= 0.1


def test_more_scenarios_needed_from_a_bootstrap_result() -> None:
    # sigma = 0.01 * sqrt(100) = 0.1; margin 0.005: (1.6449 * 0.1 / 0.005)^2 = 1082.2 -> 1083 - 100 more.
    result = BootstrapResult(0.015, 0.0, 0.03, 1000, 0.95, 0, 100, 0.01)
    assert more_scenarios_needed(result, 0.01) == 983
    assert more_scenarios_needed(result, 0.015) is None  # the estimate sits on the bound
    # The approximation says 100 suffice, but the bootstrap straddled: at least one more.
    assert more_scenarios_needed(result, -1.0) == 1
    assert more_scenarios_needed(BootstrapResult(0.0, math.nan, math.nan, 5, 0.95, 0, 1, math.nan, 5), 1.0) is None


# ---------------------------------------------------------------------------------------------
# The three outcomes
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("low, high, bound, direction, outcome", [
    (0.6, 0.8, 0.5, ">=", "pass"),
    (0.5, 0.8, 0.5, ">=", "pass"),  # the lower bound on the bound: >= holds
    (0.4, 0.8, 0.5, ">=", "insufficient"),
    (0.4, 0.5, 0.5, ">=", "insufficient"),  # the true value may equal the bound
    (0.2, 0.4, 0.5, ">=", "fail"),
    (0.5, 0.8, 0.5, ">", "insufficient"),
    (0.2, 0.5, 0.5, ">", "fail"),
    (0.6, 0.8, 0.5, ">", "pass"),
    (0.1, 0.5, 0.5, "<=", "pass"),
    (0.4, 0.6, 0.5, "<=", "insufficient"),
    (0.5, 0.6, 0.5, "<=", "insufficient"),
    (0.51, 0.6, 0.5, "<=", "fail"),
    (0.1, 0.5, 0.5, "<", "insufficient"),
    (0.5, 0.6, 0.5, "<", "fail"),
    (0.1, 0.4, 0.5, "<", "pass"),
    (-0.02, 0.01, -0.03, ">=", "pass"),  # non-regression: candidate - production >= -delta
    (30.0, None, 20.0, ">=", "pass"),  # km per disengagement with no disengagement: high = inf
    (10.0, None, 20.0, ">=", "insufficient"),
    (None, 2.0, 1.2, "<=", "insufficient"),
])
def test_decide(low, high, bound, direction, outcome) -> None:
    assert decide(low, high, bound, direction) == outcome


def test_decide_fails_closed_on_bad_input() -> None:
    with pytest.raises(BadInput, match="NaN"):
        decide(math.nan, 1.0, 0.5, ">=")
    with pytest.raises(BadInput, match="NaN"):
        decide(0.0, 1.0, math.nan, ">=")
    with pytest.raises(BadInput, match="missing"):
        decide(0.0, 1.0, None, ">=")
    with pytest.raises(BadInput, match="direction='=='"):
        decide(0.0, 1.0, 0.5, "==")
    with pytest.raises(BadInput, match="lower end exceeds"):
        decide(1.0, 0.0, 0.5, ">=")


def test_decision_margin() -> None:
    assert decision_margin(0.6, 0.8, 0.5, ">=") == pytest.approx(0.1)
    assert decision_margin(0.4, 0.8, 0.5, ">") == pytest.approx(-0.1)
    assert decision_margin(0.1, 0.4, 0.5, "<=") == pytest.approx(0.1)
    assert decision_margin(0.1, None, 0.5, "<") == -math.inf


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: poisson_upper(-1, 0.95), "count=-1"),
    (lambda: poisson_upper(2.5, 0.95), "count=2.5"),
    (lambda: poisson_upper(True, 0.95), "count=True"),
    (lambda: poisson_upper(1, 1.0), "confidence=1.0"),
    (lambda: poisson_upper(1, 0.5), "confidence=0.5"),
    (lambda: poisson_interval(1, 0.0), "confidence=0.0"),
    (lambda: rate_upper_bound(1, 0.0, 0.95), "exposure=0.0"),
    (lambda: km_per_disengagement_bounds(-5.0, 1, 0.95), "km=-5.0"),
    (lambda: km_needed_to_show(0.0, 1, 0.95), "floor_km_per_disengagement=0.0"),
    (lambda: km_needed_to_show(10.0, 1, 0.95, observed_km=-1.0), "observed_km=-1.0"),
    (lambda: binomial_upper(3, 2, 0.95), "3 of 2"),
    (lambda: binomial_upper(0, 0, 0.95), "0 of 0"),
    (lambda: rate_ratio_bounds(1, 1.0, 1, math.inf, 0.95), "baseline_exposure=inf"),
    (lambda: scenarios_needed(-1.0, 0.1, 0.95), "std_per_scenario=-1.0"),
    (lambda: scenarios_needed(1.0, math.nan, 0.95), "margin=nan"),
])
def test_bad_input_names_the_value(call, match) -> None:
    with pytest.raises(BadInput, match=match):
        call()


def test_whole_float_counts_are_accepted() -> None:
    assert poisson_upper(3.0, 0.95) == poisson_upper(3, 0.95)
    assert poisson_upper(np.int64(3), 0.95) == poisson_upper(3, 0.95)
