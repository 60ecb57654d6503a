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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig

from andon.errors import EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_OK, AndonError, BadInput

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


# ----- friendly flags in front of a Hydra app -----------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Flag:
    """A `--flag` of a Hydra-app command that becomes the override `key=...` (`key=[...]` when repeatable)."""

    key: str
    takes_value: bool = True
    repeatable: bool = False
    example: str = "VALUE"
    quote: bool = True  # False for a config group option (gate=strict), which Hydra must read as a name


def quote_override(value: str) -> str:
    """A Hydra override value as a quoted string (queries, paths and refs hold characters Hydra parses)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def flag_overrides(tokens: Sequence[str], flags: Mapping[str, Flag], bare_key: str | None = None,
                   aliases: Sequence[str] = ()) -> list[str]:
    """The Hydra argv of a command's tokens: friendly flags become overrides, Hydra's flags go first.

    Args:
        tokens: what the user typed after the command.
        flags: `--flag` -> Flag.
        bare_key: the key a bare word (neither flag nor KEY=VALUE) sets, e.g. the suite of
            `andon suite run NAME`; at most one bare word. None: bare words pass to Hydra.
        aliases: override keys the user may write for `bare_key` (`suite=NAME`).

    Raises:
        BadInput: a flag without its value (or with one it does not take), a flag given twice that is
            not repeatable, a key given both as a flag and as an override, or two bare words.
    """
    from andon.datasets.cli import _HYDRA_INFO_CHOICES, _HYDRA_VALUE_FLAGS, hydra_argv

    values: dict[str, list[str]] = {}
    rest: list[str] = []
    bare: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        name, eq, inline = token.partition("=")
        flag = flags.get(name)
        if flag is not None:
            if not flag.takes_value:
                if eq:
                    raise BadInput(f"{name} takes no value (got {token!r})")
                inline = "true"
            elif not eq:
                if i + 1 >= len(tokens) or tokens[i + 1].startswith("--"):
                    raise BadInput(f"{name} needs a value, e.g. {name} {flag.example}")
                inline = tokens[i + 1]
                i += 1
            if values.get(flag.key) and not flag.repeatable:
                raise BadInput(f"{name} is given twice: give it once")
            values.setdefault(flag.key, []).append(inline)
        elif token.startswith("-"):
            rest.append(token)
            takes = token in _HYDRA_VALUE_FLAGS or (token in ("--info", "-i") and i + 1 < len(tokens)
                                                    and tokens[i + 1] in _HYDRA_INFO_CHOICES)
            if takes and i + 1 < len(tokens):
                rest.append(tokens[i + 1])
                i += 1
        elif bare_key is not None and eq and name.lstrip("+~") in (bare_key, *aliases):
            bare.append(f"{bare_key}={inline}")
        elif bare_key is not None and not eq:
            bare.append(f"{bare_key}={quote_override(token)}")
        else:
            rest.append(token)
        i += 1
    if len(bare) > 1:
        shown = ", ".join(b.split("=", 1)[1] for b in bare)
        raise BadInput(f"give one {bare_key} (got {len(bare)}: {shown}); sweep several with -m {bare_key}=a,b")
    given = {t.split("=", 1)[0].lstrip("+~") for t in rest if "=" in t and not t.startswith("-")}
    clash = sorted(set(values) & given)
    if clash:
        raise BadInput(f"{clash[0]} is given both as a flag and as an override ({clash[0]}=...): give it once")
    overrides = list(bare)
    by_key = {f.key: f for f in flags.values()}
    for key, items in values.items():  # in the order the user gave them
        flag = by_key[key]
        if not flag.takes_value:
            overrides.append(f"{flag.key}=true")
        elif flag.repeatable:
            overrides.append(f"{flag.key}=[{','.join(quote_override(v) for v in items)}]")
        else:
            overrides.append(f"{flag.key}={quote_override(items[0]) if flag.quote else items[0]}")
    return hydra_argv([*rest, *overrides])
