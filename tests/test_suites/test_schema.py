"""Suite files: the schema refuses typos, bad values and a tampered pinned list, naming the key."""

from __future__ import annotations

import pytest
import yaml

from andon.errors import BadInput
from andon.test_suites.schema import frozen_sha256, load_suite, suite_from_config, suite_names
from tests.test_suites.helpers import suite_doc


def _check(**changes):
    check = dict(suite_doc()["checks"][0])
    check.update(changes)
    return suite_doc(checks=[check])


def test_a_valid_suite_loads_into_a_frozen_record():
    suite = suite_from_config(suite_doc())
    assert suite.name == "unit" and suite.selector.kind == "query" and suite.selector.query == "tag:synthetic"
    (check,) = suite.checks
    assert (check.metric, check.comparator, check.threshold, check.blocking) == ("detection_recall", ">=", 0.8, True)
    assert check.filters.classes == ("vehicle",) and check.filters.max_range_m == 50.0 and check.mode is None
    assert len(suite.sha256) == 64 and suite.sha256 == suite_from_config(suite_doc()).sha256
    with pytest.raises(AttributeError):
        suite.name = "other"  # type: ignore[misc]


def test_a_typo_key_fails_naming_it():
    doc = suite_doc()
    doc["checks"][0]["treshold"] = 0.5
    with pytest.raises(BadInput, match="treshold"):
        suite_from_config(doc)
    with pytest.raises(BadInput, match="ownr"):
        suite_from_config({**suite_doc(), "ownr": "x"})
    with pytest.raises(BadInput, match="max_rnage_m"):
        suite_from_config(_check(filters={"max_rnage_m": 3.0}))


@pytest.mark.parametrize(("changes", "key"), [
    ({"comparator": "=>"}, "comparator"), ({"severity": "fatal"}, "severity"), ({"scope": "global"}, "scope"),
    ({"mode": "half_loop"}, "mode"), ({"threshold": "high"}, "threshold"), ({"name": "has space"}, "name"),
    ({"filters": {"classes": ["truck"]}}, "classes"), ({"filters": {"max_range_m": -1.0}}, "max_range_m"),
    ({"filters": {"min_range_m": 30.0, "max_range_m": 10.0}}, "min_range_m"),
    ({"filters": {"involved_tag": "cut_in"}, "metric": "detection_precision"}, "involved_tag"),
    ({"params": {"match_distance": 1.0}}, "match_distance"),
])
def test_bad_values_fail_naming_the_key(changes, key):
    with pytest.raises(BadInput, match=key):
        suite_from_config(_check(**changes))


def test_selector_needs_exactly_one_kind_and_a_valid_query():
    with pytest.raises(BadInput, match="exactly one of query, ids, frozen"):
        suite_from_config(suite_doc(selector={"query": "tag:a", "ids": ["x"]}))
    with pytest.raises(BadInput, match="exactly one"):
        suite_from_config(suite_doc(selector={}))
    with pytest.raises(BadInput, match="bogus"):
        suite_from_config(suite_doc(selector={"query": "bogus:term"}))
    with pytest.raises(BadInput, match="appears twice"):
        suite_from_config(suite_doc(selector={"ids": ["a", "a"]}))


def test_a_frozen_list_is_pinned_by_its_hash():
    ids = ["scn-b", "scn-a"]
    suite = suite_from_config(suite_doc(selector={"frozen": {"ids": ids, "sha256": frozen_sha256(ids)}}))
    assert suite.selector.kind == "frozen" and suite.selector.ids == ("scn-b", "scn-a")
    with pytest.raises(BadInput, match="does not match the pinned ids") as caught:
        suite_from_config(suite_doc(selector={"frozen": {"ids": [*ids, "scn-c"], "sha256": frozen_sha256(ids)}}))
    assert frozen_sha256([*ids, "scn-c"]) in str(caught.value)  # says what the pin would be


def test_no_checks_and_duplicate_names_are_refused():
    with pytest.raises(BadInput, match="at least one check"):
        suite_from_config(suite_doc(checks=[]))
    check = suite_doc()["checks"][0]
    with pytest.raises(BadInput, match="unique"):
        suite_from_config(suite_doc(checks=[check, check]))


def test_an_unknown_metric_loads_so_that_the_run_fails_it():
    suite = suite_from_config(_check(metric="telepathy"))
    assert suite.checks[0].metric == "telepathy"


def test_files_by_path_and_by_name(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(suite_doc(name="mine")))
    assert load_suite(str(path)).name == "mine"
    with pytest.raises(BadInput, match="no suite file"):
        load_suite(str(tmp_path / "absent.yaml"))
    with pytest.raises(BadInput, match="no suite 'absent'"):
        load_suite("absent")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(BadInput, match="mapping"):
        load_suite(str(tmp_path / "list.yaml"))


def test_every_shipped_suite_loads_and_the_dag_s_suites_exist():
    from andon.test_suites.metrics import METRICS
    from tests.conftest import REPO_ROOT

    names = suite_names()
    dag = yaml.safe_load((REPO_ROOT / "configs" / "dag" / "default.yaml").read_text())
    wanted = {s for node in dag["nodes"].values() for s in node.get("suites", [])}
    assert wanted <= set(names), f"configs/dag/default.yaml names suites that do not exist: {wanted - set(names)}"
    assert "pedestrian_crossings" in names
    for name in names:
        suite = load_suite(name)
        assert suite.name == name and suite.description and suite.owner
        assert all(c.metric in METRICS for c in suite.checks), name
