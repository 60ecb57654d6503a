"""The ego's drive and the scripted cut-in.

The ego starts as the log's script says (scripts.LogScript): on the open road well before the first
junction (with the cut-in), waiting at a red light, or approaching a junction; on an arterial (where
it may exceed 15 m/s) or a local road; in the outer or the inner lane. It drives a route through the
grid: straight on, or right from the outer lane. It obeys the lights like everyone else (agents.step),
so it is sometimes stationary at a red light and sometimes crosses on green at speed.

The cut-in: a vehicle starts in the lane beside the ego, same direction, a little ahead, and wants
to go faster. When it is 6 - 28 m ahead (centre to centre) and both are on the same straight, far
enough from the next stop line to finish, it changes into the ego's lane over `cut_in_duration_s`
(agents.lateral_offset). Its path goes straight on at every junction, so the shifted path stays in
the ego's lane.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from andon.simulation.fleet.agents import EGO, STOP_SHORT_M, AgentState, Kinematics, Population
from andon.simulation.fleet.roads import JUNCTION_HALF_M, LANE_WIDTH_M, Road, RoadNetwork, sign
from andon.simulation.fleet.scripts import OPEN_ROAD, RED_LIGHT, LogScript

EGO_SIZE_M = (4.8, 1.95, 1.7)
RIGHT_TURN_PROBABILITY = 0.35
START_CLEAR_M = JUNCTION_HALF_M + 8.0  # the ego does not start in or right next to a junction box
OPEN_ROAD_M = (260.0, 340.0)  # open-road starts: this far before the first junction
SPEED_FACTOR = (0.95, 1.1)  # the ego's speed relative to the limit
CUT_IN_GAP_M = (6.0, 28.0)  # centre-to-centre distance ahead of the ego at which the cut-in starts
CUT_IN_START_AHEAD_M = (10.0, 18.0)  # how far ahead of the ego the cut-in vehicle starts, before the warm-up
CUT_IN_SPEED_GAIN = 1.1  # the cut-in vehicle drives this much faster than the ego
ALIGNED_COS = 0.999  # both on the same straight: paths parallel
ADJACENT_LANE_M = (3.0, 4.5)  # lateral distance of a vehicle one lane over


@dataclass(frozen=True, slots=True)
class EgoStart:
    road: Road
    d: int  # direction of travel
    along_m: float
    lane: int  # 0 outer, 1 inner
    speed_factor: float
    waiting_at: int | None = None  # the junction whose red light the ego starts waiting at


def choose_start(net: RoadNetwork, script: LogScript, rng: np.random.Generator) -> EgoStart:
    """Where the ego starts, heading towards a junction (see LogScript.start).

    Open road: on a road's run-in, 260 - 340 m before its first junction (room for a cut-in, and for
    speed on an arterial). Red light: standing at the stop line of a junction (the world
    then times that junction's light to have just turned red). Approach: anywhere from a block before
    the first junction to just before the last, out of the junction boxes, at speed.
    """
    roads = [r for r in net.roads if (r.index == net.arterial) == script.arterial]
    road = roads[int(rng.integers(len(roads)))]
    d = road.directions()[int(rng.integers(2))]
    stations = net.node_stations()
    first, last = (stations[0], stations[-1]) if sign(d) > 0 else (stations[-1], stations[0])
    run_in = (first - road.start_m) if sign(d) > 0 else (road.end_m - first)
    waiting_at = None
    if script.start == OPEN_ROAD:
        back = float(rng.uniform(min(OPEN_ROAD_M[0], run_in - 5.0), min(OPEN_ROAD_M[1], run_in - 5.0)))
        along = first - sign(d) * back
    elif script.start == RED_LIGHT:
        station = int(rng.integers(len(stations)))
        # Where a stopping vehicle comes to rest (agents.STOP_SHORT_M before the line), so it stands still.
        along = float(stations[station] - sign(d) * (JUNCTION_HALF_M + EGO_SIZE_M[0] / 2 + STOP_SHORT_M))
        waiting_at = net.node_on(road, station)
    else:
        lo, hi = sorted((first - sign(d) * min(net.block_m, run_in - 5.0), last - sign(d) * START_CLEAR_M))
        while True:  # rejection keeps the start out of junction boxes; a few tries at most
            along = float(rng.uniform(lo, hi))
            if np.min(np.abs(stations - along)) > START_CLEAR_M:
                break
    return EgoStart(road, d, along, 0 if script.outer_lane else 1, float(rng.uniform(*SPEED_FACTOR)), waiting_at)


@dataclass(frozen=True, slots=True)
class CutInScript:
    agent: int  # index of the cut-in vehicle
    earliest_s: float  # no cut-in before this time (log time, first frame = 0)
    latest_s: float  # nor one that would not finish before the log ends


def maybe_cut_in(script: CutInScript | None, population: Population, state: AgentState, kin: Kinematics,
                 nodes_xy_m: np.ndarray) -> AgentState:
    """Start the scripted lane change when the cut-in vehicle is placed for it; otherwise change nothing."""
    if script is None or not np.isinf(state.lane_change_start_s[script.agent]):
        return state
    if not script.earliest_s <= state.t_s <= script.latest_s:
        return state
    i = script.agent
    ego_dir = kin.direction[EGO]
    rel = kin.xy_m[i] - kin.xy_m[EGO]
    ahead = float(rel @ ego_dir)
    across = float(ego_dir[0] * rel[1] - ego_dir[1] * rel[0])
    aligned = float(kin.direction[i] @ ego_dir) > ALIGNED_COS
    in_junction = np.any(np.all(np.abs(kin.xy_m[[EGO, i]][:, None, :] - nodes_xy_m[None]) <= JUNCTION_HALF_M, axis=2))
    to_stop = population.stop_s_m[i] - state.s_m[i]
    room = float(np.min(to_stop[to_stop > 0], initial=np.inf))
    needs = state.v_mps[i] * state.lane_change_s + 5.0
    if (aligned and not in_junction and CUT_IN_GAP_M[0] <= ahead <= CUT_IN_GAP_M[1]
            and ADJACENT_LANE_M[0] <= abs(across) <= ADJACENT_LANE_M[1] and room >= needs
            and state.v_mps[EGO] > 1.0):
        start = state.lane_change_start_s.copy()
        shift = state.lane_change_m.copy()
        start[i] = state.t_s
        shift[i] = -np.sign(across) * LANE_WIDTH_M  # towards the ego's lane (positive: to the vehicle's left)
        return replace(state, lane_change_start_s=start, lane_change_m=shift)
    return state


def cut_in_start(start: EgoStart, rng: np.random.Generator) -> tuple[float, int]:
    """(along [m], lane) where the cut-in vehicle starts: the other lane, a little ahead of the ego."""
    ahead = float(rng.uniform(*CUT_IN_START_AHEAD_M))
    return start.along_m + sign(start.d) * ahead, 1 - start.lane
