"""nuScenes detection metrics at fleet scale: 10,000 frames x 100 boxes, and the speed-up over loops.

The scene: per frame 100 ground-truth boxes of 3 classes spread over +-50 m and 100 predictions
(each box detected with ~1 m noise, 20 % replaced by random false positives), random scores. Each
benchmark records its time and the process's peak RSS (getrusage; monotonic over the session).
`make test` runs 1,000 frames; `make bench` also runs 10,000 frames (marked slow) and the
plain-loop reference of tests/models/test_detection_metrics.py on 500 frames (about 10 s, slow)
against the vectorised metrics on those frames, for the speed-up ratio.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from andon.models.detection_metrics import DetectionSet, evaluate_detection
from tests.models.test_detection_metrics import reference_evaluate

N_FRAMES, N_BOXES, N_CLASSES = 10_000, 100, 3
N_FRAMES_REFERENCE = 500
SPREAD_M = 50.0


def synthetic_scene(n_frames: int, n_boxes: int = N_BOXES, seed: int = 0) -> tuple[DetectionSet, DetectionSet]:
    rng = np.random.default_rng(seed)
    n = n_frames * n_boxes
    frame = np.repeat(np.arange(n_frames), n_boxes)
    frame_ids = [f"frame-{i:06d}" for i in range(n_frames)]
    sizes = rng.uniform([0.5, 0.5, 1.0], [5.0, 2.5, 2.0], (n, 3))
    boxes = np.column_stack([rng.uniform(-SPREAD_M, SPREAD_M, (n, 2)), rng.uniform(0.0, 1.0, n), sizes,
                             rng.uniform(-np.pi, np.pi, n)])
    classes = rng.integers(0, N_CLASSES, n)
    gt = DetectionSet.from_arrays(frame_ids, frame, boxes, classes, velocities_mps=rng.normal(0, 3, (n, 2)))
    detected = boxes.copy()
    detected[:, :2] += rng.normal(0.0, 1.0, (n, 2))
    false = rng.random(n) < 0.2
    detected[false, :2] = rng.uniform(-SPREAD_M, SPREAD_M, (int(false.sum()), 2))
    pred = DetectionSet.from_arrays(frame_ids, frame, detected, classes, scores=rng.random(n),
                                    velocities_mps=rng.normal(0, 3, (n, 2)))
    return gt, pred


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


@pytest.mark.parametrize("n_frames", [
    1_000,
    # ~2 s of CPU (plus ~0.5 s to build the scene), but several times that on a shared, loaded machine.
    pytest.param(N_FRAMES, marks=pytest.mark.slow),
])
def test_bench_detection_frames_x_100_boxes(benchmark: BenchmarkFixture, n_frames: int) -> None:
    gt, pred = synthetic_scene(n_frames)
    seconds: list[float] = []

    def timed() -> dict:
        start = time.perf_counter()
        result = evaluate_detection(gt, pred)
        seconds.append(time.perf_counter() - start)
        return result

    result = benchmark.pedantic(timed, rounds=1, iterations=1)
    benchmark.extra_info.update(frames=n_frames, gt_boxes=len(gt), pred_boxes=len(pred),
                                mAP=round(result["mAP"], 6), seconds=round(min(seconds), 3),
                                peak_rss_mb=_peak_rss_mb())
    assert 0.0 < result["mAP"] < 1.0 and set(result["ap"]) == {"vehicle", "pedestrian", "cyclist"}


@pytest.mark.slow  # the loop reference takes ~10 s on 500 frames
def test_bench_speedup_over_loop_reference(benchmark: BenchmarkFixture) -> None:
    gt, pred = synthetic_scene(N_FRAMES_REFERENCE, seed=1)
    gt_doc, pred_doc = gt.to_json(), pred.to_json()
    start = time.perf_counter()
    expected = reference_evaluate(gt_doc, pred_doc)
    reference_s = time.perf_counter() - start
    result = benchmark.pedantic(evaluate_detection, args=(gt, pred), rounds=3, iterations=1)
    vectorised_s = min(_timed(gt, pred) for _ in range(3))
    benchmark.extra_info.update(frames=N_FRAMES_REFERENCE, reference_s=round(reference_s, 3),
                                vectorised_s=round(vectorised_s, 4), speedup=round(reference_s / vectorised_s, 1),
                                peak_rss_mb=_peak_rss_mb())
    assert result["mAP"] == pytest.approx(expected["mAP"], abs=1e-6)


def _timed(gt: DetectionSet, pred: DetectionSet) -> float:
    start = time.perf_counter()
    evaluate_detection(gt, pred)
    return time.perf_counter() - start
