"""The parallel runner: order, the per-process stack cache, fail-closed errors, chunking, real local Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

from andon.dag.workers import Completion, SequentialWorker
from andon.errors import BadInput
from andon.scenarios.catalog import Catalog
from andon.simulation import runner, stack
from andon.simulation.replay import ReplayConfig
from andon.simulation.results import ScenarioSummary, summarize_scenario
from andon.simulation.runner import ReplayError, make_chunks, run_replays
from tests.simulation._sim_fleet import EVENTFUL_KW, copy_fleet, make_fleet_template


@pytest.fixture(scope="module")
def fleet_template(_workspace_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_fleet_template(_workspace_template, tmp_path_factory.mktemp("sim_runner") / "ws")


@pytest.fixture
def fleet(fleet_template: Path, tmp_path: Path):
    runner.clear_stack_cache()
    workspace = copy_fleet(fleet_template, tmp_path / "ws")
    with Catalog(workspace) as catalog:
        scenarios = catalog.search("")
    yield workspace, scenarios
    runner.clear_stack_cache()


def test_sequential_results_come_in_scenario_order_and_load_the_stack_once(fleet, tmp_path, monkeypatch):
    workspace, scenarios = fleet
    loads = []
    real = stack.load_stack
    monkeypatch.setattr(stack, "load_stack", lambda *a, **k: loads.append(a[1]) or real(*a, **k))
    given = list(reversed(scenarios))
    out = run_replays(workspace, given, [], ReplayConfig(**EVENTFUL_KW), SequentialWorker(), summarize_scenario,
                      tmp_path / "out", progress=False)
    assert [s.scenario_id for s in out] == [s.scenario_id for s in given]
    assert all(isinstance(s, ScenarioSummary) for s in out)
    assert loads == [[]]  # one load for four scenarios (four tasks in-process)
    again = run_replays(workspace, scenarios, [], ReplayConfig(**EVENTFUL_KW), SequentialWorker(), summarize_scenario,
                        tmp_path / "out2", progress=False)
    assert loads == [[]]  # the cache serves the next run of the same stack
    assert [s.to_dict() for s in again] == [s.to_dict() for s in reversed(out)]  # deterministic
    events = [e for s in out for e in s.events]
    assert events and all((tmp_path / "out" / e.picture).is_file() for e in events)


def test_a_scenario_that_raises_becomes_an_error_and_the_others_go_on(fleet, tmp_path, monkeypatch):
    workspace, scenarios = fleet
    from andon.simulation import replay

    bad = scenarios[1].scenario_id
    real = replay.replay_scenario

    def flaky(log, scenario, stack_, config):
        if scenario.scenario_id == bad:
            raise ValueError("the log is unreadable\nsecond line")
        return real(log, scenario, stack_, config)

    monkeypatch.setattr(replay, "replay_scenario", flaky)
    out = run_replays(workspace, scenarios, [], ReplayConfig(), SequentialWorker(), summarize_scenario, tmp_path,
                      progress=False)
    assert out[1] == ReplayError(bad, "ValueError: second line")
    assert [isinstance(o, ScenarioSummary) for o in out] == [True, False, True, True]


class ReversedWorker:
    """Runs everything at the first wait and hands the completions back in reverse; can kill one task."""

    name = "reversed"

    def __init__(self, kill: str | None = None) -> None:
        self.calls, self.kill = [], kill

    def submit(self, key, fn, resources, *args):
        self.calls.append((key, fn, args))

    def wait(self):
        done = [Completion(key, error="WorkerCrashedError: the worker died") if key == self.kill
                else Completion(key, value=fn(*args)) for key, fn, args in self.calls]
        self.calls = []
        return done[::-1]

    def shutdown(self):
        pass


def test_order_does_not_depend_on_completion_order_and_a_dead_task_fails_its_scenarios(fleet, tmp_path):
    workspace, scenarios = fleet
    worker = ReversedWorker(kill="chunk-0")
    out = run_replays(workspace, scenarios, [], ReplayConfig(), worker, summarize_scenario, tmp_path, progress=False,
                      chunks=2)
    chunk0 = {scenarios[i].scenario_id for i in make_chunks(scenarios, 2)[0]}
    assert [o.scenario_id for o in out] == [s.scenario_id for s in scenarios]
    for o in out:
        if o.scenario_id in chunk0:
            assert o == ReplayError(o.scenario_id, "WorkerCrashedError: the worker died")
        else:
            assert isinstance(o, ScenarioSummary)


def test_chunks_group_logs_and_are_deterministic(fleet):
    _, scenarios = fleet
    parts = make_chunks(scenarios, 3)
    assert sorted(i for part in parts for i in part) == list(range(len(scenarios)))
    assert [p.tolist() for p in parts] == [p.tolist() for p in make_chunks(list(scenarios), 3)]
    assert len(make_chunks(scenarios, 99)) == len(scenarios) and len(make_chunks(scenarios, 0)) == 1


def test_a_repeated_scenario_is_bad_input(fleet, tmp_path):
    workspace, scenarios = fleet
    with pytest.raises(BadInput, match="more than once"):
        run_replays(workspace, [scenarios[0], scenarios[0]], [], ReplayConfig(), SequentialWorker(),
                    summarize_scenario, tmp_path)
    assert run_replays(workspace, [], [], ReplayConfig(), SequentialWorker(), summarize_scenario, tmp_path) == []


def test_real_local_ray_gives_the_sequential_results(fleet, tmp_path):
    pytest.importorskip("ray")
    from andon.dag.workers import RayWorker

    workspace, scenarios = fleet
    config = ReplayConfig(**EVENTFUL_KW)
    sequential = run_replays(workspace, scenarios, [], config, SequentialWorker(), summarize_scenario,
                             tmp_path / "seq", progress=False)
    worker = RayWorker(num_cpus=2)
    try:
        on_ray = run_replays(workspace, scenarios, [], config, worker, summarize_scenario, tmp_path / "ray",
                             progress=False)
    finally:
        worker.shutdown()
    assert [o.to_dict() for o in on_ray] == [o.to_dict() for o in sequential]
    pictures = sorted(p.name for p in (tmp_path / "ray" / "pictures").iterdir())
    assert pictures == sorted(p.name for p in (tmp_path / "seq" / "pictures").iterdir()) and pictures
    for name in pictures:  # drawn in the Ray workers, the same bytes
        assert (tmp_path / "ray" / "pictures" / name).read_bytes() == (tmp_path / "seq" / "pictures" / name).read_bytes()
