"""`andon eval ...`: model-level metrics of a detection or prediction file against ground truth.

`andon eval detection --gt G --pred P [--json] [--classes C ...]` prints nuScenes AP per class and
threshold, mAP and true-positive errors; `andon eval prediction --gt G --pred P [--json] [--step-s S]`
prints ADE/FDE, minADE_k/minFDE_k and the miss rate, overall, per horizon and per class. File
formats and the JSON output are DESIGN.md's "Evaluation files". Exit 0 on success, 2 on bad input.
"""

from __future__ import annotations

import argparse
from typing import Any

from andon.output import emit_json, info, table
from andon.scenarios.records import CLASSES


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def cmd_detection(args: argparse.Namespace) -> int:
    from andon.models.detection_metrics import DetectionSet, evaluate_detection, threshold_key

    gt = DetectionSet.from_file(args.gt, predictions=False)
    pred = DetectionSet.from_file(args.pred, predictions=True)
    result = evaluate_detection(gt, pred, classes=args.classes)
    if args.json:
        emit_json(result)
        return 0
    keys = [threshold_key(t) for t in result["thresholds_m"]]
    rows = []
    for name, per_threshold in result["ap"].items():
        errors = result["tp_errors"][name]
        rows.append([name, result["n_gt"][name], result["n_pred"][name],
                     *[_fmt(per_threshold[k]) for k in keys], _fmt(result["ap_mean"][name]),
                     _fmt(errors["trans_err_m"]), _fmt(errors["scale_err"]), _fmt(errors["orient_err_rad"]),
                     _fmt(errors["vel_err_mps"])])
    print(table(rows, ["class", "n_gt", "n_pred", *[f"AP@{k}m" for k in keys], "AP",
                       "ATE_m", "ASE", "AOE_rad", "AVE_mps"]))
    print(f"mAP {result['mAP']:.4f}  over {len(result['ap'])} class(es) in the ground truth, "
          f"{result['n_frames']} frames")
    if result["classes_without_gt"]:
        info(f"not in mAP (predicted but absent from the ground truth): {', '.join(result['classes_without_gt'])}")
    return 0


_PRED_KEYS = ("ADE", "FDE", "minADE_k", "minFDE_k", "miss_rate")


def cmd_prediction(args: argparse.Namespace) -> int:
    from andon.models.prediction_metrics import evaluate_prediction, read_futures, read_predictions

    result = evaluate_prediction(read_futures(args.gt), read_predictions(args.pred), step_s=args.step_s,
                                 miss_threshold_m=args.miss_threshold_m)
    if args.json:
        emit_json(result)
        return 0
    rows = [["all", "-", "-", result["n_agents"], *[_fmt(result[k]) for k in _PRED_KEYS]]]
    rows += [["horizon", "-" if h["horizon_s"] is None else f"{h['horizon_s']:g}", h["steps"], h["n_agents"],
              *[_fmt(h[k]) for k in _PRED_KEYS]] for h in result["horizons"]]
    rows += [[f"class {name}", "-", "-", c["n_agents"], *[_fmt(c[k]) for k in _PRED_KEYS]]
             for name, c in result["per_class"].items()]
    print(table(rows, ["subset", "horizon_s", "steps", "agents", *_PRED_KEYS]))
    print(f"k = {result['k']} modes; miss = minFDE_k > {result['miss_threshold_m']:g} m")
    if result["n_ignored_predictions"]:
        info(f"ignored {result['n_ignored_predictions']} predicted agent(s) absent from the ground truth")
    return 0


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number")
    return value


def register(commands: argparse._SubParsersAction) -> None:
    """Add `andon eval detection|prediction` to the console script's subcommands."""
    ev = commands.add_parser("eval", help="model-level metrics of detection or prediction files",
                             description="Evaluate a detection or prediction file against ground truth "
                                         "(formats: DESIGN.md, 'Evaluation files'). Exit 0 ok, 2 bad input.",
                             allow_abbrev=False)
    sub = ev.add_subparsers(dest="eval_command", metavar="COMMAND")
    sub.required = True

    def command(name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, allow_abbrev=False)
        p.add_argument("--gt", required=True, metavar="FILE", help="ground-truth JSON file")
        p.add_argument("--pred", required=True, metavar="FILE", help="predictions JSON file")
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        p.set_defaults(func=func, accepts_extras=False)
        return p

    p = command("detection", cmd_detection,
                "nuScenes AP at 0.5/1/2/4 m centre distance per class, mAP over the classes in the ground "
                "truth, and true-positive errors at 2 m")
    p.add_argument("--classes", nargs="+", choices=CLASSES, metavar="CLASS",
                   help=f"evaluate only these classes ({', '.join(CLASSES)}; default: all)")

    p = command("prediction", cmd_prediction,
                "ADE/FDE of the most probable mode, minADE_k/minFDE_k and miss rate over the k modes given")
    p.add_argument("--step-s", type=_positive, default=None, metavar="S",
                   help="time between trajectory points in seconds; adds metrics at 1 s, 2 s, ... horizons")
    p.add_argument("--miss-threshold-m", type=_positive, default=2.0, metavar="M",
                   help="an agent is missed when its minFDE_k exceeds this (default 2.0 m)")
