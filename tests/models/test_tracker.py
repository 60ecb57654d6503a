"""The tracker: Kalman filtering, per-class Hungarian assignment, track life cycle, CLEAR MOT, config."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.utils import instantiate
from omegaconf import OmegaConf

from andon.errors import BadInput
from andon.hydra_app import register_configs
from andon.models.tracker import (
    Tracker,
    TrackerConfig,
    class_codes,
    ego_to_world,
    make_tracker,
    world_velocity_to_ego,
)
from andon.models.tracking_metrics import clear_mot

PERIOD_NS = 100_000_000


def moving_objects(n_frames: int = 60, n_objects: int = 8, noise_m: float = 0.1, drop: float = 0.0,
                   seed: int = 0) -> tuple[list[tuple[int, np.ndarray, np.ndarray, None]], np.ndarray, np.ndarray]:
    """Objects on straight lines 8 m apart; frames of (t, noisy centres, classes, None); truth and velocities."""
    rng = np.random.default_rng(seed)
    start = np.column_stack([np.arange(n_objects) * 8.0, rng.uniform(-20, 20, n_objects)])
    velocity = rng.normal(0.0, 3.0, (n_objects, 2))
    classes = np.array(["vehicle", "pedestrian"] * n_objects)[:n_objects]
    truth = start[None] + np.arange(n_frames)[:, None, None] * 0.1 * velocity[None]
    frames = []
    for i in range(n_frames):
        seen = rng.random(n_objects) >= drop
        xy = truth[i, seen] + rng.normal(0.0, noise_m, (int(seen.sum()), 2))
        frames.append((1_000_000_000 + i * PERIOD_NS, xy, classes[seen], None))
    return frames, truth, velocity


def test_tracks_keep_their_ids_and_learn_velocities() -> None:
    frames, truth, velocity = moving_objects()
    out = Tracker().track(frames)
    ids = np.array([o.track_ids for o in out])
    assert (ids == ids[0]).all() and len(set(ids[0])) == len(ids[0])  # no switch, all distinct
    assert not out[0].confirmed.any() and out[1].confirmed.all()  # min_hits = 2
    np.testing.assert_allclose(out[-1].states[:, 2:], velocity, atol=0.35)
    # Filtering beats the raw detections' noise.
    error = np.hypot(*(out[-1].states[:, :2] - truth[-1]).T).mean()
    assert error < 0.1


def test_noisy_dropped_detections_are_tracked_with_few_switches() -> None:
    frames, truth, _ = moving_objects(n_frames=100, n_objects=20, noise_m=0.2, drop=0.15, seed=3)
    out = Tracker().track(frames)
    gt_ids = [[str(k) for k in range(truth.shape[1])] for _ in frames]
    hyp_ids = [o.track_ids[o.confirmed] for o in out]
    hyp_xy = [o.states[o.confirmed, :2] for o in out]
    quality = clear_mot(gt_ids, list(truth), hyp_ids, hyp_xy)
    assert quality["id_switches"] <= 2 and quality["false_positives"] == 0
    assert quality["mota"] > 0.8  # misses are the 15 % drops (and first frames)


def test_fast_objects_are_tracked_at_a_sparse_detector_rate() -> None:
    """A sweep every 0.5 s (lidar on every fifth frame): a new track's gate widens with its unknown velocity."""
    start = np.column_stack([np.zeros(6), np.arange(6) * 10.0])
    velocity = np.column_stack([np.where(np.arange(6) % 2, 15.0, -15.0), np.zeros(6)])  # 7.5 m between sweeps
    frames = [(k * 5 * PERIOD_NS, start + velocity * 0.5 * k, ["vehicle"] * 6, None) for k in range(10)]
    out = Tracker().track(frames)
    ids = np.array([o.track_ids for o in out])
    assert (ids == ids[0]).all() and out[-1].confirmed.all()
    np.testing.assert_allclose(out[-1].states[:, 2:], velocity, atol=0.5)


def _full_matrix_filter(frames: list[tuple[int, np.ndarray, np.ndarray]], config: TrackerConfig) -> list[np.ndarray]:
    """The constant-velocity Kalman filter on full 4 x 4 covariances, batched over tracks (stacked matrices,
    a closed-form 2 x 2 inverse of S): (T, 4) states after each frame of (time, all objects' centres, which
    were seen), for objects far enough apart that each detection always goes to its own track."""
    sigma = config.measurement_noise_m
    r = np.eye(2) * sigma * sigma
    p0 = np.diag([sigma * sigma, sigma * sigma, config.initial_speed_std_mps ** 2, config.initial_speed_std_mps ** 2])
    x, p, last, out = np.zeros((0, 4)), np.zeros((0, 4, 4)), 0, []
    for stamp, xy, seen in frames:
        if not len(x):
            x, p = np.column_stack([xy, np.zeros((len(xy), 2))]), np.broadcast_to(p0, (len(xy), 4, 4)).copy()
        else:
            dt, q = (stamp - last) * 1e-9, config.process_noise_mps2 ** 2
            a, b, c = q * dt ** 4 / 4, q * dt ** 3 / 2, q * dt ** 2
            x[:, :2] += dt * x[:, 2:]
            p[:, :2, :] += dt * p[:, 2:, :]
            p[:, :, :2] += dt * p[:, :, 2:]
            p += np.array([[a, 0, b, 0], [0, a, 0, b], [b, 0, c, 0], [0, b, 0, c]])
            rows = np.flatnonzero(seen)
            pr = p[rows]
            s00, s11, s01 = pr[:, 0, 0] + r[0, 0], pr[:, 1, 1] + r[1, 1], pr[:, 0, 1]
            det = s00 * s11 - s01 * s01
            s_inv = np.empty((len(rows), 2, 2))
            s_inv[:, 0, 0], s_inv[:, 1, 1] = s11 / det, s00 / det
            s_inv[:, 0, 1] = s_inv[:, 1, 0] = -s01 / det
            gain = pr[:, :, :2] @ s_inv
            x[rows] += np.einsum("mij,mj->mi", gain, xy[rows] - x[rows, :2])
            p[rows] = pr - gain @ pr[:, :2, :]
        last = stamp
        out.append(x.copy())
    return out


def test_the_covariance_blocks_give_the_full_matrix_filter_bit_for_bit() -> None:
    """The tracker keeps one 2 x 2 block per track (module docstring); its states equal the full filter's exactly,
    over steps of different lengths and frames where an object is missed."""
    rng = np.random.default_rng(4)
    start, velocity = np.column_stack([np.arange(6) * 30.0, rng.uniform(-5, 5, 6)]), rng.normal(0.0, 3.0, (6, 2))
    frames, stamp = [], 0
    for i in range(60):
        stamp += PERIOD_NS if i % 7 else 250_000_000
        xy = start + velocity * stamp * 1e-9 + rng.normal(0.0, 0.2, (6, 2))
        frames.append((stamp, xy, (np.arange(6) + i) % 4 != 0 if i else np.ones(6, dtype=bool)))
    tracker, config = Tracker(), TrackerConfig()
    for (stamp, xy, seen), expected in zip(frames, _full_matrix_filter(frames, config), strict=True):
        tracker.step(xy[seen], np.array(["vehicle", "pedestrian"] * 3)[seen], stamp)
        table = tracker.tracks()
        assert table.track_ids.tolist() == list(range(6))
        assert np.array_equal(table.states, expected)


def test_assignment_is_per_class() -> None:
    tracker = Tracker()
    tracker.step(np.array([[0.0, 0.0]]), ["vehicle"], 0)
    out = tracker.step(np.array([[0.1, 0.0], [0.0, 0.1]]), ["pedestrian", "vehicle"], PERIOD_NS)
    # The pedestrian is nearer the vehicle's track but may not take it.
    assert out.track_ids[1] == 0 and out.track_ids[0] == 1
    assert class_codes(["vehicle", "cyclist"]).tolist() == [0, 2]


def test_gate_life_cycle_and_scores() -> None:
    tracker = Tracker(TrackerConfig(gating_distance_m=2.0, max_age_frames=2, min_score=0.5))
    t = 0
    first = tracker.step([[0.0, 0.0]], ["vehicle"], t).track_ids[0]
    # A jump beyond the gate starts another track.
    t += PERIOD_NS
    assert tracker.step([[5.0, 0.0]], ["vehicle"], t).track_ids[0] != first
    # Missing for max_age_frames frames keeps the track; one more drops it.
    tracker.reset()
    tracker.step([[0.0, 0.0]], ["vehicle"], 0)
    for k in range(1, 3):
        tracker.step(np.zeros((0, 2)), [], k * PERIOD_NS)
    assert tracker.step([[0.0, 0.0]], ["vehicle"], 3 * PERIOD_NS).track_ids[0] == 0
    for k in range(4, 7):
        tracker.step(np.zeros((0, 2)), [], k * PERIOD_NS)
    assert tracker.step([[0.0, 0.0]], ["vehicle"], 7 * PERIOD_NS).track_ids[0] == 1
    # Low scores are ignored.
    out = tracker.step([[0.0, 0.0], [9.0, 9.0]], ["vehicle", "vehicle"], 8 * PERIOD_NS, scores=[0.9, 0.1])
    assert out.track_ids[1] == -1 and np.isnan(out.states[1]).all() and not out.confirmed[1]
    assert len(tracker.tracks().track_ids) == 1


@pytest.mark.parametrize(("call", "message"), [
    (lambda t: t.step([[0.0, 0.0]], ["vehicle", "vehicle"], 10), "classes"),
    (lambda t: t.step([[np.nan, 0.0]], ["vehicle"], 10), "NaN"),
    (lambda t: t.step([[0.0, 0.0]], ["truck"], 10), "truck"),
    (lambda t: t.step([[0.0, 0.0]], ["vehicle"], 0), "does not follow"),
])
def test_bad_input_names_the_problem(call, message: str) -> None:
    tracker = Tracker()
    tracker.step([[0.0, 0.0]], ["vehicle"], 0)
    with pytest.raises(BadInput, match=message):
        call(tracker)


def test_config_is_validated_and_is_the_fingerprint() -> None:
    with pytest.raises(BadInput, match="gating_distance_m"):
        TrackerConfig(gating_distance_m=0.0)
    with pytest.raises(BadInput, match="min_hits"):
        TrackerConfig(min_hits=0)
    with pytest.raises(BadInput, match="gate"):
        make_tracker(gate=3.0)
    tracker = make_tracker(min_hits=3)
    assert tracker.fingerprint_params() == {**TrackerConfig().__dict__, "min_hits": 3}


def test_tracker_yaml_builds_the_tracker() -> None:
    register_configs()
    with initialize_config_module(version_base="1.3", config_module="andon.configs"):
        cfg = compose(overrides=["+model=tracker"])
    params = OmegaConf.to_container(cfg.model)
    params.pop("name")
    tracker = instantiate(params)
    assert isinstance(tracker, Tracker) and tracker.config.min_score == 0.3


def test_ego_frame_helpers() -> None:
    pose = (10.0, -5.0, 0.0, 0.7)
    world = ego_to_world(np.array([[1.0, 2.0]]), pose)
    c, s = np.cos(0.7), np.sin(0.7)
    np.testing.assert_allclose(world, [[10 + c - 2 * s, -5 + s + 2 * c]])
    np.testing.assert_allclose(world_velocity_to_ego(np.array([[c, s]]), 0.7), [[1.0, 0.0]], atol=1e-12)
    # Detections in the ego frame with the pose track in the world frame.
    tracker = Tracker()
    out = tracker.step(np.array([[1.0, 2.0]]), ["vehicle"], 0, ego_pose=pose)
    np.testing.assert_allclose(out.states[:, :2], world)


def test_clear_mot_counts_switches_misses_and_false_positives() -> None:
    gt_ids = [["a", "b"], ["a", "b"], ["a", "b"]]
    gt_xy = [np.array([[0.0, 0.0], [10.0, 0.0]])] * 3
    hyp_ids = [[1, 2], [3, 2], [3, 2, 9]]
    hyp_xy = [np.array([[0.1, 0.0], [10.0, 0.1]]), np.array([[0.0, 0.1], [10.1, 0.0]]),
              np.array([[0.0, 0.0], [10.0, 0.0], [50.0, 0.0]])]
    result = clear_mot(gt_ids, gt_xy, hyp_ids, hyp_xy)
    assert result["id_switches"] == 1 and result["false_positives"] == 1 and result["misses"] == 0
    assert result["mota"] == pytest.approx(1 - 2 / 6) and result["fragmented_tracks"] == 1
    with pytest.raises(BadInput, match="same number of frames"):
        clear_mot(gt_ids, gt_xy, hyp_ids[:2], hyp_xy)
