"""Datasets from the real samples in ../shared/data: ETH/UCY prediction (8 -> 12 at 0.4 s), AV2 detection."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from andon.datasets.cli import BUILD_CONFIG, BUILD_PROG, build_task
from andon.datasets.versions import load_version
from andon.hydra_app import run_hydra_app
from andon.scenarios.catalog import Catalog
from andon.scenarios.importers import importer
from tests.datasets.build_helpers import PROVENANCE

pytestmark = pytest.mark.realdata


def _import(workspace, fmt, path):
    logs = importer(fmt).read(path)
    with Catalog(workspace) as catalog:
        return {log.name: catalog.add_log(log, PROVENANCE, origin=str(path))[0] for log in logs}


def _build(workspace, capsys, *overrides):
    capsys.readouterr()
    code = run_hydra_app(build_task, BUILD_CONFIG, BUILD_PROG, [f"workspace={workspace.root}", "json=true", *overrides])
    out = capsys.readouterr()
    return code, json.loads(out.out), out.err


def _windows_by_brute_force(path, history=8, horizon=12) -> int:
    """Samples of one ETH/UCY file from its raw rows: pedestrians present at every step t0-7 ... t0+12."""
    table = pd.read_csv(path, sep=r"\s+", header=None, names=["frame", "ped", "x", "y"])
    frames = table["frame"].round().astype(np.int64).to_numpy()
    step = int(np.gcd.reduce(np.diff(np.unique(frames))))
    present = set(zip(frames.tolist(), table["ped"].round().astype(np.int64).tolist(), strict=True))
    return sum(all((f + k * step, p) in present for k in range(-history + 1, horizon + 1)) for f, p in present)


def test_eth_ucy_prediction_dataset(shared_data, workspace, capsys):
    folder = shared_data / "prediction" / "eth_ucy"
    ids = _import(workspace, "eth-ucy", folder)
    assert len(ids) == 7
    code, doc, err = _build(workspace, capsys, "dataset=prediction_eth_ucy")
    assert code == 0, err
    assert doc["status"] == "accepted" and all(c["passed"] for c in doc["checks"])
    assert all(n > 0 for n in doc["samples"].values()), doc["samples"]
    version = load_version(workspace, "prediction_eth_ucy")
    assert version.spec["sampling"]["history_steps"] == 8 and version.spec["sampling"]["step_s"] == 0.4
    samples = pd.concat([version.samples(s) for s in ("train", "val", "test")])
    # Every log whole in one split, and the per-log count equals the protocol's definition on the raw file.
    assert samples.groupby("log_id").ngroups == 7
    per_log = samples.groupby("log_id").size()
    assert per_log[ids["biwi_hotel"]] == _windows_by_brute_force(folder / "biwi_hotel.txt")
    assert per_log[ids["crowds_zara01"]] == _windows_by_brute_force(folder / "crowds_zara01.txt")
    assert version.statistics["classes"]["pedestrian"] == len(samples)
    # A rebuild is a no-op with the same id.
    code, again, _ = _build(workspace, capsys, "dataset=prediction_eth_ucy")
    assert code == 0 and again["dataset_id"] == doc["dataset_id"] and not again["built"]


def test_av2_detection_dataset(shared_data, workspace, capsys):
    ids = _import(workspace, "av2", shared_data / "perception" / "av2_sensor")
    (log_id,) = ids.values()
    code, doc, err = _build(workspace, capsys, "dataset=detection_real", "dataset.split.train=1.0",
                            "dataset.split.val=0", "dataset.split.test=0")
    assert code == 0, err
    assert doc["status"] == "accepted" and doc["samples"] == {"train": 1, "val": 0, "test": 0}
    version = load_version(workspace, doc["dataset_id"])
    frame = version.samples("train")
    assert frame["log_id"].tolist() == [log_id] and frame["frame_index"].tolist() == [0]  # the one sweep
    points = version.statistics["histograms"]["points_per_frame"]
    assert sum(points["counts"]) == 1
    with Catalog(workspace) as catalog:
        log = catalog.log(log_id)
        sweep = log.frames[0]
        assert sweep.points is not None and int(frame["timestamp_ns"][0]) == sweep.timestamp_ns
        assert sum(version.statistics["classes"].values()) == len(sweep.classes)
    range_check = [c for c in doc["checks"] if c["name"] == "point_cloud_range"][0]
    assert 0 < range_check["share_outside"] < 0.5  # AV2 labels reach past the +-75.2 m crop
