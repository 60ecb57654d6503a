"""Suite results on disk: `WS/suites/<run_id>/{result.json, junit.xml, pictures/}`.

`run_id` is the first 16 hex digits of the SHA-256 of the run's inputs: the suite's content hash, the
candidate's and the baseline's stacks as resolved (model versions, stand-ins), the selected scenario
ids, the replay configs of the modes the checks need, and andon's code version. The same inputs
reuse the stored result (no replay) unless `rerun=true`. A run is written into a staging folder
(workers draw pictures there) and renamed into place, so a reader sees the old complete result or
the new one, never half of one. Neither file holds a wall-clock time: the same inputs give the same bytes.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from andon.errors import BadInput
from andon.ids import hash_json
from andon.workspace import Workspace

SUITES_DIR = "suites"
RESULT_FILE = "result.json"
JUNIT_FILE = "junit.xml"
PICTURES_DIR = "pictures"
RUN_ID_HEX = 16
RESULT_VERSION = 1
MIN_PREFIX = 6


def run_inputs(suite_sha256: str, suite_name: str, stack: Mapping[str, str] | None,
               baseline_stack: Mapping[str, str] | None, scenario_ids: Sequence[str],
               replay_configs: Mapping[str, Mapping[str, Any]], code_version: str) -> dict[str, Any]:
    """What fixes a suite run's result (the hashed part of its identity)."""
    return {"suite": suite_name, "suite_sha256": suite_sha256,
            "stack": None if stack is None else dict(sorted(stack.items())),
            "baseline_stack": None if baseline_stack is None else dict(sorted(baseline_stack.items())),
            "scenario_ids": sorted(scenario_ids),
            "replay": {mode: dict(config) for mode, config in sorted(replay_configs.items())},
            "code_version": code_version}


def run_id_for(inputs: Mapping[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the inputs' canonical JSON."""
    return hash_json(dict(inputs))[:RUN_ID_HEX]


def clean(value: Any) -> Any:
    """Plain JSON: non-finite floats become None, tuples lists, numpy scalars Python numbers."""
    if hasattr(value, "item") and not isinstance(value, list | dict | str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def suites_dir(workspace: Workspace) -> Path:
    return workspace.root / SUITES_DIR


def run_dir(workspace: Workspace, run_id: str) -> Path:
    return suites_dir(workspace) / run_id


def staging_dir(workspace: Workspace, run_id: str) -> Path:
    """A fresh folder to write a run into (pictures, then the files) before `publish` renames it."""
    path = suites_dir(workspace) / f".staging-{run_id}-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def result_bytes(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(clean(dict(doc)), indent=2, sort_keys=True, allow_nan=False) + "\n").encode()


def publish(workspace: Workspace, staging: Path, doc: Mapping[str, Any], junit: bytes) -> Path:
    """Write result.json and junit.xml into the staging folder and move it to `suites/<run_id>/`, replacing
    a previous run of the same inputs; returns the run's folder."""
    run_id = str(doc["run_id"])
    _write(staging / JUNIT_FILE, junit)
    _write(staging / RESULT_FILE, result_bytes(doc))
    final = run_dir(workspace, run_id)
    old = suites_dir(workspace) / f".replaced-{run_id}-{os.getpid()}"
    if final.exists():
        final.replace(old)
    staging.replace(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def discard(staging: Path) -> None:
    shutil.rmtree(staging, ignore_errors=True)


def stored_result(workspace: Workspace, run_id: str) -> dict[str, Any] | None:
    """The stored result of `run_id` with its JUnit file, or None when absent or unreadable (run again)."""
    folder = run_dir(workspace, run_id)
    try:
        doc = json.loads((folder / RESULT_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not (folder / JUNIT_FILE).is_file():
        return None
    return doc if isinstance(doc, dict) and doc.get("run_id") == run_id else None


def load_result(workspace: Workspace, run_id: str) -> dict[str, Any]:
    """A stored result by run id or unique prefix (6+ characters).

    Raises:
        BadInput: no such run, or an ambiguous prefix.
    """
    root = suites_dir(workspace)
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise BadInput(f"{run_id!r} is not a suite run id: `andon suite runs` lists them")
    matches = [run_id] if (root / run_id / RESULT_FILE).is_file() else (
        sorted(p.parent.name for p in root.glob(f"{run_id}*/{RESULT_FILE}")) if len(run_id) >= MIN_PREFIX else [])
    if len(matches) > 1:
        raise BadInput(f"suite run id prefix {run_id!r} is ambiguous ({', '.join(matches[:3])}...): give more characters")
    doc = stored_result(workspace, matches[0]) if matches else None
    if doc is None:
        raise BadInput(f"no suite run {run_id!r} in {root}: `andon suite runs` lists them, `andon suite run SUITE` "
                       f"makes one")
    return doc


def list_results(workspace: Workspace) -> list[dict[str, Any]]:
    """Every readable stored run, by run id."""
    root = suites_dir(workspace)
    found = (stored_result(workspace, p.parent.name) for p in sorted(root.glob(f"[!.]*/{RESULT_FILE}")))
    return [doc for doc in found if doc is not None]
