"""Running Hydra apps from the `andon` console script, keeping andon's exit codes.

Commands that users drive with overrides and sweeps (dataset build, train, tune, dag run, suite run,
sim run, gate run) are Hydra apps: `andon train model=detector trainer.max_epochs=3`, `-m` multirun,
`--cfg job`, `--help` all work. Configs ship in the package (`pkg://andon.configs`); schemas are
dataclasses registered once in `register_configs()`, so a typo fails with a ConfigKeyError.

Hydra reports exceptions itself and exits 1, which would turn bad input (2) and internal errors (3)
into "check failed" (1). The task is therefore wrapped: andon's errors are recorded and reported
here, and a Hydra composition error (bad override, unknown key) becomes bad input.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

from omegaconf import DictConfig

from andon.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, AndonError

CONFIG_MODULE = "pkg://andon.configs"
_registered = False
_schema_registrars: list[Callable[[], None]] = []


def add_schemas(registrar: Callable[[], None]) -> None:
    """Sub-packages add their ConfigStore registrations here (called once, by register_configs)."""
    _schema_registrars.append(registrar)


def register_configs() -> None:
    """Register every dataclass schema with Hydra's ConfigStore (idempotent)."""
    global _registered
    if _registered:
        return
    import andon.config_schemas  # noqa: F401  (each module calls add_schemas at import)

    for registrar in _schema_registrars:
        registrar()
    _registered = True


def run_hydra_app(task: Callable[[DictConfig], int | None], config_name: str, prog: str,
                  overrides: Sequence[str]) -> int:
    """Run `task` as a Hydra app over `overrides`; returns the worst exit code of its jobs."""
    import hydra

    register_configs()
    codes: list[int] = []

    @functools.wraps(task)
    def job(cfg: DictConfig) -> Any:
        try:
            code = int(task(cfg) or EXIT_OK)
        except AndonError as exc:
            print(f"andon: error: {exc}", file=sys.stderr)
            code = exc.exit_code
        except Exception as exc:  # fail closed, no traceback for the user
            import os
            import traceback

            if os.environ.get("ANDON_DEBUG"):
                traceback.print_exc()
            print(f"andon: internal error ({type(exc).__name__}: {exc}); nothing was passed. "
                  f"Set ANDON_DEBUG=1 for the traceback.", file=sys.stderr)
            code = EXIT_INTERNAL
        codes.append(code)
        return code

    app = hydra.main(version_base="1.3", config_path=CONFIG_MODULE, config_name=config_name)(job)
    saved = sys.argv
    sys.argv = [prog, *overrides]
    try:
        app()
    except SystemExit as exc:
        if exc.code not in (0, None) and not codes:
            return EXIT_BAD_INPUT  # Hydra refused the config or an override before any job ran
        if exc.code not in (0, None):
            return max(codes)
    finally:
        sys.argv = saved
    return max(codes) if codes else EXIT_OK


def add_hydra_command(commands: Any, name: str, help_text: str, overrides_help: str,
                      run: Callable[[list[str]], int]) -> None:
    """Add a subcommand whose every argument goes to Hydra (-m, --cfg job and --help included).

    `run` receives the raw tokens, in order, and returns the exit code.
    """
    import argparse

    parser = commands.add_parser(name, add_help=False, allow_abbrev=False, help=help_text,
                                 description=f"{help_text}. Every argument goes to Hydra.")
    parser.add_argument("overrides", nargs=argparse.REMAINDER, help=overrides_help)
    parser.set_defaults(func=lambda args: run([*args.extras, *args.overrides]), accepts_extras=True)
