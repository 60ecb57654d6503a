"""`andon tune`: search-space parsing, per-trial config composition, and one real sweep on local Ray."""

from __future__ import annotations

import json
import time

import pytest
from hydra import compose, initialize_config_module
from omegaconf import DictConfig

from andon.errors import EXIT_BAD_INPUT, EXIT_OK, BadInput
from andon.hydra_app import register_configs
from andon.models.registry import CANDIDATE, Registry
from andon.models.tune import (
    SWEEP_TAG,
    Sampler,
    base_config,
    check_space,
    parse_search_space,
    trial_config,
)
from andon.models.tune_cli import main, quote_search_space, translate_overrides
from tests.models.train_helpers import tiny_overrides

SPACE = "{optimizer.lr: loguniform(1e-4,1e-2), model.hidden_size: choice(32,64)}"


def compose_tune(overrides: list[str]) -> DictConfig:
    """The `tune` config composed as the app composes it (with the CLI's translation)."""
    register_configs()
    with initialize_config_module(config_module="andon.configs", version_base="1.3"):
        return compose(config_name="tune", overrides=translate_overrides(overrides))


# ----- search space ------------------------------------------------------------------------------
def test_parse_search_space_text() -> None:
    space = parse_search_space("{optimizer.lr: loguniform(1e-4,1e-2), model.hidden_size: choice(32,64), "
                               "optimizer.name: choice(adam, adamw), trainer.batch_size: randint(2,8), "
                               "model.dropout: uniform(0, 0.5), seed: 3, model.backbone_channels: choice([8,8],[16,16])}")
    assert space == {"optimizer.lr": Sampler("loguniform", (1e-4, 1e-2)), "model.hidden_size": Sampler("choice", (32, 64)),
                     "optimizer.name": Sampler("choice", ("adam", "adamw")),
                     "trainer.batch_size": Sampler("randint", (2, 8)), "model.dropout": Sampler("uniform", (0, 0.5)),
                     "seed": Sampler("fixed", (3,)),
                     "model.backbone_channels": Sampler("choice", ([8, 8], [16, 16]))}
    # the mapping form (a YAML file of the tune group) parses the same expressions
    assert parse_search_space({"optimizer.lr": "loguniform(1e-4,1e-2)"}) == {
        "optimizer.lr": Sampler("loguniform", (1e-4, 1e-2))}


def test_samplers_become_ray_tune_domains() -> None:
    from ray.tune.search.sample import Categorical, Float, Integer

    space = parse_search_space("{a: loguniform(1e-4,1e-2), b: choice(1,2), c: randint(1,3), d: uniform(0,1), e: 5}")
    domains = {k: s.to_tune() for k, s in space.items()}
    assert isinstance(domains["a"], Float) and isinstance(domains["d"], Float)
    assert isinstance(domains["b"], Categorical) and domains["b"].categories == [1, 2]
    assert isinstance(domains["c"], Integer) and (domains["c"].lower, domains["c"].upper) == (1, 4)  # inclusive
    assert domains["e"] == 5


@pytest.mark.parametrize("text, words", [
    ("{a: foo(1,2)}", "unknown sampler 'foo'"),
    ("{a: __import__('os').system('true')}", "unknown sampler"),
    ("{a: choice()}", "at least one value"),
    ("{a: uniform(2,1)}", "low must be below high"),
    ("{a: loguniform(0,1)}", "loguniform needs low > 0"),
    ("{a: uniform(1)}", "two numbers"),
    ("{a: randint(1.5,3)}", "whole numbers"),
    ("{a: choice(x+1)}", "not a literal"),
    ("{a: choice(1,2), a: choice(3)}", "given twice"),
    ("not a mapping", "not a mapping"),
    ("{}", "empty"),
    ("{workspace: choice(a,b)}", "not hyperparameters"),
])
def test_bad_search_spaces_are_bad_input(text: str, words: str) -> None:
    with pytest.raises(BadInput, match="tune.search_space") as info:
        parse_search_space(text)
    assert words in str(info.value)


def test_search_space_override_is_quoted_for_hydra() -> None:
    assert quote_search_space(f"tune.search_space={SPACE}") == f"tune.search_space='{SPACE}'"
    assert quote_search_space(f"tune.search_space='{SPACE}'") == f"tune.search_space='{SPACE}'"
    assert quote_search_space("tune.search_space={a: choice('x')}") == "tune.search_space='{a: choice(\\'x\\')}'"
    assert translate_overrides(["dataset=foo", "seed=1"]) == ["dataset_ref=foo", "seed=1"]


# ----- config composition ------------------------------------------------------------------------
def test_tune_config_composes_train_config_plus_tune_and_ray() -> None:
    cfg = compose_tune(["model=predictor", "dataset=prediction_synthetic", "tune.num_samples=3",
                        f"tune.search_space={SPACE}", "ray.num_cpus=2", "tune.resources_per_trial.cpu=0.5"])
    assert cfg.tune.num_samples == 3 and cfg.ray.num_cpus == 2 and cfg.ray.address is None
    assert cfg.tune.resources_per_trial.cpu == 0.5 and cfg.tune.metric is None
    assert parse_search_space(cfg.tune.search_space)["model.hidden_size"] == Sampler("choice", (32, 64))
    base = base_config(cfg)
    assert "tune" not in base and "ray" not in base and base.dataset_ref == "prediction_synthetic"
    trial = trial_config(base, {"optimizer.lr": 3e-3, "model.hidden_size": 64})
    assert trial.optimizer.lr == 3e-3 and trial.model.hidden_size == 64 and trial.model.name == "predictor"
    assert trial.trainer.max_epochs == base.trainer.max_epochs
    assert base.optimizer.lr != 3e-3  # the base is not changed by a trial


def test_a_typo_in_the_tune_node_fails_composition() -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose_tune(["tune.num_sample=3"])


@pytest.mark.parametrize("overrides, words", [
    ({"model.hidden": 32}, "'model.hidden' is not a key of the train config"),
    ({"optimizer.learning_rate": 1e-3}, "'optimizer.learning_rate'"),
    ({"optimizer.lr": "fast"}, "'optimizer.lr'"),
    ({"optimizer.lr": -1.0}, "optimizer.lr -1.0 must be a positive"),
])
def test_bad_trial_overrides_name_the_key(overrides: dict, words: str) -> None:
    base = base_config(compose_tune(["model=predictor"]))
    with pytest.raises(BadInput) as info:
        trial_config(base, overrides)
    assert words in str(info.value)


def test_check_space_validates_every_choice_before_ray() -> None:
    base = base_config(compose_tune(["model=predictor"]))
    check_space(base, parse_search_space("{optimizer.name: choice(adam, adamw), model.hidden_size: choice(16,32)}"))
    with pytest.raises(BadInput, match="optimizer.name .sgd.: choose one of adam, adamw"):
        check_space(base, parse_search_space("{optimizer.name: choice(adam, sgd)}"))


def test_bad_key_exits_2_before_ray_starts(tmp_path, capsys) -> None:
    import ray

    code = main([f"workspace={tmp_path}", "model=predictor", "tune.search_space={model.hidden: choice(32,64)}"])
    assert code == EXIT_BAD_INPUT
    assert "'model.hidden' is not a key" in capsys.readouterr().err
    assert not ray.is_initialized()
    code = main([f"workspace={tmp_path}", "tune.search_space={optimizer.lr: lognormal(1,2)}"])
    assert code == EXIT_BAD_INPUT


# ----- a real sweep ------------------------------------------------------------------------------
@pytest.mark.slow
def test_sweep_on_local_ray_registers_only_the_best(fleet, capsys) -> None:
    workspace, _, version = fleet
    registry = Registry(workspace)
    before = registry.aliases("detector").get(CANDIDATE)
    started = time.perf_counter()
    code = main([*tiny_overrides(workspace, version.dataset_id), "trainer.max_epochs=2", "tune.num_samples=2",
                 "tune.search_space={optimizer.lr: loguniform(1e-4,1e-2), model.head_channels: choice(4,8)}",
                 "ray.num_cpus=2", "json=true"])
    wall_s = time.perf_counter() - started
    out, err = capsys.readouterr()
    assert code == EXIT_OK, err[-3000:]
    doc = json.loads(out)  # stdout holds the JSON document only
    print(f"sweep wall {wall_s:.1f} s, ray.init {doc['ray_init_s']} s\n{err[-2500:]}\n{json.dumps(doc)}", flush=True)
    assert set(doc) >= {"best", "trials", "sweep_id", "metric", "mode"}
    assert doc["metric"] == "val/mAP" and doc["mode"] == "max"
    assert len(doc["trials"]) == 2
    for trial in doc["trials"]:
        assert set(trial["config"]) == {"optimizer.lr", "model.head_channels"}
        assert trial["status"] in ("TERMINATED", "STOPPED") and trial["run_id"]
        # one report per validation epoch (the last one after the model is logged) unless ASHA stopped it
        assert trial["reports"] == 2 or trial["status"] == "STOPPED"
    best = doc["best"]
    assert set(best) >= {"config", "metric", "run_id", "version"}
    assert best["run_id"] in {t["run_id"] for t in doc["trials"]}
    assert "trial" in err and "best" in err  # the table on stderr

    runs = registry.client.search_runs(
        [registry.experiment_id("andon/detector")], filter_string=f"tags.{SWEEP_TAG} = '{doc['sweep_id']}'")
    assert {r.info.run_id for r in runs} == {t["run_id"] for t in doc["trials"]}
    candidate = registry.resolve(f"detector@{CANDIDATE}")
    assert str(candidate.version) == best["version"] and best["version"] != before
    assert candidate.run_id == best["run_id"] and candidate.tags[SWEEP_TAG] == doc["sweep_id"]
    swept = registry.client.search_model_versions(f"name = 'detector' and run_id = '{best['run_id']}'")
    assert len(swept) == 1  # only the best trial was registered
    others = [t["run_id"] for t in doc["trials"] if t["run_id"] != best["run_id"]]
    for run_id in others:
        assert not registry.client.search_model_versions(f"name = 'detector' and run_id = '{run_id}'")
    assert (workspace.root / "ray" / "tune" / doc["sweep_id"]).is_dir()
    for trial in doc["trials"]:  # a trial ASHA stopped is closed in MLflow, not left running
        status = registry.client.get_run(trial["run_id"]).info.status
        assert status == ("FINISHED" if trial["status"] == "TERMINATED" else "KILLED")


def test_exit_codes_of_the_task(monkeypatch, capsys) -> None:
    """0 with a best trial (JSON on stdout, table on stderr); 1 when every trial failed."""
    import andon.models.tune as tune_module
    from andon.errors import EXIT_CHECK_FAILED
    from andon.models.tune import SweepResult, TrialOutcome
    from andon.models.tune_cli import tune_task

    ok = TrialOutcome("t0", {"optimizer.lr": 1e-3}, 0.5, "TERMINATED", "run0", True, reports=1)
    bad = TrialOutcome("t1", {"optimizer.lr": 1e-2}, None, "ERROR", None, False, "ValueError: boom")
    cfg = compose_tune(["json=true"])
    result = SweepResult("s", "detector", "val/mAP", "max", [ok, bad], ok, "7", 1.0, 0.5)
    monkeypatch.setattr(tune_module, "run_sweep", lambda _: result)
    assert tune_task(cfg) == EXIT_OK
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["best"] == {"config": {"optimizer.lr": 1e-3}, "metric": 0.5, "run_id": "run0", "version": "7",
                           "trial_id": "t0"}
    assert [t["status"] for t in doc["trials"]] == ["TERMINATED", "ERROR"] and "ValueError: boom" in out
    assert "registered detector version 7" in err
    failed = SweepResult("s", "detector", "val/mAP", "max", [bad], None, None, 1.0, 0.5)
    monkeypatch.setattr(tune_module, "run_sweep", lambda _: failed)
    assert tune_task(cfg) == EXIT_CHECK_FAILED
    assert "every trial failed" in capsys.readouterr().err


def test_help_and_cfg_job(capsys) -> None:
    assert main(["--cfg", "job", "tune.num_samples=2"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "num_samples: 2" in out and "resources_per_trial" in out and "address: null" in out


def test_stopped_trials_are_closed_and_not_resumed(workspace) -> None:
    """A trial ASHA stopped: its MLflow run ends KILLED (tagged STOPPED) and its run.json says stopped,
    so `andon train` of that config starts afresh instead of resuming into the closed run."""
    from andon.models.train import checkpoint_dir, find_resume_point, read_state, write_state
    from andon.models.tune import TrialOutcome, _close_runs

    registry = Registry(workspace)
    experiment = registry.experiment_id("andon/detector")
    run = registry.client.create_run(experiment, tags={"model_name": "detector", "config_hash": "ab" * 20})
    directory = checkpoint_dir(workspace, "detector", "ab" * 20)
    write_state(directory, status="running", run_id=run.info.run_id, config_hash="ab" * 20, dataset_id="d")
    (directory / "last.ckpt").write_bytes(b"")
    stopped = TrialOutcome("t0", {}, 0.1, "STOPPED", run.info.run_id, False, reports=1)
    _close_runs(workspace, [stopped])
    closed = registry.client.get_run(run.info.run_id)
    assert closed.info.status == "KILLED" and closed.data.tags["andon_trial_status"] == "STOPPED"
    assert read_state(directory)["status"] == "stopped" and find_resume_point(directory) is None
