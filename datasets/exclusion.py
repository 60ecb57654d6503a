"""The exclusion guard: data must not silently disappear between versions of a dataset.

Against the previous accepted version of the same name, the check fails when
- the share of its scenarios missing from the new version exceeds `exclusion_max_share`, or
- a tag or a class present before is gone entirely (e.g. every `night` scenario was dropped),
unless `validation.acknowledge` names that change: `removed_share<=0.3` accepts a removed share up to
0.3, `removed_tag:night` the loss of the tag, `removed_class:cyclist` the loss of the class.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from andon.errors import BadInput

_SHARE = re.compile(r"^removed_share<=(.+)$")
_NAMED = re.compile(r"^removed_(tag|class):(\S+)$")
ACK_HELP = "acknowledge entries look like removed_tag:TAG, removed_class:CLASS or removed_share<=0.3"


@dataclass(frozen=True, slots=True)
class Acknowledgements:
    removed_share_max: float | None
    removed_tags: frozenset[str]
    removed_classes: frozenset[str]


def parse_acknowledgements(entries: list[str]) -> Acknowledgements:
    """Parse `validation.acknowledge`; an entry that names nothing known is bad input (a typo acknowledges nothing)."""
    share: float | None = None
    tags: set[str] = set()
    classes: set[str] = set()
    for entry in entries:
        text = str(entry).strip()
        if match := _SHARE.match(text):
            try:
                value = float(match.group(1))
            except ValueError:
                raise BadInput(f"dataset.validation.acknowledge {entry!r}: {match.group(1)!r} is not a number; "
                               f"{ACK_HELP}") from None
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise BadInput(f"dataset.validation.acknowledge {entry!r}: the share must be in [0, 1]")
            share = value if share is None else max(share, value)
        elif match := _NAMED.match(text):
            (tags if match.group(1) == "tag" else classes).add(match.group(2))
        else:
            raise BadInput(f"dataset.validation.acknowledge {entry!r} is not understood; {ACK_HELP}")
    return Acknowledgements(share, frozenset(tags), frozenset(classes))


def check_exclusion(current_ids: set[str], current_tags: dict[str, int], current_classes: dict[str, int],
                    previous: dict[str, Any] | None, max_share: float, acknowledge: list[str],
                    blocking: bool) -> dict[str, Any]:
    """Compare with the previous accepted version.

    Args:
        current_ids: scenario ids of the new version.
        current_tags / current_classes: scenario counts per tag and box counts per class of the new version.
        previous: {"dataset_id", "scenario_ids": set, "tags": {...}, "classes": {...}} of the previous
            accepted version, or None for the first version of a name.
        max_share: `validation.exclusion_max_share`.
        acknowledge: `validation.acknowledge`.
        blocking: whether a failure rejects the version.
    """
    result: dict[str, Any] = {"name": "exclusion", "blocking": blocking, "previous": None, "removed": 0,
                              "removed_share": 0.0, "max_share": max_share, "removed_tags": [],
                              "removed_classes": [], "acknowledged": []}
    if previous is None:
        return {**result, "passed": True, "detail": "first accepted version of this name: nothing to compare"}
    acks = parse_acknowledgements(acknowledge)
    before = previous["scenario_ids"]
    removed = before - current_ids
    share = len(removed) / len(before) if before else 0.0
    gone_tags = sorted(t for t, n in previous["tags"].items() if n > 0 and current_tags.get(t, 0) == 0)
    gone_classes = sorted(c for c, n in previous["classes"].items() if n > 0 and current_classes.get(c, 0) == 0)

    problems: list[str] = []
    needed: list[str] = []
    acknowledged: list[str] = []
    if share > max_share:
        if acks.removed_share_max is not None and share <= acks.removed_share_max:
            acknowledged.append(f"removed_share<={acks.removed_share_max:g}")
        else:
            needed.append(f"removed_share<={math.ceil(round(share * 100, 9)) / 100:g}")
            problems.append(f"{len(removed)} of {len(before)} scenarios ({share:.1%}) are gone, more than "
                            f"{max_share:.0%}")
    for kind, gone, acked in (("tag", gone_tags, acks.removed_tags), ("class", gone_classes, acks.removed_classes)):
        for name in gone:
            if name in acked:
                acknowledged.append(f"removed_{kind}:{name}")
            else:
                needed.append(f"removed_{kind}:{name}")
                problems.append(f"{kind} {name!r} disappeared entirely")
    result.update(previous=previous["dataset_id"], removed=len(removed), removed_share=share, needed=needed,
                  removed_tags=gone_tags, removed_classes=gone_classes, acknowledged=acknowledged,
                  examples_removed=sorted(removed)[:5])
    if problems:
        entries = ",".join(f'"{e}"' for e in [*acknowledge, *needed])
        detail = (f"against {previous['dataset_id']}: " + "; ".join(problems)
                  + f". If intended, acknowledge it: 'dataset.validation.acknowledge=[{entries}]'")
        return {**result, "passed": False, "detail": detail}
    detail = (f"against {previous['dataset_id']}: {len(removed)} of {len(before)} scenarios removed "
              f"({share:.1%} <= {max_share:.0%})" if not acknowledged else
              f"against {previous['dataset_id']}: changes acknowledged ({', '.join(acknowledged)})")
    return {**result, "passed": True, "detail": detail}
