"""ETH/UCY leave-one-scene-out (8 -> 12 at 0.4 s): the predictor must beat constant velocity.

The fast test checks the pipeline and the baseline on one scene: constant velocity through the real
importer, dataset build and DataModule matches the published constant-velocity figures for HOTEL
(Schöller et al. 2020: ADE 0.32 m, FDE 0.61 m). The slow test trains the predictor once per held-out
scene (about ten CPU minutes on a shared two-core machine) and asserts it beats constant velocity on
the scenes' average ADE and FDE of its most probable mode; the per-scene table is printed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from andon.datasets.build import build_dataset
from andon.datasets.datamodules import PredictionDataModule
from andon.errors import BadInput
from andon.models import eth_ucy_benchmark as benchmark
from andon.workspace import Workspace

pytestmark = pytest.mark.realdata


def eth_ucy(shared_data: Path) -> Path:
    folder = shared_data / "prediction" / "eth_ucy"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent: the ETH/UCY sample is needed")
    return folder


def test_constant_velocity_through_the_pipeline_matches_the_literature(workspace: Workspace,
                                                                       shared_data: Path) -> None:
    log_ids = benchmark.import_files(workspace, eth_ucy(shared_data))
    assert set(log_ids) == {"biwi_eth", "biwi_hotel", "students001", "students003", "crowds_zara01",
                            "uni_examples", "crowds_zara03"}
    spec = benchmark.fold_spec("HOTEL", benchmark.scene_scenarios(workspace, log_ids, "HOTEL"))
    document = build_dataset(workspace, spec, progress=False)
    assert document["status"] == "accepted" and document["samples"]["test"] > 1000
    datamodule = PredictionDataModule(workspace, document["dataset_id"], batch_size=1024, num_workers=0)
    datamodule.setup("test")
    test = benchmark.InMemorySplit(datamodule, "test")
    assert len(test) == document["samples"]["test"]
    cv = benchmark.evaluate_split(test, None)["cv"]
    assert cv["ADE"] == pytest.approx(0.32, abs=0.02) and cv["FDE"] == pytest.approx(0.61, abs=0.03)
    assert cv["minADE_k"] == cv["ADE"]
    with pytest.raises(BadInput, match="ZARA2"):
        benchmark.leave_one_scene_out(workspace, eth_ucy(shared_data), scenes=["ZARA2"])


@pytest.mark.slow
def test_the_predictor_beats_constant_velocity_leaving_one_scene_out(workspace: Workspace, shared_data: Path) -> None:
    rows = benchmark.leave_one_scene_out(workspace, eth_ucy(shared_data), seed=0)
    average = rows[-1]
    assert [r["scene"] for r in rows] == ["ETH", "HOTEL", "UNIV", "ZARA1", "average"]
    assert average["predictor_ADE"] < average["cv_ADE"] and average["predictor_FDE"] < average["cv_FDE"]
    # The best of six modes is far better than one straight line.
    assert average["predictor_minADE_k"] < 0.75 * average["cv_ADE"]
