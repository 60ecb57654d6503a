"""Flips: the (scenario, check) verdicts that changed between the baseline and the candidate.

Averages hide these. A regression passed for the baseline (production) and fails for the candidate;
an improvement failed for the baseline and passes for the candidate. A verdict of None (the check
does not apply to the scenario) on either side is no flip. Aggregate checks flip on their one row,
whose scenario_id is "aggregate".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def compute_flips(results: Iterable[Mapping[str, Any]], severities: Mapping[str, str] | None = None
                  ) -> dict[str, list[dict[str, Any]]]:
    """Regressions and improvements among result rows.

    Args:
        results: rows with "scenario_id", "check", "value", "passed", "baseline_value", "baseline_passed".
        severities: check name -> severity, copied onto each flip when given.

    Returns:
        {"regressions": [...], "improvements": [...]}, each a list of {"scenario_id", "check", "value",
        "baseline_value"(, "severity")}, sorted by check then scenario id.
    """
    regressions: list[dict[str, Any]] = []
    improvements: list[dict[str, Any]] = []
    for row in results:
        now, before = row.get("passed"), row.get("baseline_passed")
        if now is None or before is None or now == before:
            continue
        flip = {"scenario_id": row["scenario_id"], "check": row["check"], "value": row.get("value"),
                "baseline_value": row.get("baseline_value")}
        if severities is not None:
            flip["severity"] = severities.get(row["check"], "")
        (regressions if before else improvements).append(flip)
    key = lambda flip: (flip["check"], flip["scenario_id"])  # noqa: E731
    return {"regressions": sorted(regressions, key=key), "improvements": sorted(improvements, key=key)}
