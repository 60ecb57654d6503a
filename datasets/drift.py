"""Distribution drift against the previous accepted version, with thresholds that learn from history.

For each fixed-bin histogram (andon.datasets.statistics) and for the class mix, the Population
Stability Index between the previous accepted version (expected) and the new one (actual):
    PSI = sum_i (a_i - e_i) * ln(a_i / e_i),  shares floored at PSI_EPSILON so empty bins stay finite.
The threshold of a histogram adapts to how much it normally moves: once the name has at least
`drift_min_history` PSIs between consecutive accepted versions, it is max(drift_floor, mean + drift_k *
std) of them (population std over the last HISTORY_MAX); before that, `drift_default_threshold` (0.25,
the conventional "significant shift" of PSI). Each histogram's PSI, threshold and its basis are
stored with the result, so a later reader sees exactly what was compared with what.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PSI_EPSILON = 1e-4
HISTORY_MAX = 20  # consecutive pairs: the threshold follows the recent regime, and the cost stays bounded
CLASS_MIX = "class_mix"


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population Stability Index of two count vectors over the same bins (0 = identical shares)."""
    e = np.asarray(expected, dtype=np.float64)
    a = np.asarray(actual, dtype=np.float64)
    e = np.maximum(e / e.sum(), PSI_EPSILON)
    a = np.maximum(a / a.sum(), PSI_EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def distributions(statistics: dict[str, Any]) -> dict[str, tuple[tuple[float, ...] | tuple[str, ...], np.ndarray]]:
    """{name: (bin labels, counts)} of a version's statistics: its histograms plus the class mix."""
    found = {name: (tuple(h["edges"]), np.asarray(h["counts"], dtype=np.int64))
             for name, h in statistics.get("histograms", {}).items()}
    classes = statistics.get("classes", {})
    labels = tuple(sorted(classes))
    found[CLASS_MIX] = (labels, np.array([classes[c] for c in labels], dtype=np.int64))
    return found


def drift_between(before: dict[str, Any], after: dict[str, Any], min_count: int) -> dict[str, float | None]:
    """PSI per distribution; None where either side has fewer than `min_count` values or bins differ."""
    a, b = distributions(before), distributions(after)
    out: dict[str, float | None] = {}
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            out[name] = None
            continue
        (labels_a, counts_a), (labels_b, counts_b) = a[name], b[name]
        if name == CLASS_MIX:  # categorical: align the labels
            labels = sorted(set(labels_a) | set(labels_b))
            counts_a = np.array([dict(zip(labels_a, counts_a, strict=True)).get(k, 0) for k in labels])
            counts_b = np.array([dict(zip(labels_b, counts_b, strict=True)).get(k, 0) for k in labels])
        elif labels_a != labels_b:
            out[name] = None  # bin edges changed between andon versions: not comparable
            continue
        if counts_a.sum() < min_count or counts_b.sum() < min_count:
            out[name] = None
            continue
        out[name] = psi(counts_a, counts_b)
    return out


def thresholds(history: list[dict[str, Any]], names: list[str], k: float, floor: float, min_history: int,
               default: float, min_count: int) -> dict[str, dict[str, Any]]:
    """Per distribution: the threshold, its basis and the PSIs observed between consecutive accepted versions.

    `history` holds the statistics of the accepted versions of the name, oldest first.
    """
    pairs = list(zip(history[:-1], history[1:], strict=True))[-HISTORY_MAX:]
    observed: dict[str, list[float]] = {name: [] for name in names}
    for before, after in pairs:
        for name, value in drift_between(before, after, min_count).items():
            if value is not None and name in observed:
                observed[name].append(value)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        values = np.asarray(observed[name], dtype=np.float64)
        if len(values) >= min_history:
            mean, std = float(values.mean()), float(values.std())
            out[name] = {"threshold": max(floor, mean + k * std), "basis": "adaptive", "history_n": len(values),
                         "history_mean": mean, "history_std": std}
        else:
            out[name] = {"threshold": default, "basis": "default", "history_n": len(values)}
    return out


def check_drift(current: dict[str, Any], previous: tuple[str, dict[str, Any]] | None, history: list[dict[str, Any]],
                k: float, floor: float, min_history: int, default: float, min_count: int,
                blocking: bool) -> dict[str, Any]:
    """PSI of each distribution against the previous accepted version, judged by its threshold.

    Args:
        current: statistics of the new version.
        previous: (dataset_id, statistics) of the previous accepted version, or None for a first version.
        history: statistics of the accepted versions of the name, oldest first (ending with `previous`).
    """
    result: dict[str, Any] = {"name": "drift", "blocking": blocking, "metric": "psi", "previous": None,
                              "distributions": {}}
    if previous is None:
        return {**result, "passed": True, "detail": "first accepted version of this name: nothing to compare"}
    previous_id, previous_stats = previous
    psis = drift_between(previous_stats, current, min_count)
    limits = thresholds(history, sorted(psis), k, floor, min_history, default, min_count)
    table: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    skipped: list[str] = []
    for name, value in psis.items():
        entry = {"psi": value, **limits[name]}
        if value is None:
            entry["passed"] = True
            entry["skipped"] = f"fewer than {min_count} values on a side, or different bins"
            skipped.append(name)
        else:
            entry["passed"] = value <= entry["threshold"]
            if not entry["passed"]:
                basis = (f"adaptive: mean {entry['history_mean']:.3f} + {k:g} x std {entry['history_std']:.3f} "
                         f"of {entry['history_n']} past drifts, floor {floor:g}" if entry["basis"] == "adaptive"
                         else f"default; {entry['history_n']} of {min_history} past drifts needed to adapt")
                failed.append(f"{name} PSI {value:.3f} > {entry['threshold']:.3f} ({basis})")
        table[name] = entry
    result.update(previous=previous_id, distributions=table)
    if failed:
        detail = (f"against {previous_id}: " + "; ".join(failed)
                  + " — inspect with `andon dataset diff`; rebuild once the shift is understood")
        return {**result, "passed": False, "detail": detail}
    compared = {n: e for n, e in table.items() if e["psi"] is not None}
    if compared:
        worst = max(compared, key=lambda n: compared[n]["psi"] / max(compared[n]["threshold"], 1e-12))
        detail = (f"against {previous_id}: {len(compared)} distributions within thresholds (closest: {worst} PSI "
                  f"{compared[worst]['psi']:.3f} <= {compared[worst]['threshold']:.3f}, "
                  f"{compared[worst]['basis']})")
    else:
        detail = f"against {previous_id}: no distribution has enough values to compare"
    if skipped:
        detail += f"; not compared: {', '.join(skipped)}"
    return {**result, "passed": True, "detail": detail}
