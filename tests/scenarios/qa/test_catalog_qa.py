"""score_catalog through a real catalog: scores written per scenario, curator overrides kept."""

from __future__ import annotations

import math

import pytest

from andon.errors import BadInput
from andon.scenarios import Catalog, NewScenario, Provenance
from andon.scenarios.qa import score_catalog
from andon.workspace import Workspace
from tests.scenarios.qa._scenes import make_scene, shift_along_road

MINER = Provenance("miner", "test-windows", "1")


def _add(catalog: Catalog, log, source_tag: str) -> tuple[str, list[str]]:
    """Import a log and add two 1.5 s windows; return the log id and the windows' ids in time order."""
    log_id, _ = catalog.add_log(log, Provenance("import", log.source, "1"), log.name)
    t0 = log.frames[0].timestamp_ns
    windows = [NewScenario(log_id, t0, t0 + 1_499_999_999, frozenset({source_tag}), MINER),
               NewScenario(log_id, t0 + 1_500_000_000, log.frames[-1].timestamp_ns, frozenset({source_tag}), MINER)]
    catalog.add_scenarios(windows)
    ids = [s.scenario_id for s in sorted(catalog.search(f"log:{log_id} tag:{source_tag}"), key=lambda s: s.t_start_ns)]
    return log_id, ids


@pytest.fixture
def catalog(workspace: Workspace) -> Catalog:
    catalog = Catalog(workspace)
    yield catalog
    catalog.close()


def _corrupt_log():
    scene = make_scene(n_frames=30)
    shift_along_road(scene, 20, "car", 0.0, 3.0)  # in the second window
    return scene.log(seed=1)


def test_every_scenario_is_scored_and_details_name_the_flagged_box(catalog: Catalog) -> None:
    clean_id, _ = _add(catalog, make_scene(n_frames=30).log(seed=0), "clean")
    bad_id, _ = _add(catalog, _corrupt_log(), "bad")
    assert catalog.count("qa:none") == 6  # two whole-log scenarios and four windows
    assert score_catalog(catalog, progress=False) == 6
    assert catalog.count("qa:none") == 0
    assert {s.qa_score for s in catalog.search(f"log:{clean_id}")} == {1.0}
    bad = sorted(catalog.search(f"log:{bad_id} tag:bad"), key=lambda s: s.t_start_ns)
    assert bad[0].qa_score == 1.0 and bad[1].qa_score < 1.0
    items = bad[1].qa_details["jitter"]["items"]
    assert [(i["frame_index"], i["track_id"]) for i in items] == [(20, "car")]
    whole = catalog.search(f"log:{bad_id} -tag:bad")
    assert len(whole) == 1 and whole[0].qa_score < 1.0  # the whole-log scenario sees the same box
    assert catalog.search("qa<1") and {s.log_id for s in catalog.search("qa<1")} == {bad_id}


def test_a_query_scores_only_its_matches(catalog: Catalog) -> None:
    clean_id, clean_windows = _add(catalog, make_scene(n_frames=30).log(seed=0), "clean")
    _add(catalog, _corrupt_log(), "bad")
    assert score_catalog(catalog, "tag:clean", progress=False) == 2
    assert {s.scenario_id for s in catalog.search("qa>=0")} == set(clean_windows)
    assert score_catalog(catalog, f"log:{clean_id}", progress=False) == 3
    assert score_catalog(catalog, "tag:nothing-has-this", progress=False) == 0
    with pytest.raises(BadInput, match="not understood"):
        score_catalog(catalog, "bogus", progress=False)


def test_a_curator_override_survives_rescoring(catalog: Catalog) -> None:
    _, (first, second) = _add(catalog, _corrupt_log(), "bad")
    score_catalog(catalog, "tag:bad", progress=False)
    computed = catalog.scenario(second).qa_score
    assert computed < 1.0
    catalog.override_qa(second, 0.95, "the jump is a real swerve: checked the video", "ada")
    assert score_catalog(catalog, "tag:bad", progress=False) == 2
    kept = catalog.scenario(second)
    assert kept.qa_score == 0.95
    assert kept.qa_details["override"]["computed_score"] == pytest.approx(computed)
    assert kept.qa_details["computed"]["jitter"]["count"] == 1
    assert catalog.scenario(first).qa_score == 1.0 and not math.isnan(catalog.scenario(first).qa_score)
