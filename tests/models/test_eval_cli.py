"""`andon eval detection|prediction` as a user runs it: JSON purity, tables, exit codes, clear errors.

Most tests run andon's real `main` in-process (its exit codes and error printing); one runs the
console script itself.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import andon.cli
from andon.models.detection_metrics import DetectionSet, evaluate_detection
from tests.models.test_detection_metrics import random_docs

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def andon_main() -> Any:
    return andon.cli.main


def _write(path: Path, doc: Any) -> str:
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


@pytest.fixture
def detection_files(tmp_path: Path) -> tuple[str, str]:
    gt, pred = random_docs(seed=4, n_frames=10)
    return _write(tmp_path / "gt.json", gt), _write(tmp_path / "pred.json", pred)


def test_detection_json_is_one_document_matching_the_library(andon_main, detection_files, capsys) -> None:
    gt, pred = detection_files
    assert andon_main(["eval", "detection", "--gt", gt, "--pred", pred, "--json"]) == 0
    out = capsys.readouterr()
    doc = json.loads(out.out)
    expected = evaluate_detection(DetectionSet.from_file(gt, predictions=False),
                                  DetectionSet.from_file(pred, predictions=True))
    assert doc == json.loads(json.dumps(expected))
    assert isinstance(doc["mAP"], float)
    assert set(doc["ap"]["vehicle"]) == {"0.5", "1.0", "2.0", "4.0"}


def test_detection_table_for_people(andon_main, detection_files, capsys) -> None:
    gt, pred = detection_files
    assert andon_main(["eval", "detection", "--gt", gt, "--pred", pred, "--classes", "vehicle", "cyclist"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:4] == ["class", "n_gt", "n_pred", "AP@0.5m"]
    assert "vehicle" in out and "cyclist" in out and "pedestrian" not in out and "mAP " in out


def test_prediction_json_and_table(andon_main, tmp_path, capsys) -> None:
    case = json.loads((GOLDEN / "prediction_hand_case.json").read_text())
    gt, pred = _write(tmp_path / "gt.json", case["gt"]), _write(tmp_path / "pred.json", case["pred"])
    assert andon_main(["eval", "prediction", "--gt", gt, "--pred", pred, "--json", "--step-s", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("ADE", "FDE", "minADE_k", "minFDE_k", "miss_rate", "k", "n_agents"):
        assert doc[key] == pytest.approx(case["expected"][key]), key
    assert [h["steps"] for h in doc["horizons"]] == [1, 2, 3]
    assert andon_main(["eval", "prediction", "--gt", gt, "--pred", pred]) == 0
    captured = capsys.readouterr()
    assert "minFDE_k" in captured.out and "class vehicle" in captured.out
    assert "ignored 1 predicted agent" in captured.err


GOOD_BOX = [0, 0, 0, 4, 2, 1.5, 0]


def _frames(**frame: Any) -> dict:
    return {"frames": [{"frame_id": "f0", "boxes": [GOOD_BOX], "classes": ["vehicle"], "scores": [0.5], **frame}]}


# Each bad prediction file and the words the message must hold (the file, the frame and the problem).
BAD_DETECTIONS = {
    "not_json": ("{oops", ["not JSON", "line 1"]),
    "not_an_object": ([1, 2], ["expected a JSON object", "'frames'"]),
    "six_numbers": (_frames(boxes=[[0, 0, 0, 4, 2, 1.5]]), ["frame 'f0'", "boxes", "shape (1, 6)"]),
    "nan": ('{"frames": [{"frame_id": "f0", "boxes": [[NaN, 0, 0, 4, 2, 1.5, 0]], "classes": ["vehicle"], '
            '"scores": [0.5]}]}', ["frame 'f0'", "NaN or infinity"]),
    "infinite_score": ('{"frames": [{"frame_id": "f0", "boxes": [[0, 0, 0, 4, 2, 1.5, 0]], "classes": ["vehicle"], '
                       '"scores": [Infinity]}]}', ["frame 'f0'", "scores", "NaN or infinity"]),
    "unknown_class": (_frames(classes=["truck"]), ["frame 'f0', box #0", "unknown class 'truck'", "vehicle"]),
    "no_scores": ({"frames": [{"frame_id": "f0", "boxes": [GOOD_BOX], "classes": ["vehicle"]}]},
                  ["frame 'f0'", "no scores"]),
    "score_count": (_frames(scores=[0.5, 0.6]), ["frame 'f0'", "1 boxes but 2 scores"]),
    "class_count": (_frames(classes=[]), ["frame 'f0'", "1 boxes but 0 classes"]),
    "duplicate_frame": ({"frames": _frames()["frames"] * 2}, ["duplicate frame_id 'f0'"]),
    "no_frame_id": ({"frames": [{"boxes": []}]}, ["frame #0 has no frame_id"]),
    "zero_size": (_frames(boxes=[[0, 0, 0, 0, 2, 1.5, 0]]), ["frame 'f0'", "non-positive size"]),
    "text_in_box": (_frames(boxes=[[0, 0, 0, "big", 2, 1.5, 0]]), ["frame 'f0'", "boxes must be"]),
    "velocity_count": (_frames(velocities=[]), ["frame 'f0'", "1 boxes but 0 velocities"]),
}


@pytest.mark.parametrize("name", sorted(BAD_DETECTIONS))
def test_bad_detection_files_exit_2_naming_file_frame_and_problem(andon_main, tmp_path, capsys, name) -> None:
    doc, words = BAD_DETECTIONS[name]
    gt = _write(tmp_path / "gt.json", {"frames": [{"frame_id": "f0", "boxes": [GOOD_BOX], "classes": ["vehicle"]}]})
    pred = _write(tmp_path / f"{name}.json", doc)
    assert andon_main(["eval", "detection", "--gt", gt, "--pred", pred, "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == ""  # nothing on stdout but the JSON document, and there is none
    assert pred in out.err
    for word in words:
        assert word in out.err, (word, out.err)


def test_missing_file_and_mismatched_frames(andon_main, tmp_path, capsys) -> None:
    gt = _write(tmp_path / "gt.json", {"frames": [{"frame_id": "f0", "boxes": [GOOD_BOX], "classes": ["vehicle"]},
                                                  {"frame_id": "f1", "boxes": [], "classes": []}]})
    assert andon_main(["eval", "detection", "--gt", gt, "--pred", str(tmp_path / "none.json")]) == 2
    assert "none.json: no such file" in capsys.readouterr().err
    pred = _write(tmp_path / "pred.json", _frames())
    assert andon_main(["eval", "detection", "--gt", gt, "--pred", pred]) == 2
    assert "no predictions for 1 ground-truth frame(s), e.g. 'f1'" in capsys.readouterr().err


BAD_PREDICTIONS = {
    "duplicate_agent": ({"agents": [{"agent_id": "a", "modes": [[[0, 0]]], "probs": [1]}] * 2},
                        ["duplicate agent_id 'a'"]),
    "ragged_modes": ({"agents": [{"agent_id": "a", "modes": [[[0, 0]], [[0, 0], [1, 1]]], "probs": [1, 1]}]},
                     ["agent 'a'", "modes must be"]),
    "prob_count": ({"agents": [{"agent_id": "a", "modes": [[[0, 0]]], "probs": [0.5, 0.5]}]},
                   ["agent 'a'", "1 modes but 2 probs"]),
    "three_numbers": ({"agents": [{"agent_id": "a", "modes": [[[0, 0, 0]]], "probs": [1]}]},
                      ["agent 'a'", "shape (1, 1, 3)"]),
    "nan": ('{"agents": [{"agent_id": "a", "modes": [[[NaN, 0]]], "probs": [1]}]}', ["agent 'a'", "NaN"]),
}


@pytest.mark.parametrize("name", sorted(BAD_PREDICTIONS))
def test_bad_prediction_files_exit_2(andon_main, tmp_path, capsys, name) -> None:
    doc, words = BAD_PREDICTIONS[name]
    gt = _write(tmp_path / "gt.json", {"agents": [{"agent_id": "a", "future": [[0, 0]]}]})
    pred = _write(tmp_path / f"{name}.json", doc)
    assert andon_main(["eval", "prediction", "--gt", gt, "--pred", pred, "--json"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and pred in out.err
    for word in words:
        assert word in out.err, (word, out.err)


def test_prediction_ground_truth_problems_name_the_agent(andon_main, tmp_path, capsys) -> None:
    pred = _write(tmp_path / "pred.json", {"agents": [{"agent_id": "a", "modes": [[[0, 0]]], "probs": [1]}]})
    gt = _write(tmp_path / "gt.json", {"agents": [{"agent_id": "a", "future": [[0, 0]]},
                                                  {"agent_id": "b", "future": [[0, 0]]}]})
    assert andon_main(["eval", "prediction", "--gt", gt, "--pred", pred]) == 2
    assert "no prediction for ground-truth agent 'b'" in capsys.readouterr().err
    gt = _write(tmp_path / "gt2.json", {"agents": [{"agent_id": "a", "future": []}]})
    assert andon_main(["eval", "prediction", "--gt", gt, "--pred", pred]) == 2
    assert "agent 'a': the future is empty" in capsys.readouterr().err
    gt = _write(tmp_path / "gt3.json", {"agents": [{"agent_id": "a", "future": [[0, 0]], "class": "bus"}]})
    assert andon_main(["eval", "prediction", "--gt", gt, "--pred", pred]) == 2
    assert "unknown class 'bus'" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["eval"],
    ["eval", "detection", "--gt", "g.json"],
    ["eval", "detection", "--gt", "g", "--pred", "p", "--classes", "truck"],
    ["eval", "prediction", "--gt", "g", "--pred", "p", "--step-s", "-1"],
    ["eval", "prediction", "--gt", "g", "--pred", "p", "--step-s", "nan"],
])
def test_usage_errors_exit_2(andon_main, argv, capsys) -> None:
    assert andon_main(argv) == 2
    assert capsys.readouterr().out == ""


def test_json_output_has_no_nan(andon_main, tmp_path, capsys) -> None:
    # Velocities only in the ground truth: the velocity error is null, never NaN (NaN is not JSON).
    gt = _write(tmp_path / "gt.json", {"frames": [{"frame_id": "f0", "boxes": [GOOD_BOX], "classes": ["vehicle"],
                                                   "velocities": [[1, 0]]}]})
    pred = _write(tmp_path / "pred.json", _frames())
    assert andon_main(["eval", "detection", "--gt", gt, "--pred", pred, "--json"]) == 0
    text = capsys.readouterr().out
    doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))
    assert doc["tp_errors"]["vehicle"]["vel_err_mps"] is None and not math.isnan(doc["mAP"])


def test_console_script_runs_eval(detection_files) -> None:
    gt, pred = detection_files
    out = subprocess.run([sys.executable, "-m", "andon", "eval", "detection", "--gt", gt, "--pred", pred, "--json"],
                         capture_output=True, text=True, env={**os.environ}, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 0.0 <= json.loads(out.stdout)["mAP"] <= 1.0 + 1e-9
    bad = subprocess.run([sys.executable, "-m", "andon", "eval", "detection", "--gt", gt, "--pred", gt],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no scores" in bad.stderr
