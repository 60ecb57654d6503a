"""Autolabels: the cascade's data link, where the detector and tracker's outputs become logs.

The predictor learns from what it will see in service: detections tracked by the tracker, not
hand-made labels. `autolabel_log` runs a detector over a log's frames, tracks the detections in the
log's world frame and returns a new log:

- source "autolabel", the same timestamps and ego poses, no lidar points, the road map copied;
- boxes and classes from the detections (ego frame, as the detector gave them), track ids from the
  tracker ("trk-<n>"), velocities from the tracker's filtered states (over the ground, ego axes);
- only detections of tracks that were confirmed at some frame (min_hits): offline we know which
  tracks were spurious, so their boxes are left out (keep_unconfirmed=True keeps them);
- meta {"derived_from": the source log id, "upstream": {"detector": version, "tracker": fingerprint},
  "tracker_params": ..., "derived_source": the source log's source};
- tags {"autolabel", "detector_<version>"}.

`autolabel_catalog` stores such logs with Catalog.add_log, so a dataset spec selects them by query:
configs/dataset/prediction_autolabel.yaml takes `source:autolabel`, and the DAG pins the detector
version it trained on with `dataset.query.tags=[detector_<version>]`. The log id is the hash of the
content, so the same detector, tracker and source log always give the same autolabel log id.

A detector is any callable `frame -> (boxes (N, 7) ego frame, classes (N,), scores (N,))`, or None
for a frame it cannot see (no lidar sweep: the frame stays empty and the tracker skips it, so
`max_age_frames` counts the detector's frames). `load_detect_fn` wraps a registered detector version
(what the model DAG's autolabel link calls); `oracle_detector` is a stand-in (ground truth with noise,
drops and false positives) for tests and for demos before a detector is trained.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from andon.errors import BadInput
from andon.ids import hash_json, sha256_text
from andon.models import tracker as tracker_module
from andon.models.tracker import Tracker, ego_to_world, world_velocity_to_ego
from andon.models.tracking_metrics import clear_mot
from andon.scenarios.catalog import Catalog
from andon.scenarios.logstore import ImportedLog
from andon.scenarios.records import CLASSES, Frame, Log, Provenance, wrap_angle
from andon.workspace import Workspace

SOURCE = "autolabel"
VERSION = "1"
TRACK_PREFIX = "trk-"
DetectFn = Callable[[Frame], tuple[np.ndarray, Sequence[str], np.ndarray] | None]
_NOTHING = (np.zeros((0, 7)), np.zeros(0, dtype=np.str_), np.zeros(0, dtype=np.int64), np.zeros((0, 4)),
            np.zeros(0, dtype=bool))


def tracker_fingerprint(tracker: Tracker) -> str:
    """SHA-256 (16 hex digits) of the tracker's config and its code: what fixes its output."""
    code = sha256_text(inspect.getsource(tracker_module))
    return hash_json({"params": tracker.fingerprint_params(), "code": code})[:16]


def detector_tag(version: str) -> str:
    """The tag an autolabel log carries for its detector version (e.g. "detector_v3")."""
    return f"detector_{version}"


def autolabel_log(log: Log, detect_fn: DetectFn, tracker: Tracker | None, upstream: Mapping[str, str],
                  keep_unconfirmed: bool = False) -> ImportedLog:
    """The autolabel log of `log` (module docstring).

    Args:
        log: the source log (its frames' points feed the detector).
        detect_fn: frame -> (boxes (N, 7) in the ego frame, N class names, (N,) scores), or None for a
            frame it cannot see.
        tracker: the tracker (reset here; its config decides min_score, gating, min_hits); None: the default.
        upstream: {"detector": version (required), "tracker": fingerprint (default tracker_fingerprint)}.
        keep_unconfirmed: keep boxes of tracks never confirmed.

    Raises:
        BadInput: no detector version, a version that cannot be a tag, or a detector output of the
            wrong shape, with non-finite values or unknown classes (naming the frame).
    """
    version = _detector_version(upstream)
    tracker = tracker if tracker is not None else Tracker()
    fingerprint = str(upstream.get("tracker") or tracker_fingerprint(tracker))
    tracker.reset()
    # One pass over the frames: each sweep is read once (a stored log's frames load their points on access).
    detected: list[tuple[int, tuple[float, float, float, float], np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                         np.ndarray]] = []
    for index, frame in enumerate(log.frames):
        output = detect_fn(frame)
        if output is None:  # the detector cannot see this frame (no sweep): no detections, no tracker step
            detected.append((frame.timestamp_ns, frame.ego_pose, *_NOTHING))
            continue
        boxes, classes, scores = _detections(output, log.log_id, index)
        tracks = tracker.step(boxes[:, :2], classes, frame.timestamp_ns, scores, ego_pose=frame.ego_pose)
        detected.append((frame.timestamp_ns, frame.ego_pose, boxes, classes, tracks.track_ids, tracks.states,
                         tracks.confirmed))
    confirmed_ids = np.unique(np.concatenate([d[4][d[6]] for d in detected] or [np.zeros(0, np.int64)]))

    frames = []
    for stamp_ns, pose, boxes, classes, ids, states, _ in detected:
        keep = ids >= 0
        if not keep_unconfirmed:
            keep &= np.isin(ids, confirmed_ids)
        velocity = world_velocity_to_ego(states[keep, 2:], pose[3])
        frames.append(Frame(timestamp_ns=stamp_ns, ego_pose=pose, boxes=boxes[keep],
                            classes=classes[keep].tolist(), track_ids=[f"{TRACK_PREFIX}{i}" for i in ids[keep]],
                            points=None, velocities_mps=velocity))
    meta = {"derived_from": log.log_id, "derived_source": log.source,
            "upstream": {"detector": version, "tracker": fingerprint},
            "tracker_params": tracker.fingerprint_params(), "autolabel_version": VERSION}
    return ImportedLog(source=SOURCE, name=f"{log.name or log.log_id}@{detector_tag(version)}", frames=frames,
                       road_map=log.road_map, meta=meta, tags=frozenset({SOURCE, detector_tag(version)}))


def autolabel_catalog(catalog: Catalog, log_ids: Sequence[str], detect_fn: DetectFn, tracker: Tracker | None,
                      upstream: Mapping[str, str], progress: bool = True) -> list[str]:
    """Autolabel logs of the catalog and store the results in it; their log ids, in order.

    Storing is idempotent: the same inputs give the same autolabel log, which the catalog keeps once.
    """
    version = _detector_version(upstream)
    tracker = tracker if tracker is not None else Tracker()
    fingerprint = str(upstream.get("tracker") or tracker_fingerprint(tracker))
    provenance = Provenance(kind="import", name=SOURCE, version=VERSION,
                            note=f"detector {version}, tracker {fingerprint}")
    stored = []
    for log_id in tqdm(list(log_ids), desc=f"autolabel ({detector_tag(version)})", unit="log",
                       disable=None if progress else True, file=sys.stderr):
        labelled = autolabel_log(catalog.log(log_id), detect_fn, tracker, {**upstream, "tracker": fingerprint})
        stored.append(catalog.add_log(labelled, provenance, origin=f"autolabel of {log_id}")[0])
    return stored


def load_detect_fn(workspace: Workspace | str | os.PathLike[str], name: str, version: str,
                   device: str | None = None) -> DetectFn:
    """The detect function of a registered detector version (`name@version`), e.g. ("detector", "3").

    Raises:
        BadInput: no such version, or one trained with another feature transform than the code in use.
    """
    import torch

    from andon.models.detector_eval import default_device, load_detector

    ws = workspace if isinstance(workspace, Workspace) else Workspace.open(workspace)
    model, _ = load_detector(f"{name}@{version}", ws, torch.device(device) if device else default_device())
    return detector_fn(model)


def detector_fn(model: Any) -> DetectFn:
    """Wrap a PillarDetector: frame -> its kept detections (ego frame), None for a frame without a sweep.

    Each sweep goes through the training feature transform (`detection_features` with the detector's
    own sampling); intensities are scaled per sweep (0-1 or 0-255, features module's rule).
    """
    import torch

    from andon.datasets.features import DETECTION_CLASSES, detection_features
    from andon.datasets.loaders import collate_detection

    model.eval()
    sampling = dict(model.sampling)
    names = np.asarray(DETECTION_CLASSES)

    def detect(frame: Frame) -> tuple[np.ndarray, list[str], np.ndarray] | None:
        if frame.points is None:
            return None
        sample = {**detection_features(frame.points, sampling), "boxes": np.zeros((0, 7), np.float32),
                  "labels": np.zeros(0, np.int64), "sample_index": 0}
        batch = {key: value.to(model.device) for key, value in collate_detection([sample]).items()}
        with torch.no_grad():
            found = model.detect(batch)
        keep = found.keep[0]
        labels = found.labels[0][keep].cpu().numpy()
        return (found.boxes[0][keep].double().cpu().numpy(), names[labels].tolist(),
                found.scores[0][keep].double().cpu().numpy())

    return detect


def oracle_detector(position_noise_m: float = 0.2, drop_rate: float = 0.1, false_positive_rate: float = 0.05,
                    range_m: float = 60.0, seed: int = 0) -> DetectFn:
    """A stand-in detector: a frame's ground-truth boxes with noise, drops and false positives.

    Each box is dropped with probability `drop_rate`, its centre moved by N(0, position_noise_m) in x
    and y, its yaw by N(0, 0.05 rad); it scores U(0.5, 1). Each frame also gets Poisson
    (false_positive_rate * boxes) false boxes of random class within `range_m`, scoring U(0, 0.6).
    Draws depend only on (seed, timestamp), so the same frame always gives the same detections.
    """
    if not (0.0 <= drop_rate < 1.0 and false_positive_rate >= 0.0 and position_noise_m >= 0.0):
        raise BadInput(f"oracle detector: drop_rate {drop_rate} must be in [0, 1), false_positive_rate "
                       f"{false_positive_rate} and position_noise_m {position_noise_m} >= 0")

    def detect(frame: Frame) -> tuple[np.ndarray, list[str], np.ndarray]:
        rng = np.random.default_rng([seed, int(frame.timestamp_ns) % (1 << 63)])
        boxes = np.asarray(frame.boxes, dtype=np.float64).reshape(-1, 7)
        kept = rng.random(len(boxes)) >= drop_rate
        noisy = boxes[kept].copy()
        noisy[:, :2] += rng.normal(0.0, position_noise_m, (len(noisy), 2))
        noisy[:, 6] = wrap_angle(noisy[:, 6] + rng.normal(0.0, 0.05, len(noisy)))
        n_false = int(rng.poisson(false_positive_rate * max(len(boxes), 1)))
        false = np.column_stack([rng.uniform(-range_m, range_m, (n_false, 2)), np.full(n_false, 0.8),
                                 np.tile([4.5, 1.9, 1.6], (n_false, 1)), rng.uniform(-np.pi, np.pi, n_false)])
        classes = [c for c, k in zip(frame.classes, kept, strict=True) if k]
        classes += rng.choice(["vehicle", "pedestrian", "cyclist"], n_false).tolist()
        scores = np.concatenate([rng.uniform(0.5, 1.0, len(noisy)), rng.uniform(0.0, 0.6, n_false)])
        return np.concatenate([noisy, false.reshape(-1, 7)]), classes, scores

    return detect


def tracking_quality(truth: Log, labelled: Log | ImportedLog, threshold_m: float = 2.0,
                     classes: Sequence[str] | None = None) -> dict[str, Any]:
    """CLEAR MOT of an autolabel log against the ground-truth log it came from (world frame).

    Args:
        truth: the source log (its labels are the ground truth).
        labelled: its autolabel log.
        threshold_m: matching distance [m].
        classes: only these ground-truth and autolabel classes (default all).
    """
    frames = list(truth.frames)
    labels = list(labelled.frames)
    if len(frames) != len(labels):
        raise BadInput(f"the autolabel log has {len(labels)} frames, its source {len(frames)}: pass the log it "
                       f"was made from")
    wanted = set(classes or CLASSES)

    def columns(frame: Frame) -> tuple[list[str], np.ndarray]:
        keep = np.array([c in wanted for c in frame.classes], dtype=bool)
        xy = ego_to_world(np.asarray(frame.boxes).reshape(-1, 7)[keep, :2], frame.ego_pose)
        return [t for t, k in zip(frame.track_ids, keep, strict=True) if k], xy

    gt = [columns(f) for f in frames]
    hyp = [columns(f) for f in labels]
    return clear_mot([g[0] for g in gt], [g[1] for g in gt], [h[0] for h in hyp], [h[1] for h in hyp], threshold_m)


def _detector_version(upstream: Mapping[str, str]) -> str:
    version = str(upstream.get("detector") or "")
    if not version or any(ch.isspace() for ch in version) or ":" in version or len(detector_tag(version)) > 64:
        raise BadInput(f"upstream detector version {upstream.get('detector')!r} must be a short word without spaces "
                       f"or ':' (e.g. 'v3', the registry version): it becomes the tag {detector_tag('<version>')}")
    return version


def _detections(output: Any, log_id: str, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate one detector answer: boxes (N, 7), N known classes, N finite scores."""
    where = f"detector output for frame {index} of log {log_id}"
    try:
        boxes, classes, scores = output
    except (TypeError, ValueError):
        raise BadInput(f"{where} must be (boxes (N, 7), classes (N,), scores (N,)), got {type(output).__name__}") \
            from None
    boxes = np.asarray(boxes, dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 7)
    names = np.asarray(list(classes), dtype=np.str_)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if boxes.ndim != 2 or boxes.shape[1] != 7 or len(names) != len(boxes) or len(scores) != len(boxes):
        raise BadInput(f"{where}: boxes {boxes.shape}, {len(names)} classes and {len(scores)} scores; give (N, 7) "
                       f"boxes with one class and one score each")
    if not (np.isfinite(boxes).all() and np.isfinite(scores).all()) or (boxes[:, 3:6] <= 0).any():
        raise BadInput(f"{where}: boxes and scores must be finite and box sizes positive")
    unknown = sorted(set(names.tolist()) - set(CLASSES))
    if unknown:
        raise BadInput(f"{where}: unknown classes {unknown}; map the detector's classes to {list(CLASSES)}")
    return boxes, names, scores
