"""Opening a DAG for a command: its configs, the workspace, fingerprints and the registry, checked once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from andon.dag.configs import ConfigSession, load_dag
from andon.dag.fingerprint import Fingerprinter
from andon.dag.spec import Dag, validate_inputs
from andon.errors import BadInput
from andon.workspace import Workspace


def workspace_datasets(workspace: Workspace | None) -> set[str]:
    """Names of the datasets with at least one version in the workspace."""
    if workspace is None:
        return set()
    from andon.datasets.versions import version_dirs

    return {directory.parent.name for directory in version_dirs(workspace)}


def check_inputs(dag: Dag, session: ConfigSession, workspace: Workspace | None) -> None:
    """Refuse nodes with an unknown model config or dataset (andon.dag.spec.validate_inputs).

    Without a workspace (impact analysis needs none) a dataset that is not a config may still exist
    in some workspace, so dataset names are not judged.
    """
    configs = session.options("dataset")
    used = {d for node in dag.nodes for d in node.datasets}
    known = workspace_datasets(workspace) if workspace is not None else used
    validate_inputs(dag, session.options("model"), configs, known)


@dataclass
class DagContext:
    """A DAG with what commands need around it; `lineage` reads the registry of the workspace."""

    dag: Dag
    session: ConfigSession
    workspace: Workspace | None
    fingerprinter: Fingerprinter
    _lineage: Any = field(default=None, repr=False)

    @property
    def lineage(self) -> Any:
        if self._lineage is None:
            from andon.dag.lineage import Lineage

            if self.workspace is None:
                raise BadInput("this command needs a workspace: pass --workspace DIR or set $ANDON_WORKSPACE")
            self._lineage = Lineage(self.workspace)
        return self._lineage


@contextlib.contextmanager
def open_dag(dag: str | Dag, workspace: str | None, config_dirs: Sequence[str] = (),
             workspace_required: bool = True) -> Iterator[DagContext]:
    """Load (a config name or file) and check a DAG, inside a Hydra config session.

    Args:
        dag: a DAG config name, a DAG file, or a Dag already loaded.
        workspace: the workspace argument (None: $ANDON_WORKSPACE, else ./andon-workspace).
        config_dirs: extra config directories (searched for DAG, model and dataset configs).
        workspace_required: False lets commands that need no data (plan --change) run without one.
    """
    with ConfigSession(config_dirs) as session:
        if isinstance(dag, Dag):
            session.extend(dag.searchpath)
            loaded = dag
        else:
            loaded = load_dag(session, dag)
        try:
            opened = Workspace.open(workspace)
        except BadInput:
            if workspace_required:
                raise
            opened = None
        check_inputs(loaded, session, opened)
        yield DagContext(loaded, session, opened, Fingerprinter(loaded, opened, session))
