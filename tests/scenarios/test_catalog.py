"""The catalog on a real SQLite file in a real workspace."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from andon.errors import BadInput
from andon.scenarios import Catalog, NewScenario, Provenance
from andon.scenarios.catalog import scenario_id_for
from tests.helpers import make_log

IMPORT = Provenance("import", "test", "1", curator="ada")


def test_import_creates_log_and_whole_log_scenario(workspace):
    catalog = Catalog(workspace)
    log_id, created = catalog.add_log(make_log(tags=frozenset({"night"})), IMPORT, "drive")
    assert created
    assert catalog.logs() == [log_id]
    (whole,) = catalog.search("")
    assert whole.log_id == log_id
    assert whole.tags == {"test", "night"}
    assert (whole.t_start_ns, whole.t_end_ns) == (1_000_000_000, 2_900_000_000)
    assert math.isnan(whole.qa_score)
    assert whole.provenance == IMPORT


def test_same_log_twice_is_a_noop(workspace):
    catalog = Catalog(workspace)
    first = catalog.add_log(make_log(), IMPORT, "drive")
    second = catalog.add_log(make_log(), IMPORT, "drive")
    assert first[0] == second[0] and first[1] and not second[1]
    assert catalog.count("") == 1


def test_log_round_trips_frames_and_points(workspace):
    imported = make_log(seed=3)
    catalog = Catalog(workspace)
    log_id, _ = catalog.add_log(imported, IMPORT, "drive")
    log = Catalog(workspace).log(log_id)
    assert len(log.frames) == len(imported.frames)
    for k in (0, 7, -1):
        got, want = log.frames[k], imported.frames[k]
        assert got.timestamp_ns == want.timestamp_ns
        assert got.ego_pose == want.ego_pose
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.points, want.points)
        assert got.classes == want.classes and got.track_ids == want.track_ids


def test_log_id_is_a_content_hash(workspace):
    catalog = Catalog(workspace)
    a, _ = catalog.add_log(make_log(seed=1), IMPORT, "a")
    b, _ = catalog.add_log(make_log(seed=2), IMPORT, "b")
    assert a != b and a.startswith("test-")


def test_windows_tags_merge_and_prefix_lookup(workspace):
    catalog = Catalog(workspace)
    log_id, _ = catalog.add_log(make_log(), IMPORT, "drive")
    miner = Provenance("miner", "cut_in", "2")
    created, merged = catalog.add_scenarios([
        NewScenario(log_id, 1_200_000_000, 1_800_000_000, frozenset({"cut_in"}), miner),
        NewScenario(log_id, 1_200_000_000, 1_800_000_000, frozenset({"dense_traffic"}), miner),
    ])
    assert (created, merged) == (1, 1)
    sid = scenario_id_for(log_id, 1_200_000_000, 1_800_000_000)
    assert catalog.scenario(sid[:8]).tags == {"cut_in", "dense_traffic"}
    assert catalog.scenario(sid).provenance.name == "cut_in"
    assert [s.scenario_id for s in catalog.search("tag:cut_in")] == [sid]


def test_window_outside_log_or_unknown_log_is_refused_and_nothing_written(workspace):
    catalog = Catalog(workspace)
    log_id, _ = catalog.add_log(make_log(), IMPORT, "drive")
    curator = Provenance("curator", "ada")
    with pytest.raises(BadInput, match="outside log"):
        catalog.add_scenarios([NewScenario(log_id, 1_000_000_000, 1_500_000_000, frozenset(), curator),
                               NewScenario(log_id, 0, 5_000_000_000, frozenset(), curator)])
    with pytest.raises(BadInput, match="unknown log"):
        catalog.add_scenarios([NewScenario("nope", 0, 1, frozenset(), curator)])
    assert catalog.count("status:any") == 1


def test_search_language(workspace):
    catalog = Catalog(workspace)
    a, _ = catalog.add_log(make_log("a", seed=1, source="av2", tags=frozenset({"intersection"})), IMPORT, "a")
    b, _ = catalog.add_log(make_log("b", seed=2, source="kitti", tags=frozenset({"night"})), IMPORT, "b")
    sa = catalog.search("source:av2")[0].scenario_id
    sb = catalog.search("source:kitti")[0].scenario_id
    catalog.set_qa({sa: (0.95, {"empty_boxes": 0}), sb: (0.4, {"empty_boxes": 3})})
    assert [s.log_id for s in catalog.search("tag:intersection qa>=0.8 source:av2 -tag:night")] == [a]
    assert [s.log_id for s in catalog.search("qa<0.5")] == [b]
    assert [s.log_id for s in catalog.search("-source:av2")] == [b]
    assert len(catalog.search("source:av2 source:kitti")) == 2
    assert catalog.search("tag:intersection tag:night") == []
    assert len(catalog.search("duration>=1.9")) == 2 and catalog.search("duration>2") == []
    assert catalog.search(f"log:{b[:10]}")[0].log_id == b
    assert catalog.search(f"log:{b[:10]}", limit=1, offset=1) == []
    catalog.retire(sa, "labels wrong")
    assert [s.log_id for s in catalog.search("")] == [b]
    assert [s.log_id for s in catalog.search("status:retired")] == [a]
    assert catalog.count("status:any") == 2


@pytest.mark.parametrize("bad", ["qa>=high", "colour:red", "tag:", "status:gone", "qa>=nan", "-log:x"])
def test_bad_query_terms_name_the_term(workspace, bad):
    with pytest.raises(BadInput, match="query term"):
        Catalog(workspace).search(bad)


def test_tag_add_remove_and_bad_tags(workspace):
    catalog = Catalog(workspace)
    catalog.add_log(make_log(), IMPORT, "drive")
    sid = catalog.search("")[0].scenario_id
    assert catalog.tag(sid, add=["night"], remove=["test"]).tags == {"night"}
    for bad in ["has space", "a:b", "", "-x"]:
        with pytest.raises(BadInput, match="bad tag"):
            catalog.tag(sid, add=[bad])
    assert catalog.scenario(sid).tags == {"night"}


def test_qa_scores_are_validated(workspace):
    catalog = Catalog(workspace)
    catalog.add_log(make_log(), IMPORT, "drive")
    sid = catalog.search("")[0].scenario_id
    for bad in (1.5, -0.1, float("nan")):
        with pytest.raises(BadInput, match="QA score"):
            catalog.set_qa({sid: (bad, {})})
    assert math.isnan(catalog.scenario(sid).qa_score)


def test_retire_needs_a_reason(workspace):
    catalog = Catalog(workspace)
    catalog.add_log(make_log(), IMPORT, "drive")
    sid = catalog.search("")[0].scenario_id
    with pytest.raises(BadInput, match="reason"):
        catalog.retire(sid, "  ")
    assert catalog.scenario(sid).status == "active"


def test_stats(workspace):
    catalog = Catalog(workspace)
    catalog.add_log(make_log("a", seed=1, tags=frozenset({"night"})), IMPORT, "a")
    catalog.add_log(make_log("b", seed=2), IMPORT, "b")
    sid = catalog.search("tag:night")[0].scenario_id
    catalog.set_qa({sid: (1.0, {})})
    stats = catalog.stats()
    assert stats["logs"] == 2 and stats["frames"] == 40
    assert stats["scenarios"] == {"active": 2, "retired": 0}
    assert stats["tags"] == {"test": 2, "night": 1}
    assert stats["qa_histogram"]["0.9-1.0"] == 1 and stats["qa_unscored"] == 1
    catalog.retire(sid, "dup")
    assert catalog.stats()["tags"] == {"test": 1}


def test_export_is_deterministic(workspace, tmp_path):
    catalog = Catalog(workspace)
    catalog.add_log(make_log("a", seed=1), IMPORT, "a")
    first = [p.read_bytes() for p in catalog.export(tmp_path / "e1")]
    second = [p.read_bytes() for p in catalog.export(tmp_path / "e2")]
    assert first == second
    rows = [json.loads(line) for line in first[1].decode().splitlines()]
    assert rows[0]["tags"] == ["test"]


def test_unknown_ids_are_bad_input(workspace):
    catalog = Catalog(workspace)
    with pytest.raises(BadInput, match="no scenario"):
        catalog.scenario("deadbeef")
    with pytest.raises(BadInput, match="no log"):
        catalog.log("nope-123")


def test_qa_override_is_kept_with_reason_and_survives_rescoring(workspace):
    catalog = Catalog(workspace)
    catalog.add_log(make_log(), IMPORT, "drive")
    sid = catalog.search("")[0].scenario_id
    catalog.set_qa({sid: (0.3, {"teleport": {"count": 4}})})
    with pytest.raises(BadInput, match="reason"):
        catalog.override_qa(sid, 0.9, " ", "ada")
    overridden = catalog.override_qa(sid, 0.9, "teleports are a real U-turn", "ada")
    assert overridden.qa_score == 0.9
    assert overridden.qa_details["override"]["computed_score"] == 0.3
    assert "ada" in overridden.provenance.note and "U-turn" in overridden.provenance.note
    catalog.set_qa({sid: (0.25, {"teleport": {"count": 5}})})  # automatic rescoring keeps the curator's word
    again = catalog.scenario(sid)
    assert again.qa_score == 0.9 and again.qa_details["override"]["computed_score"] == 0.25
