"""Errors and the exit codes they map to (DESIGN.md, "Exit codes")."""

from __future__ import annotations

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 3


class AndonError(Exception):
    """Base of every error andon reports to a user; carries its exit code."""

    exit_code = EXIT_INTERNAL


class BadInput(AndonError):
    """The user gave a bad value; the message names it and says what to do."""

    exit_code = EXIT_BAD_INPUT


class CheckFailed(AndonError):
    """A check or gate failed: the line stops, but nothing is broken."""

    exit_code = EXIT_CHECK_FAILED


class InternalError(AndonError):
    """Something andon itself got wrong; fail closed."""

    exit_code = EXIT_INTERNAL
