"""Splits are by log, stable, leakage-free, and pinned logs go to test."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from andon.datasets.spec import SplitSpec
from andon.datasets.split import assign_splits, log_unit, logs_by_split, split_of

log_ids = st.lists(st.text(alphabet="abcdef0123456789-", min_size=1, max_size=24), min_size=1, max_size=60,
                   unique=True)


@st.composite
def split_specs(draw):
    a, b = sorted(draw(st.floats(0.0, 1.0)) for _ in range(2))
    return SplitSpec(train=a, val=b - a, test=1.0 - b, salt=draw(st.text(max_size=8)))


@settings(max_examples=200, deadline=None)
@given(log_ids, split_specs(), st.data())
def test_no_log_is_in_two_splits_and_pinned_logs_are_in_test(ids, spec, data):
    pinned = data.draw(st.lists(st.sampled_from(ids), max_size=5))
    assignment = assign_splits(ids, spec, pinned)
    grouped = logs_by_split(assignment)
    seen = [log_id for group in grouped.values() for log_id in group]
    assert sorted(seen) == sorted(ids)  # every log in exactly one split
    assert len(seen) == len(set(seen))
    assert set(pinned) <= set(grouped["test"])


@settings(max_examples=100, deadline=None)
@given(log_ids, log_ids, split_specs())
def test_a_logs_split_does_not_depend_on_the_other_logs(ids, more, spec):
    alone = assign_splits(ids, spec)
    together = assign_splits([*ids, *more], spec)
    assert all(together[log_id] == split for log_id, split in alone.items())


@settings(max_examples=100, deadline=None)
@given(log_ids, split_specs())
def test_zero_fraction_splits_stay_empty(ids, spec):
    grouped = logs_by_split(assign_splits(ids, spec))
    for name in ("train", "val", "test"):
        if getattr(spec, name) == 0.0:
            assert grouped[name] == []


def test_fractions_hold_over_many_logs():
    spec = SplitSpec(train=0.7, val=0.15, test=0.15, salt="s")
    grouped = logs_by_split(assign_splits([f"log-{i}" for i in range(20_000)], spec))
    shares = {name: len(ids) / 20_000 for name, ids in grouped.items()}
    assert abs(shares["train"] - 0.7) < 0.02 and abs(shares["val"] - 0.15) < 0.02


def test_the_salt_reshuffles_and_the_hash_is_stable():
    assert log_unit("log-1", "a") == log_unit("log-1", "a")
    assert log_unit("log-1", "a") != log_unit("log-1", "b")
    assert 0.0 <= log_unit("log-1", "a") < 1.0
    assert split_of("x", SplitSpec(train=1.0, val=0.0, test=0.0)) == "train"
    assert split_of("x", SplitSpec(train=0.0, val=0.0, test=1.0)) == "test"
