"""PillarDetector: target encoding <-> decoding round trip, losses, suppression, scatter, a learning step."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from andon.errors import BadInput
from andon.models.detector import PillarDetector, detection_arrays, evaluate_frames
from andon.models.detector_codec import (
    N_REGRESSION,
    HeadGeometry,
    decode,
    encode_targets,
    focal_loss,
    gaussian_radius,
    regression_loss,
)

SAMPLING = {"point_cloud_range_m": [-25.6, -25.6, -3.0, 25.6, 25.6, 3.0], "voxel_size_m": [0.4, 0.4, 6.0]}
TINY = {"pfn_channels": 8, "backbone_channels": [8, 8], "backbone_layers": [0, 1], "backbone_strides": [2, 2],
        "upsample_channels": 8, "out_stride": 2, "head_channels": 8}
# Two frames: a car, a pedestrian and a cyclist with yaw near -pi; a car on its own; padding rows.
BOXES = torch.tensor([[[10.13, 5.77, 0.8, 4.5, 1.9, 1.6, 0.3], [-20.2, 3.1, 0.9, 0.6, 0.6, 1.7, -3.0],
                       [12.0, -14.0, 1.0, 1.8, 0.6, 1.7, 3.1]],
                      [[1.0, 1.0, 0.5, 4.0, 2.0, 1.5, -1.2], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                       [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]]], dtype=torch.float64)
LABELS = torch.tensor([[0, 1, 2], [0, -1, -1]])


def geometry() -> HeadGeometry:
    return HeadGeometry.from_sampling(SAMPLING, out_stride=2, pad_to=4)


def perfect_heads(targets, geom: HeadGeometry) -> tuple[torch.Tensor, torch.Tensor]:
    """Head outputs that say exactly what the targets say."""
    logits = torch.logit(targets.heatmap.clamp(1e-6, 1 - 1e-6))
    regression = torch.zeros(targets.heatmap.shape[0], N_REGRESSION, geom.ny, geom.nx, dtype=torch.float64)
    regression.permute(0, 2, 3, 1)[targets.batch, targets.cell_y, targets.cell_x] = torch.nan_to_num(targets.regression)
    return logits, regression


def pillar_batch(n_frames: int = 2, pillars_per_frame: int = 50, seed: int = 0) -> dict[str, torch.Tensor]:
    """A loader-shaped batch of random pillars at unique cells, with BOXES and LABELS."""
    generator = torch.Generator().manual_seed(seed)
    coords = []
    for frame in range(n_frames):
        cells = torch.randperm(128 * 128, generator=generator)[:pillars_per_frame]
        coords.append(torch.stack([torch.full_like(cells, frame), cells // 128, cells % 128], dim=1))
    count = n_frames * pillars_per_frame
    return {"pillars": torch.randn(count, 32, 10, generator=generator),
            "pillar_num_points": torch.randint(1, 33, (count,), generator=generator),
            "pillar_coords": torch.cat(coords), "boxes": BOXES[:n_frames].float(), "labels": LABELS[:n_frames],
            "sample_index": torch.arange(n_frames)}


def test_encoding_then_decoding_perfect_heads_gives_the_boxes_back() -> None:
    geom = geometry()
    targets = encode_targets(BOXES, LABELS, geom, n_classes=3, overlap=0.1, min_radius=2, max_radius=8)
    logits, regression = perfect_heads(targets, geom)
    detections = decode(logits, regression, geom, max_objects=20, score_threshold=0.5, nms_radius_m=[2.0, 0.5, 1.0])
    for frame in range(2):
        valid = LABELS[frame] >= 0
        kept = detections.keep[frame]
        got = detections.boxes[frame][kept]
        order = torch.argsort(got[:, 0])
        want = BOXES[frame][valid]
        want_order = torch.argsort(want[:, 0])
        assert kept.sum() == valid.sum()
        torch.testing.assert_close(got[order], want[want_order], atol=1e-6, rtol=0)
        assert detections.labels[frame][kept][order].tolist() == LABELS[frame][valid][want_order].tolist()
        assert torch.allclose(detections.scores[frame][kept], torch.ones(int(valid.sum()), dtype=torch.float64))


def test_heatmap_peaks_are_one_at_centres_and_gaussian_around() -> None:
    geom = geometry()
    targets = encode_targets(BOXES, LABELS, geom, n_classes=3, overlap=0.1, min_radius=2, max_radius=8)
    heat = targets.heatmap
    assert int(heat.eq(1.0).sum()) == 4
    assert heat[targets.batch, LABELS[LABELS >= 0], targets.cell_y, targets.cell_x].eq(1.0).all()
    # The pedestrian's Gaussian spans at least min_radius cells and decays away from the centre.
    y, x = int(targets.cell_y[1]), int(targets.cell_x[1])
    row = heat[0, 1, y, x - 3:x + 4]
    assert row[3] == 1.0 and 0 < row[1] < row[2] < 1.0 and row[0] == 0.0 and row[6] == 0.0
    radius = gaussian_radius(torch.tensor([4.5 / 0.8]), torch.tensor([1.9 / 0.8]), 0.1)
    assert float(radius) > 0 and math.isfinite(float(radius))


def test_losses_reward_perfect_heads_and_ignore_unknown_velocity() -> None:
    geom = geometry()
    velocities = torch.full((2, 3, 2), float("nan"), dtype=torch.float64)
    velocities[0, 0] = torch.tensor([3.0, -1.0])
    targets = encode_targets(BOXES, LABELS, geom, 3, 0.1, 2, 8, velocities=velocities)
    logits, regression = perfect_heads(targets, geom)
    prior = torch.full_like(logits, math.log(0.1 / 0.9))
    assert focal_loss(logits, targets.heatmap) < 0.01 * focal_loss(prior, targets.heatmap)
    regression.requires_grad_(True)
    loss = regression_loss(regression, targets, velocity_weight=0.2)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-9)
    loss.backward()
    assert torch.isfinite(regression.grad).all()
    # Only the one known velocity contributes: off by 1 m/s in vx costs 0.2 / 4 boxes.
    shifted = regression.detach().clone()
    shifted.permute(0, 2, 3, 1)[targets.batch, targets.cell_y, targets.cell_x, 8] += 1.0
    assert float(regression_loss(shifted, targets, velocity_weight=0.2)) == pytest.approx(0.2 / 4)


def test_suppression_is_per_class_and_by_bev_distance() -> None:
    geom = geometry()
    boxes = torch.tensor([[[0.0, 0.0, 0.5, 4.5, 1.9, 1.6, 0.0], [1.6, 0.0, 0.5, 4.5, 1.9, 1.6, 0.0],
                           [0.0, 0.0, 0.9, 0.6, 0.6, 1.7, 0.0], [8.0, 8.0, 0.5, 4.5, 1.9, 1.6, 0.0]]],
                         dtype=torch.float64)
    labels = torch.tensor([[0, 0, 1, 0]])
    targets = encode_targets(boxes, labels, geom, 3, 0.1, 2, 8)
    logits, regression = perfect_heads(targets, geom)
    logits[0, 0, targets.cell_y[1], targets.cell_x[1]] = 1.0  # the second car scores lower (0.73)
    detections = decode(logits, regression, geom, 20, 0.5, nms_radius_m=[2.0, 0.5, 1.0])
    kept = detections.boxes[0][detections.keep[0]]
    # The car 1.6 m from a better car is suppressed; the pedestrian at the same spot is another class.
    assert sorted(map(tuple, kept[:, :2].tolist())) == [(0.0, 0.0), (0.0, 0.0), (8.0, 8.0)]
    wider = decode(logits, regression, geom, 20, 0.5, nms_radius_m=[1.0, 0.5, 1.0])
    assert int(wider.keep.sum()) == 4


def test_pillars_are_scattered_to_their_cells() -> None:
    model = PillarDetector(SAMPLING, **TINY)
    batch = pillar_batch()
    features = torch.arange(len(batch["pillar_coords"]), dtype=torch.float32)[:, None].repeat(1, 3) + 1
    canvas = model.scatter(features, batch["pillar_coords"], batch_size=2)
    assert canvas.shape == (2, 3, 128, 128)
    b, iy, ix = batch["pillar_coords"].T
    torch.testing.assert_close(canvas[b, :, iy, ix], features)
    assert int((canvas[:, 0] > 0).sum()) == len(features)


def test_forward_shapes_decoding_and_empty_frames() -> None:
    model = PillarDetector(SAMPLING, **TINY).eval()
    outputs = model(pillar_batch())
    assert outputs["heatmap"].shape == (2, 3, 64, 64) and outputs["regression"].shape == (2, N_REGRESSION, 64, 64)
    detections = model.detect(pillar_batch())
    assert detections.boxes.shape == (2, 100, 7) and torch.isfinite(detections.boxes).all()
    assert (detections.boxes[..., 3:6] > 0).all()
    assert ((detections.boxes[..., 6] > -math.pi) & (detections.boxes[..., 6] <= math.pi)).all()
    empty = {**pillar_batch(), "pillars": torch.zeros(0, 32, 10), "pillar_num_points": torch.zeros(0, dtype=torch.long),
             "pillar_coords": torch.zeros(0, 3, dtype=torch.long)}
    model.train()
    assert torch.isfinite(model.losses(model(empty), empty)["loss"])


def test_a_few_steps_on_one_batch_learn_it() -> None:
    torch.manual_seed(0)
    model = PillarDetector(SAMPLING, **TINY, optimizer={"name": "adam", "lr": 1e-2, "scheduler": "none"})
    batch = pillar_batch()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = model.losses(model(batch), batch)["loss"]
        first = float(loss) if first is None else first
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert float(loss) < 0.5 * first


def test_example_input_is_a_small_batched_input_the_model_runs() -> None:
    batch = pillar_batch(pillars_per_frame=100)
    example = PillarDetector.example_input(batch)
    assert set(example) == {"pillars", "pillar_num_points", "pillar_coords"}
    assert example["pillars"].shape == (64, 32, 10) and example["pillar_coords"].shape == (64, 3)
    assert all(isinstance(v, np.ndarray) for v in example.values())
    model = PillarDetector(SAMPLING, **TINY).eval()
    outputs = model({k: torch.from_numpy(v) for k, v in example.items()})
    assert outputs["heatmap"].shape[0] == 1  # the cut keeps the first frame's pillars only


@pytest.mark.parametrize(("change", "named"), [
    ({"backbone_layers": [1]}, "one length"),
    ({"out_stride": 3}, "out_stride"),
    ({"nms_radius_m": [1.0, 1.0]}, "nms_radius_m"),
    ({"pfn_channels": 0}, "must be >= 1"),
])
def test_bad_sizes_are_refused_naming_them(change, named) -> None:
    with pytest.raises(BadInput, match=named):
        PillarDetector(SAMPLING, **{**TINY, **change})


def test_metrics_of_perfect_detections_and_of_frames_without_boxes() -> None:
    geom = geometry()
    targets = encode_targets(BOXES, LABELS, geom, 3, 0.1, 2, 8)
    logits, regression = perfect_heads(targets, geom)
    batch = {"boxes": BOXES.float(), "labels": LABELS, "sample_index": torch.tensor([7, 9])}
    detections = decode(logits.float(), regression.float(), geom, 20, 0.5, [2.0, 0.5, 1.0])
    gt, pred = detection_arrays(batch, detections)
    result = evaluate_frames([gt], [pred])
    assert result["mAP"] == pytest.approx(1.0)
    assert set(result["ap_mean"]) == {"vehicle", "pedestrian", "cyclist"}
    no_boxes = {**batch, "labels": torch.full_like(LABELS, -1)}
    gt, pred = detection_arrays(no_boxes, detections)
    assert evaluate_frames([gt], [pred]) is None
