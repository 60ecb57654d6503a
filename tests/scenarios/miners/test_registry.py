"""The miner registry and runners: mine_log, mine_catalog on a real catalog, idempotence, bad names."""

from __future__ import annotations

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios import Catalog, Provenance
from andon.scenarios.miners import MINERS, mine_catalog, mine_log, resolve
from andon.simulation.ground_truth import BEHAVIOUR_TAGS
from tests.scenarios.miners._logs import agent, ego_from_speeds, imported, make_log, ns, town_map

N = 61


def _drive() -> object:
    """20 m/s for 3 s then stopped for 3 s, a cyclist alongside for the first second, at night."""
    poses = ego_from_speeds(np.r_[np.full(30, 20.0), np.zeros(31)])
    xy = np.full((N, 2), np.nan)
    xy[:11] = [4.0, 3.0]
    return make_log(poses, {"bike": agent("cyclist", xy)}, meta={"conditions": {"night": True}})


def test_every_behaviour_tag_has_a_miner_with_a_version() -> None:
    assert set(MINERS) == set(BEHAVIOUR_TAGS)
    for name, module in MINERS.items():
        assert name == module.NAME and isinstance(module.VERSION, str) and module.VERSION
        assert module.__doc__ and "Definition" in module.__doc__


def test_mine_log_tags_each_window_with_its_miner() -> None:
    log = _drive()
    found = {(next(iter(s.tags)), s.t_start_ns, s.t_end_ns): s for s in mine_log(log)}
    assert set(found) == {("high_speed", ns(0.0), ns(2.9)), ("stationary", ns(3.1), ns(6.0)),
                          ("night", ns(0.0), ns(6.0)), ("vru_near", ns(0.0), ns(1.0))}
    assert found["night", ns(0.0), ns(6.0)].provenance == Provenance("miner", "night", MINERS["night"].VERSION)
    assert all(s.log_id == log.log_id for s in found.values())
    assert [s.tags for s in mine_log(log, ["stationary"])] == [frozenset({"stationary"})]


def test_unknown_miner_names_are_refused_with_the_valid_ones() -> None:
    with pytest.raises(BadInput, match=r"unknown miner 'tailgating'.*intersection.*night"):
        resolve(["stationary", "tailgating"])
    with pytest.raises(BadInput, match="tailgating"):
        mine_log(_drive(), ["tailgating"])
    assert resolve(["night", "stationary", "night"]) == ["stationary", "night"]  # registry order, once
    assert resolve("night") == ["night"]


def test_mine_catalog_adds_windows_and_is_idempotent(workspace) -> None:
    catalog = Catalog(workspace)
    log_id, _ = catalog.add_log(imported(_drive()), Provenance("import", "test", "1"), "drive")
    before = catalog.count()
    counts = mine_catalog(catalog, progress=False)
    assert counts == {**dict.fromkeys(MINERS, 0), "high_speed": 1, "stationary": 1, "night": 1, "vru_near": 1}
    assert catalog.count() == before + 3  # the night window is the whole log: it merges into the import's
    (stop,) = catalog.search("tag:stationary")
    assert (stop.log_id, stop.t_start_ns, stop.t_end_ns) == (log_id, ns(3.1), ns(6.0))
    assert stop.provenance == Provenance("miner", "stationary", MINERS["stationary"].VERSION)
    (whole,) = catalog.search("tag:night")
    assert whole.tags == {"test", "night"}

    assert mine_catalog(catalog, progress=False) == counts  # mining again finds the same ...
    assert catalog.count() == before + 3  # ... and adds nothing
    assert mine_catalog(catalog, names=["high_speed"], log_ids=[log_id], progress=False) == {"high_speed": 1}
    with pytest.raises(BadInput, match="no log"):
        mine_catalog(catalog, log_ids=["nope-0000000000"], progress=False)
    with pytest.raises(BadInput, match="unknown miner"):
        mine_catalog(catalog, names=["nope"], progress=False)
    catalog.close()


def test_degenerate_logs_mine_without_error() -> None:
    for log in (make_log(np.zeros((1, 4)), road_map=town_map()), make_log(np.zeros((5, 4))),
                make_log(ego_from_speeds(np.full(3, 20.0)), {"bike": agent("cyclist", np.tile([1.0, 0.0], (3, 1)))},
                         town_map())):
        found = mine_log(log)
        assert all(s.t_start_ns <= s.t_end_ns for s in found)
