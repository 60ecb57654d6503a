"""The ray-cast lidar on hand-made scenes: hits, occlusion, the ground, range, frames and conditions."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios.geometry import box_corners_bev, count_points_in_boxes, points_in_boxes
from andon.simulation.fleet.config import FleetConfig
from andon.simulation.fleet.lidar import box_mesh, degradation, raycast_sweep

LIDAR = FleetConfig(lidar_beams=32, lidar_azimuth_steps=720)
CAR = (4.5, 1.9, 1.6)


def car(x: float, y: float, yaw: float = 0.0) -> list[float]:
    return [x, y, CAR[2] / 2, *CAR, yaw]


def sweep(scene=(), agents=(), pose=(0.0, 0.0, 0.0, 0.0), config=LIDAR, seed=0, **kw) -> np.ndarray:
    return raycast_sweep(np.asarray(scene, dtype=float).reshape(-1, 7), np.asarray(agents, dtype=float).reshape(-1, 7),
                         pose, config, np.random.default_rng(seed), **kw)


def test_box_mesh_has_the_box_corners():
    boxes = np.array([car(3.0, -2.0, 0.7), car(-10.0, 5.0, -2.0)])
    vertices, triangles = box_mesh(boxes)
    assert vertices.shape == (16, 3) and vertices.dtype == np.float32
    assert triangles.shape == (24, 3) and triangles.dtype == np.uint32 and triangles.max() == 15
    corners = box_corners_bev(boxes)
    for k in range(2):
        bev = vertices[8 * k:8 * k + 8, :2]
        assert all(np.min(np.linalg.norm(bev - c, axis=1)) < 1e-5 for c in corners[k])
        assert np.allclose(sorted(set(np.round(vertices[8 * k:8 * k + 8, 2], 5))), [0.0, CAR[2]], atol=1e-6)


def test_near_boxes_are_hit_and_boxes_behind_a_wall_or_a_car_are_not():
    truck = [10.0, 0.0, 1.5, 8.0, 2.4, 3.0, 0.0]  # taller than the lidar: nothing right behind it is seen
    agents = np.array([truck, car(-12.0, 3.0), car(30.0, 0.0), car(0.0, -25.0, 0.3), car(-24.0, 6.0)])
    wall = [[0.0, -15.0, 2.5, 20.0, 0.5, 5.0, 0.0]]  # a wall between the ego and the car at y = -25 m
    counts = count_points_in_boxes(sweep(wall, agents), agents)
    assert counts[0] > 100 and counts[1] > 50  # near and in the open
    assert counts[2] == 0  # right behind the truck
    assert counts[3] == 0  # behind the wall
    # A car behind a car is partly hidden: the lidar, higher than both, still sees its top.
    alone = count_points_in_boxes(sweep(wall, agents[4:]), agents[4:])[0]
    assert 0 < counts[4] < 0.7 * alone



def test_ground_points_lie_on_the_ground_and_nothing_is_beyond_range():
    box = np.array([car(8.0, 3.0)])
    points = sweep(agents=box)
    assert len(points) > 0.5 * LIDAR.lidar_beams * LIDAR.lidar_azimuth_steps
    _, on_car = points_in_boxes(points, box)
    grown = box + np.array([0, 0, 0, 0.3, 0.3, 0.3, 0])  # range noise scatters returns a little off the car
    ground = np.delete(points, points_in_boxes(points, grown)[0], axis=0)
    assert len(on_car) > 0 and len(ground) > 0.9 * len(points)
    assert np.abs(ground[:, 2]).max() < 0.1  # 2 cm range noise, seen from 1.8 m up
    r = np.hypot(points[:, 0], points[:, 1])
    assert r.max() <= LIDAR.max_range_m + 0.2
    assert np.all((points[:, 3] >= LIDAR.min_intensity) & (points[:, 3] <= 1.0))
    # Nearest ground return: the lowest beam reaches the ground at height / tan(25 degrees).
    assert r.min() == pytest.approx(LIDAR.lidar_height_m / np.tan(np.deg2rad(25.0)), abs=0.2)


def test_points_are_in_the_ego_frame():
    target = np.array([[110.0, 50.0 + 12.0, 0.8, *CAR, 0.0]])  # 12 m to the ego's left, world frame
    turned = sweep(agents=target, pose=(110.0, 50.0, 0.0, np.pi / 2))  # ego faces +y: the car is straight ahead
    in_ego = np.array([car(12.0, 0.0, -np.pi / 2)])
    assert count_points_in_boxes(turned, in_ego)[0] > 50
    assert count_points_in_boxes(turned, target)[0] == 0


def test_same_generator_state_gives_the_same_points():
    a, b = sweep(agents=[car(10.0, 2.0)], seed=3), sweep(agents=[car(10.0, 2.0)], seed=3)
    assert a.tobytes() == b.tobytes()
    assert sweep(agents=[car(10.0, 2.0)], seed=4).tobytes() != a.tobytes()


def test_night_and_rain_raise_dropout_and_noise():
    config = replace(LIDAR, dropout_rate=0.05, range_noise_std_m=0.03)
    clear, night, rain = sweep(config=config), sweep(config=config, night=True), sweep(config=config, rain=True)
    assert len(night) < len(clear) and len(rain) < len(night)
    # Flat ground only: the spread of z is the range noise projected on the beam's elevation.
    assert np.std(rain[:, 2]) > 1.5 * np.std(clear[:, 2])
    assert np.mean(rain[:, 3]) < np.mean(clear[:, 3])  # rain attenuates
    noise, dropout = degradation(config, night=True, rain=True)
    assert noise > config.range_noise_std_m and dropout > config.dropout_rate


def test_reflectivity_sets_intensity():
    box = np.array([car(10.0, 0.0)])
    mean = []
    for reflectivity in (0.9, 0.2):
        points = sweep(agents=box, agent_reflectivity=np.array([reflectivity]))
        mean.append(np.mean(points[points_in_boxes(points, box)[0], 3]))
    assert mean[0] > 3 * mean[1]


def test_bad_boxes_and_poses_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(BadInput, match="agent boxes"):
        raycast_sweep(np.zeros((0, 7)), np.zeros((2, 6)), (0, 0, 0, 0), LIDAR, rng)
    with pytest.raises(BadInput, match="scene boxes"):
        raycast_sweep(np.full((1, 7), np.nan), np.zeros((0, 7)), (0, 0, 0, 0), LIDAR, rng)
    with pytest.raises(BadInput, match="ego pose"):
        raycast_sweep(np.zeros((0, 7)), np.zeros((0, 7)), (0, 0, 0), LIDAR, rng)
    with pytest.raises(BadInput, match="reflectivities"):
        raycast_sweep(np.zeros((0, 7)), np.array([car(5, 0)]), (0, 0, 0, 0), LIDAR, rng, agent_reflectivity=np.ones(3))
