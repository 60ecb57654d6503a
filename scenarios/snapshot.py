"""`andon scenarios commit`: a deterministic export of the catalog plus the blobs, versioned by DVC and git."""

from __future__ import annotations

from typing import Any

from andon.scenarios.catalog import Catalog
from andon.workspace import run_tool

EXPORT_DIR = "catalog_export"


def commit_catalog(catalog: Catalog, message: str, push: bool = False) -> dict[str, Any]:
    """Export, `dvc add` the export and the blob store, and git-commit the .dvc files.

    Returns {"commit": sha, "changed": bool, "pushed": bool}; with nothing changed no commit is made.
    """
    root = catalog.workspace.root
    catalog.blobs.root.mkdir(exist_ok=True)
    catalog.export(root / EXPORT_DIR)
    run_tool(["dvc", "add", "-q", "blobs", EXPORT_DIR], root, "dvc add")
    run_tool(["git", "add", "blobs.dvc", f"{EXPORT_DIR}.dvc", ".gitignore"], root, "git add")
    staged = run_tool(["git", "diff", "--cached", "--name-only"], root, "git diff").strip()
    if staged:
        run_tool(["git", "commit", "-q", "-m", message], root, "git commit")
    pushed = False
    if push:
        run_tool(["dvc", "push", "-q"], root, "dvc push")
        pushed = True
    sha = run_tool(["git", "rev-parse", "HEAD"], root, "git rev-parse").strip()
    return {"commit": sha, "changed": bool(staged), "pushed": pushed}
