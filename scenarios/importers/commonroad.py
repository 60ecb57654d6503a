"""Importer of CommonRoad XML scenarios (format "commonroad"), versions 2018b and 2020a.

Read with the standard library's ElementTree (no commonroad-io dependency). The root's `timeStepSize`
gives the step [s]; obstacles (`<dynamicObstacle>`/`<staticObstacle>` in 2020a, `<obstacle>` with a
`<role>` in 2018b) give one box per state: `initialState` plus the `trajectory` states, each with a
point position, an orientation (exact, or the middle of an interval), a time step (exact, or the
interval's start) and optionally a speed along the heading. Static obstacles stand at every frame.
There is one frame per time step at which at least one obstacle exists; `timestamp_ns = step * dt`.

CommonRoad scenarios record no ego trajectory (the planning problem asks for one), so each log gets a
fixed virtual ego at the centroid of all obstacle positions with yaw 0; the ego frame is the
scenario's frame shifted there. Boxes take the rectangle's length and width (a circle gives a square of
its diameter) and a default height per class (vehicle 1.6, pedestrian 1.75, cyclist 1.7, static 1.0 m),
standing on the ground (z_centre = height / 2). Velocities are the speed along the heading.

Map: every lanelet becomes a lane whose centerline is the mean of its left and right bounds; lanelets
that cross an `<intersection>` (the successorsLeft/Right/Straight of its incomings, not the incoming
approaches) are marked `is_intersection`, as AV2 marks lanes inside a junction. Lanelets of
type crosswalk also become crosswalk polygons. Traffic lights take their `<position>` if given, else
the end of the centerline of a lanelet that references them.

Tags: the scenario's tags (2020a `<scenarioTags>`, 2018b root attribute `tags`) in lower snake_case,
plus `traffic_light` when the file has traffic lights.

Class map: car, truck, bus, taxi, priorityVehicle, parkedVehicle, train -> vehicle; bicycle,
motorcycle -> cyclist; pedestrian -> pedestrian; unknown, constructionZone, roadBoundary, building,
pillar, median_strip -> static. Other types are refused.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from andon.errors import BadInput
from andon.scenarios.importers.common import require_file
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Crosswalk, Frame, Lane, RoadMap, TrafficLight, wrap_angle

NAME = "commonroad"
VERSION = "1"
CLASS_MAP: dict[str, str] = {
    "car": "vehicle", "truck": "vehicle", "bus": "vehicle", "taxi": "vehicle", "priorityVehicle": "vehicle",
    "parkedVehicle": "vehicle", "train": "vehicle",
    "bicycle": "cyclist", "motorcycle": "cyclist",
    "pedestrian": "pedestrian",
    "unknown": "static", "constructionZone": "static", "roadBoundary": "static", "building": "static",
    "pillar": "static", "median_strip": "static",
}
HEIGHT_M: dict[str, float] = {"vehicle": 1.6, "pedestrian": 1.75, "cyclist": 1.7, "static": 1.0}
INTERSECTION_LANELETS = ("incoming/successorsLeft", "incoming/successorsRight", "incoming/successorsStraight")
STATE_COLUMNS = ("x_m", "y_m", "yaw_rad", "step", "speed_mps")


def read(path: Path) -> list[ImportedLog]:
    """Read one CommonRoad `.xml` file or every `.xml` file of a directory (sorted by name).

    Raises:
        BadInput: naming the file and the problem for missing or malformed files.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.xml"))
        if not files:
            raise BadInput(f"{path}: no CommonRoad .xml files in this directory; point at a file or a folder of them")
        return [read_file(file) for file in files]
    return [read_file(require_file(path, "CommonRoad scenario (.xml)"))]


def read_file(path: Path) -> ImportedLog:
    """One CommonRoad scenario as a log around a virtual ego at the obstacles' centroid."""
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise BadInput(f"{path}: not a readable XML file ({exc}); expected a CommonRoad scenario") from exc
    if root.tag != "commonRoad":
        raise BadInput(f"{path}: root element is <{root.tag}>, not <commonRoad>; expected a CommonRoad scenario")
    dt_s = _number(path, root.get("timeStepSize"), "the root's timeStepSize")
    if dt_s <= 0:
        raise BadInput(f"{path}: timeStepSize must be positive, got {dt_s}")
    states = _obstacle_states(path, root)
    centroid = states[["x_m", "y_m"]].to_numpy().mean(axis=0)
    pose = (float(centroid[0]), float(centroid[1]), 0.0, 0.0)

    states = states.sort_values(["step", "obstacle_id"], kind="stable").reset_index(drop=True)
    height = states["cls"].map(HEIGHT_M).to_numpy(np.float64)
    boxes = np.column_stack([states["x_m"] - centroid[0], states["y_m"] - centroid[1], height / 2,
                             states["length_m"], states["width_m"], height, wrap_angle(states["yaw_rad"])])
    velocities = states["speed_mps"].to_numpy()[:, None] * np.column_stack(
        [np.cos(states["yaw_rad"]), np.sin(states["yaw_rad"])])
    steps = states["step"].to_numpy()
    starts = np.flatnonzero(np.r_[True, steps[1:] != steps[:-1]])
    step_ns = int(round(dt_s * 1e9))
    classes, track_ids = states["cls"].to_numpy(), states["obstacle_id"].to_numpy()
    frames = [Frame(timestamp_ns=int(steps[lo]) * step_ns, ego_pose=pose, boxes=boxes[lo:hi],
                    classes=classes[lo:hi].tolist(), track_ids=track_ids[lo:hi].tolist(),
                    velocities_mps=velocities[lo:hi])
              for lo, hi in zip(starts, np.r_[starts[1:], len(states)], strict=True)]

    road_map = _road_map(path, root)
    tags = _tags(root) | ({"traffic_light"} if road_map.traffic_lights else set())
    name = root.get("benchmarkID") or path.stem
    meta = {"benchmark_id": name, "commonroad_version": root.get("commonRoadVersion", ""), "step_s": dt_s,
            "obstacles": int(states["obstacle_id"].nunique()), "virtual_ego": "obstacle centroid"}
    return ImportedLog(source=NAME, name=name, frames=frames, road_map=road_map, meta=meta,
                       tags=frozenset(tags))


def _obstacles(root: ET.Element) -> list[tuple[ET.Element, bool]]:
    """(element, is_static) of every obstacle, in both the 2020a and 2018b layouts."""
    found = [(e, False) for e in root.findall("dynamicObstacle")]
    found += [(e, True) for e in root.findall("staticObstacle")]
    found += [(e, (e.findtext("role") or "").strip() == "static") for e in root.findall("obstacle")]
    return found


def _obstacle_states(path: Path, root: ET.Element) -> pd.DataFrame:
    """Every obstacle state as a row: obstacle_id, cls, length_m, width_m, static, state and STATE_COLUMNS.

    The XML is walked once per obstacle into plain lists; parsing and checks then run on whole columns.
    """
    columns: dict[str, list] = {k: [] for k in ("obstacle_id", "cls", "length_m", "width_m", "static", "state",
                                                *STATE_COLUMNS)}
    for element, is_static in _obstacles(root):
        oid = element.get("id", "")
        where = f"{path}: obstacle {oid!r}"
        if not oid:
            raise BadInput(f"{where}: the obstacle has no id attribute")
        kind = (element.findtext("type") or "").strip()
        if kind not in CLASS_MAP:
            raise BadInput(f"{where}: unknown obstacle type {kind!r}; the importer maps {sorted(CLASS_MAP)}")
        length_m, width_m = _shape(where, element)
        nodes = element.findall("initialState") + element.findall("trajectory/state")
        if not nodes:
            raise BadInput(f"{where}: no initialState")
        for key, value in (("obstacle_id", oid), ("cls", CLASS_MAP[kind]), ("length_m", length_m),
                           ("width_m", width_m), ("static", is_static)):
            columns[key] += [value] * len(nodes)
        columns["state"] += range(len(nodes))
        columns["x_m"] += [node.findtext("position/point/x") for node in nodes]
        columns["y_m"] += [node.findtext("position/point/y") for node in nodes]
        columns["yaw_rad"] += [_exact_or_mid(node.find("orientation")) for node in nodes]
        columns["step"] += [node.findtext("time/exact") or node.findtext("time/intervalStart") for node in nodes]
        columns["speed_mps"] += [node.findtext("velocity/exact") or "nan" for node in nodes]
    if not columns["obstacle_id"]:
        raise BadInput(f"{path}: the scenario has no obstacles; nothing to import")
    raw = pd.DataFrame(columns)
    states = raw.assign(**{c: pd.to_numeric(raw[c], errors="coerce").astype(np.float64) for c in STATE_COLUMNS})
    finite = np.isfinite(states[list(STATE_COLUMNS[:4])].to_numpy())
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        what = ("a point position x", "a point position y", "an orientation", "a time step")[col]
        raise BadInput(f"{path}: obstacle {raw['obstacle_id'].iat[row]!r}: state {raw['state'].iat[row]} "
                       f"(0 is the initialState) lacks {what} or has a non-number there "
                       f"({raw[STATE_COLUMNS[col]].iat[row]!r})")
    if np.any(np.isinf(states["speed_mps"])) or np.any(states["step"] != np.round(states["step"])):
        raise BadInput(f"{path}: velocities must be finite and time steps whole numbers")
    states["step"] = states["step"].astype(np.int64)
    if states["static"].any():
        # A static obstacle stands at every frame (at its initial state's position).
        fixed = states[states["static"]].drop(columns="step")
        every_step = pd.DataFrame({"step": np.unique(states["step"])})
        states = pd.concat([states[~states["static"]], fixed.merge(every_step, how="cross")], ignore_index=True)
    duplicated = states.duplicated(["obstacle_id", "step"]).to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        raise BadInput(f"{path}: obstacle {states['obstacle_id'].iat[row]!r} has more than one state at time step "
                       f"{states['step'].iat[row]} (duplicate obstacle id or time)")
    return states


def _shape(where: str, element: ET.Element) -> tuple[float, float]:
    """(length, width) [m] of a rectangle, or of the square around a circle."""
    if element.find("shape/rectangle") is not None:
        return (_number(where, element.findtext("shape/rectangle/length"), "rectangle length"),
                _number(where, element.findtext("shape/rectangle/width"), "rectangle width"))
    if element.find("shape/circle") is not None:
        diameter = 2 * _number(where, element.findtext("shape/circle/radius"), "circle radius")
        return diameter, diameter
    raise BadInput(f"{where}: shape must be a rectangle or circle; other shapes are not supported")


def _exact_or_mid(node: ET.Element | None) -> str | float | None:
    """An `exact` value, or the middle of an intervalStart/intervalEnd pair."""
    if node is None:
        return None
    if node.find("exact") is not None:
        return node.findtext("exact")
    try:
        return (float(node.findtext("intervalStart") or "nan") + float(node.findtext("intervalEnd") or "nan")) / 2
    except ValueError:
        return None


def _road_map(path: Path, root: ET.Element) -> RoadMap:
    """Lanes, crosswalks and traffic lights of the scenario, in its world frame."""
    in_junction = {ref.get("ref") for junction in root.findall("intersection")
                   for tag in INTERSECTION_LANELETS for ref in junction.findall(tag)}
    lanes, crosswalks, light_lanes = [], [], {}
    for lanelet in root.findall("lanelet"):
        lid = lanelet.get("id", "")
        left, right = _polyline(path, lanelet, "leftBound", lid), _polyline(path, lanelet, "rightBound", lid)
        if left.shape != right.shape:
            raise BadInput(f"{path}: lanelet {lid}: left bound has {len(left)} points, right bound {len(right)}; "
                           f"CommonRoad bounds must pair up point by point")
        lanes.append(Lane(lid, (left + right) / 2, lid in in_junction))
        if "crosswalk" in {(t.text or "").strip() for t in lanelet.findall("laneletType")}:
            crosswalks.append(Crosswalk(lid, np.vstack([left, right[::-1]])))
        for ref in lanelet.findall("trafficLightRef"):
            light_lanes.setdefault(ref.get("ref"), []).append(lid)
    centers = {lane.lane_id: lane.centerline_m for lane in lanes}
    lights = []
    for light in root.findall("trafficLight"):
        lid = light.get("id", "")
        referencing = tuple(light_lanes.get(lid, ()))
        if light.find("position/point") is not None:
            position = (_number(path, light.findtext("position/point/x"), f"traffic light {lid} x"),
                        _number(path, light.findtext("position/point/y"), f"traffic light {lid} y"))
        elif referencing:
            end = centers[referencing[0]][-1]
            position = (float(end[0]), float(end[1]))
        else:
            raise BadInput(f"{path}: traffic light {lid} has no position and no lanelet references it")
        lights.append(TrafficLight(lid, position, referencing))
    return RoadMap(lanes=tuple(lanes), crosswalks=tuple(crosswalks), traffic_lights=tuple(lights))


def _polyline(path: Path, lanelet: ET.Element, bound: str, lid: str) -> np.ndarray:
    """(K, 2) points of a lanelet bound."""
    values = pd.to_numeric(pd.Series([p.findtext(axis) for p in lanelet.findall(f"{bound}/point")
                                      for axis in ("x", "y")], dtype=object), errors="coerce")
    xy = values.to_numpy(np.float64).reshape(-1, 2)
    if len(xy) < 2 or not np.all(np.isfinite(xy)):
        raise BadInput(f"{path}: lanelet {lid}: {bound} needs at least 2 points with numeric x and y")
    return xy


def _tags(root: ET.Element) -> set[str]:
    """Scenario tags in lower snake_case, from <scenarioTags> (2020a) or the `tags` attribute (2018b)."""
    raw = [child.tag for node in root.findall("scenarioTags") for child in node]
    raw += (root.get("tags") or "").split()
    return {_snake(tag) for tag in raw if tag.strip()}


def _snake(text: str) -> str:
    """`turnLeft`, `turn-left`, `Turn Left` -> `turn_left`."""
    text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text.strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()


def _number(where: Path | str, text: str | None, what: str) -> float:
    try:
        value = float(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadInput(f"{where}: {what} must be a number, got {text!r}") from None
    if not np.isfinite(value):
        raise BadInput(f"{where}: {what} must be finite, got {text!r}")
    return value
