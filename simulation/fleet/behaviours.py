"""The behaviour events of a synthetic log: what each tag of ground_truth.BEHAVIOUR_TAGS means, exactly.

Every event is computed from what a log itself holds: the TRUE labels (boxes in the ego frame,
classes, track ids, i.e. before the fleet's label errors), the ego poses and the road map, plus, for
cut_in only, the scripted lane-change window. A rule-based miner reading the (corrupted) labels,
poses and map can therefore recover each event, missing only what label errors hide.

Conventions:
- A frame's predicate is evaluated on that frame alone. An event is a maximal run of consecutive
  frames where the predicate holds; t_start_ns / t_end_ns are the timestamps of the run's first and
  last frame (inclusive; a one-frame event has t_start_ns == t_end_ns). Frames are 10 Hz.
- Distances are BEV (x, y) Euclidean, in metres, from the ego pose's (x, y), i.e. from the origin of
  the ego frame, to a box's centre. "Within D m" means distance <= D.
- Ego speed at frame i: |p[i+1] - p[i-1]| / (t[i+1] - t[i-1]) from the logged poses' (x, y) (central
  difference); at the first and last frame the one-sided difference to the neighbour.
- track_ids of an event: the sorted union, over its frames, of the tracks that made the predicate
  true; empty for tags that are about the ego alone or about a crowd (dense_traffic).

Tags:
- intersection: the ego's (x, y) lies inside a junction's box (boundary included). A junction's box is
  the axis-aligned bounding box of the centreline points of its intersection lanes, the lanes with
  is_intersection=True whose ids share the junction field (`int-<junction>-<approach>-<movement>`).
  Here every box is the 30 m x 30 m square between the junction's stop lines.
- traffic_light: the ego is on a lane that a traffic light governs (a lane id in some
  TrafficLight.lane_ids; these lanes end at the light's stop line) and within 40 m of the lane's end,
  measured along the lane. "On the lane": with a the lane's first and e its last centreline point
  (the lanes are straight), the ego's projection onto a->e lies within the segment, its distance
  from the segment is <= 1.875 m (half a lane), and the ego's yaw is within 45 degrees of a->e. So
  it holds while the ego approaches, or waits at, a stop line, whatever the light shows.
- pedestrian_crossing: a pedestrian box within 30 m of the ego has its centre, moved into the world
  frame with the frame's ego pose, inside a crosswalk polygon (boundary included).
- cut_in: a vehicle changes from the lane beside the ego into the ego's lane ahead of it: during the
  scripted lane change (from the frame it starts, still in the adjacent lane, to the frame it ends,
  in the ego's lane, both included; 3 s by default) the frames where the cut-in vehicle's box is
  ahead (x > 0 in the ego frame) and within 30 m. Recoverable from labels: both are on the same
  straight with the ego on its lane's centre, so the vehicle's ego-frame |y| falls from one lane
  width (3.75 m) to 0 along a raised cosine over the window; track_ids is that vehicle.
- vru_near: a pedestrian or cyclist box within 10 m of the ego.
- dense_traffic: at least 8 vehicle boxes (parked ones included) within 30 m of the ego.
- high_speed: ego speed > 15 m/s.
- stationary: ego speed < 0.5 m/s, for a run of at least 20 frames (2 s); shorter runs are no event.
- night: the whole log (first to last frame) when the log was driven at night; the log's
  meta["conditions"]["night"] records it, as a real log's description does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from andon.scenarios.records import RoadMap
from andon.scenarios.transforms import ego_to_world_xy
from andon.simulation.fleet.config import FRAME_RATE_HZ
from andon.simulation.fleet.labels import FrameLabels
from andon.simulation.fleet.world import CutIn
from andon.simulation.ground_truth import BehaviourEvent

CROSSING_NEAR_M = 30.0  # pedestrian_crossing: pedestrian within this of the ego
TRAFFIC_LIGHT_M = 40.0
LANE_HALF_WIDTH_M = 1.875
LANE_HEADING_TOLERANCE_RAD = np.pi / 4
CUT_IN_NEAR_M = 30.0
VRU_NEAR_M = 10.0
DENSE_RADIUS_M = 30.0
DENSE_MIN_VEHICLES = 8
HIGH_SPEED_MPS = 15.0
STATIONARY_MPS = 0.5
STATIONARY_MIN_S = 2.0


def ego_speed_mps(timestamps_ns: np.ndarray, ego_poses: np.ndarray) -> np.ndarray:
    """Ego speed per frame from the logged poses (central differences, one-sided at the ends): (F,)."""
    xy = np.asarray(ego_poses, dtype=np.float64)[:, :2]
    t_s = np.asarray(timestamps_ns, dtype=np.int64) / 1e9
    if len(xy) < 2:
        return np.zeros(len(xy))
    nxt = np.minimum(np.arange(len(xy)) + 1, len(xy) - 1)
    prv = np.maximum(np.arange(len(xy)) - 1, 0)
    return np.linalg.norm(xy[nxt] - xy[prv], axis=1) / (t_s[nxt] - t_s[prv])


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of True as (first, last) frame indices, inclusive."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def junction_boxes(road_map: RoadMap) -> np.ndarray:
    """(J, 4) xmin, ymin, xmax, ymax of every junction's intersection lanes."""
    points: dict[str, list[np.ndarray]] = {}
    for lane in road_map.lanes:
        if lane.is_intersection:
            points.setdefault(lane.lane_id.split("-")[1], []).append(lane.centerline_m)
    boxes = [np.concatenate([pts.min(axis=0), pts.max(axis=0)])
             for pts in (np.concatenate(v) for _, v in sorted(points.items()))]
    return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)


def detect(timestamps_ns: np.ndarray, ego_poses: np.ndarray, labels: Sequence[FrameLabels], road_map: RoadMap,
           cut_ins: Sequence[CutIn], night: bool) -> tuple[BehaviourEvent, ...]:
    """Every behaviour event of a log (see the module docstring), ordered by tag, then time."""
    stamps = np.asarray(timestamps_ns, dtype=np.int64)
    poses = np.asarray(ego_poses, dtype=np.float64)
    table = _table(labels, poses)
    speed = ego_speed_mps(stamps, poses)
    events: list[BehaviourEvent] = []

    def add(tag: str, mask: np.ndarray, who: np.ndarray | None = None, min_frames: int = 1) -> None:
        for first, last in runs(mask):
            if last - first + 1 < min_frames:
                continue
            ids: tuple[str, ...] = ()
            if who is not None:
                chosen = who & (table["frame"] >= first) & (table["frame"] <= last)
                ids = tuple(sorted(set(table["track_ids"][chosen].tolist())))
            events.append(BehaviourEvent(tag, int(stamps[first]), int(stamps[last]), ids))

    n = len(stamps)
    boxes = junction_boxes(road_map)
    xy = poses[:, None, :2]
    add("intersection", np.any(np.all((xy >= boxes[None, :, :2]) & (xy <= boxes[None, :, 2:]), axis=2), axis=1))
    add("traffic_light", _on_signalled_approach(poses, road_map))
    cls, dist = table["classes"], table["distance"]
    crossing = (cls == "pedestrian") & (dist <= CROSSING_NEAR_M) & _in_crosswalk(table["world_xy"], road_map)
    add("pedestrian_crossing", _any_per_frame(crossing, table["frame"], n), crossing)
    for cut in cut_ins:
        is_cutter = (table["track_ids"] == cut.track_id) & (table["boxes"][:, 0] > 0) & (dist <= CUT_IN_NEAR_M)
        in_window = (stamps >= cut.t_start_ns) & (stamps <= cut.t_end_ns)
        add("cut_in", in_window & _any_per_frame(is_cutter, table["frame"], n), is_cutter)
    vru = np.isin(cls, ("pedestrian", "cyclist")) & (dist <= VRU_NEAR_M)
    add("vru_near", _any_per_frame(vru, table["frame"], n), vru)
    vehicles = (cls == "vehicle") & (dist <= DENSE_RADIUS_M)
    add("dense_traffic", np.bincount(table["frame"][vehicles], minlength=n) >= DENSE_MIN_VEHICLES)
    add("high_speed", speed > HIGH_SPEED_MPS)
    add("stationary", speed < STATIONARY_MPS, min_frames=int(round(STATIONARY_MIN_S * FRAME_RATE_HZ)))
    if night:
        add("night", np.ones(n, dtype=bool))
    return tuple(sorted(events, key=lambda e: (e.tag, e.t_start_ns, e.t_end_ns)))


def _table(labels: Sequence[FrameLabels], poses: np.ndarray) -> dict[str, np.ndarray]:
    """Every label of the log, columnar, with its frame, BEV distance and world position."""
    counts = np.array([len(f.classes) for f in labels], dtype=np.int64)
    frame = np.repeat(np.arange(len(labels)), counts)
    boxes = np.concatenate([f.boxes.reshape(-1, 7) for f in labels]) if len(labels) else np.zeros((0, 7))
    world = np.empty((len(boxes), 2))
    # One rigid transform per frame; the loop is over frames, each moves all its boxes at once.
    starts = np.concatenate([[0], np.cumsum(counts)])
    for index in range(len(labels)):
        lo, hi = starts[index], starts[index + 1]
        world[lo:hi] = ego_to_world_xy(boxes[lo:hi, :2], poses[index, :2], float(poses[index, 3]))
    return {"frame": frame, "boxes": boxes, "distance": np.hypot(boxes[:, 0], boxes[:, 1]), "world_xy": world,
            "classes": _column([f.classes for f in labels]), "track_ids": _column([f.track_ids for f in labels])}


def _column(per_frame: list[list[str]]) -> np.ndarray:
    return np.concatenate([np.asarray(v, dtype=np.str_).reshape(-1) for v in per_frame] or [np.zeros(0, np.str_)])


def _any_per_frame(mask: np.ndarray, frame: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(frame[mask], minlength=n) > 0


def _on_signalled_approach(poses: np.ndarray, road_map: RoadMap) -> np.ndarray:
    governed = {lane_id for light in road_map.traffic_lights for lane_id in light.lane_ids}
    lanes = [lane for lane in road_map.lanes if lane.lane_id in governed and not lane.is_intersection]
    if not lanes:
        return np.zeros(len(poses), dtype=bool)
    a = np.array([lane.centerline_m[0] for lane in lanes])  # (L, 2)
    e = np.array([lane.centerline_m[-1] for lane in lanes])
    length = np.linalg.norm(e - a, axis=1)
    u = (e - a) / length[:, None]
    rel = poses[:, None, :2] - a[None]  # (F, L, 2)
    along = np.sum(rel * u[None], axis=2)
    across = rel[..., 1] * u[None, :, 0] - rel[..., 0] * u[None, :, 1]
    heading = np.cos(poses[:, 3:4]) * u[None, :, 0] + np.sin(poses[:, 3:4]) * u[None, :, 1]
    on = (along >= 0) & (along <= length[None]) & (np.abs(across) <= LANE_HALF_WIDTH_M)
    on &= heading >= np.cos(LANE_HEADING_TOLERANCE_RAD)
    return np.any(on & (length[None] - along <= TRAFFIC_LIGHT_M), axis=1)


def _in_crosswalk(xy: np.ndarray, road_map: RoadMap) -> np.ndarray:
    """Whether each point lies inside any crosswalk polygon (even-odd rule; edges count as inside)."""
    inside = np.zeros(len(xy), dtype=bool)
    for crosswalk in road_map.crosswalks:  # a loop over map polygons; the points are vectorised
        inside |= points_in_polygon(xy, crosswalk.polygon_m)
    return inside


def points_in_polygon(xy: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(K,) bool: each point inside the simple polygon (K, 2) or on its boundary."""
    x, y = xy[:, 0:1], xy[:, 1:2]
    p0 = np.asarray(polygon, dtype=np.float64)
    p1 = np.roll(p0, -1, axis=0)
    x0, y0, x1, y1 = p0[:, 0], p0[:, 1], p1[:, 0], p1[:, 1]
    crosses = ((y0 > y) != (y1 > y)) & (x < (x1 - x0) * (y - y0) / np.where(y1 == y0, 1.0, y1 - y0) + x0)
    inside = (np.sum(crosses, axis=1) % 2) == 1
    # On an edge: collinear with it and between its ends.
    cross = (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0)
    between = (np.minimum(x0, x1) <= x) & (x <= np.maximum(x0, x1)) & (np.minimum(y0, y1) <= y) & (y <= np.maximum(y0, y1))
    return inside | np.any((np.abs(cross) <= 1e-9) & between, axis=1)
