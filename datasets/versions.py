"""Dataset versions on disk, and the API the loaders read them through.

A version is a directory, written whole to a temp name and renamed into place, then `dvc add`-ed and
its .dvc file git-committed in the workspace:

    datasets/<name>/<dataset_id>/
        version.json      id, name, task, status, reasons, created, sequence, derived_from, spec_sha256,
                          transform {name, code_hash, params}, checks, sample counts, pinned_test
                          {sha256, count}, content hashes; written last, so its presence means complete
        spec.json         the resolved DatasetSpec as given
        scenarios.json    [{scenario_id, log_id, t_start_ns, t_end_ns, tags, qa_score, split}]
        logs.json         {log_id: log manifest digest} (the content address of each log in the blob store)
        splits.json       {"train": [log ids], "val": [...], "test": [...], "pinned_test": {sha256, scenario_ids}}
        statistics.json   counts and fixed-bin histograms (andon.datasets.statistics)
        samples/{train,val,test}.parquet   log_id, log_manifest, frame_index, timestamp_ns [, track_id]

`dataset_id` is the SHA-256 (first 20 hex digits) of the content (resolved spec with the pinned list
replaced by its hash, transform, log manifests, splits, scenarios, sample tables), so the same inputs
always give the same id. Statistics, checks and status are derived, and not part of it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from andon.datasets.drift import drift_between
from andon.datasets.spec import SPLITS
from andon.errors import BadInput
from andon.workspace import Workspace

FORMAT_VERSION = 1
DATASETS_DIR = "datasets"
VERSION_FILE = "version.json"
ID_LENGTH = 20
MIN_PREFIX = 4
ACCEPTED = "accepted"


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    """One stored version. `samples(split)` reads its sample table (parquet) on demand."""

    dataset_id: str
    name: str
    task: str
    status: str
    spec: dict[str, Any]
    transform: dict[str, Any]
    derived_from: str | None
    statistics: dict[str, Any]
    checks: list[dict[str, Any]]
    created: str
    path: Path | None = None
    sequence: int = 0
    reasons: tuple[str, ...] = ()
    pinned_test_sha256: str | None = None

    def samples(self, split: str) -> pd.DataFrame:
        """The split's samples: log_id, log_manifest, frame_index, timestamp_ns (and track_id for prediction).

        Raises:
            BadInput: for an unknown split, or a sample file that is not checked out.
        """
        if split not in SPLITS:
            raise BadInput(f"unknown split {split!r}: choose one of {', '.join(SPLITS)}")
        path = self._dir() / "samples" / f"{split}.parquet"
        if not path.is_file():
            raise BadInput(f"{path} is missing: run `dvc pull` (or `dvc checkout`) in the workspace")
        return pd.read_parquet(path)

    def scenarios(self) -> list[dict[str, Any]]:
        """The scenarios of the version with their windows, tags and QA at build time, and their split."""
        return _read_json(self._dir() / "scenarios.json")

    def log_manifests(self) -> dict[str, str]:
        """{log_id: manifest digest}: each log's content address in the workspace's blob store."""
        return _read_json(self._dir() / "logs.json")

    def splits(self) -> dict[str, Any]:
        return _read_json(self._dir() / "splits.json")

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED

    def sample_counts(self) -> dict[str, int]:
        return {name: int(self.statistics["splits"][name]["samples"]) for name in SPLITS}

    def to_dict(self) -> dict[str, Any]:
        return {"dataset_id": self.dataset_id, "name": self.name, "task": self.task, "status": self.status,
                "reasons": list(self.reasons), "created": self.created, "sequence": self.sequence,
                "derived_from": self.derived_from, "transform": self.transform, "samples": self.sample_counts(),
                "pinned_test_sha256": self.pinned_test_sha256, "path": str(self.path) if self.path else None}

    def _dir(self) -> Path:
        if self.path is None:
            raise BadInput(f"dataset {self.dataset_id} has no directory: load it with load_version()")
        return self.path


def datasets_root(workspace: Workspace | str | os.PathLike[str]) -> Path:
    root = workspace.root if isinstance(workspace, Workspace) else Workspace.open(workspace).root
    return root / DATASETS_DIR


def read_version(directory: Path) -> DatasetVersion:
    """A version from its directory (version.json, spec.json, statistics.json)."""
    meta = _read_json(directory / VERSION_FILE)
    return DatasetVersion(
        dataset_id=meta["dataset_id"], name=meta["name"], task=meta["task"], status=meta["status"],
        spec=_read_json(directory / "spec.json"), transform=meta["transform"], derived_from=meta["derived_from"],
        statistics=_read_json(directory / "statistics.json"), checks=meta["checks"], created=meta["created"],
        path=directory, sequence=int(meta["sequence"]), reasons=tuple(meta.get("reasons", ())),
        pinned_test_sha256=(meta.get("pinned_test") or {}).get("sha256"),
    )


def version_dirs(workspace: Workspace | str | os.PathLike[str], name: str | None = None) -> list[Path]:
    """Complete version directories (with version.json), of one name or all."""
    root = datasets_root(workspace)
    if not root.is_dir():
        return []
    names = [root / name] if name else sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return sorted(d for n in names if n.is_dir() for d in n.iterdir() if (d / VERSION_FILE).is_file())


def list_versions(workspace: Workspace | str | os.PathLike[str], name: str | None = None) -> list[DatasetVersion]:
    """Versions ordered by name, then by build order (oldest first)."""
    versions = [read_version(d) for d in version_dirs(workspace, name)]
    return sorted(versions, key=lambda v: (v.name, v.sequence, v.created))


def find_version(workspace: Workspace | str | os.PathLike[str], dataset_id: str) -> DatasetVersion | None:
    for directory in version_dirs(workspace):
        if directory.name == dataset_id:
            return read_version(directory)
    return None


def accepted_history(workspace: Workspace | str | os.PathLike[str], name: str) -> list[DatasetVersion]:
    """Accepted versions of a name, oldest first."""
    return [v for v in list_versions(workspace, name) if v.accepted]


def latest_accepted(workspace: Workspace | str | os.PathLike[str], name: str) -> DatasetVersion | None:
    history = accepted_history(workspace, name)
    return history[-1] if history else None


def load_version(workspace: Workspace | str | os.PathLike[str], ref: str) -> DatasetVersion:
    """A version by dataset id, unique id prefix (4+ characters), or name (= its latest accepted version).

    Raises:
        BadInput: naming the ref when nothing, or more than one version, matches.
    """
    ref = str(ref).strip()
    dirs = version_dirs(workspace)
    exact = [d for d in dirs if d.name == ref]
    if exact:
        return read_version(exact[0])
    by_name = [d for d in dirs if d.parent.name == ref]
    if by_name:
        latest = latest_accepted(workspace, ref)
        if latest is None:
            raise BadInput(f"dataset {ref!r} has no accepted version ({len(by_name)} rejected): see "
                           f"`andon dataset list --name {ref}` and fix what its checks report")
        return latest
    prefixed = [d for d in dirs if d.name.startswith(ref)] if len(ref) >= MIN_PREFIX else []
    if len(prefixed) == 1:
        return read_version(prefixed[0])
    if len(prefixed) > 1:
        raise BadInput(f"dataset id prefix {ref!r} matches {len(prefixed)} versions: give more characters")
    raise BadInput(f"no dataset version or name {ref!r} in {datasets_root(workspace)}: `andon dataset list` shows "
                   f"them (ids may be shortened to a unique prefix of {MIN_PREFIX}+ characters)")


def diff_versions(a: DatasetVersion, b: DatasetVersion) -> dict[str, Any]:
    """What changed from version `a` to version `b`.

    Scenarios added and removed, relabelled ones (same scenario id, changed tags or QA score), shifts of
    per-tag scenario counts and per-class box counts, sample counts per split, and the PSI of each
    distribution (from a to b).
    """
    before = {s["scenario_id"]: s for s in a.scenarios()}
    after = {s["scenario_id"]: s for s in b.scenarios()}
    relabelled = []
    for sid in sorted(before.keys() & after.keys()):
        old, new = before[sid], after[sid]
        if set(old["tags"]) != set(new["tags"]) or old["qa_score"] != new["qa_score"]:
            relabelled.append({"scenario_id": sid, "tags_added": sorted(set(new["tags"]) - set(old["tags"])),
                               "tags_removed": sorted(set(old["tags"]) - set(new["tags"])),
                               "qa_before": old["qa_score"], "qa_after": new["qa_score"]})
    qa_changed = [r for r in relabelled if r["qa_before"] != r["qa_after"]]
    return {
        "a": a.dataset_id, "b": b.dataset_id, "names": [a.name, b.name],
        "scenarios": {"added": sorted(after.keys() - before.keys()), "removed": sorted(before.keys() - after.keys()),
                      "relabelled": relabelled},
        "counts": {"added": len(after.keys() - before.keys()), "removed": len(before.keys() - after.keys()),
                   "relabelled": len(relabelled), "qa_changed": len(qa_changed)},
        "tags": _shifts(a.statistics["tags"], b.statistics["tags"]),
        "classes": _shifts(a.statistics["classes"], b.statistics["classes"]),
        "samples": _shifts(a.sample_counts(), b.sample_counts(), keep_all=True),
        "qa": {"mean_before": _mean_qa(before.values()), "mean_after": _mean_qa(after.values()),
               "changed": len(qa_changed)},
        "drift_psi": drift_between(a.statistics, b.statistics, min_count=1),
    }


def _shifts(a: dict[str, int], b: dict[str, int], keep_all: bool = False) -> dict[str, dict[str, int]]:
    out = {}
    for key in sorted(set(a) | set(b)):
        x, y = int(a.get(key, 0)), int(b.get(key, 0))
        if keep_all or x != y:
            out[key] = {"before": x, "after": y, "delta": y - x}
    return out


def _mean_qa(scenarios: Any) -> float | None:
    scores = [s["qa_score"] for s in scenarios if s["qa_score"] is not None]
    return float(np.mean(scores)) if scores else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{path} is missing: run `dvc pull` (or `dvc checkout`) in the workspace") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path} is unreadable ({exc}): run `dvc checkout` in the workspace") from exc
