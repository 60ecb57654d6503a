"""Rule-based miners that tag windows of logs (one module per miner).

Each miner module has NAME (its tag), VERSION (bumped when its definition changes) and
`mine(log, arrays=None) -> list[Window]`; its docstring states the definition exactly. `MINERS` is a
plain dict, so the set of miners is visible here and nowhere else.

`mine_log` turns one log's windows into `NewScenario`s with provenance ("miner", NAME, VERSION);
`mine_catalog` runs them over a catalog's logs. Scenario ids are hashes of (log, start, end), so
mining again adds nothing new: existing windows merge.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from types import ModuleType

from tqdm import tqdm

from andon.errors import BadInput
from andon.scenarios.catalog import Catalog, NewScenario
from andon.scenarios.miners import (
    cut_in,
    dense_traffic,
    high_speed,
    intersection,
    night,
    pedestrian_crossing,
    stationary,
    traffic_light,
    vru_near,
)
from andon.scenarios.miners.arrays import AnyLog, LogArrays
from andon.scenarios.miners.windows import Window, mask_to_windows
from andon.scenarios.records import Log, Provenance

MINERS: dict[str, ModuleType] = {
    module.NAME: module
    for module in (intersection, traffic_light, pedestrian_crossing, cut_in, vru_near, dense_traffic,
                   high_speed, stationary, night)
}

__all__ = ["MINERS", "Window", "mask_to_windows", "mine_catalog", "mine_log", "mine_windows", "provenance",
           "resolve"]


def resolve(names: str | Iterable[str] | None = None) -> list[str]:
    """Miner names to run, in registry order; all when `names` is None.

    Raises:
        BadInput: a name is not a miner; the message lists the valid ones.
    """
    if names is None:
        return list(MINERS)
    wanted = list(dict.fromkeys([names] if isinstance(names, str) else names))
    unknown = [name for name in wanted if name not in MINERS]
    if unknown:
        raise BadInput(f"unknown miner {', '.join(map(repr, unknown))}: choose from {', '.join(MINERS)}")
    return [name for name in MINERS if name in wanted]


def provenance(name: str) -> Provenance:
    """Who mined a window: ("miner", NAME, VERSION)."""
    module = MINERS[name]
    return Provenance("miner", module.NAME, module.VERSION)


def mine_windows(log: AnyLog, names: Iterable[str] | None = None) -> dict[str, list[Window]]:
    """Each selected miner's windows of one log (the log's arrays are built once for all)."""
    selected = resolve(names)
    arrays = LogArrays.of(log)
    return {name: MINERS[name].mine(log, arrays) for name in selected}


def mine_log(log: Log, names: Iterable[str] | None = None) -> list[NewScenario]:
    """One NewScenario per mined window, tagged with its miner's NAME and attributed to it."""
    found = mine_windows(log, names)
    return [NewScenario(log.log_id, w.t_start_ns, w.t_end_ns, frozenset({name}), provenance(name))
            for name, windows in found.items() for w in windows]


def mine_catalog(catalog: Catalog, names: Iterable[str] | None = None, log_ids: Iterable[str] | None = None,
                 progress: bool = True) -> dict[str, int]:
    """Mine every log (or `log_ids`) of a catalog and add the windows; returns windows found per miner.

    Logs stream one at a time (only annotations are read, never lidar); each log's windows are added in
    one transaction, so an interrupted run leaves whole logs mined and rerunning completes it.

    Raises:
        BadInput: an unknown miner name or log id.
    """
    selected = resolve(names)
    ids = catalog.logs() if log_ids is None else list(log_ids)
    counts = dict.fromkeys(selected, 0)
    for log_id in tqdm(ids, desc="mining", unit="log", file=sys.stderr, disable=None if progress else True):
        items = mine_log(catalog.log(log_id), selected)
        for item in items:
            counts[item.provenance.name] += 1
        catalog.add_scenarios(items)
    return counts
