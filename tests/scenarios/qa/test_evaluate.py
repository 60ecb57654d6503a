"""qa_auc on hand-made drives with recorded label errors; the rank-statistic AUC against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios.qa.evaluate import qa_auc, roc_auc
from andon.simulation.ground_truth import META_KEY, FleetGroundTruth, LabelError
from tests.scenarios.qa._scenes import DT_S, T0_NS, index_of, make_scene, shift_along_road


def _brute_auc(badness: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = badness[positive], badness[~positive]
    return float(np.mean((pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])))


def test_roc_auc_is_the_pairwise_win_rate_with_ties_counted_half() -> None:
    rng = np.random.default_rng(0)
    badness = rng.integers(0, 5, 200).astype(float)  # many ties
    positive = rng.random(200) < 0.3
    assert roc_auc(badness, positive) == pytest.approx(_brute_auc(badness, positive))
    assert roc_auc(np.array([0.1, 0.9]), np.array([False, True])) == 1.0
    assert roc_auc(np.array([0.5, 0.5]), np.array([False, True])) == 0.5
    assert np.isnan(roc_auc(np.array([0.5]), np.array([True])))


def _stamp(frame: int) -> int:
    return T0_NS + int(round(frame * DT_S * 1e9))


def corrupted_drive(seed: int = 0):
    """60 frames (6 s) with one error of each kind in windows 0, 2, 3 and 4 of 1 s; 1 and 5 stay clean."""
    scene = make_scene(n_frames=60)
    shift_along_road(scene, 5, "car", 0.0, 1.0)
    scene.labels[25, index_of(scene, "walker"), 3:6] *= 1.4
    scene.present[35, index_of(scene, "bike")] = False
    scene.classes[45, index_of(scene, "car")] = "cyclist"
    errors = [LabelError(5, _stamp(5), "car", "jitter"), LabelError(25, _stamp(25), "walker", "size"),
              LabelError(35, _stamp(35), "bike", "missing"), LabelError(45, _stamp(45), "car", "class_swap")]
    truth = FleetGroundTruth(seed=seed, label_errors=tuple(errors))
    return scene.log(seed=seed, meta={META_KEY: truth.to_dict()})


def test_corrupt_windows_rank_below_clean_ones_and_every_error_is_hit() -> None:
    result = qa_auc([corrupted_drive()], window_s=1.0)
    assert result["n_corrupt"] == 4 and result["n_clean"] == 2
    assert result["auc"] == 1.0
    assert result["per_check_hit_rate"] == {"missing": 1.0, "jitter": 1.0, "class_swap": 1.0, "size": 1.0}
    assert result["n_errors"] == {"missing": 1, "jitter": 1, "class_swap": 1, "size": 1}
    by_check = result["hit_rate_by_check"]
    assert by_check["jitter"]["jitter"] == 1.0 and by_check["size"]["dimension_change"] == 1.0
    assert by_check["missing"]["track_gap"] == 1.0 and by_check["class_swap"]["class_flip"] == 1.0
    assert result["scores_clean"]["min"] == 1.0 and result["scores_corrupt"]["max"] < 1.0


def test_errors_no_check_sees_tie_their_windows_with_the_clean_ones() -> None:
    """A second log records five errors but its labels are clean: its corrupt windows score 1."""
    log = corrupted_drive()
    truth = FleetGroundTruth.of(log.meta)
    unseen = LabelError(15, _stamp(15), "cone", "jitter")
    meta = {META_KEY: FleetGroundTruth(seed=0, label_errors=(*truth.label_errors, unseen)).to_dict()}
    result = qa_auc([make_scene(n_frames=60).log(meta=meta), log], window_s=1.0)
    assert result["n_corrupt"] == 5 + 4 and result["n_clean"] == 1 + 2
    assert result["per_check_hit_rate"]["jitter"] == pytest.approx(1 / 3)
    assert 0.5 < result["auc"] < 1.0


def test_qa_auc_refuses_logs_without_ground_truth_and_bad_windows() -> None:
    with pytest.raises(BadInput, match="no fleet ground truth"):
        qa_auc([make_scene().log()])
    with pytest.raises(BadInput, match="window_s"):
        qa_auc([corrupted_drive()], window_s=0.0)
