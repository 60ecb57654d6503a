"""Autolabels: detector + tracker outputs become catalog logs that a prediction dataset selects."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from andon.datasets.build import build_dataset
from andon.datasets.datamodules import PredictionDataModule
from andon.datasets.spec import spec_from_config
from andon.errors import BadInput
from andon.models.autolabel import (
    SOURCE,
    autolabel_catalog,
    autolabel_log,
    load_detect_fn,
    oracle_detector,
    tracker_fingerprint,
    tracking_quality,
)
from andon.models.predictor import TrajectoryPredictor
from andon.models.tracker import Tracker
from andon.scenarios.catalog import Catalog
from andon.simulation.fleet import FleetConfig, synthesize_fleet
from tests.datasets.loading_helpers import copy_workspace

LABELS_ONLY = FleetConfig(with_lidar=False, label_error_rate=0.0)
UPSTREAM = {"detector": "v3"}


@pytest.fixture(scope="module")
def label_fleet(_workspace_template: Path, tmp_path_factory: pytest.TempPathFactory):
    """A workspace with four 12 s synthetic logs (labels only, no label errors)."""
    workspace = copy_workspace(_workspace_template, tmp_path_factory.mktemp("autolabel") / "ws")
    with Catalog(workspace) as catalog:
        log_ids = synthesize_fleet(catalog, 4, seed=5, duration_s=12.0, config=LABELS_ONLY)
    return workspace, log_ids


def test_an_autolabel_log_is_derived_from_its_source(label_fleet) -> None:
    workspace, log_ids = label_fleet
    with Catalog(workspace) as catalog:
        source = catalog.log(log_ids[0])
    tracker = Tracker()
    labelled = autolabel_log(source, oracle_detector(), tracker, UPSTREAM)
    assert labelled.source == SOURCE and labelled.tags == {"autolabel", "detector_v3"}
    assert labelled.meta["derived_from"] == source.log_id
    assert labelled.meta["upstream"] == {"detector": "v3", "tracker": tracker_fingerprint(tracker)}
    assert labelled.road_map is source.road_map and len(labelled.road_map.lanes) > 0
    assert [f.timestamp_ns for f in labelled.frames] == [f.timestamp_ns for f in source.frames]
    assert [f.ego_pose for f in labelled.frames] == [f.ego_pose for f in source.frames]
    assert all(f.points is None for f in labelled.frames)
    frame = labelled.frames[50]
    assert all(t.startswith("trk-") for t in frame.track_ids) and frame.velocities_mps.shape == (len(frame.classes), 2)
    # Velocities over the ground in ego axes, as the source labels give them: close for matched boxes.
    truth = source.frames[50]
    distance = np.hypot(*(truth.boxes[:, None, :2] - frame.boxes[None, :, :2]).transpose(2, 0, 1))
    nearest = distance.argmin(axis=1)
    matched = distance[np.arange(len(truth.boxes)), nearest] < 1.0
    error = np.hypot(*(truth.velocities_mps[matched] - frame.velocities_mps[nearest[matched]]).T)
    assert np.median(error) < 1.0


def test_the_tracker_recovers_the_true_tracks_from_noisy_detections(label_fleet) -> None:
    workspace, log_ids = label_fleet
    totals: dict[str, float] = {}
    with Catalog(workspace) as catalog:
        for log_id in log_ids:
            source = catalog.log(log_id)
            labelled = autolabel_log(source, oracle_detector(position_noise_m=0.2, drop_rate=0.1, seed=1), Tracker(),
                                     UPSTREAM)
            quality = tracking_quality(source, labelled)
            for key in ("id_switches", "misses", "false_positives", "gt_objects", "gt_tracks", "matches"):
                totals[key] = totals.get(key, 0) + quality[key]
    mota = 1 - (totals["misses"] + totals["false_positives"] + totals["id_switches"]) / totals["gt_objects"]
    print(f"CLEAR MOT over {len(log_ids)} logs: MOTA {mota:.3f}, {totals}")
    assert mota > 0.8 and totals["false_positives"] <= 0.01 * totals["gt_objects"]
    assert totals["id_switches"] <= 0.1 * totals["gt_tracks"]
    # Misses are mostly the detector's 10 % drops (a dropped box cannot be recalled).
    assert totals["misses"] < 0.16 * totals["gt_objects"]


def test_autolabels_are_stored_selectable_and_idempotent(label_fleet) -> None:
    workspace, log_ids = label_fleet
    with Catalog(workspace) as catalog:
        stored = autolabel_catalog(catalog, log_ids, oracle_detector(), Tracker(), UPSTREAM, progress=False)
        again = autolabel_catalog(catalog, log_ids, oracle_detector(), Tracker(), UPSTREAM, progress=False)
        other = autolabel_catalog(catalog, log_ids[:1], oracle_detector(), Tracker(), {"detector": "v4"},
                                  progress=False)
        found = {s.log_id for s in catalog.search("source:autolabel tag:detector_v3")}
        row = catalog.log_row(stored[0])
    assert stored == again and len(set(stored)) == len(log_ids) and other[0] not in stored
    assert found == set(stored)
    assert row["source"] == SOURCE and f'"derived_from": "{log_ids[0]}"' in row["meta"]


def test_the_autolabel_dataset_builds_loads_and_trains(label_fleet) -> None:
    workspace, log_ids = label_fleet
    with Catalog(workspace) as catalog:
        autolabel_catalog(catalog, log_ids, oracle_detector(), Tracker(), UPSTREAM, progress=False)
    text = importlib.resources.files("andon.configs").joinpath("dataset", "prediction_autolabel.yaml").read_text()
    doc = OmegaConf.to_container(OmegaConf.create(text))
    doc.pop("defaults")
    # The DAG pins the detector version by its tag; four logs split whole all go to train here.
    doc["query"]["tags"] = ["detector_v3"]
    doc["split"] = {"train": 1.0, "val": 0.0, "test": 0.0}
    result = build_dataset(workspace, spec_from_config(doc), progress=False)
    assert result["status"] == "accepted" and result["samples"]["train"] > 50
    datamodule = PredictionDataModule(workspace, result["dataset_id"], batch_size=16, num_workers=0, seed=0)
    datamodule.setup("fit")
    batch = next(iter(datamodule.train_dataloader()))
    model = TrajectoryPredictor(sampling=datamodule.sampling, hidden_size=16, neighbour_size=8)
    loss = model._losses(batch)["loss"]
    loss.backward()
    assert np.isfinite(loss.item())


def test_frames_the_detector_cannot_see_stay_empty(label_fleet) -> None:
    workspace, log_ids = label_fleet
    with Catalog(workspace) as catalog:
        source = catalog.log(log_ids[1])
    oracle = oracle_detector(position_noise_m=0.0, drop_rate=0.0, false_positive_rate=0.0)

    def every_fifth(frame):
        return oracle(frame) if (frame.timestamp_ns // 100_000_000) % 5 == 0 else None

    labelled = autolabel_log(source, every_fifth, Tracker(), UPSTREAM)
    counts = np.array([len(f.classes) for f in labelled.frames])
    seen = np.array([(f.timestamp_ns // 100_000_000) % 5 == 0 for f in source.frames])
    assert (counts[~seen] == 0).all() and counts[seen].sum() > 0
    # Tracks persist across the unseen frames (the tracker only counts the frames it sees).
    ids = [set(f.track_ids) for f, s in zip(labelled.frames, seen, strict=True) if s]
    assert len(ids[1] & ids[2]) >= 0.8 * min(len(ids[1]), len(ids[2]))


@pytest.mark.parametrize(("output", "message"), [
    ((np.zeros((2, 6)), ["vehicle"] * 2, np.ones(2)), r"\(N, 7\)"),
    ((np.ones((1, 7)), ["truck"], np.ones(1)), "truck"),
    ((np.full((1, 7), np.nan), ["vehicle"], np.ones(1)), "finite"),
    ("boxes", "must be"),
])
def test_bad_detector_outputs_name_the_frame(label_fleet, output, message: str) -> None:
    workspace, log_ids = label_fleet
    with Catalog(workspace) as catalog:
        source = catalog.log(log_ids[0])
    with pytest.raises(BadInput, match=message):
        autolabel_log(source, lambda frame: output, Tracker(), UPSTREAM)


@pytest.mark.parametrize("upstream", [{}, {"detector": "v 3"}, {"detector": "a:b"}])
def test_the_detector_version_must_make_a_tag(label_fleet, upstream: dict) -> None:
    workspace, log_ids = label_fleet
    with Catalog(workspace) as catalog:
        source = catalog.log(log_ids[0])
    with pytest.raises(BadInput, match="detector version"):
        autolabel_log(source, oracle_detector(), None, upstream)


def test_a_registered_detector_version_labels_a_lidar_log(trained, fleet) -> None:
    """The DAG's path: a registered detector version (the tiny trained one) over a log with sweeps."""
    workspace, version, result = trained
    detect = load_detect_fn(workspace, "detector", str(result.version))
    with Catalog(workspace) as catalog:
        source = catalog.log(version.log_manifests().popitem()[0])
    labelled = autolabel_log(source, detect, None, {"detector": str(result.version)})
    assert len(labelled.frames) == len(source.frames)
    blind = [f for f, s in zip(labelled.frames, source.frames, strict=True) if s.points is None]
    assert blind and all(len(f.classes) == 0 for f in blind)
    assert labelled.tags == {"autolabel", f"detector_{result.version}"}
