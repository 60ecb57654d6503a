"""Miner `night`: the whole log was driven at night.

Definition: one window spanning the log when its meta says night, read from (first found wins)
`meta["conditions"]["night"]`, `meta["night"]`, or the synthetic fleet's ground-truth conditions
(`meta["ground_truth"]["conditions"]["night"]`). Real logs that record no lighting are never tagged:
unknown is not night.
"""

from __future__ import annotations

from typing import Any

from andon.scenarios.logstore import ego_poses
from andon.scenarios.miners.arrays import AnyLog, LogArrays
from andon.scenarios.miners.windows import Window
from andon.simulation.ground_truth import META_KEY

NAME = "night"
VERSION = "1"


def is_night(meta: dict[str, Any]) -> bool:
    """True only when the meta says night; missing or malformed entries mean unknown (False)."""
    for source in (meta.get("conditions"), meta, (meta.get(META_KEY) or {}).get("conditions")):
        if isinstance(source, dict) and "night" in source:
            return source["night"] is True
    return False


def mine(log: AnyLog, arrays: LogArrays | None = None) -> list[Window]:
    """The whole log as one window when it is a night log, else nothing."""
    if not is_night(dict(log.meta or {})):
        return []
    # ego_poses, not frames[0]: a stored log's frame access would read its lidar sweep.
    stamps = ego_poses(log)[0] if arrays is None else arrays.timestamps_ns  # type: ignore[arg-type]
    return [Window(int(stamps[0]), int(stamps[-1]))] if len(stamps) else []
