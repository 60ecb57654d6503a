"""Fixtures of the dataset tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def andon_main() -> Callable[[list[str]], int]:
    """The `andon` console script's entry point, run in-process."""
    from andon.cli import main

    return main
