"""`andon fleet ...`: the synthetic fleet, the embedded default source of logs."""

from __future__ import annotations

import argparse
import math
from typing import Any

from andon.errors import BadInput
from andon.output import emit_json, info


def _probability(flag: str, value: float) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise BadInput(f"{flag} {value!r} must be a probability in [0, 1]")
    return value


def cmd_synth(args: argparse.Namespace) -> int:
    from andon.scenarios.catalog import Catalog
    from andon.simulation.fleet.config import MAX_DURATION_S, FleetConfig
    from andon.simulation.fleet.synth import FLEET_STRIDE, synthesize_fleet
    from andon.workspace import Workspace

    if not 1 <= args.logs <= FLEET_STRIDE:
        raise BadInput(f"--logs {args.logs} must be between 1 and {FLEET_STRIDE}")
    if args.seed < 0:
        raise BadInput(f"--seed {args.seed} must be 0 or more")
    if not (math.isfinite(args.duration_s) and 0 < args.duration_s <= MAX_DURATION_S):
        raise BadInput(f"--duration-s {args.duration_s} must be in (0, {MAX_DURATION_S:g}] seconds")
    overrides: dict[str, Any] = {}
    if args.label_error_rate is not None:
        overrides["label_error_rate"] = _probability("--label-error-rate", args.label_error_rate)
    if args.night_rate is not None:
        overrides["night_probability"] = _probability("--night-rate", args.night_rate)
    if args.rain_rate is not None:
        overrides["rain_probability"] = _probability("--rain-rate", args.rain_rate)
    if args.no_lidar:
        overrides["with_lidar"] = False
    if args.lidar_every is not None:
        if args.lidar_every < 1:
            raise BadInput(f"--lidar-every {args.lidar_every} must be 1 or more (a sweep every n-th frame)")
        overrides["lidar_every_n_frames"] = args.lidar_every
    if args.beams is not None:
        if args.beams < 1:
            raise BadInput(f"--beams {args.beams} must be 1 or more")
        overrides["lidar_beams"] = args.beams
    config = FleetConfig(**overrides)
    with Catalog(Workspace.open(args.workspace)) as catalog:
        before = set(catalog.logs(source="synthetic"))
        log_ids = synthesize_fleet(catalog, args.logs, args.seed, args.duration_s, config)
    created = len(set(log_ids) - before)
    if args.json:
        emit_json({"logs": log_ids, "seed": args.seed, "created": created, "duration_s": args.duration_s})
    else:
        for log_id in log_ids:
            info(log_id)
        info(f"{created} new synthetic logs, {len(log_ids) - created} already in the catalog (fleet seed {args.seed})")
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    from andon.cli import add_workspace_arg

    fleet = commands.add_parser("fleet", help="synthesise logs with the synthetic fleet",
                                description="The synthetic fleet: logs with ray-cast lidar, scripted behaviours "
                                            "and known label errors.", allow_abbrev=False)
    sub = fleet.add_subparsers(dest="fleet_command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("synth", help="synthesise N logs into the catalog (idempotent)", allow_abbrev=False,
                       description="Synthesise N logs from a fleet seed into the workspace's catalog. The same "
                                   "seed and options give the same logs; a second run adds nothing.")
    add_workspace_arg(p)
    p.add_argument("--logs", type=int, required=True, help="how many logs")
    p.add_argument("--seed", type=int, required=True, help="fleet seed (log seeds derive from it)")
    p.add_argument("--duration-s", type=float, default=20.0, help="length of each log in seconds (default 20)")
    p.add_argument("--label-error-rate", type=float, default=None,
                   help="probability that a label is corrupted (default 0.02)")
    p.add_argument("--night-rate", type=float, default=None, help="share of logs driven at night (default 0.25)")
    p.add_argument("--rain-rate", type=float, default=None, help="share of logs driven in rain (default 0.2)")
    p.add_argument("--no-lidar", action="store_true", help="frames without lidar points (labels only; fast)")
    p.add_argument("--beams", type=int, default=None, metavar="N",
                   help="lidar beams (default 64; fewer gives smaller sweeps)")
    p.add_argument("--lidar-every", type=int, default=None, metavar="N",
                   help="a lidar sweep every N-th frame only (default 1: every frame; 5 gives 2 Hz, 1/5 of the disk)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.set_defaults(func=cmd_synth, accepts_extras=False)
