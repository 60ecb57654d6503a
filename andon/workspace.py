"""The workspace: one git + DVC repository holding everything andon stores.

Layout (relative to the workspace root):
    andon.yaml          settings (catalog URL, MLflow URI, DVC remote); defaults are embedded
    catalog.sqlite      the scenario catalog (SQLite, WAL); not in git, exported by `scenarios commit`
    blobs/              content-addressed frame data (DVC-tracked)
    catalog_export/     deterministic export of the catalog (DVC-tracked)
    dvc-remote/         the default local DVC remote (git-ignored)
    mlflow.db           MLflow tracking + registry store (sqlite); mlartifacts/ holds run artefacts
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from andon.errors import BadInput, InternalError

ENV_VAR = "ANDON_WORKSPACE"
DEFAULT_DIR = "andon-workspace"
SETTINGS_FILE = "andon.yaml"
_GITIGNORE = ["/catalog.sqlite", "/catalog.sqlite-*", "/dvc-remote/", "/tmp/", "/outputs/", "/multirun/",
              "/mlflow.db", "/mlartifacts/", "/checkpoints/", "/ray/"]

# The project's own processes never phone home.
TELEMETRY_OFF = {
    "DVC_NO_ANALYTICS": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def disable_telemetry() -> None:
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


def resolve_root(arg: str | os.PathLike[str] | None) -> Path:
    """The workspace directory: the argument, else $ANDON_WORKSPACE, else ./andon-workspace."""
    if arg:
        return Path(arg).expanduser().resolve()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser().resolve()
    return Path(DEFAULT_DIR).resolve()


def run_tool(args: list[str], cwd: Path, what: str) -> str:
    """Run git or dvc in the workspace; a failure is an internal error naming the command."""
    disable_telemetry()
    if args[0] == "dvc":
        args = [sys.executable, "-m", "dvc", *args[1:]]
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=os.environ.copy())
    if proc.returncode != 0:
        raise InternalError(f"{what} failed ({' '.join(args[-4:])}): {proc.stderr.strip() or proc.stdout.strip()}")
    return proc.stdout


@dataclass(frozen=True, slots=True)
class Workspace:
    root: Path
    settings: dict[str, Any]

    @classmethod
    def open(cls, root: str | os.PathLike[str] | None = None) -> Workspace:
        """Open an initialised workspace; a missing one is bad input that says how to create it."""
        path = resolve_root(root)
        settings_path = path / SETTINGS_FILE
        if not settings_path.is_file():
            raise BadInput(f"no andon workspace at {path}: run `andon init {path}` first, "
                           f"or pass --workspace DIR / set ${ENV_VAR}")
        try:
            settings = yaml.safe_load(settings_path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise BadInput(f"{settings_path} is not valid YAML: {exc}") from exc
        if not isinstance(settings, dict):
            raise BadInput(f"{settings_path} must hold a mapping of settings")
        return cls(root=path, settings=settings)

    @classmethod
    def init(cls, root: str | os.PathLike[str] | None = None, remote: str | None = None) -> tuple[Workspace, bool]:
        """Create (or re-open) a workspace: git + DVC repository with a local remote.

        Returns the workspace and whether it was newly created. Idempotent.
        """
        path = resolve_root(root)
        if (path / SETTINGS_FILE).is_file():
            return cls.open(path), False
        if path.exists() and not path.is_dir():
            raise BadInput(f"{path} exists and is not a directory: choose another workspace path")
        path.mkdir(parents=True, exist_ok=True)
        (path / "blobs").mkdir(exist_ok=True)
        if not (path / ".git").exists():
            run_tool(["git", "init", "-q", "-b", "main"], path, "git init")
        _ensure_git_identity(path)
        if not (path / ".dvc").exists():
            run_tool(["dvc", "init", "-q"], path, "dvc init")
            run_tool(["dvc", "config", "core.analytics", "false"], path, "dvc config")
        remote_url = remote or str(path / "dvc-remote")
        if remote is None:
            Path(remote_url).mkdir(exist_ok=True)
        run_tool(["dvc", "remote", "add", "-f", "-d", "local", remote_url], path, "dvc remote add")
        settings = {
            "version": 1,
            "catalog_url": None,  # None: sqlite file in the workspace; else a SQLAlchemy URL
            "mlflow_tracking_uri": None,
            "dvc_remote": remote_url if remote else "dvc-remote",
        }
        tmp = path / (SETTINGS_FILE + ".tmp")
        tmp.write_text(yaml.safe_dump(settings, sort_keys=True))
        tmp.replace(path / SETTINGS_FILE)
        (path / ".gitignore").write_text("\n".join(_GITIGNORE) + "\n")
        run_tool(["git", "add", SETTINGS_FILE, ".gitignore", ".dvc", ".dvcignore"], path, "git add")
        run_tool(["git", "commit", "-q", "-m", "andon init"], path, "git commit")
        return cls(root=path, settings=settings), True

    @property
    def catalog_url(self) -> str:
        url = self.settings.get("catalog_url")
        return url or f"sqlite:///{self.root / 'catalog.sqlite'}"

    @property
    def mlflow_tracking_uri(self) -> str:
        uri = self.settings.get("mlflow_tracking_uri")
        return uri or f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def mlflow_artifact_root(self) -> str:
        return (self.root / "mlartifacts").as_uri()

    @property
    def blobs_dir(self) -> Path:
        return self.root / "blobs"

    @property
    def tmp_dir(self) -> Path:
        path = self.root / "tmp"
        path.mkdir(exist_ok=True)
        return path


def _ensure_git_identity(path: Path) -> None:
    """Commits need an author; fall back to a local one when the machine has none."""
    probe = subprocess.run(["git", "config", "user.email"], cwd=path, capture_output=True, text=True)
    if probe.returncode != 0 or not probe.stdout.strip():
        run_tool(["git", "config", "user.email", "andon@localhost"], path, "git config")
        run_tool(["git", "config", "user.name", "andon"], path, "git config")
