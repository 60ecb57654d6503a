"""A spinning lidar ray-cast against the scene with open3d's RaycastingScene (Embree).

The sensor sits `lidar_height_m` above the ground under the ego, level, and fires `lidar_beams`
beams, evenly spaced in elevation from `lidar_elevation_min_deg` to `lidar_elevation_max_deg`, at
each of `lidar_azimuth_steps` azimuths over 360 degrees. The scene is the ground plane z = 0, the
static boxes (buildings, poles) and the agents' boxes (never the ego's own), as one triangle mesh
built with numpy and added in one call; boxes out of range are culled first. Occlusion comes from the
first hit. Rays that hit nothing within `max_range_m` return nothing.

Per return: the range gets Gaussian noise; the return is lost with the dropout probability; its
intensity is the target's reflectivity times |cos(incidence)| (Lambertian), attenuated in rain by
exp(-2 * rain_attenuation_per_m * range); returns weaker than `min_intensity` are lost. Night scales
dropout and noise by night_*_scale, rain by rain_*_scale. Points are (x, y, z, intensity) float32 in
the ego frame (x forward, y left, z up, z = 0 on the ground under the ego).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import open3d as o3d

from andon.errors import BadInput
from andon.scenarios.transforms import world_to_ego_xy
from andon.simulation.fleet.config import FleetConfig
from andon.simulation.fleet.scene import GROUND_REFLECTIVITY

DEFAULT_AGENT_REFLECTIVITY = 0.45  # painted metal, seen broadside
DEFAULT_SCENE_REFLECTIVITY = 0.35
GROUND_MARGIN_M = 10.0
# Corners of a unit box, then 12 triangles (two per face); winding does not matter, the intensity
# model takes |cos(incidence)|.
_CORNERS = np.array([[1, 1, -1], [1, -1, -1], [-1, -1, -1], [-1, 1, -1],
                     [1, 1, 1], [1, -1, 1], [-1, -1, 1], [-1, 1, 1]], dtype=np.float64) * 0.5
_FACES = np.array([[0, 1, 2], [0, 2, 3], [4, 6, 5], [4, 7, 6], [0, 4, 5], [0, 5, 1],
                   [1, 5, 6], [1, 6, 2], [2, 6, 7], [2, 7, 3], [3, 7, 4], [3, 4, 0]], dtype=np.uint32)
TRIANGLES_PER_BOX = len(_FACES)


def box_mesh(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangle mesh of many boxes at once: (vertices (8N, 3) float32, triangles (12N, 3) uint32).

    Triangles 12k .. 12k + 11 belong to box k.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 7)
    local = _CORNERS[None] * boxes[:, None, 3:6]  # (N, 8, 3)
    c, s = np.cos(boxes[:, 6])[:, None], np.sin(boxes[:, 6])[:, None]
    x = boxes[:, 0:1] + c * local[..., 0] - s * local[..., 1]
    y = boxes[:, 1:2] + s * local[..., 0] + c * local[..., 1]
    z = boxes[:, 2:3] + local[..., 2]
    vertices = np.stack([x, y, z], axis=-1).reshape(-1, 3).astype(np.float32)
    triangles = (_FACES[None] + (8 * np.arange(len(boxes), dtype=np.uint32))[:, None, None]).reshape(-1, 3)
    return vertices, triangles


@lru_cache(maxsize=8)
def ray_directions(beams: int, azimuth_steps: int, elevation_min_deg: float, elevation_max_deg: float) -> np.ndarray:
    """Unit directions of one sweep, beam-major: (beams * azimuth_steps, 3) float32, read-only."""
    elevation = np.deg2rad(np.linspace(elevation_min_deg, elevation_max_deg, beams))
    azimuth = np.linspace(-np.pi, np.pi, azimuth_steps, endpoint=False)
    el, az = np.meshgrid(elevation, azimuth, indexing="ij")
    directions = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1).reshape(-1, 3)
    directions = directions.astype(np.float32)
    directions.flags.writeable = False
    return directions


@lru_cache(maxsize=8)
def _direction_columns(beams: int, azimuth_steps: int, elevation_min_deg: float, elevation_max_deg: float
                       ) -> np.ndarray:
    """The sweep's directions as three contiguous rows (x, y, z components): (3, rays) float32."""
    columns = np.ascontiguousarray(ray_directions(beams, azimuth_steps, elevation_min_deg, elevation_max_deg).T)
    columns.flags.writeable = False
    return columns


@lru_cache(maxsize=8)
def _rays(beams: int, azimuth_steps: int, elevation_min_deg: float, elevation_max_deg: float,
          height_m: float) -> o3d.core.Tensor:
    """The sweep's rays (origin, direction) as one open3d tensor, built once per lidar geometry."""
    directions = ray_directions(beams, azimuth_steps, elevation_min_deg, elevation_max_deg)
    origin = np.array([0.0, 0.0, height_m], dtype=np.float32)
    return o3d.core.Tensor(np.concatenate([np.broadcast_to(origin, directions.shape), directions], axis=1))


def degradation(config: FleetConfig, night: bool, rain: bool) -> tuple[float, float]:
    """(range noise std [m], dropout probability) under the log's conditions."""
    noise, dropout = config.range_noise_std_m, config.dropout_rate
    if night:
        noise, dropout = noise * config.night_noise_scale, dropout * config.night_dropout_scale
    if rain:
        noise, dropout = noise * config.rain_noise_scale, dropout * config.rain_dropout_scale
    return noise, min(dropout, 1.0)


def raycast_sweep(scene_boxes_world: np.ndarray, agent_boxes_world: np.ndarray, ego_pose: np.ndarray | tuple,
                  config: FleetConfig, rng: np.random.Generator, *, scene_reflectivity: np.ndarray | None = None,
                  agent_reflectivity: np.ndarray | None = None, night: bool = False, rain: bool = False) -> np.ndarray:
    """One lidar sweep at `ego_pose`: (M, 4) float32 points (x, y, z, intensity) in the ego frame.

    Args:
        scene_boxes_world: (S, 7) static boxes in the world frame (a log's meta["scene"]["boxes"]).
        agent_boxes_world: (A, 7) agent boxes in the world frame; leave the ego's own box out.
        ego_pose: (x, y, z, yaw) of the ego in the world frame; z is the ground under the ego.
        config: the lidar's geometry, noise and dropout.
        rng: draws the noise and dropout; the same generator state gives the same points.
        scene_reflectivity: (S,) in [0, 1]; default DEFAULT_SCENE_REFLECTIVITY.
        agent_reflectivity: (A,) in [0, 1]; default DEFAULT_AGENT_REFLECTIVITY.
        night: degrade as at night (see module docstring).
        rain: degrade as in rain.

    Raises:
        BadInput: a box array is not (K, 7) or not finite, or the pose is not 4 finite numbers.
    """
    pose = np.asarray(ego_pose, dtype=np.float64)
    if pose.shape != (4,) or not np.all(np.isfinite(pose)):
        raise BadInput(f"ego pose must be 4 finite numbers (x, y, z, yaw), got {ego_pose!r}")
    boxes, reflectivity = [], []
    for name, group, refl, default in (("scene", scene_boxes_world, scene_reflectivity, DEFAULT_SCENE_REFLECTIVITY),
                                       ("agent", agent_boxes_world, agent_reflectivity, DEFAULT_AGENT_REFLECTIVITY)):
        group = np.asarray(group, dtype=np.float64)
        if group.size == 0:
            group = group.reshape(0, 7)
        if group.ndim != 2 or group.shape[1] != 7 or not np.all(np.isfinite(group)):
            raise BadInput(f"{name} boxes must be a finite (K, 7) array, got shape {group.shape}")
        refl = np.full(len(group), default) if refl is None else np.asarray(refl, dtype=np.float64).reshape(-1)
        if len(refl) != len(group):
            raise BadInput(f"{len(refl)} {name} reflectivities for {len(group)} {name} boxes")
        ego_boxes = _to_ego(group, pose)
        # Only what can be within range matters; culling keeps the BVH small.
        reach = config.max_range_m + 0.5 * np.hypot(ego_boxes[:, 3], ego_boxes[:, 4])
        near = np.hypot(ego_boxes[:, 0], ego_boxes[:, 1]) <= reach
        boxes.append(ego_boxes[near])
        reflectivity.append(refl[near])
    # One mesh: the ground quad, then every box; a hit's primitive id indexes the per-triangle reflectivity.
    vertices, triangles = box_mesh(np.concatenate(boxes))
    half = config.max_range_m + GROUND_MARGIN_M
    ground = np.array([[-half, -half, 0.0], [half, -half, 0.0], [half, half, 0.0], [-half, half, 0.0]], np.float32)
    ground[:, 2] = -pose[2]
    vertices = np.concatenate([ground, vertices])
    triangles = np.concatenate([np.array([[0, 1, 2], [0, 2, 3]], np.uint32), triangles + np.uint32(len(ground))])
    triangle_refl = np.concatenate([np.full(2, GROUND_REFLECTIVITY),
                                    np.repeat(np.concatenate(reflectivity), TRIANGLES_PER_BOX)]).astype(np.float32)
    scene = o3d.t.geometry.RaycastingScene(nthreads=config.lidar_threads)
    scene.add_triangles(o3d.core.Tensor(vertices), o3d.core.Tensor(triangles))
    directions = ray_directions(config.lidar_beams, config.lidar_azimuth_steps, config.lidar_elevation_min_deg,
                                config.lidar_elevation_max_deg)
    rays = _rays(config.lidar_beams, config.lidar_azimuth_steps, config.lidar_elevation_min_deg,
                 config.lidar_elevation_max_deg, config.lidar_height_m)
    hits = scene.cast_rays(rays, nthreads=config.lidar_threads)
    # Draw for every ray, hit or not, so that the random stream does not depend on the scene.
    noise_std, dropout = degradation(config, night, rain)
    noise = rng.standard_normal(len(directions), dtype=np.float32)
    lost = rng.random(len(directions), dtype=np.float32) < dropout
    # Most rays hit something, so work on every ray and select once at the end; a miss's primitive id is
    # invalid (clamped here) and its range infinite (dropped below).
    t_hit = hits["t_hit"].numpy()
    primitive = np.minimum(hits["primitive_ids"].numpy(), np.uint32(len(triangle_refl) - 1))
    intensity = triangle_refl[primitive] * np.abs(np.einsum("ij,ij->i", hits["primitive_normals"].numpy(), directions))
    if rain:
        intensity *= np.exp(np.float32(-2.0 * config.rain_attenuation_per_m) * np.minimum(t_hit, config.max_range_m))
    keep = np.flatnonzero((t_hit <= config.max_range_m) & ~lost & (intensity >= config.min_intensity))
    ranges = t_hit[keep] + np.float32(noise_std) * noise[keep]
    points = np.empty((len(keep), 4), dtype=np.float32)
    # Column by column from contiguous direction components: three times faster than one (M, 3) gather.
    columns = _direction_columns(config.lidar_beams, config.lidar_azimuth_steps, config.lidar_elevation_min_deg,
                                 config.lidar_elevation_max_deg)
    for axis in range(3):
        np.multiply(columns[axis][keep], ranges, out=points[:, axis])
    points[:, 2] += np.float32(config.lidar_height_m)
    np.minimum(intensity[keep], 1.0, out=points[:, 3])
    return points


def _to_ego(boxes: np.ndarray, pose: np.ndarray) -> np.ndarray:
    xy = world_to_ego_xy(boxes[:, :2], pose[:2], float(pose[3]))
    return np.column_stack([xy, boxes[:, 2] - pose[2], boxes[:, 3:6], boxes[:, 6] - pose[3]])
