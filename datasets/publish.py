"""Writing a version atomically, and versioning it with DVC and git.

The version is written into a temp directory of the workspace (same file system), version.json last,
then renamed to datasets/<name>/<dataset_id>/ in one step: a crash leaves either nothing or a complete
version, never half of one. The temp directory of a crashed build is removed by the next build.
Then `dvc add` the directory and git-commit its .dvc file. A crash between the rename and the commit
is resumed by the next build (`track_pending`), so a complete version always ends up versioned.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from andon.datasets.spec import SPLITS
from andon.datasets.versions import DATASETS_DIR, VERSION_FILE, version_dirs
from andon.errors import InternalError
from andon.workspace import Workspace, run_tool

TEMP_PREFIX = "dataset-build-"
LOCK_FILE = "datasets.lock"


@contextmanager
def build_lock(workspace: Workspace) -> Iterator[None]:
    """One dataset build at a time per workspace (builds share the git index and the version order)."""
    path = workspace.tmp_dir / LOCK_FILE
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def remove_stale_temps(workspace: Workspace) -> int:
    """Remove temp directories of interrupted builds (call under build_lock). Returns how many."""
    stale = [p for p in workspace.tmp_dir.glob(f"{TEMP_PREFIX}*") if p.is_dir()]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=True, allow_nan=False) + "\n")


def write_samples(path: Path, columns: dict[str, np.ndarray], log_ids: list[str], manifests: dict[str, str]) -> None:
    """One split's samples as parquet: log_id, log_manifest, frame_index, timestamp_ns [, track_id].

    In memory a sample holds its log's index; here the index becomes the log's id and manifest
    digest (parquet dictionary-encodes the repeated strings on disk).
    """
    index = pa.array(columns["log_index"], type=pa.int32())
    ids = pa.DictionaryArray.from_arrays(index, pa.array(log_ids, type=pa.string())).cast(pa.string())
    digests = pa.DictionaryArray.from_arrays(index, pa.array([manifests[k] for k in log_ids], type=pa.string()))
    data = {"log_id": ids, "log_manifest": digests.cast(pa.string()),
            "frame_index": pa.array(columns["frame_index"], type=pa.int64()),
            "timestamp_ns": pa.array(columns["timestamp_ns"], type=pa.int64())}
    if "track_id" in columns:
        data["track_id"] = pa.array(columns["track_id"], type=pa.string())
    pq.write_table(pa.table(data), path)


def publish(workspace: Workspace, name: str, dataset_id: str, documents: dict[str, Any],
            samples: dict[str, dict[str, np.ndarray]], log_ids: list[str], manifests: dict[str, str],
            version: dict[str, Any]) -> Path:
    """Write the version to a temp directory and rename it into datasets/<name>/<dataset_id>/.

    Args:
        documents: {file name: JSON-able object} (spec.json, scenarios.json, ...).
        samples: split -> column -> array (log_index into `log_ids`).
        log_ids, manifests: the logs, sorted, and their manifest digests.
        version: the version.json document, written last.
    """
    final = workspace.root / DATASETS_DIR / name / dataset_id
    temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=workspace.tmp_dir))
    try:
        (temp / "samples").mkdir()
        for filename, obj in documents.items():
            write_json(temp / filename, obj)
        for split in SPLITS:
            write_samples(temp / "samples" / f"{split}.parquet", samples[split], log_ids, manifests)
        write_json(temp / VERSION_FILE, version)
        _before_rename(temp)
        final.parent.mkdir(parents=True, exist_ok=True)
        temp.rename(final)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return final


def _before_rename(temp: Path) -> None:
    """Hook between writing and renaming (tests interrupt a build here)."""


def track(workspace: Workspace, directory: Path, message: str) -> str:
    """`dvc add` a version directory and commit its .dvc file (and the .gitignore DVC keeps); returns HEAD."""
    root = workspace.root
    rel = directory.relative_to(root)
    dvc_file = rel.parent / f"{rel.name}.dvc"
    gitignore = rel.parent / ".gitignore"
    run_tool(["dvc", "add", "-q", str(rel)], root, "dvc add")
    paths = [str(dvc_file), str(gitignore)]
    run_tool(["git", "add", "--", *paths], root, "git add")
    staged = run_tool(["git", "diff", "--cached", "--name-only", "--", *paths], root, "git diff").strip()
    if staged:
        run_tool(["git", "commit", "-q", "-m", message, "--", *paths], root, "git commit")
    return run_tool(["git", "rev-parse", "HEAD"], root, "git rev-parse").strip()


def is_tracked(workspace: Workspace, directory: Path) -> bool:
    """Whether the version's .dvc file exists and is committed unchanged."""
    return directory.name not in _untracked(workspace, directory.parent.name, [directory])


def track_pending(workspace: Workspace, name: str) -> list[str]:
    """Version and commit complete versions of `name` that a crash left untracked; returns their ids."""
    pending = _untracked(workspace, name, version_dirs(workspace, name))
    for directory in version_dirs(workspace, name):
        if directory.name in pending:
            status = json.loads((directory / VERSION_FILE).read_text()).get("status", "?")
            track(workspace, directory, f"dataset {name} {directory.name}: {status} (resumed)")
    return sorted(pending)


def _untracked(workspace: Workspace, name: str, directories: list[Path]) -> set[str]:
    """Ids among `directories` whose .dvc file is missing, not in git, or changed (two git calls in all)."""
    if not directories:
        return set()
    root = workspace.root
    folder = f"{DATASETS_DIR}/{name}"
    committed = set(run_tool(["git", "ls-files", "--", folder], root, "git ls-files").split())
    changed = {line[3:].strip() for line in
               run_tool(["git", "status", "--porcelain", "--untracked-files=no", "--", folder], root,
                        "git status").splitlines()}
    pending = set()
    for directory in directories:
        dvc_file = f"{folder}/{directory.name}.dvc"
        if not (root / dvc_file).is_file() or dvc_file not in committed or dvc_file in changed:
            pending.add(directory.name)
    return pending


def head(workspace: Workspace) -> str:
    try:
        return run_tool(["git", "rev-parse", "HEAD"], workspace.root, "git rev-parse").strip()
    except InternalError:
        return ""
