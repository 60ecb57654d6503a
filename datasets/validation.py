"""The checks of a dataset build, and the verdict: a failing blocking check rejects the version.

Each check returns {"name", "passed", "blocking", "detail"} plus its numbers:
- schema (andon.datasets.sanity): finite values, positive sizes, yaw range, known classes, increasing
  timestamps, samples pointing at real frames; any violation fails.
- point_cloud_range (detection only, andon.datasets.sanity): share of sampled boxes centred outside
  the crop above `max_outside_range_share` fails.
- splits (here): every split with a positive fraction has samples, no log is in two splits, and the
  logs of pinned test scenarios are all in test.
- exclusion (andon.datasets.exclusion): data removed since the previous accepted version, unless
  acknowledged.
- drift (andon.datasets.drift): PSI per distribution against the previous accepted version, with
  thresholds learned from the name's history.
A rejected version is still stored, with its checks, but never becomes the latest accepted one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from andon.datasets.drift import check_drift
from andon.datasets.exclusion import check_exclusion
from andon.datasets.sanity import check_point_cloud_range, check_schema
from andon.datasets.spec import SPLITS, DatasetSpec

ACCEPTED = "accepted"
REJECTED = "rejected"


def check_splits(counts: dict[str, int], logs: dict[str, set[str]], log_splits: dict[str, str],
                 pinned_scenarios: list[dict[str, Any]], fractions: dict[str, float], blocking: bool) -> dict[str, Any]:
    """No empty split (of a positive fraction), no log in two splits, pinned logs in test.

    Args:
        counts: samples per split.
        logs: the log ids that the samples of each split come from.
        log_splits: {log_id: split} as assigned.
        pinned_scenarios: scenario records ({"scenario_id", "log_id"}) of the pinned test set.
        fractions: {split: fraction} of the spec.
        blocking: whether a failure rejects the version.
    """
    problems: list[str] = []
    if sum(counts.values()) == 0:
        problems.append("the dataset has no samples at all: check the query, the sampling (stride, history/horizon, "
                        "frames with points) and the logs' content")
    else:
        for name in SPLITS:
            if fractions[name] > 0 and counts[name] == 0:
                problems.append(f"split {name} is empty (fraction {fractions[name]:g}, {len(log_splits)} logs in the "
                                f"dataset): logs are split whole, so with few logs change dataset.split.salt or the "
                                f"fractions, or add data")
    shared = sorted((logs["train"] & logs["val"]) | (logs["train"] & logs["test"]) | (logs["val"] & logs["test"]))
    if shared:
        problems.append(f"{len(shared)} logs are in two splits (e.g. {shared[0]}): frames of one drive leak")
    misplaced = sorted({s["log_id"] for s in pinned_scenarios if log_splits.get(s["log_id"]) != "test"})
    if misplaced:
        problems.append(f"pinned test scenarios' logs outside test: {misplaced[:3]}")
    summary = ", ".join(f"{name} {counts[name]} samples / {len(logs[name])} logs" for name in SPLITS)
    detail = summary + ("; " + "; ".join(problems) if problems else "; no log in two splits"
                        + (f"; {len(pinned_scenarios)} pinned scenarios' logs in test" if pinned_scenarios else ""))
    return {"name": "splits", "passed": not problems, "blocking": blocking, "detail": detail,
            "samples": dict(counts), "logs": {name: len(logs[name]) for name in SPLITS},
            "logs_in_two_splits": len(shared)}


def run_checks(spec: DatasetSpec, samples: dict[str, dict[str, np.ndarray]], log_ids: list[str],
               log_splits: dict[str, str], scenarios: list[dict[str, Any]], pinned_ids: list[str],
               statistics: dict[str, Any],
               sanity: dict[str, Any], previous: dict[str, Any] | None,
               history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every check of a build, in a fixed order.

    Args:
        samples: split -> columns, with "log_index" into `log_ids`.
        previous: the previous accepted version of the name as {"dataset_id", "scenario_ids", "tags",
            "classes", "statistics"}, or None.
        history: statistics of the accepted versions of the name, oldest first.
    """
    v = spec.validation
    checks = [check_schema(sanity, v.blocking.schema)]
    if spec.task == "detection":
        checks.append(check_point_cloud_range(sanity, spec.sampling.point_cloud_range_m, v.max_outside_range_share,
                                              v.blocking.point_cloud_range))
    pinned = set(pinned_ids)
    names = np.asarray(log_ids, dtype=object)
    counts = {name: int(len(samples[name]["frame_index"])) for name in SPLITS}
    logs = {name: set(names[np.unique(samples[name]["log_index"])].tolist()) for name in SPLITS}
    checks.append(check_splits(counts, logs, log_splits, [s for s in scenarios if s["scenario_id"] in pinned],
                               {name: getattr(spec.split, name) for name in SPLITS}, v.blocking.splits))
    checks.append(check_exclusion({s["scenario_id"] for s in scenarios}, statistics["tags"], statistics["classes"],
                                  previous, v.exclusion_max_share, list(v.acknowledge), v.blocking.exclusion))
    checks.append(check_drift(statistics, None if previous is None else (previous["dataset_id"], previous["statistics"]),
                              history, v.drift_k, v.drift_floor, v.drift_min_history, v.drift_default_threshold,
                              v.drift_min_count, v.blocking.drift))
    return checks


def verdict(checks: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """(status, reasons): rejected with the failing blocking checks' details, else accepted."""
    reasons = [f"{c['name']}: {c['detail']}" for c in checks if c["blocking"] and not c["passed"]]
    return (REJECTED if reasons else ACCEPTED), reasons
