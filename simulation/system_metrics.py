"""System metrics of a simulation run: kilometres, disengagements, km per disengagement, collisions, comfort.

Disengagements are counts over driven distance, so their rate carries a Poisson confidence interval:
the exact (Garwood) interval on the count D, mapped to km per disengagement as [km / upper(D),
km / lower(D)] — the upper end is infinite (None) when D = 0. A scenario counts towards each of its
tags; the run's figures pool every scenario. Comfort is the ego's jerk (finite differences of its
acceleration at the frame period); progress is driven km over logged km, pooled.

Everything here is pure and vectorised; the per-scenario inputs come from `andon.simulation.results`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from andon.errors import BadInput


class ScenarioMetrics(Protocol):
    """What aggregation needs of one replayed scenario."""

    tags: tuple[str, ...]
    km: float
    logged_km: float
    disengagements: int
    collisions: int
    jerk_sq_sum_mps6: float  # sum of squared jerk samples [m²/s⁶]
    jerk_samples: int


def _check_confidence(confidence: float) -> float:
    if not (isinstance(confidence, int | float) and math.isfinite(confidence) and 0.0 < confidence < 1.0):
        raise BadInput(f"confidence {confidence!r} must lie strictly between 0 and 1 (e.g. 0.95)")
    return float(confidence)


def poisson_interval(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) two-sided confidence interval of a Poisson mean, given one observed count.

    low = χ²(α/2; 2k) / 2 (0 for k = 0), high = χ²(1 − α/2; 2k + 2) / 2, with α = 1 − confidence.

    Raises:
        BadInput: a negative count or a confidence outside (0, 1).
    """
    # imported here, not at module import: Ray workers that only reduce traces skip scipy's 0.6 s
    from scipy.stats import chi2

    confidence = _check_confidence(confidence)
    if int(count) != count or count < 0:
        raise BadInput(f"a Poisson count must be a whole number of 0 or more, not {count!r}")
    alpha = 1.0 - confidence
    low = 0.0 if count == 0 else float(chi2.ppf(alpha / 2.0, 2 * count) / 2.0)
    high = float(chi2.ppf(1.0 - alpha / 2.0, 2 * count + 2) / 2.0)
    return low, high


def km_per_disengagement(km: float, count: int, confidence: float = 0.95
                         ) -> tuple[float | None, tuple[float, float | None]]:
    """(km / D or None when D = 0, (low, high or None when D = 0)) from the Poisson interval on D.

    Raises:
        BadInput: negative or non-finite km, a bad count or confidence.
    """
    if not (math.isfinite(km) and km >= 0.0):
        raise BadInput(f"km {km!r} must be a finite distance of 0 or more")
    low_count, high_count = poisson_interval(count, confidence)
    value = km / count if count > 0 else None
    return value, (km / high_count, km / low_count if low_count > 0.0 else None)


def jerk_mps3(accel_mps2: np.ndarray, timestamps_ns: np.ndarray) -> np.ndarray:
    """Jerk between consecutive frames: Δacceleration / Δt [m/s³], (F − 1,); non-finite samples dropped.

    Raises:
        BadInput: arrays of different lengths or timestamps that do not increase.
    """
    accel = np.asarray(accel_mps2, dtype=np.float64).reshape(-1)
    stamps = np.asarray(timestamps_ns, dtype=np.int64).reshape(-1)
    if accel.shape != stamps.shape:
        raise BadInput(f"{len(accel)} accelerations for {len(stamps)} timestamps: give one per frame")
    if len(accel) < 2:
        return np.zeros(0)
    dt_s = np.diff(stamps) / 1e9
    if np.any(dt_s <= 0):
        raise BadInput("frame timestamps must increase strictly to take the jerk")
    jerk = np.diff(accel) / dt_s
    return jerk[np.isfinite(jerk)]


def jerk_stats(accel_mps2: np.ndarray, timestamps_ns: np.ndarray) -> tuple[float, float, float, int]:
    """(RMS jerk [m/s³], max |jerk| [m/s³], sum of squared jerk [m²/s⁶], number of samples); zeros when
    there are fewer than two frames."""
    jerk = jerk_mps3(accel_mps2, timestamps_ns)
    if not len(jerk):
        return 0.0, 0.0, 0.0, 0
    sq_sum = float(np.dot(jerk, jerk))
    return math.sqrt(sq_sum / len(jerk)), float(np.max(np.abs(jerk))), sq_sum, len(jerk)


def progress_ratio(km: float, logged_km: float) -> float | None:
    """Driven km over logged km (1.0: as far as the logged ego); None when the logged ego did not move."""
    return km / logged_km if logged_km > 0.0 else None


@dataclass(frozen=True, slots=True)
class SystemMetrics:
    """Pooled metrics over a set of replayed scenarios (a run, or the scenarios of one tag)."""

    scenarios: int
    km: float
    logged_km: float
    disengagements: int
    km_per_disengagement: float | None
    interval: tuple[float, float | None]
    confidence: float
    collisions: int
    collisions_per_km: float | None
    jerk_rms_mps3: float
    progress: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"scenarios": self.scenarios, "km": self.km, "logged_km": self.logged_km,
                "disengagements": self.disengagements, "km_per_disengagement": self.km_per_disengagement,
                "interval": list(self.interval), "confidence": self.confidence, "collisions": self.collisions,
                "collisions_per_km": self.collisions_per_km, "jerk_rms_mps3": self.jerk_rms_mps3,
                "progress": self.progress}


def _pooled(n: int, km: float, logged_km: float, disengagements: int, collisions: int, jerk_sq_sum: float,
            jerk_samples: int, confidence: float) -> SystemMetrics:
    value, interval = km_per_disengagement(km, disengagements, confidence)
    return SystemMetrics(
        scenarios=n, km=km, logged_km=logged_km, disengagements=disengagements, km_per_disengagement=value,
        interval=interval, confidence=confidence, collisions=collisions,
        collisions_per_km=collisions / km if km > 0.0 else None,
        jerk_rms_mps3=math.sqrt(jerk_sq_sum / jerk_samples) if jerk_samples else 0.0,
        progress=progress_ratio(km, logged_km))


def _columns(summaries: Sequence[ScenarioMetrics]) -> dict[str, np.ndarray]:
    return {
        "km": np.array([s.km for s in summaries], dtype=np.float64),
        "logged_km": np.array([s.logged_km for s in summaries], dtype=np.float64),
        "disengagements": np.array([s.disengagements for s in summaries], dtype=np.int64),
        "collisions": np.array([s.collisions for s in summaries], dtype=np.int64),
        "jerk_sq_sum": np.array([s.jerk_sq_sum_mps6 for s in summaries], dtype=np.float64),
        "jerk_samples": np.array([s.jerk_samples for s in summaries], dtype=np.int64),
    }


def aggregate(summaries: Sequence[ScenarioMetrics], confidence: float = 0.95) -> SystemMetrics:
    """The run's metrics, pooling every scenario."""
    confidence = _check_confidence(confidence)
    cols = _columns(summaries)
    return _pooled(len(summaries), float(cols["km"].sum()), float(cols["logged_km"].sum()),
                   int(cols["disengagements"].sum()), int(cols["collisions"].sum()),
                   float(cols["jerk_sq_sum"].sum()), int(cols["jerk_samples"].sum()), confidence)


def tag_membership(tags: Sequence[Iterable[str]]) -> tuple[list[str], np.ndarray]:
    """(sorted tags, (n_scenarios, n_tags) 0/1 matrix: scenario i carries tag j)."""
    names = sorted({tag for row in tags for tag in row})
    column = {name: j for j, name in enumerate(names)}
    member = np.zeros((len(tags), len(names)), dtype=np.int64)
    for i, row in enumerate(tags):
        member[i, [column[t] for t in set(row)]] = 1
    return names, member


def aggregate_per_tag(summaries: Sequence[ScenarioMetrics], confidence: float = 0.95) -> dict[str, SystemMetrics]:
    """{tag: metrics pooled over the scenarios carrying the tag}; a scenario counts for each of its tags."""
    confidence = _check_confidence(confidence)
    names, member = tag_membership([s.tags for s in summaries])
    if not names:
        return {}
    cols = _columns(summaries)
    sums = {key: member.T @ values for key, values in cols.items()}  # (n_tags,) each
    counts = member.sum(axis=0)
    return {name: _pooled(int(counts[j]), float(sums["km"][j]), float(sums["logged_km"][j]),
                          int(sums["disengagements"][j]), int(sums["collisions"][j]), float(sums["jerk_sq_sum"][j]),
                          int(sums["jerk_samples"][j]), confidence)
            for j, name in enumerate(names)}
