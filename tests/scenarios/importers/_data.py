"""Helpers of the trajectory-importer tests (ETH/UCY, AV2 forecasting, CommonRoad)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from andon.scenarios import Catalog, Provenance
from andon.scenarios.logstore import ImportedLog
from andon.workspace import Workspace

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def data_dir() -> Path:
    """../shared/data, or skip the test with the reason."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is absent: real-data importer tests need it (see its README)")
    return SHARED_DATA


def ego_to_world(xy: np.ndarray, pose: tuple[float, float, float, float]) -> np.ndarray:
    """Ego-frame (K, 2) positions back to the world frame of `pose` = (x, y, z, yaw)."""
    c, s = np.cos(pose[3]), np.sin(pose[3])
    return np.column_stack([c * xy[:, 0] - s * xy[:, 1] + pose[0], s * xy[:, 0] + c * xy[:, 1] + pose[1]])


def check_catalog_round_trip(workspace: Workspace, log: ImportedLog, name: str, version: str,
                             origin: str, frame_index: int) -> None:
    """Add `log` to a real catalog; check frames round-trip, tags search, and a second add is a no-op."""
    catalog = Catalog(workspace)
    provenance = Provenance("import", name, version)
    log_id, created = catalog.add_log(log, provenance, origin)
    assert created
    stored = catalog.log(log_id)
    assert stored.source == name and len(stored.frames) == len(log.frames)
    back, original = stored.frames[frame_index], log.frames[frame_index]
    assert back.timestamp_ns == original.timestamp_ns
    assert back.ego_pose == pytest.approx(original.ego_pose)
    np.testing.assert_allclose(back.boxes, original.boxes)
    np.testing.assert_allclose(back.velocities_mps, original.velocities_mps)
    assert back.classes == original.classes and back.track_ids == original.track_ids
    (whole,) = catalog.search(" ".join(f"tag:{tag}" for tag in sorted({name, *log.tags})))
    assert whole.log_id == log_id and whole.provenance == provenance
    assert whole.tags == {name, *log.tags}
    assert (whole.t_start_ns, whole.t_end_ns) == (log.frames[0].timestamp_ns, log.frames[-1].timestamp_ns)
    assert catalog.add_log(log, provenance, origin) == (log_id, False)
    catalog.close()
