"""Label QA on the real samples in ../shared/data (skipped with the reason when absent).

The AV2 sensor log is human-labelled and curated: QA must find nothing to blame. Its one lidar sweep
holds boxes with almost no points, all far away or in another object's shadow, which the point check
must not flag. Every other importer's logs must go through QA without error.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from andon.scenarios import Catalog, Provenance
from andon.scenarios.geometry import count_points_in_boxes
from andon.scenarios.importers import importer
from andon.scenarios.qa import CHECK_NAMES, QAConfig, run_checks, score_catalog, score_log
from andon.scenarios.qa.lidar_check import _visible
from andon.scenarios.qa.table import build_table
from andon.workspace import Workspace

AV2_LOG = Path("perception") / "av2_sensor" / "adcf7d18-0510-35b0-a2fa-b4cea13a6d76"
OTHERS = [("kitti", Path("perception") / "kitti_000008"), ("nuscenes", Path("perception") / "nuscenes_mini_sample"),
          ("eth-ucy", Path("prediction") / "eth_ucy"), ("av2-forecasting", Path("prediction") / "av2_motion_forecasting"),
          ("commonroad", Path("scenarios") / "commonroad_ngsim")]

pytestmark = pytest.mark.realdata


def test_the_av2_log_scores_one_through_a_real_catalog(shared_data: Path, workspace: Workspace) -> None:
    (imported,) = importer("av2").read(shared_data / AV2_LOG)
    with Catalog(workspace) as catalog:
        log_id, _ = catalog.add_log(imported, Provenance("import", "av2", "1"), "av2")
        assert score_catalog(catalog, "source:av2", progress=False) == 1
        (scenario,) = catalog.search(f"log:{log_id}")
    assert scenario.qa_score == 1.0
    details = scenario.qa_details
    assert details["n_boxes"] == 12078
    assert {name: details[name]["count"] for name in CHECK_NAMES} == dict.fromkeys(CHECK_NAMES, 0)


def test_the_av2_sweeps_sparse_boxes_are_far_or_occluded_and_not_flagged(shared_data: Path) -> None:
    (log,) = importer("av2").read(shared_data / AV2_LOG)
    (index,) = [i for i, f in enumerate(log.frames) if f.points is not None]
    frame = log.frames[index]
    counts = count_points_in_boxes(frame.points, frame.boxes)
    ranges = np.hypot(frame.boxes[:, 0], frame.boxes[:, 1])
    sparse = counts < 5
    assert sparse.sum() >= 10 and np.all(ranges[sparse] > QAConfig().near_range_m)  # the sparse ones are far
    table = build_table(log)
    visible = _visible(frame.points[:, :3], frame.boxes[sparse], table.ground_z_m, QAConfig())
    assert 0 < visible.sum() < sparse.sum()  # most far, sparse boxes stand in some other object's shadow
    assert len(run_checks(log).result("empty_box")) == 0


@pytest.mark.parametrize(("fmt", "path"), OTHERS, ids=[fmt for fmt, _ in OTHERS])
def test_every_importers_logs_go_through_qa(shared_data: Path, fmt: str, path: Path) -> None:
    for log in importer(fmt).read(shared_data / path):
        window = ("whole", log.frames[0].timestamp_ns, log.frames[-1].timestamp_ns)
        score, details = score_log(log, [window])["whole"]
        assert 0.0 <= score <= 1.0
        assert details["n_boxes"] == sum(len(f.classes) for f in log.frames)
        # Curated labels: nothing a check is sure about (weight 1) fires on any of these samples.
        assert all(details[name]["count"] == 0 for name in CHECK_NAMES), (log.name, details)
