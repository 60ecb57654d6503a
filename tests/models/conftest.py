"""Fixtures of the model tests: a small synthetic fleet in a real workspace, and one tiny trained detector."""

from __future__ import annotations

from pathlib import Path

import pytest

from andon.models.train import run_training
from tests.datasets.loading_helpers import copy_workspace
from tests.models.train_helpers import compose_train, fleet_version, synthesize, tiny_overrides


@pytest.fixture(scope="package")
def fleet(_workspace_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """(workspace, log ids, accepted detection version) of four 3 s fleet logs with a 16-beam lidar."""
    workspace = copy_workspace(_workspace_template, tmp_path_factory.mktemp("train") / "ws")
    log_ids = synthesize(workspace, n_logs=4, duration_s=3.0)
    return workspace, log_ids, fleet_version(workspace, log_ids)


@pytest.fixture(scope="package")
def trained(fleet) -> tuple:
    """(workspace, version, TrainResult) of one tiny detector run, registered as detector version 1."""
    workspace, _, version = fleet
    cfg = compose_train(tiny_overrides(workspace, version.dataset_id, "+upstream.tracker=2"))
    return workspace, version, run_training(cfg)


@pytest.fixture(scope="package", autouse=True)
def _one_cpu_thread():
    """One torch thread for the model tests: on a small shared machine, torch's default (all cores)
    makes every small op wait on busy cores (4x slower here); results do not depend on it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
