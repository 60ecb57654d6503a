"""Map geometry: distances to polylines and polygon containment, vectorised."""

from __future__ import annotations

import numpy as np

from andon.scenarios.miners.mapgeom import distance_to_segments, polygon_containing, polyline_segments


def test_distance_to_the_nearest_segment_of_any_polyline() -> None:
    starts, ends, owner = polyline_segments([np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]),
                                             np.array([[20.0, 0.0], [30.0, 0.0]]), np.zeros((1, 2))])
    assert owner.tolist() == [0, 0, 1]
    points = np.array([[5.0, 2.0], [12.0, 5.0], [-3.0, -4.0], [25.0, -1.0], [100.0, 100.0]])
    distance, nearest = distance_to_segments(points, starts, ends, max_distance_m=20.0)
    assert np.allclose(distance[:4], [2.0, 2.0, 5.0, 1.0]) and nearest[:4].tolist() == [0, 1, 0, 2]
    assert distance[4] == np.inf or distance[4] > 20.0
    beside, which = distance_to_segments(points, starts, ends, beside_only=True)
    assert np.allclose(beside[:2], [2.0, 2.0]) and beside[3] == 1.0  # perpendicular feet on segments
    assert beside[2] == np.inf and which[2] == -1  # (-3, -4) lies before the first polyline's start
    # Brute force agrees, in chunks too.
    rng = np.random.default_rng(0)
    many = rng.uniform(-10, 40, size=(500, 2))
    d, _ = distance_to_segments(many, starts, ends)
    brute = np.min([np.hypot(*(many - np.array([x, y])).T) for x, y in np.linspace(starts, ends, 401).reshape(-1, 2)],
                   axis=0)
    assert np.allclose(d, brute, atol=0.02)


def test_empty_inputs() -> None:
    starts, ends, _ = polyline_segments([])
    distance, nearest = distance_to_segments(np.zeros((3, 2)), starts, ends)
    assert np.all(np.isinf(distance)) and np.all(nearest == -1)
    assert polygon_containing(np.zeros((0, 2)), [np.eye(3)[:, :2]]).tolist() == []


def test_points_in_polygons() -> None:
    square = np.array([[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 4.0]])
    triangle = np.array([[10.0, 0.0], [14.0, 0.0], [10.0, 4.0]])
    points = np.array([[1.0, 1.0], [11.0, 1.0], [13.5, 3.5], [5.0, 5.0]])
    assert polygon_containing(points, [square, triangle]).tolist() == [0, 1, -1, -1]


def test_crossing_test_agrees_with_matplotlib_on_non_convex_polygons() -> None:
    from matplotlib.path import Path

    rng = np.random.default_rng(3)
    polygons = []
    for k in range(6):  # star-shaped, non-convex, some overlapping
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        radii = rng.uniform(2.0, 8.0, 9)
        polygons.append(np.column_stack([np.cos(angles), np.sin(angles)]) * radii[:, None] + [k * 6.0, 0.0])
    points = rng.uniform([-10.0, -10.0], [40.0, 10.0], size=(3000, 2))
    reference = np.full(len(points), -1)
    for k in reversed(range(len(polygons))):  # the first containing polygon wins
        reference[Path(polygons[k]).contains_points(points)] = k
    found = polygon_containing(points, polygons)
    assert np.mean(found == reference) > 0.999  # only points within rounding of an edge may differ
