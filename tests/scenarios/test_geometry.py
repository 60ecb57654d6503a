"""Point-in-box geometry: hand-made cases, empty inputs, bad shapes, and a dense brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from andon.errors import BadInput
from andon.scenarios.geometry import box_corners_bev, count_points_in_boxes, points_in_boxes


def dense_inside(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(M, N) inside mask by testing every pair; the same arithmetic as the library, no search."""
    p = np.asarray(points, dtype=np.float64)[:, None, :3]
    b = np.asarray(boxes, dtype=np.float64)[None]
    dx, dy = p[..., 0] - b[..., 0], p[..., 1] - b[..., 1]
    cos, sin = np.cos(b[..., 6]), np.sin(b[..., 6])
    return ((np.abs(p[..., 2] - b[..., 2]) <= 0.5 * b[..., 5])
            & (np.abs(cos * dx + sin * dy) <= 0.5 * b[..., 3])
            & (np.abs(cos * dy - sin * dx) <= 0.5 * b[..., 4]))


def random_scene(seed: int, n_points: int = 5_000, n_boxes: int = 40, spread_m: float = 30.0
                 ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    points = rng.uniform([-spread_m, -spread_m, -2.0], [spread_m, spread_m, 3.0], size=(n_points, 3))
    boxes = np.column_stack([
        rng.uniform(-spread_m, spread_m, (n_boxes, 2)), rng.uniform(-1.0, 1.0, n_boxes),
        rng.uniform(0.3, 12.0, (n_boxes, 3)), rng.uniform(-np.pi, np.pi, n_boxes)])
    return points.astype(np.float32), boxes


def test_rotated_box_uses_its_own_axes() -> None:
    box = np.array([[10.0, 5.0, 1.0, 4.0, 2.0, 2.0, np.pi / 2]])  # length along world +y
    points = np.array([[10.0, 6.9, 1.0],   # 1.9 m along the length: inside
                       [11.5, 5.0, 1.0],   # 1.5 m across a 2 m wide box: outside
                       [10.9, 5.0, 1.0],   # 0.9 m across: inside
                       [10.0, 7.1, 1.0],   # past the front: outside
                       [10.0, 5.0, 2.1]])  # above the top: outside
    point_idx, box_idx = points_in_boxes(points, box)
    assert sorted(point_idx.tolist()) == [0, 2] and set(box_idx.tolist()) == {0}
    assert count_points_in_boxes(points, box).tolist() == [2]


def test_points_on_faces_edges_and_corners_are_inside() -> None:
    box = np.array([[0.0, 0.0, 0.0, 2.0, 4.0, 6.0, 0.0]])
    on_boundary = np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, -2.0, 0.0],
                            [0.0, 0.0, 3.0], [0.0, 0.0, -3.0], [1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]])
    just_out = on_boundary * (1 + 1e-9)
    assert count_points_in_boxes(on_boundary, box).tolist() == [8]
    assert count_points_in_boxes(just_out, box).tolist() == [0]


def test_yaw_pi_and_minus_pi_agree_and_heading_is_symmetric() -> None:
    points, _ = random_scene(3, n_points=2_000)
    base = np.array([[1.0, 2.0, 0.5, 9.0, 3.0, 4.0, 0.3]])
    turned = base.copy()
    turned[0, 6] += np.pi  # a box is symmetric under a half turn
    assert count_points_in_boxes(points, base)[0] > 0
    assert count_points_in_boxes(points, base) == count_points_in_boxes(points, turned)
    flip_a, flip_b = base.copy(), base.copy()
    flip_a[0, 6], flip_b[0, 6] = np.pi, -np.pi
    assert count_points_in_boxes(points, flip_a) == count_points_in_boxes(points, flip_b)


def test_empty_inputs() -> None:
    points, boxes = random_scene(0, n_points=100, n_boxes=3)
    for p, b in ((points[:0], boxes), (points, boxes[:0]), (points[:0], boxes[:0])):
        point_idx, box_idx = points_in_boxes(p, b)
        assert point_idx.shape == box_idx.shape == (0,) and point_idx.dtype == np.int64
        counts = count_points_in_boxes(p, b)
        assert counts.shape == (len(b),) and counts.dtype == np.int64 and not counts.any()
    assert box_corners_bev(boxes[:0]).shape == (0, 4, 2)


def test_no_point_near_any_box() -> None:
    points = np.array([[100.0, 100.0, 0.0], [101.0, 99.0, 0.0]])
    boxes = np.array([[0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0], [100.0, -50.0, 0.0, 2.0, 2.0, 2.0, 0.0]])
    assert count_points_in_boxes(points, boxes).tolist() == [0, 0]


def test_extra_point_columns_are_ignored() -> None:
    points, boxes = random_scene(1)
    with_intensity = np.column_stack([points, np.full(len(points), 7.0, dtype=np.float32)])
    np.testing.assert_array_equal(count_points_in_boxes(with_intensity, boxes), count_points_in_boxes(points, boxes))


@pytest.mark.parametrize(("points", "boxes", "named"), [
    (np.zeros((5, 2)), np.zeros((1, 7)), "points"),
    (np.zeros(5), np.zeros((1, 7)), "points"),
    (np.zeros((5, 3)), np.zeros((1, 6)), "boxes"),
    (np.zeros((5, 3)), np.zeros(7), "boxes"),
    (np.full((5, 3), np.nan), np.ones((1, 7)), "points"),
    (np.zeros((5, 3)), np.array([[0, 0, 0, np.nan, 1, 1, 0]]), "boxes"),
])
def test_bad_shapes_and_values_are_refused(points: np.ndarray, boxes: np.ndarray, named: str) -> None:
    with pytest.raises(BadInput, match=named):
        points_in_boxes(points, boxes)


@pytest.mark.parametrize("seed", range(6))
def test_matches_dense_reference_on_random_scenes(seed: int) -> None:
    points, boxes = random_scene(seed)
    point_idx, box_idx = points_in_boxes(points, boxes)
    mask = np.zeros((len(points), len(boxes)), dtype=bool)
    mask[point_idx, box_idx] = True
    assert len(point_idx) == int(mask.sum())  # no pair reported twice
    np.testing.assert_array_equal(mask, dense_inside(points, boxes))
    assert mask.sum() > 100  # the scenes are not trivially empty


def test_matches_dense_reference_with_far_outliers_and_tiny_boxes() -> None:
    # A few points a hundred km out stretch the x range: the strip count stays bounded and exact.
    points, boxes = random_scene(7, n_points=3_000, n_boxes=30, spread_m=5.0)
    points = np.concatenate([points, np.array([[1e5, 0, 0], [-1e5, 3, 0], [0, 1e5, 0]], dtype=np.float32)])
    boxes[:, 3:6] = np.random.default_rng(8).uniform(0.05, 0.5, (len(boxes), 3))
    np.testing.assert_array_equal(count_points_in_boxes(points, boxes), dense_inside(points, boxes).sum(axis=0))


coordinates = st.floats(-20.0, 20.0, allow_nan=False, width=32)


@settings(max_examples=200, deadline=None)
@given(points=arrays(np.float32, st.tuples(st.integers(0, 60), st.just(3)), elements=coordinates),
       centres=arrays(np.float64, st.tuples(st.integers(0, 8), st.just(3)), elements=coordinates),
       data=st.data())
def test_matches_dense_reference_on_generated_cases(points: np.ndarray, centres: np.ndarray,
                                                    data: st.DataObject) -> None:
    n = len(centres)
    sizes = data.draw(arrays(np.float64, (n, 3), elements=st.floats(0.01, 15.0)))
    yaws = data.draw(arrays(np.float64, (n, 1), elements=st.floats(-np.pi, np.pi)))
    # Put some points exactly on box centres and faces, where boundary handling matters.
    if n and len(points):
        k = min(n, len(points))
        points[:k] = centres[:k].astype(np.float32)
        points[:k, 2] += (0.5 * sizes[:k, 2]).astype(np.float32)
    boxes = np.column_stack([centres, sizes, yaws])
    np.testing.assert_array_equal(count_points_in_boxes(points, boxes), dense_inside(points, boxes).sum(axis=0))


def test_box_corners_bev() -> None:
    boxes = np.array([[1.0, 2.0, 0.0, 4.0, 2.0, 1.5, 0.0], [0.0, 0.0, 0.0, 4.0, 2.0, 1.5, np.pi / 2]])
    corners = box_corners_bev(boxes)
    assert corners.shape == (2, 4, 2)
    np.testing.assert_allclose(corners[0], [[3, 3], [-1, 3], [-1, 1], [3, 1]])
    np.testing.assert_allclose(corners[1], [[-1, 2], [-1, -2], [1, -2], [1, 2]], atol=1e-12)
    # Counter-clockwise: positive shoelace area equal to l * w.
    x, y = corners[..., 0], corners[..., 1]
    area = 0.5 * np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1)
    np.testing.assert_allclose(area, [8.0, 8.0])
    with pytest.raises(BadInput, match="boxes"):
        box_corners_bev(np.zeros((2, 5)))


def test_corners_pulled_inwards_are_inside() -> None:
    _, boxes = random_scene(5, n_boxes=25)
    corners = box_corners_bev(boxes)
    pulled = boxes[:, None, :2] + 0.999 * (corners - boxes[:, None, :2])
    points = np.column_stack([pulled.reshape(-1, 2), np.repeat(boxes[:, 2], 4)])
    point_idx, box_idx = points_in_boxes(points, boxes)
    own = set(zip(np.arange(len(points)).tolist(), np.repeat(np.arange(len(boxes)), 4).tolist(), strict=True))
    assert own <= set(zip(point_idx.tolist(), box_idx.tolist(), strict=True))
