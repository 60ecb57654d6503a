"""The registry as the DAG reads and writes it: versions per node, their components, re-evaluations.

Every node, trained or not, is a registered model named after the node: a train node's versions
come from `andon.models.train`, a fixed node's are its config, an autolabel link's record the dataset
version it built. A version registered by the DAG carries the fingerprint's components as tags
(andon.dag.fingerprint) and `upstream.<node>=<version>` for what it was made from.

Reading is behind a small `VersionReader`: through MLflow's client, or, for the workspace's embedded
store (sqlite), straight from its tables, read-only. Importing MLflow and opening its stores costs
about 2 s, which `andon dag status` cannot afford; the direct reader returns the same records (a
test holds the two to that) and falls back to MLflow when the schema is not the one it knows.
Writes always go through MLflow (andon.models.registry).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote

from andon.dag.fingerprint import TAG_FINGERPRINT, RecordedComponents
from andon.models.registry import CANDIDATE, PRODUCTION
from andon.workspace import Workspace

ALIASES = (CANDIDATE, PRODUCTION)
TAG_REEVALUATED = "reevaluated."
TAG_NODE_RUN = "dag.node_run"
TAG_PIPELINE_RUN = "dag.pipeline_run"
DELETED_STAGE = "Deleted_Internal"  # MLflow's soft-deleted model versions
DEFAULT_MLFLOW_WORKSPACE = "default"


@dataclass(frozen=True, slots=True)
class VersionRecord:
    """One registered model version, as the DAG needs it."""

    name: str
    version: str
    run_id: str | None
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    created_ms: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "run_id": self.run_id, "tags": dict(self.tags),
                "aliases": list(self.aliases), "created_ms": self.created_ms}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> VersionRecord:
        return cls(doc["name"], str(doc["version"]), doc.get("run_id"), dict(doc.get("tags") or {}),
                   tuple(doc.get("aliases") or ()), int(doc.get("created_ms") or 0))

    @classmethod
    def from_mlflow(cls, version: Any) -> VersionRecord:
        return cls(version.name, str(version.version), version.run_id or None, dict(version.tags or {}),
                   tuple(sorted(version.aliases or ())), int(version.creation_timestamp or 0))


class VersionReader(Protocol):
    """Reads every version of a registered model."""

    def versions(self, name: str) -> list[VersionRecord]: ...


class MlflowVersions:
    """Versions through MLflow's client (any tracking server)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def versions(self, name: str) -> list[VersionRecord]:
        from dataclasses import replace

        from mlflow.exceptions import MlflowException

        found = [VersionRecord.from_mlflow(v) for v in self.client.search_model_versions(f"name = '{name}'")]
        if not found:
            return []
        # search results carry no aliases: they come from the registered model
        try:
            aliases = self.client.get_registered_model(name).aliases
        except MlflowException:
            aliases = {}
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        return [replace(v, aliases=tuple(sorted(by_version.get(v.version, [])))) for v in found]


class SqliteVersions:
    """Versions read straight from the workspace's embedded MLflow store (sqlite), read-only.

    Raises:
        sqlite3.Error: when the tables are not the ones it knows (callers fall back to MLflow).
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def versions(self, name: str) -> list[VersionRecord]:
        if not self.path.is_file():
            return []  # nothing was ever tracked: no versions (and no store created just to say so)
        uri = f"file:{self.path}?mode=ro"
        with sqlite3.connect(uri, uri=True, timeout=30) as db:
            where = "workspace = ? AND name = ?"
            args = (DEFAULT_MLFLOW_WORKSPACE, name)
            rows = db.execute(f"SELECT version, run_id, creation_time FROM model_versions WHERE {where} "
                              f"AND (current_stage IS NULL OR current_stage != ?)", (*args, DELETED_STAGE)).fetchall()
            tags: dict[str, dict[str, str]] = {}
            for version, key, value in db.execute(f"SELECT version, key, value FROM model_version_tags WHERE {where}",
                                                  args):
                tags.setdefault(str(version), {})[key] = value
            aliases: dict[str, list[str]] = {}
            for alias, version in db.execute(f"SELECT alias, version FROM registered_model_aliases WHERE {where}",
                                             args):
                aliases.setdefault(str(version), []).append(alias)
        return [VersionRecord(name, str(v), run_id or None, tags.get(str(v), {}), tuple(sorted(aliases.get(str(v), []))),
                              int(created or 0)) for v, run_id, created in rows]


def local_store(workspace: Workspace) -> Path | None:
    """The sqlite file of the workspace's tracking store, or None for a server / another database."""
    uri = workspace.mlflow_tracking_uri
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri[len("sqlite:///"):]))


class Lineage:
    """The registry for the DAG: reads versions (once per node until forgotten), opens MLflow for writes.

    Args:
        workspace: the workspace.
        reader: how versions are read (default: the sqlite store directly when local, else MLflow).
    """

    def __init__(self, workspace: Workspace, reader: VersionReader | None = None) -> None:
        self.workspace = workspace
        store = local_store(workspace)
        self.reader: VersionReader | None = reader or (SqliteVersions(store) if store is not None else None)
        self._registry: Any = None
        self._versions: dict[str, list[VersionRecord]] = {}

    @property
    def registry(self) -> Any:
        """andon.models.registry.Registry (imports MLflow on first use)."""
        if self._registry is None:
            from andon.models.registry import Registry

            self._registry = Registry(self.workspace)
        return self._registry

    @property
    def client(self) -> Any:
        return self.registry.client

    def versions(self, node: str) -> list[VersionRecord]:
        """Every version of the node's registered model, newest first."""
        if node not in self._versions:
            found = None
            if self.reader is not None:
                try:
                    found = self.reader.versions(node)
                except sqlite3.Error:
                    self.reader = None  # an MLflow schema this reader does not know: MLflow reads it
            if found is None:
                found = MlflowVersions(self.client).versions(node)
            self._versions[node] = sorted(found, key=lambda v: int(v.version), reverse=True)
        return self._versions[node]

    def forget(self, node: str | None = None) -> None:
        """Read the node's versions (all nodes' by default) again next time."""
        if node is None:
            self._versions.clear()
        else:
            self._versions.pop(node, None)

    def with_fingerprint(self, node: str, fingerprint: str) -> list[VersionRecord]:
        """Versions tagged with this fingerprint, newest first (Registry.versions_tagged, from one read)."""
        return [v for v in self.versions(node) if v.tags.get(TAG_FINGERPRINT) == fingerprint]

    def latest_from_dag(self, node: str) -> VersionRecord | None:
        """The newest version that recorded its components (registered by the DAG)."""
        return next((v for v in self.versions(node) if RecordedComponents.from_tags(v.tags).from_dag), None)

    def by_alias(self, node: str, alias: str) -> VersionRecord | None:
        return next((v for v in self.versions(node) if alias in v.aliases), None)

    def version(self, node: str, version: str) -> VersionRecord | None:
        return next((v for v in self.versions(node) if v.version == str(version)), None)


def tag_version(registry: Any, node: str, version: str, tags: Mapping[str, str]) -> None:
    """Set the component tags a version lacks; the fingerprint tag last, so it means "complete"."""
    present = dict(registry.client.get_model_version(node, version).tags or {})
    for key, value in tags.items():
        if key != TAG_FINGERPRINT and present.get(key) != str(value):
            registry.client.set_model_version_tag(node, version, key, str(value))
    if TAG_FINGERPRINT in tags and present.get(TAG_FINGERPRINT) != tags[TAG_FINGERPRINT]:
        registry.client.set_model_version_tag(node, version, TAG_FINGERPRINT, tags[TAG_FINGERPRINT])


def reevaluated_with(tags: Mapping[str, str], upstream: str) -> set[str]:
    """The upstream versions a version was re-evaluated with (see record_reevaluation)."""
    value = tags.get(TAG_REEVALUATED + upstream, "")
    return {v for v in value.split(",") if v}


def record_reevaluation(registry: Any, node: str, version: str, upstream: str, upstream_version: str) -> None:
    """Record that `node` version `version` was re-evaluated (and passed) with `upstream` at `upstream_version`.

    Test suites call this after judging a downstream model against a new upstream version; the
    cascade-skew warning of `andon dag status` is then lifted for that pair.
    """
    current = registry.client.get_model_version(node, version)
    versions = reevaluated_with(current.tags, upstream) | {str(upstream_version)}
    registry.client.set_model_version_tag(node, version, TAG_REEVALUATED + upstream,
                                          ",".join(sorted(versions, key=_version_key)))


def _version_key(version: str) -> tuple[int, str]:
    return (int(version), version) if version.isdigit() else (1 << 62, version)
