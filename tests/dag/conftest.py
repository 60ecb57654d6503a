"""Fixtures of the DAG tests: a template workspace (catalog logs, one built detection dataset, an
initialised MLflow store), copied per test; a config folder of tiny model configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dag.helpers import copy_workspace, dataset_spec, tiny_models, write_config_dir


@pytest.fixture(scope="session")
def dag_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from andon.datasets.build import build_dataset
    from andon.models.registry import Registry
    from andon.workspace import Workspace
    from tests.datasets.build_helpers import add_logs, make_agents_log

    workspace, _ = Workspace.init(tmp_path_factory.mktemp("dag_template") / "ws")
    add_logs(workspace, [make_agents_log(f"log{i}", seed=i, n_frames=10) for i in range(3)])
    doc = build_dataset(workspace, dataset_spec(), progress=False)
    assert doc["status"] == "accepted", doc["reasons"]
    Registry(workspace).client.search_registered_models()  # creates the MLflow tables once
    return workspace.root


@pytest.fixture
def dag_ws(dag_template: Path, tmp_path: Path):
    """A fresh copy of the template workspace (its DVC remote still points at the template's: the DAG
    tests never push)."""
    return copy_workspace(dag_template, tmp_path / "ws")


@pytest.fixture
def cfg_dir(tmp_path: Path) -> Path:
    """A config folder with the tiny model configs (and, per test, DAG files)."""
    return write_config_dir(tmp_path / "cfg", tiny_models())
