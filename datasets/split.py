"""Leakage-free splits: whole logs go to one split, chosen by a salted hash of the log id.

Frames of one drive are strongly correlated, so a log never straddles splits. The hash depends only
on the salt and the log id, so a log keeps its split when other logs are added or removed: a model
trained on one version's train split is never evaluated on a later version's test logs it has seen.
Logs holding a pinned test scenario (the frozen evaluation set) go to test whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from andon.datasets.spec import SPLITS, SplitSpec

_HASH_DIGITS = 15  # 60 bits of the digest: a float64 holds them exactly


def log_unit(log_id: str, salt: str) -> float:
    """A stable number in [0, 1) for a log: SHA-256 of salt and log id (NUL-separated)."""
    digest = hashlib.sha256(f"{salt}\x00{log_id}".encode()).hexdigest()
    return int(digest[:_HASH_DIGITS], 16) / float(16 ** _HASH_DIGITS)


def split_of(log_id: str, split: SplitSpec) -> str:
    """The split of one (unpinned) log: train below `train`, val below `train + val`, else test."""
    unit = log_unit(log_id, split.salt)
    if unit < split.train:
        return "train"
    if unit < split.train + split.val:
        return "val"
    return "test"


def assign_splits(log_ids: Iterable[str], split: SplitSpec, pinned_logs: Iterable[str] = ()) -> dict[str, str]:
    """{log_id: split} for every log; logs of pinned test scenarios are always in test."""
    pinned = set(pinned_logs)
    return {log_id: "test" if log_id in pinned else split_of(log_id, split) for log_id in sorted(set(log_ids))}


def logs_by_split(assignment: dict[str, str]) -> dict[str, list[str]]:
    """{split: sorted log ids}, every split present (possibly empty)."""
    grouped: dict[str, list[str]] = {name: [] for name in SPLITS}
    for log_id in sorted(assignment):
        grouped[assignment[log_id]].append(log_id)
    return grouped
