"""`andon train [model=NAME] [dataset=NAME|ID] [overrides...] [+experiment=NAME] [-m ...]`: a Hydra app.

Every argument goes to Hydra (`--help`, `--cfg job`, `-m` multirun work). `--json` cannot be an
argparse flag there, so the config key `json=true` prints the run's summary on stdout instead.
`dataset=X` is accepted as the natural spelling and rewritten to `dataset_ref=X` (see
andon.models.train_config: `dataset/` is another app's config group, so Hydra would read it as one).
Wiring into the console script: `from andon.models.train_cli import register; register(commands)`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from omegaconf import DictConfig

from andon.errors import EXIT_OK
from andon.output import emit_json, info

TRAIN_CONFIG = "train"
TRAIN_PROG = "andon train"
_DATASET_PREFIXES = ("dataset=", "~dataset", "+dataset=", "++dataset=")


def train_task(cfg: DictConfig) -> int:
    """The Hydra task of `andon train`: 0 trained (and registered unless register=false)."""
    from andon.models.train import run_training, summary

    for name in ("andon", "pytorch_lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.INFO)
    result = run_training(cfg)
    doc = summary(result)
    if cfg.json:
        emit_json(doc)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(result.metrics.items())
                      if k.startswith(("val/", "best/", "untrained/")) and v == v)
    info(f"trained {result.model} on dataset {result.dataset_id}{' (resumed)' if result.resumed else ''}: {shown}")
    info(f"MLflow run {result.run_id}; "
         + (f"registered {result.model} version {result.version} (alias candidate)" if result.version
            else "not registered"))
    return EXIT_OK


def translate_overrides(tokens: Sequence[str]) -> list[str]:
    """`dataset=X` (with its +/++ spellings) becomes `dataset_ref=X`; everything else is kept."""
    out = []
    for token in tokens:
        if token.startswith(_DATASET_PREFIXES) and "=" in token and token.split("=", 1)[0].lstrip("+~") == "dataset":
            token = "dataset_ref=" + token.split("=", 1)[1]
        out.append(token)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run `andon train` with these arguments (the console script's subcommand calls this)."""
    from andon.datasets.cli import hydra_argv
    from andon.hydra_app import run_hydra_app

    tokens = list(sys.argv[1:] if argv is None else argv)
    return run_hydra_app(train_task, TRAIN_CONFIG, TRAIN_PROG, hydra_argv(translate_overrides(tokens)))



def register(commands: argparse._SubParsersAction) -> None:
    """Add `andon train` to the `andon` parser."""
    from andon.hydra_app import add_hydra_command

    add_hydra_command(commands, "train",
                      "train a model on a dataset version, tracked in MLflow (researcher; Hydra app: "
                      "model=NAME dataset=REF overrides..., --help for more)",
                      "Hydra overrides, e.g. model=detector dataset=detection_synthetic trainer.max_epochs=3 "
                      "+experiment=detector_smoke json=true; -m, --cfg job, --help", main)


if __name__ == "__main__":
    from andon.workspace import disable_telemetry

    disable_telemetry()
    sys.exit(main())
