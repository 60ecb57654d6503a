"""Exact count bounds for system-metric gates, sample sizes, and the three-outcome decision.

Conventions (the gate evaluator relies on them):

- **One-sided bounds at `confidence`.** A gate asks "is the metric on the right side of its bound?".
  A lower bound at confidence c is exceeded by the true value with probability >= c (and likewise
  for upper bounds), so each of the decisions "pass" and "fail" is wrong with probability at most
  1 - c. The pair (lower, upper) at c is a two-sided interval at 2c - 1.
- **Poisson counts (Garwood, exact).** For D events: lower(D) = chi2.ppf(1 - c, 2D) / 2 (0 when D = 0),
  upper(D) = chi2.ppf(c, 2D + 2) / 2, computed as inverse regularised incomplete gamma functions.
  With D = 0 the upper bound is -ln(1 - c) (3.0 at c = 0.95, the "rule of three").
- **Km per disengagement.** With `km` driven and D disengagements, km / upper(D) is a lower bound
  and km / lower(D) an upper bound (infinite when D = 0). The simulation's reported `interval` is
  the two-sided Garwood version (`km_per_disengagement_interval`).
- **Non-regression of a rate against production.** Candidate D1 events in exposure E1, production
  D2 in E2. Conditional on N = D1 + D2, D1 ~ Binomial(N, p) with p = rho E1 / (rho E1 + E2), rho =
  the ratio of the candidate's rate to production's; exact Clopper-Pearson bounds on p map to
  bounds on rho. rho <= 1 means the candidate disengages no more often per km. With N = 0 there is
  no information: the bounds are [0, inf].
- **Binomial proportions (Clopper-Pearson, exact).** For x of n: lower = beta.ppf(1 - c, x, n - x + 1)
  (0 when x = 0), upper = beta.ppf(c, x + 1, n - x) (1 when x = n).
- **Decisions** (`decide`): "pass" when the whole interval is on the right side of the bound,
  "fail" when the whole interval is on the wrong side, "insufficient" when it straddles the bound.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy import special

from andon.errors import BadInput
from andon.gates.bootstrap import BootstrapResult

Outcome = Literal["pass", "fail", "insufficient"]
PASS: Outcome = "pass"
FAIL: Outcome = "fail"
INSUFFICIENT: Outcome = "insufficient"
DIRECTIONS = (">=", ">", "<=", "<")


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer | float | np.floating):
        raise BadInput(f"{name}={value!r}: give a whole number of events >= 0")
    if not math.isfinite(float(value)) or float(value) != int(value) or int(value) < 0:
        raise BadInput(f"{name}={value!r}: give a whole number of events >= 0")
    return int(value)


def _positive(value: object, name: str, unit: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | np.integer | float | np.floating) \
            or not math.isfinite(float(value)) or float(value) <= 0:
        raise BadInput(f"{name}={value!r}: give a finite number > 0 {unit}")
    return float(value)


def _confidence(value: object, one_sided: bool = True) -> float:
    low = 0.5 if one_sided else 0.0
    if isinstance(value, bool) or not isinstance(value, int | np.integer | float | np.floating) \
            or not low < float(value) < 1.0:
        raise BadInput(f"confidence={value!r}: give a number in ({low:g}, 1), e.g. 0.95")
    return float(value)


# ---------------------------------------------------------------------------------------------
# Poisson (Garwood)
# ---------------------------------------------------------------------------------------------

def poisson_lower(count: int, confidence: float) -> float:
    """One-sided exact lower bound on a Poisson mean from `count` events: chi2.ppf(1 - c, 2D) / 2."""
    count, confidence = _count(count, "count"), _confidence(confidence)
    return 0.0 if count == 0 else float(special.gammaincinv(count, 1.0 - confidence))


def poisson_upper(count: int, confidence: float) -> float:
    """One-sided exact upper bound on a Poisson mean from `count` events: chi2.ppf(c, 2D + 2) / 2."""
    count, confidence = _count(count, "count"), _confidence(confidence)
    return float(special.gammainccinv(count + 1, 1.0 - confidence))


def poisson_interval(count: int, confidence: float) -> tuple[float, float]:
    """Two-sided exact (Garwood) interval on a Poisson mean at `confidence` (each tail (1 - c) / 2)."""
    confidence = _confidence(confidence, one_sided=False)
    tail = (1.0 + confidence) / 2.0
    return poisson_lower(count, tail), poisson_upper(count, tail)


def rate_upper_bound(count: int, exposure: float, confidence: float) -> float:
    """One-sided upper bound on an event rate per unit exposure (e.g. disengagements per km)."""
    return poisson_upper(count, confidence) / _positive(exposure, "exposure", "(e.g. km)")


def rate_lower_bound(count: int, exposure: float, confidence: float) -> float:
    """One-sided lower bound on an event rate per unit exposure."""
    return poisson_lower(count, confidence) / _positive(exposure, "exposure", "(e.g. km)")


# ---------------------------------------------------------------------------------------------
# Km per disengagement
# ---------------------------------------------------------------------------------------------

def km_per_disengagement_bounds(km: float, disengagements: int, confidence: float) -> tuple[float, float]:
    """One-sided bounds on km per disengagement: (km / upper(D), km / lower(D)); the upper is inf when D = 0."""
    km = _positive(km, "km", "km")
    lower_rate = poisson_lower(disengagements, confidence)
    return km / poisson_upper(disengagements, confidence), (math.inf if lower_rate == 0 else km / lower_rate)


def km_per_disengagement_lower_bound(km: float, disengagements: int, confidence: float) -> float:
    """One-sided lower bound on km per disengagement: km / poisson_upper(D)."""
    return km_per_disengagement_bounds(km, disengagements, confidence)[0]


def km_per_disengagement_interval(km: float, disengagements: int,
                                  confidence: float) -> tuple[float, float | None]:
    """Two-sided Garwood interval on km per disengagement, as the simulation result reports it.

    Returns:
        (km / upper(D), km / lower(D)) with each tail (1 - confidence) / 2; the high end is None
        (infinite) when D = 0.
    """
    km = _positive(km, "km", "km")
    lower, upper = poisson_interval(disengagements, confidence)
    return km / upper, (None if lower == 0 else km / lower)


def km_needed_to_show(floor_km_per_disengagement: float, observed_count: int, confidence: float,
                      observed_km: float = 0.0) -> float:
    """More km, with no further disengagement, for the lower bound to reach a floor.

    The lower bound on km per disengagement is km / poisson_upper(D); it reaches the floor once
    km >= floor * poisson_upper(D). This is the least additional driving that can still pass (any
    new disengagement raises it); the report's "how many more km are needed".

    Args:
        floor_km_per_disengagement: the gate's floor [km].
        observed_count: disengagements observed so far.
        confidence: one-sided confidence.
        observed_km: km driven so far (0: return the total km needed).

    Returns:
        max(0, floor * poisson_upper(D) - observed_km) [km].
    """
    floor = _positive(floor_km_per_disengagement, "floor_km_per_disengagement", "km")
    if isinstance(observed_km, bool) or not math.isfinite(float(observed_km)) or float(observed_km) < 0:
        raise BadInput(f"observed_km={observed_km!r}: give the km driven so far, a finite number >= 0")
    return max(0.0, floor * poisson_upper(observed_count, confidence) - float(observed_km))


# ---------------------------------------------------------------------------------------------
# Binomial (Clopper-Pearson) and the ratio of two Poisson rates
# ---------------------------------------------------------------------------------------------

def _trials(successes: int, trials: int) -> tuple[int, int]:
    successes, trials = _count(successes, "successes"), _count(trials, "trials")
    if trials == 0 or successes > trials:
        raise BadInput(f"{successes} of {trials}: need 0 <= successes <= trials and trials >= 1")
    return successes, trials


def binomial_lower(successes: int, trials: int, confidence: float) -> float:
    """One-sided exact (Clopper-Pearson) lower bound on a proportion: beta.ppf(1 - c, x, n - x + 1)."""
    x, n = _trials(successes, trials)
    confidence = _confidence(confidence)
    return 0.0 if x == 0 else float(special.betaincinv(x, n - x + 1, 1.0 - confidence))


def binomial_upper(successes: int, trials: int, confidence: float) -> float:
    """One-sided exact (Clopper-Pearson) upper bound on a proportion: beta.ppf(c, x + 1, n - x)."""
    x, n = _trials(successes, trials)
    confidence = _confidence(confidence)
    return 1.0 if x == n else float(special.betainccinv(x + 1, n - x, 1.0 - confidence))


def rate_ratio_bounds(count: int, exposure: float, baseline_count: int, baseline_exposure: float,
                      confidence: float) -> tuple[float, float]:
    """One-sided exact bounds on rho = candidate rate / baseline rate (conditional binomial test).

    Conditional on N = count + baseline_count, count ~ Binomial(N, p) with
    p = rho * exposure / (rho * exposure + baseline_exposure); Clopper-Pearson bounds on p give
    rho = p / (1 - p) * baseline_exposure / exposure.

    Args:
        count: the candidate's events (e.g. disengagements) in `exposure` (e.g. km).
        exposure: the candidate's exposure (> 0).
        baseline_count: production's events in `baseline_exposure`.
        baseline_exposure: production's exposure (> 0).
        confidence: one-sided confidence of each bound.

    Returns:
        (lower, upper) on rho; (0, inf) when neither had an event (no information); the upper is
        inf when the baseline had none (any candidate event could be an unbounded regression).
    """
    d1, d2 = _count(count, "count"), _count(baseline_count, "baseline_count")
    e1 = _positive(exposure, "exposure", "(e.g. km)")
    e2 = _positive(baseline_exposure, "baseline_exposure", "(e.g. km)")
    confidence = _confidence(confidence)
    total = d1 + d2
    if total == 0:
        return 0.0, math.inf
    scale = e2 / e1
    p_low = binomial_lower(d1, total, confidence)
    p_high = binomial_upper(d1, total, confidence)
    return p_low / (1.0 - p_low) * scale, (math.inf if p_high >= 1.0 else p_high / (1.0 - p_high) * scale)


def rate_ratio_upper_bound(count: int, exposure: float, baseline_count: int, baseline_exposure: float,
                           confidence: float) -> float:
    """One-sided exact upper bound on candidate rate / baseline rate (see rate_ratio_bounds).

    A "not worse than production" gate passes when this is <= its allowed ratio (e.g. 1.2: at most
    20 % more disengagements per km). With an allowed ratio of exactly 1, a candidate as good as
    production never passes (the bound sits above 1): configure a tolerance.
    """
    return rate_ratio_bounds(count, exposure, baseline_count, baseline_exposure, confidence)[1]


# ---------------------------------------------------------------------------------------------
# Collisions
# ---------------------------------------------------------------------------------------------

def collisions_outcome(collisions: int) -> Outcome:
    """The collision gate: "pass" with no collision, else "fail" (no tolerance, no statistics)."""
    return PASS if _count(collisions, "collisions") == 0 else FAIL


def collision_rate_upper_bound(collisions: int, km: float, confidence: float) -> float:
    """One-sided exact upper bound on collisions per km (Poisson); with none, -ln(1 - c) / km."""
    return rate_upper_bound(collisions, km, confidence)


def collision_probability_upper_bound(scenarios_with_collision: int, scenarios: int, confidence: float) -> float:
    """One-sided exact upper bound on the share of scenarios with a collision (Clopper-Pearson)."""
    return binomial_upper(scenarios_with_collision, scenarios, confidence)


# ---------------------------------------------------------------------------------------------
# Sample size for a bootstrap decision
# ---------------------------------------------------------------------------------------------

def scenarios_needed(std_per_scenario: float, margin: float, confidence: float) -> int | None:
    """Scenarios for a one-sided bound to clear `margin`, by the normal approximation.

    The one-sided bound of a mean lies z * sigma / sqrt(n) from the estimate (z = the standard
    normal `confidence` quantile), so it falls on the estimate's side of the gate's bound once
    n >= (z * sigma / margin)^2. This assumes the estimate and the spread stay as observed; it is
    a planning figure, not a guarantee.

    Args:
        std_per_scenario: standard deviation of one scenario's value (sigma), >= 0.
        margin: |estimate - bound|, the distance the bound must fit in.
        confidence: one-sided confidence.

    Returns:
        The total scenarios n (>= 1); None when margin is 0 (no number of scenarios decides an
        estimate that sits on the bound).
    """
    confidence = _confidence(confidence)
    if isinstance(std_per_scenario, bool) or not math.isfinite(float(std_per_scenario)) or std_per_scenario < 0:
        raise BadInput(f"std_per_scenario={std_per_scenario!r}: give a finite standard deviation >= 0")
    if isinstance(margin, bool) or not math.isfinite(float(margin)) or margin < 0:
        raise BadInput(f"margin={margin!r}: give |estimate - bound|, a finite number >= 0")
    if margin == 0:
        return None
    z = float(special.ndtri(confidence))
    return max(1, math.ceil((z * float(std_per_scenario) / float(margin)) ** 2))


def more_scenarios_needed(result: BootstrapResult, bound: float) -> int | None:
    """Additional scenarios an "insufficient" bootstrap decision needs (normal approximation).

    The spread per scenario is estimated from the bootstrap, sigma = std_error * sqrt(n) (for mAP,
    which is not a mean, this is the spread that scales the same way). The margin is
    |estimate - bound|.

    Returns:
        max(1, scenarios_needed - n): at least one more when the approximation says the current
        count should have sufficed (a skewed bootstrap distribution); None when the estimate sits
        on the bound or the spread is unknown.
    """
    if not math.isfinite(result.std_error) or not math.isfinite(result.estimate):
        return None
    needed = scenarios_needed(result.std_error * math.sqrt(result.n), abs(result.estimate - float(bound)),
                              result.confidence)
    return None if needed is None else max(1, needed - result.n)


# ---------------------------------------------------------------------------------------------
# The three-outcome decision
# ---------------------------------------------------------------------------------------------

def _bound_value(value: float | None, name: str, missing: float | None) -> float:
    if value is None:
        if missing is None:
            raise BadInput(f"{name} is missing: give the gate's bound as a number")
        return missing
    value = float(value)
    if math.isnan(value):
        raise BadInput(f"{name} is NaN: the metric could not be bounded; the gate fails closed")
    return value


def decide(low: float | None, high: float | None, bound: float, direction: str) -> Outcome:
    """Pass, fail or insufficient evidence, from one-sided bounds (low, high) and a gate's bound.

    For ">=" (the metric must be at least `bound`): "pass" when low >= bound (the whole interval
    clears it), "fail" when high < bound (the whole interval is below it), else "insufficient".
    ">" passes when low > bound and fails when high <= bound. "<=" and "<" mirror these: "<="
    passes when high <= bound and fails when low > bound; "<" passes when high < bound and fails
    when low >= bound. None stands for an unbounded end (-inf for low, +inf for high).

    Raises:
        BadInput: an unknown direction, a NaN bound or end (fail closed), or low > high.
    """
    if direction not in DIRECTIONS:
        raise BadInput(f"direction={direction!r}: use one of {', '.join(DIRECTIONS)}")
    lo = _bound_value(low, "the lower bound", -math.inf)
    hi = _bound_value(high, "the upper bound", math.inf)
    threshold = _bound_value(bound, "the gate's bound", None)
    if lo > hi:
        raise BadInput(f"interval [{lo}, {hi}]: the lower end exceeds the upper end")
    if direction == ">=":
        return PASS if lo >= threshold else FAIL if hi < threshold else INSUFFICIENT
    if direction == ">":
        return PASS if lo > threshold else FAIL if hi <= threshold else INSUFFICIENT
    if direction == "<=":
        return PASS if hi <= threshold else FAIL if lo > threshold else INSUFFICIENT
    return PASS if hi < threshold else FAIL if lo >= threshold else INSUFFICIENT


def decision_margin(low: float | None, high: float | None, bound: float, direction: str) -> float:
    """How far the conservative end clears the bound: low - bound for ">=" / ">", bound - high for "<=" / "<".

    Positive on the pass side; -inf when that end is unbounded.
    """
    if direction not in DIRECTIONS:
        raise BadInput(f"direction={direction!r}: use one of {', '.join(DIRECTIONS)}")
    threshold = _bound_value(bound, "the gate's bound", None)
    if direction in (">=", ">"):
        return _bound_value(low, "the lower bound", -math.inf) - threshold
    return threshold - _bound_value(high, "the upper bound", math.inf)
