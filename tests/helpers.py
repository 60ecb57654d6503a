"""Test helpers: small hand-made logs, and running the real `andon` console entry point."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import Frame


def make_log(name: str = "drive", n_frames: int = 20, n_boxes: int = 4, seed: int = 0,
             with_points: bool = True, source: str = "test", tags: frozenset[str] = frozenset()) -> ImportedLog:
    """A small hand-made log: boxes drifting forward at 10 Hz, random points."""
    rng = np.random.default_rng(seed)
    base = rng.uniform([-20, -20, 0.5, 3.5, 1.6, 1.4, -3.0], [20, 20, 1.0, 5.0, 2.0, 1.8, 3.0], size=(n_boxes, 7))
    frames = []
    for i in range(n_frames):
        boxes = base.copy()
        boxes[:, 0] += 0.5 * i
        points = rng.normal(0, 10, size=(200, 4)).astype(np.float32) if with_points else None
        frames.append(Frame(timestamp_ns=1_000_000_000 + i * 100_000_000, ego_pose=(float(i), 0.0, 0.0, 0.0),
                            boxes=boxes, classes=["vehicle"] * n_boxes,
                            track_ids=[f"t{k}" for k in range(n_boxes)], points=points))
    return ImportedLog(source=source, name=name, frames=frames, tags=tags)


def run_andon(argv: Sequence[str]) -> int:
    """`andon ARGV` through the real entry point (andon.cli.main): the exit code."""
    from andon.cli import main

    return main(list(argv))


def andon_json(argv: Sequence[str]) -> tuple[int, Any]:
    """(exit code, the one JSON document `andon ARGV` printed on stdout, or None when it printed nothing)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_andon(argv)
    text = out.getvalue()
    return code, (json.loads(text) if text.strip() else None)
