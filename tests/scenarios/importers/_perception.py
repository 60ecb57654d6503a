"""Helpers of the perception-importer tests (AV2 sensor, KITTI, nuScenes)."""

from __future__ import annotations

import numpy as np

from andon.scenarios import Catalog, Provenance
from andon.scenarios.logstore import ImportedLog
from andon.workspace import Workspace


def check_round_trip(workspace: Workspace, log: ImportedLog, name: str, version: str, origin: str,
                     frame_index: int) -> None:
    """Add `log` to a real catalog; its frame's points and boxes come back, and a second add is a no-op."""
    with Catalog(workspace) as catalog:
        provenance = Provenance("import", name, version)
        log_id, created = catalog.add_log(log, provenance, origin)
        assert created
        stored = catalog.log(log_id)
        assert stored.source == name and stored.name == log.name and len(stored.frames) == len(log.frames)
        back, original = stored.frames[frame_index], log.frames[frame_index]
        assert back.timestamp_ns == original.timestamp_ns and back.ego_pose == original.ego_pose
        np.testing.assert_array_equal(back.boxes, original.boxes)
        assert back.classes == original.classes and back.track_ids == original.track_ids
        assert original.points is not None and back.points is not None
        np.testing.assert_array_equal(back.points, original.points)
        assert back.points.dtype == np.float32
        (whole,) = catalog.search(f"tag:{name}")
        assert whole.log_id == log_id and whole.provenance == provenance
        assert catalog.add_log(log, provenance, origin) == (log_id, False)
