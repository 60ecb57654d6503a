"""CommonRoad importer: the real NGSIM scenarios, crafted XML, and the catalog end to end."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios.importers import commonroad
from tests.scenarios.importers._data import check_catalog_round_trip, data_dir, ego_to_world

TAGS = {
    "USA_Lanker-1_1_T-1": {"urban", "multi_lane", "oncoming_traffic", "intersection", "lane_following", "comfort",
                           "speed_limit"},
    "USA_Peach-4_8_T-1": {"urban", "intersection", "turn_left", "speed_limit", "multi_lane", "oncoming_traffic",
                          "comfort", "traffic_light"},
    "USA_US101-3_3_T-1": {"critical", "parallel_lanes", "interstate", "lane_change", "multi_lane",
                          "no_oncoming_traffic"},
}


@pytest.fixture
def traj_data() -> Path:
    return data_dir() / "scenarios" / "commonroad_ngsim"


def _states(path: Path) -> dict[tuple[str, int], tuple[float, float, float, float]]:
    """(obstacle id, step) -> (x, y, orientation, speed), read independently of the importer."""
    root = ET.parse(path).getroot()
    found = {}
    for obstacle in [*root.iter("obstacle"), *root.iter("dynamicObstacle")]:
        for state in [*obstacle.findall("initialState"), *obstacle.findall("trajectory/state")]:
            found[(obstacle.get("id"), int(state.findtext("time/exact")))] = tuple(float(state.findtext(p)) for p in (
                "position/point/x", "position/point/y", "orientation/exact", "velocity/exact"))
    return found


@pytest.mark.realdata
@pytest.mark.parametrize("benchmark_id", sorted(TAGS))
def test_real_scenario_matches_the_xml(traj_data: Path, benchmark_id: str) -> None:
    path = traj_data / f"{benchmark_id}.xml"
    states = _states(path)
    (log,) = commonroad.read(path)
    assert log.name == benchmark_id and log.source == "commonroad"
    assert log.tags == TAGS[benchmark_id]
    steps = sorted({step for _, step in states})
    assert [f.timestamp_ns for f in log.frames] == [step * 100_000_000 for step in steps]  # 0.1 s steps
    assert sum(len(f.track_ids) for f in log.frames) == len(states)
    assert {t for f in log.frames for t in f.track_ids} == {oid for oid, _ in states}
    xy = np.array([s[:2] for s in states.values()])
    pose = log.frames[0].ego_pose
    assert all(f.ego_pose == pose for f in log.frames)
    np.testing.assert_allclose(pose, [*xy.mean(axis=0), 0.0, 0.0], atol=1e-9)
    for frame in (log.frames[0], log.frames[len(log.frames) // 2], log.frames[-1]):
        step = round(frame.timestamp_ns / 100_000_000)
        expected = np.array([states[(oid, step)] for oid in frame.track_ids])
        np.testing.assert_allclose(ego_to_world(frame.boxes[:, :2], frame.ego_pose), expected[:, :2], atol=1e-6)
        np.testing.assert_allclose(frame.boxes[:, 6], expected[:, 2], atol=1e-9)
        np.testing.assert_allclose(np.hypot(*frame.velocities_mps.T), expected[:, 3], atol=1e-9)
        assert set(frame.classes) == {"vehicle"}
        np.testing.assert_allclose(frame.boxes[:, 2], 0.8)


@pytest.mark.realdata
def test_peach_traffic_lights_and_intersection_lanes(traj_data: Path) -> None:
    path = traj_data / "USA_Peach-4_8_T-1.xml"
    root = ET.parse(path).getroot()
    (log,) = commonroad.read(path)
    lights = {light.light_id: light for light in log.road_map.traffic_lights}
    assert set(lights) == {"43918", "43919", "43920", "43921"}
    assert lights["43918"].position_m == pytest.approx((13.6179, -13.3698))
    assert set(lights["43920"].lane_ids) == {"43349", "43208", "43343"}
    crossing = {ref.get("ref") for tag in ("successorsLeft", "successorsRight", "successorsStraight")
                for ref in root.iter(tag)}
    assert {lane.lane_id for lane in log.road_map.lanes if lane.is_intersection} == crossing
    lanelet = root.find("lanelet")
    left = np.array([[float(p.findtext("x")), float(p.findtext("y"))] for p in lanelet.findall("leftBound/point")])
    right = np.array([[float(p.findtext("x")), float(p.findtext("y"))] for p in lanelet.findall("rightBound/point")])
    np.testing.assert_allclose(log.road_map.lanes[0].centerline_m, (left + right) / 2)


def _scenario(obstacles: str, extra: str = "", attributes: str = 'timeStepSize="0.5"') -> str:
    lanelet = ('<lanelet id="7"><leftBound><point><x>0</x><y>1</y></point><point><x>10</x><y>1</y></point>'
               '</leftBound><rightBound><point><x>0</x><y>-1</y></point><point><x>10</x><y>-1</y></point>'
               '</rightBound><trafficLightRef ref="9"/></lanelet>')
    return (f'<commonRoad benchmarkID="CRAFT-1" commonRoadVersion="2020a" {attributes}>'
            f"{lanelet}{obstacles}{extra}</commonRoad>")


def _obstacle(oid: str, kind: str = "car", states: tuple[tuple[float, float, float, int], ...] = ((0, 0, 0, 0),),
              shape: str = "<rectangle><length>4</length><width>2</width></rectangle>",
              tag: str = "dynamicObstacle") -> str:
    def state(x: float, y: float, yaw: float, t: int) -> str:
        return (f"<position><point><x>{x}</x><y>{y}</y></point></position><orientation><exact>{yaw}</exact>"
                f"</orientation><time><exact>{t}</exact></time><velocity><exact>2.0</exact></velocity>")
    first, *rest = states
    trajectory = "".join(f"<state>{state(*s)}</state>" for s in rest)
    return (f'<{tag} id="{oid}"><type>{kind}</type><shape>{shape}</shape><initialState>{state(*first)}</initialState>'
            f"{f'<trajectory>{trajectory}</trajectory>' if rest else ''}</{tag}>")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "craft.xml"
    path.write_text(text)
    return path


def test_crafted_classes_shapes_static_obstacles_and_tags(tmp_path: Path) -> None:
    obstacles = (_obstacle("1", "bicycle", ((0, 0, 0.5, 0), (1, 0, 0.5, 1)))
                 + _obstacle("2", "pedestrian", ((4, 4, 0, 1),), "<circle><radius>0.3</radius></circle>")
                 + _obstacle("3", "parkedVehicle", tag="staticObstacle"))
    tags = ("<scenarioTags><TrafficJam/><turnLeft/></scenarioTags>"
            "<trafficLight id='9'><active>true</active></trafficLight>")
    (log,) = commonroad.read(_write(tmp_path, _scenario(obstacles, tags)))
    assert log.name == "CRAFT-1"
    assert log.tags == {"traffic_jam", "turn_left", "traffic_light"}
    assert [f.timestamp_ns for f in log.frames] == [0, 500_000_000]
    assert log.frames[0].track_ids == ["1", "3"] and log.frames[1].track_ids == ["1", "2", "3"]
    assert log.frames[1].classes == ["cyclist", "pedestrian", "vehicle"]
    np.testing.assert_allclose(log.frames[1].boxes[:, 2:6], [[0.85, 4, 2, 1.7], [0.875, 0.6, 0.6, 1.75],
                                                             [0.8, 4, 2, 1.6]])
    np.testing.assert_allclose(log.frames[0].velocities_mps[0], [2 * np.cos(0.5), 2 * np.sin(0.5)])
    (light,) = log.road_map.traffic_lights
    assert light.position_m == (10.0, 0.0) and light.lane_ids == ("7",)  # end of the referencing lanelet


def test_2018b_layout_and_attribute_tags(tmp_path: Path) -> None:
    obstacle = _obstacle("5", tag="obstacle").replace("<type>", "<role>dynamic</role><type>")
    text = _scenario(obstacle, attributes='timeStepSize="0.1" tags="Lane-Change urban"')
    (log,) = commonroad.read(_write(tmp_path, text))
    assert log.tags == {"lane_change", "urban"}
    assert log.frames[0].track_ids == ["5"]


@pytest.mark.parametrize(("text", "expected"), [
    (_scenario(_obstacle("1"))[:300], "not a readable XML file"),
    ("<notCommonRoad/>", "root element is <notCommonRoad>"),
    (_scenario(_obstacle("1"), attributes=""), "timeStepSize must be a number, got None"),
    (_scenario(_obstacle("1", "spaceship")), "obstacle '1': unknown obstacle type 'spaceship'"),
    (_scenario(_obstacle("1") + _obstacle("1")), "obstacle '1' has more than one state at time step 0"),
    (_scenario(_obstacle("1", states=((0, 0, 0, 0), ("nan", 0, 0, 1)))), "obstacle '1': state 1 (0 is the initialState) lacks a point position x"),
    (_scenario(_obstacle("1", states=((0, 0, 0, 0), ("abc", 0, 0, 1)))), "has a non-number there ('abc')"),
    (_scenario(_obstacle("1", shape="<polygon/>")), "shape must be a rectangle or circle"),
    (_scenario(""), "the scenario has no obstacles"),
    (_scenario(_obstacle("1"), "<trafficLight id='4'/>"), "traffic light 4 has no position"),
    (_scenario(_obstacle("1")).replace("<point><x>10</x><y>1</y></point>", "<point><x>5</x><y>1</y></point>"
                                       "<point><x>10</x><y>1</y></point>"), "lanelet 7: left bound has 3 points"),
])
def test_bad_files_are_refused_naming_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(BadInput, match=re.escape(str(path))) as error:
        commonroad.read(path)
    assert expected in str(error.value)


def test_missing_file_and_empty_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="absent.xml: missing"):
        commonroad.read(tmp_path / "absent.xml")
    with pytest.raises(BadInput, match="no CommonRoad .xml files"):
        commonroad.read(tmp_path)


@pytest.mark.realdata
def test_catalog_end_to_end(traj_data: Path, workspace) -> None:
    path = traj_data / "USA_Peach-4_8_T-1.xml"
    (log,) = commonroad.read(path)
    check_catalog_round_trip(workspace, log, commonroad.NAME, commonroad.VERSION, str(path), frame_index=30)
