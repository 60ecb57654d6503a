"""`andon tune [model=NAME] [dataset=REF] tune.search_space='{KEY: SAMPLER, ...}' [overrides...]`: a Hydra app.

The config is `andon train`'s plus a `tune` node (num_samples, search_space, metric/mode, ASHA,
resources per trial) and a `ray` node (address: null starts a local Ray; `auto` joins one). Ray
Tune is driven directly from this app (andon.models.tune), not through hydra-ray-launcher.

Hydra's override grammar reads `f(...)` as one of its own functions, so an unquoted
`tune.search_space={optimizer.lr: loguniform(1e-4,1e-2)}` is quoted here into a string, which
andon parses itself (without eval). `dataset=X` becomes `dataset_ref=X`, as for `andon train`.
Wiring into the console script: `from andon.models.tune_cli import register; register(commands)`.
Exit codes: 0 a trial finished (the best is registered as `candidate`), 1 every trial failed,
2 bad input (search space, key, dataset), 3 internal error.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from collections.abc import Sequence

from omegaconf import DictConfig

from andon.errors import EXIT_CHECK_FAILED, EXIT_OK
from andon.output import emit_json, info, table

TUNE_CONFIG = "tune"
TUNE_PROG = "andon tune"
_SPACE_KEY = "tune.search_space"


def tune_task(cfg: DictConfig) -> int:
    """The Hydra task of `andon tune`: 0 when a trial finished, 1 when none did."""
    from andon.models.tune import run_sweep

    for name in ("andon", "pytorch_lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.INFO)
    result = run_sweep(cfg)
    doc = result.to_dict()
    rows = [[t.trial_id, ", ".join(f"{k}={_short(v)}" for k, v in t.config.items()),
             _short(t.metric), t.status, (t.run_id or "")[:12], "*" if result.best is t else ""]
            for t in result.trials]
    info(table(rows, ["trial", "config", result.metric, "status", "run", "best"]))
    init = "" if result.ray_init_s is None else f", Ray started in {result.ray_init_s:.1f} s"
    info(f"sweep {result.sweep_id}: {len(result.trials)} trials in {result.wall_s:.1f} s{init}")
    if cfg.json:
        emit_json(_json_safe(doc))
    if result.best is None:
        errors = sorted({t.error for t in result.trials if t.error})
        info(f"andon: every trial failed; nothing registered{': ' + '; '.join(errors[:3]) if errors else ''}")
        return EXIT_CHECK_FAILED
    info(f"best trial {result.best.trial_id}: {result.metric} {_short(result.best.metric)} (MLflow run "
         f"{result.best.run_id}); " + (f"registered {result.model} version {result.version} (alias candidate)"
                                       if result.version else "not registered"))
    return EXIT_OK


def _short(value: object) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.4g}"
    return "" if value is None else str(value)


def _json_safe(obj: object) -> object:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def quote_search_space(token: str) -> str:
    """`tune.search_space=VALUE` with VALUE quoted for Hydra (a string andon parses), unless quoted already."""
    key, sep, value = token.partition("=")
    if not sep or key.lstrip("+~") != _SPACE_KEY or not value or value[0] in "'\"":
        return token
    return f"{key}='" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def translate_overrides(tokens: Sequence[str]) -> list[str]:
    """`andon train`'s translation (dataset= -> dataset_ref=) plus the search space's quoting."""
    from andon.models.train_cli import translate_overrides as train_translate

    return [quote_search_space(token) for token in train_translate(tokens)]


def main(argv: Sequence[str] | None = None) -> int:
    """Run `andon tune` with these arguments (the console script's subcommand calls this)."""
    from andon.datasets.cli import hydra_argv
    from andon.hydra_app import run_hydra_app

    tokens = list(sys.argv[1:] if argv is None else argv)
    return run_hydra_app(tune_task, TUNE_CONFIG, TUNE_PROG, hydra_argv(translate_overrides(tokens)))



def register(commands: argparse._SubParsersAction) -> None:
    """Add `andon tune` to the `andon` parser."""
    from andon.hydra_app import add_hydra_command

    add_hydra_command(commands, "tune",
                      "sweep a model's hyperparameters with Ray Tune, register the best as candidate "
                      "(researcher; Hydra app: tune.search_space='{KEY: SAMPLER}', --help for more)",
                      "Hydra overrides, e.g. model=predictor dataset=prediction_synthetic tune.num_samples=8 "
                      "tune.search_space='{optimizer.lr: loguniform(1e-4,1e-2)}' json=true; --cfg job, --help", main)


if __name__ == "__main__":
    from andon.workspace import disable_telemetry

    disable_telemetry()
    sys.exit(main())
