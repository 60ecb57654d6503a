"""`andon scenarios validate`: re-hash every blob a selection of scenarios depends on and check labels."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from tqdm import tqdm

from andon.errors import BadInput
from andon.scenarios.catalog import Catalog
from andon.scenarios.records import CLASSES


def validate_catalog(catalog: Catalog, query: str = "") -> dict[str, Any]:
    """Check the logs of matching scenarios; returns counts and a list of problems (empty when clean)."""
    windows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    n_scenarios = 0
    for scenario in catalog.iter_search(query):
        windows[scenario.log_id].append((scenario.scenario_id, scenario.t_start_ns, scenario.t_end_ns))
        n_scenarios += 1
    problems: list[dict[str, str]] = []
    for log_id in tqdm(sorted(windows), desc="validate", unit="log", disable=None):
        for problem in _log_problems(catalog, log_id, windows[log_id]):
            problems.append({"log_id": log_id, "problem": problem})
    return {"query": query, "logs_checked": len(windows), "scenarios_checked": n_scenarios, "problems": problems}


def _log_problems(catalog: Catalog, log_id: str, windows: list[tuple[str, int, int]]) -> list[str]:
    row = catalog.log_row(log_id)
    blobs = catalog.blobs
    if not blobs.verify(row["manifest"], ".json"):
        return [f"manifest blob {row['manifest']} is missing or corrupt"]
    manifest = blobs.get_json(row["manifest"])
    problems = []
    if not blobs.verify(manifest["annotations"], ".npz"):
        return [f"annotations blob {manifest['annotations']} is missing or corrupt"]
    if manifest["map"] is not None and not blobs.verify(manifest["map"], ".json"):
        problems.append(f"map blob {manifest['map']} is missing or corrupt")
    for index, digest in enumerate(manifest["points"]):
        if digest is not None and not blobs.verify(digest, ".npz"):
            problems.append(f"points blob of frame {index} ({digest}) is missing or corrupt")
    try:
        data = blobs.get_arrays(manifest["annotations"])
    except BadInput as exc:
        return [*problems, str(exc)]
    boxes, stamps = data["boxes"], data["timestamp_ns"]
    if not np.all(np.isfinite(boxes)):
        problems.append(f"{int((~np.isfinite(boxes)).any(axis=1).sum())} boxes hold NaN or infinite values")
    if boxes.size and np.any(boxes[:, 3:6] <= 0):
        problems.append(f"{int((boxes[:, 3:6] <= 0).any(axis=1).sum())} boxes have non-positive sizes")
    unknown = sorted(set(np.unique(data["classes"]).tolist()) - set(CLASSES))
    if unknown:
        problems.append(f"unknown classes {unknown}")
    if np.any(np.diff(stamps) <= 0):
        problems.append("timestamps do not strictly increase")
    for scenario_id, start, end in windows:
        if start < row["t_start_ns"] or end > row["t_end_ns"] or end < start:
            problems.append(f"scenario {scenario_id} window [{start}, {end}] lies outside the log")
    return problems
