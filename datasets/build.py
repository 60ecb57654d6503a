"""`andon dataset build`: spec -> samples -> id -> checks -> stored, versioned version.

Building the same spec over the same catalog gives the same dataset id; the second build finds the
version and does nothing (it says so, and reports the stored checks). A version whose blocking check
fails is stored as "rejected" with its reasons, and never becomes the name's latest accepted version.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from andon import __version__
from andon.datasets.materialise import Materialised, materialise
from andon.datasets.publish import build_lock, head, publish, remove_stale_temps, track, track_pending
from andon.datasets.spec import (
    SPLITS,
    DatasetSpec,
    SamplingSpec,
    load_pinned_test,
    spec_to_dict,
    validate_spec,
)
from andon.datasets.validation import run_checks, verdict
from andon.datasets.versions import (
    FORMAT_VERSION,
    ID_LENGTH,
    DatasetVersion,
    accepted_history,
    find_version,
    list_versions,
)
from andon.errors import BadInput, InternalError
from andon.ids import hash_arrays, hash_json
from andon.scenarios.catalog import Catalog
from andon.workspace import Workspace

log = logging.getLogger(__name__)
FEATURES_MODULE = "andon.datasets.features"


def transform_record(task: str, sampling: SamplingSpec) -> dict[str, Any]:
    """The loaders' transform {name, code_hash, params}, from andon.datasets.features when it exists.

    The record is part of the dataset id: a change to the feature code makes a new version, so the
    model DAG sees that what it trains on changed.
    """
    try:
        features = importlib.import_module(FEATURES_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != FEATURES_MODULE:
            raise
        features = None
    record = getattr(features, "transform_record", None)
    params = dataclasses.asdict(sampling)
    if record is None:
        return {"name": task, "code_hash": None, "params": params}
    return dict(record(task, params))


def dataset_id_for(spec_doc: dict[str, Any], mat: Materialised, transform: dict[str, Any]) -> str:
    """The content hash of a version: equal inputs give equal ids, on any machine."""
    hashed_spec = copy.deepcopy(spec_doc)
    # The pinned list counts by its content, not by the path it was read from.
    hashed_spec["split"]["pinned_test"] = None if mat.pinned_test is None else mat.pinned_test["sha256"]
    content = {
        "format": FORMAT_VERSION, "spec": hashed_spec, "transform": transform, "logs": mat.log_manifests,
        "log_order": mat.log_ids,
        "splits": mat.log_splits, "scenarios": mat.scenarios, "pinned_test": mat.pinned_test,
        "samples": {split: hash_arrays(mat.samples[split]) for split in SPLITS},
    }
    return hash_json(content)[:ID_LENGTH]


def build_dataset(workspace: Workspace, spec: DatasetSpec, progress: bool = True,
                  base_dir: Path | None = None) -> dict[str, Any]:
    """Build (or find) the version of `spec`; returns the build document (see DESIGN.md, Contracts).

    Args:
        workspace: the andon workspace.
        spec: a DatasetSpec (validated again here).
        progress: show a progress bar on stderr.
        base_dir: where a relative pinned_test path is looked up when it is not found as given.

    Returns:
        {"dataset_id", "name", "task", "status", "checks", "reasons", "built", "message", "derived_from",
         "samples", "path", "commit", "transform", "spec_sha256"}; `built` is False when the version
        existed already.

    Raises:
        BadInput: for a bad spec, unknown scenario ids, or a query matching nothing.
    """
    validate_spec(spec)
    pinned_ids = load_pinned_test(spec.split.pinned_test, base_dir)
    spec_doc = spec_to_dict(spec)
    with build_lock(workspace):
        remove_stale_temps(workspace)
        resumed = track_pending(workspace, spec.name)
        if resumed:
            log.info("versioned %d dataset version(s) an interrupted build left uncommitted", len(resumed))
        history = accepted_history(workspace, spec.name)
        previous = history[-1] if history else None
        if previous is not None and previous.task != spec.task:
            raise BadInput(f"dataset name {spec.name!r} holds {previous.task} versions (latest accepted "
                           f"{previous.dataset_id}); a {spec.task} dataset needs its own name: set dataset.name")
        with Catalog(workspace) as catalog:
            mat = materialise(catalog, spec, pinned_ids, progress=progress)
        transform = transform_record(spec.task, spec.sampling)
        dataset_id = dataset_id_for(spec_doc, mat, transform)
        existing = find_version(workspace, dataset_id)
        if existing is not None:
            message = (f"dataset {existing.name} {dataset_id} exists already ({existing.status}, built "
                       f"{existing.created}): nothing to do")
            return _document(existing, built=False, message=message, commit=head(workspace))

        checks = run_checks(spec, mat.samples, mat.log_ids, mat.log_splits, mat.scenarios,
                            [] if mat.pinned_test is None else mat.pinned_test["scenario_ids"], mat.statistics,
                            mat.sanity, _previous_doc(previous), [v.statistics for v in history])
        status, reasons = verdict(checks)
        sequence = max((v.sequence for v in list_versions(workspace, spec.name)), default=0) + 1
        version_doc = {
            "format": FORMAT_VERSION, "andon_version": __version__, "dataset_id": dataset_id, "name": spec.name,
            "task": spec.task, "status": status, "reasons": reasons, "checks": checks,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "sequence": sequence,
            "derived_from": None if previous is None else previous.dataset_id, "spec_sha256": hash_json(spec_doc),
            "transform": transform,
            "samples": {split: int(len(mat.samples[split]["frame_index"])) for split in SPLITS},
            "pinned_test": None if mat.pinned_test is None else {"sha256": mat.pinned_test["sha256"],
                                                                 "count": len(mat.pinned_test["scenario_ids"])},
        }
        documents = {
            "spec.json": spec_doc, "scenarios.json": mat.scenarios, "logs.json": mat.log_manifests,
            "statistics.json": {**mat.statistics, "sanity": mat.sanity},
            "splits.json": {**{split: sorted(k for k, v in mat.log_splits.items() if v == split) for split in SPLITS},
                            "pinned_test": mat.pinned_test},
        }
        directory = publish(workspace, spec.name, dataset_id, documents, mat.samples, mat.log_ids, mat.log_manifests,
                            version_doc)
        commit = track(workspace, directory, f"dataset {spec.name} {dataset_id}: {status}")
        version = find_version(workspace, dataset_id)
        if version is None:
            raise InternalError(f"dataset {dataset_id} vanished from {directory} right after it was written")
        message = f"dataset {spec.name} {dataset_id}: {status}"
        return _document(version, built=True, message=message, commit=commit)


def _previous_doc(previous: DatasetVersion | None) -> dict[str, Any] | None:
    if previous is None:
        return None
    return {"dataset_id": previous.dataset_id, "scenario_ids": {s["scenario_id"] for s in previous.scenarios()},
            "tags": previous.statistics["tags"], "classes": previous.statistics["classes"],
            "statistics": previous.statistics}


def _document(version: DatasetVersion, built: bool, message: str, commit: str) -> dict[str, Any]:
    return {"dataset_id": version.dataset_id, "name": version.name, "task": version.task, "status": version.status,
            "checks": version.checks, "reasons": list(version.reasons), "built": built, "message": message,
            "derived_from": version.derived_from, "samples": version.sample_counts(), "path": str(version.path),
            "commit": commit, "transform": version.transform,
            "spec_sha256": hash_json(version.spec)}

