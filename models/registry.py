"""MLflow tracking and model registry for the workspace: experiments, versions and aliases.

The tracking store is the workspace's `mlflow.db` (sqlite) with artefacts under `mlartifacts/`, or a
server by `mlflow_tracking_uri` in andon.yaml; `mlflow ui --backend-store-uri sqlite:///…/mlflow.db`
browses it. Training registers every model as a new version with alias `candidate`; only the gates
move `production` (and `previous`). Model references read `NAME@ALIAS` or `NAME@VERSION`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

from andon.errors import BadInput
from andon.workspace import Workspace, disable_telemetry

CANDIDATE = "candidate"
PRODUCTION = "production"
PREVIOUS = "previous"


@dataclass(frozen=True, slots=True)
class ModelRef:
    name: str
    alias: str | None = None
    version: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        name, sep, which = text.partition("@")
        if not name or not sep or not which:
            raise BadInput(f"model reference {text!r} must read NAME@ALIAS (e.g. detector@candidate) or NAME@VERSION")
        return cls(name, version=which) if which.isdigit() else cls(name, alias=which)

    def __str__(self) -> str:
        return f"{self.name}@{self.version or self.alias}"


class Registry:
    """The workspace's MLflow client, with andon's conventions."""

    def __init__(self, workspace: Workspace) -> None:
        disable_telemetry()
        os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
        import mlflow
        from mlflow import MlflowClient

        self.workspace = workspace
        self.tracking_uri = workspace.mlflow_tracking_uri
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        self.client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def experiment_id(self, name: str) -> str:
        """The id of experiment `name`, created with its artefacts inside the workspace if new."""
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=f"{self.workspace.mlflow_artifact_root}/{name}")
        except Exception:  # another process created it first
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def register(self, name: str, run_id: str, artifact_path: str, tags: dict[str, str],
                 alias: str = CANDIDATE) -> str:
        """Register the run's artefact as a new version of `name` and point `alias` at it."""
        if alias == PRODUCTION:
            raise BadInput("training never registers into production: only `andon release` promotes")
        from mlflow.exceptions import MlflowException

        with contextlib.suppress(MlflowException):  # exists already
            self.client.create_registered_model(name)
        version = self.client.create_model_version(name, f"runs:/{run_id}/{artifact_path}", run_id=run_id,
                                                   tags={k: str(v) for k, v in tags.items()})
        self.client.set_registered_model_alias(name, alias, version.version)
        return str(version.version)

    def resolve(self, ref: ModelRef | str) -> Any:
        """The ModelVersion a reference names; BadInput naming it when there is none."""
        ref = ModelRef.parse(ref) if isinstance(ref, str) else ref
        from mlflow.exceptions import MlflowException

        try:
            if ref.version is not None:
                return self.client.get_model_version(ref.name, ref.version)
            return self.client.get_model_version_by_alias(ref.name, ref.alias)
        except MlflowException as exc:
            raise BadInput(f"no model version {ref} in the registry ({self.tracking_uri}): train it first "
                           f"(`andon train model={ref.name}` or `andon dag run`)") from exc

    def aliases(self, name: str) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            model = self.client.get_registered_model(name)
        except MlflowException:
            return {}
        return {alias: str(version) for alias, version in model.aliases.items()}

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(name, alias, version)

    def versions_tagged(self, name: str, key: str, value: str) -> list[Any]:
        """Versions of `name` whose tag `key` equals `value`, newest first."""
        found = self.client.search_model_versions(f"name = '{name}' and tags.{key} = '{value}'")
        return sorted(found, key=lambda v: int(v.version), reverse=True)
