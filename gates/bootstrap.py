"""Paired bootstrap confidence bounds of per-scenario means, seeded and vectorised.

A gate decides on the frozen common evaluation set: each scenario gives one value for the candidate
(and, for non-regression, one for production), and the scenarios are resampled with replacement,
*jointly* for the two models (a paired bootstrap), so what varies between resamples is which
scenarios were drawn, never which model saw which scenario.

Conventions a gate relies on (stated once, here):

- **Statistic.** The mean of the per-scenario values, or of the paired differences
  `candidate - baseline`; with `weights`, the weighted mean `sum(w * x) / sum(w)` (a ratio estimator:
  e.g. weights = frames or km per scenario), recomputed on every resample with the drawn weights.
- **Resamples.** Resample `r` (0-based) draws `n` scenario indices uniformly with replacement from its
  own generator, `PCG64(SeedSequence(seed, spawn_key=(r,)))`: the r-th child of the seed's
  SeedSequence. The draws of a resample depend only on `(seed, r, n)`: not on chunking, the number of
  worker threads or the total number of resamples (asking for more resamples extends, never
  reshuffles, the first ones). Every bootstrap in andon (means here, mAP in detection_bootstrap)
  draws through `resample_indices`, so the same seed resamples the same scenarios for every metric.
- **Bounds.** Percentile method on the replicates, `np.quantile(..., method="linear")`. `low` is the
  (1 - confidence) quantile and `high` the `confidence` quantile: **each end is a one-sided bound at
  `confidence`**, so `[low, high]` is a two-sided interval at `2 * confidence - 1` (confidence 0.95:
  the 5th and 95th percentiles, a 90 % two-sided interval). A ">=" gate passes when `low` clears the
  bound and fails when `high` is below it (`andon.gates.bounds.decide`); each wrong decision then
  has probability about `1 - confidence` at most (the bootstrap is approximate, unlike the exact
  count bounds of `andon.gates.bounds`). No bias correction (BC/BCa): `bias` reports the
  offset of the replicates from the estimate so a reviewer sees when the bounds lean (AP of a
  resampled set is not a smooth statistic; offsets of 0.3 to 1.4 standard errors were seen on
  synthetic detectors).
- **Undefined replicates.** A resample whose statistic is undefined (drawn weights all zero; for
  mAP, no ground truth drawn) is left out of the quantiles and counted in `undefined`.
- **Bad values.** A NaN or infinite scenario value raises BadInput naming how many and where: a
  metric that could not be computed must fail the gate (the evaluator fails closed), never be
  silently dropped from the mean.

Work is spread over threads by blocks of resamples (numpy releases the GIL while drawing, gathering
and summing). A resample's indices are drawn and summed in pieces of `DRAW_PIECE` (64 KB), so the
mean bootstrap holds no (resamples x scenarios) matrix at all: its memory is O(scenarios +
resamples) whatever the counts, and the pieces stay in cache.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from andon.errors import BadInput

# Indices drawn per generator call inside one resample. Fixed (not a tuning knob): numpy's bounded
# integers buffer 32-bit halves per call, so the split of a resample's draws into calls is part of
# the definition of its stream. 8,192 int64 (64 KB) stay in cache and below malloc's mmap threshold.
DRAW_PIECE = 1 << 13
# Bytes a chunk of resample weights (resamples x scenarios) may take, per thread.
CHUNK_BYTES = 64 << 20
_MAX_WORKERS = 8


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    """A bootstrap estimate with its one-sided confidence bounds (module docstring: conventions).

    Attributes:
        estimate: the statistic on the observed scenarios (every scenario once).
        low: one-sided lower bound at `confidence`: the (1 - confidence) quantile of the replicates.
        high: one-sided upper bound at `confidence`: the `confidence` quantile of the replicates.
        resamples: resamples drawn (including undefined ones).
        confidence: one-sided confidence of each bound, in (0.5, 1).
        seed: the seed of the resamples.
        n: scenarios (resampling units).
        std_error: standard deviation of the defined replicates (ddof=1; 0 with one replicate).
        undefined: resamples whose statistic was undefined, left out of the quantiles.
        bias: mean of the defined replicates minus the estimate: the bootstrap's estimate of the
            statistic's bias, a diagnostic (the percentile bounds do not correct for it).
        replicates: (resamples,) the statistic per resample, NaN where undefined; not serialised.
    """

    estimate: float
    low: float
    high: float
    resamples: int
    confidence: float
    seed: int
    n: int
    std_error: float
    undefined: int = 0
    bias: float = float("nan")
    replicates: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def interval(self) -> tuple[float, float]:
        """(low, high): a two-sided interval at 2 * confidence - 1, each end one-sided at confidence."""
        return (self.low, self.high)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (NaN as None); the replicates are left out."""
        return {
            "estimate": _json_float(self.estimate),
            "low": _json_float(self.low),
            "high": _json_float(self.high),
            "resamples": self.resamples,
            "confidence": self.confidence,
            "seed": self.seed,
            "n": self.n,
            "std_error": _json_float(self.std_error),
            "undefined": self.undefined,
            "bias": _json_float(self.bias),
            "method": "percentile, one-sided bounds",
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BootstrapResult:
        """Inverse of to_dict (without replicates)."""
        try:
            return cls(_float_or_nan(data["estimate"]), _float_or_nan(data["low"]), _float_or_nan(data["high"]),
                       int(data["resamples"]), float(data["confidence"]), int(data["seed"]), int(data["n"]),
                       _float_or_nan(data["std_error"]), int(data.get("undefined", 0)),
                       _float_or_nan(data.get("bias")))
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInput(f"bootstrap result: missing or malformed field ({exc}); expected the fields of "
                           f"BootstrapResult.to_dict") from exc


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _float_or_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


def lower_bound(result: BootstrapResult) -> float:
    """The one-sided lower bound a ">=" gate compares: the (1 - confidence) quantile of the replicates."""
    return result.low


def upper_bound(result: BootstrapResult) -> float:
    """The one-sided upper bound a "<=" gate compares: the `confidence` quantile of the replicates."""
    return result.high


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------

def check_resampling(resamples: int, confidence: float, seed: int) -> None:
    """BadInput unless resamples >= 1, 0.5 < confidence < 1 and seed is an integer >= 0."""
    if isinstance(resamples, bool) or not isinstance(resamples, int | np.integer) or resamples < 1:
        raise BadInput(f"resamples={resamples!r}: give a whole number of bootstrap resamples >= 1 (e.g. 2000)")
    if isinstance(confidence, bool) or not isinstance(confidence, float | int | np.floating) \
            or not 0.5 < float(confidence) < 1.0:
        raise BadInput(f"confidence={confidence!r}: give the one-sided confidence as a number in (0.5, 1), "
                       f"e.g. 0.95")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise BadInput(f"seed={seed!r}: give a whole number >= 0 as the bootstrap seed")


def finite_scenario_values(values: Any, name: str, n: int | None = None) -> np.ndarray:
    """Per-scenario values as a 1-D float64 array; BadInput on a wrong shape or any NaN / infinity.

    Args:
        values: array-like of one value per scenario.
        name: what to call the values in messages ("candidate", "baseline", "weights").
        n: the required length, if known.
    """
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BadInput(f"{name}: per-scenario values must be numbers ({exc})") from exc
    if array.ndim != 1:
        raise BadInput(f"{name}: give one value per scenario (a 1-D array), got shape {array.shape}")
    if n is not None and len(array) != n:
        raise BadInput(f"{name}: {len(array)} values but {n} scenarios; give one value per scenario, "
                       f"in the same scenario order")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        shown = ", ".join(str(i) for i in bad[:5]) + (", ..." if bad.size > 5 else "")
        raise BadInput(f"{name}: {bad.size} of {len(array)} scenario values are NaN or infinite (scenario "
                       f"index {shown}); a metric that could not be computed fails the gate: fix or "
                       f"exclude those scenarios explicitly")
    return array


def default_workers() -> int:
    """Threads for resampling: the CPUs this process may use, at most 8 and at most OMP_NUM_THREADS.

    OMP_NUM_THREADS is honoured because Ray (and many CI set-ups) set it to the CPUs a worker was
    given; the host's CPU count would oversubscribe them.
    """
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not every platform has sched_getaffinity
        available = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.strip().isdigit() and int(omp) > 0:
        available = min(available, int(omp))
    return max(1, min(_MAX_WORKERS, available))


# ---------------------------------------------------------------------------------------------
# Resampling: the one definition of "resample r of seed s"
# ---------------------------------------------------------------------------------------------

def resample_generator(seed: int, resample: int) -> np.random.Generator:
    """The generator of resample `resample`: PCG64 seeded by the r-th child of SeedSequence(seed)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=(int(resample),))))


def resample_pieces(n: int, seed: int, resample: int) -> Iterator[np.ndarray]:
    """The scenario indices of one resample (uniform with replacement over 0..n-1), piece by piece.

    Yields int64 arrays of DRAW_PIECE indices (the last one shorter) that together are the n draws.
    """
    rng = resample_generator(seed, resample)
    for start in range(0, n, DRAW_PIECE):
        yield rng.integers(0, n, min(DRAW_PIECE, n - start))


def resample_indices(n: int, seed: int, resample: int) -> np.ndarray:
    """(n,) int64 scenario indices of one resample, uniform with replacement over 0..n-1."""
    pieces = list(resample_pieces(n, seed, resample))
    return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


def resample_counts(n: int, seed: int, start: int, stop: int) -> np.ndarray:
    """(stop - start, n) int32: how often each scenario is drawn in resamples start..stop-1.

    Row i is the multiplicity vector of resample `start + i` (each row sums to n).
    """
    counts = np.empty((stop - start, n), dtype=np.int32)
    for row, r in enumerate(range(start, stop)):
        counts[row] = np.bincount(resample_indices(n, seed, r), minlength=n)
    return counts


def chunk_rows(bytes_per_row: int, budget_bytes: int = CHUNK_BYTES) -> int:
    """Rows (resamples) per chunk so that a chunk stays within `budget_bytes` (at least 1)."""
    return max(1, int(budget_bytes // max(1, bytes_per_row)))


def map_resample_blocks(compute: Callable[[int, int], np.ndarray], resamples: int, block: int,
                        workers: int | None = None) -> np.ndarray:
    """Run `compute(start, stop)` over blocks of resamples, in threads, and stack the results in order.

    Args:
        compute: returns the replicates (a leading axis of stop - start rows) of resamples start..stop-1.
        resamples: total resamples.
        block: resamples per call (memory bound); threads take blocks in order.
        workers: threads (default `default_workers()`); 1 runs inline. Results never depend on it.

    Returns:
        The concatenation of the blocks' results along axis 0.
    """
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise BadInput(f"workers={workers}: give at least 1 thread")
    block = max(1, int(block))
    # Enough blocks to keep every thread busy, never larger than the memory bound.
    block = min(block, max(1, math.ceil(resamples / (4 * workers)))) if workers > 1 else block
    bounds = [(start, min(start + block, resamples)) for start in range(0, resamples, block)]
    if workers == 1 or len(bounds) == 1:
        parts = [compute(start, stop) for start, stop in bounds]
    else:
        with ThreadPoolExecutor(max_workers=min(workers, len(bounds))) as pool:
            parts = list(pool.map(lambda b: compute(*b), bounds))
    return np.concatenate(parts, axis=0)


def summarise(estimate: float, replicates: np.ndarray, resamples: int, confidence: float, seed: int,
              n: int) -> BootstrapResult:
    """A BootstrapResult from the replicates (NaN = undefined, left out of the quantiles)."""
    replicates = np.asarray(replicates, dtype=np.float64)
    defined = replicates[~np.isnan(replicates)]
    if defined.size:
        low, high = np.quantile(defined, [1.0 - confidence, confidence])
        std_error = float(np.std(defined, ddof=1)) if defined.size > 1 else 0.0
        bias = float(np.mean(defined)) - float(estimate)
    else:
        low = high = std_error = bias = float("nan")
    replicates = replicates.copy()
    replicates.setflags(write=False)
    return BootstrapResult(float(estimate), float(low), float(high), int(resamples), float(confidence), int(seed),
                           int(n), std_error, int(replicates.size - defined.size), bias, replicates)


# ---------------------------------------------------------------------------------------------
# The paired mean bootstrap
# ---------------------------------------------------------------------------------------------

def paired_mean_bootstrap(candidate: Any, baseline: Any | None, resamples: int, confidence: float, seed: int,
                          weights: Any | None = None, *, workers: int | None = None) -> BootstrapResult:
    """Bootstrap bounds of the mean of per-scenario values, or of the paired differences.

    Args:
        candidate: (S,) one value per scenario for the candidate.
        baseline: (S,) the same scenarios' values for the baseline (production), in the same order;
            the statistic is then the mean of `candidate - baseline`, scenarios resampled jointly.
            None: the mean of `candidate`.
        resamples: bootstrap resamples (>= 1; 1,000 to 10,000 in practice).
        confidence: one-sided confidence of each bound, in (0.5, 1).
        seed: the seed (>= 0); resample r uses the r-th child of SeedSequence(seed).
        weights: (S,) non-negative scenario weights for a weighted mean (e.g. frames or km per
            scenario); None weighs every scenario 1.
        workers: threads (default: available CPUs, at most 8); the result does not depend on it.

    Returns:
        The estimate and its one-sided bounds (`low` = (1 - confidence) quantile, `high` =
        `confidence` quantile of the replicates).

    Raises:
        BadInput: no scenarios, mismatched lengths, NaN or infinite values (naming how many and the
            scenario indices), negative weights or weights summing to 0, or bad resampling settings.
    """
    check_resampling(resamples, confidence, seed)
    values = finite_scenario_values(candidate, "candidate")
    n = len(values)
    if n == 0:
        raise BadInput("candidate: no scenarios; a bootstrap needs at least one scenario value")
    if baseline is not None:
        values = values - finite_scenario_values(baseline, "baseline", n)
    if weights is None:
        estimate = float(np.mean(values))

        def compute(start: int, stop: int) -> np.ndarray:
            out = np.empty(stop - start)
            for row, r in enumerate(range(start, stop)):
                out[row] = sum(float(values[idx].sum()) for idx in resample_pieces(n, seed, r)) / n
            return out
    else:
        w = finite_scenario_values(weights, "weights", n)
        if (w < 0).any() or w.sum() <= 0:
            raise BadInput(f"weights: must be >= 0 with a positive sum (got min {w.min()}, sum {w.sum()}); "
                           f"give each scenario's weight, e.g. its frames or km")
        wx = w * values
        estimate = float(wx.sum() / w.sum())

        def compute(start: int, stop: int) -> np.ndarray:
            out = np.empty(stop - start)
            for row, r in enumerate(range(start, stop)):
                total = weighted = 0.0
                for idx in resample_pieces(n, seed, r):
                    total += float(w[idx].sum())
                    weighted += float(wx[idx].sum())
                out[row] = weighted / total if total > 0 else np.nan
            return out

    replicates = map_resample_blocks(compute, resamples, block=resamples, workers=workers)
    return summarise(estimate, replicates, resamples, float(confidence), int(seed), n)
