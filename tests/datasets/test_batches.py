"""One-buffer batches: the same tensors in the calling process and after a worker's hand-over."""

from __future__ import annotations

import pickle
from multiprocessing.reduction import ForkingPickler

import numpy as np
import pytest
import torch
import torch.multiprocessing  # noqa: F401  (registers the tensor reductions ForkingPickler uses)

from andon.datasets import batches
from andon.datasets.batches import PackedBatch, to_batch

PARTS = {
    "mask": [np.array([True, False, True])],  # 3 bytes: the next array must still start aligned
    "xy": [np.arange(6, dtype=np.float64).reshape(3, 2), np.full((2, 2), -1.0)],
    "index": [np.arange(4, dtype=np.int64)],
    "empty": [np.zeros((0, 7), dtype=np.float32)],
}


def assert_batch(batch: dict[str, torch.Tensor]) -> None:
    assert batch["mask"].dtype == torch.bool and batch["mask"].tolist() == [True, False, True]
    assert batch["xy"].dtype == torch.float64 and batch["xy"].shape == (5, 2)
    assert batch["xy"][:3].flatten().tolist() == list(range(6)) and (batch["xy"][3:] == -1).all()
    assert batch["index"].tolist() == [0, 1, 2, 3]
    assert batch["empty"].shape == (0, 7) and batch["empty"].dtype == torch.float32


def test_in_the_calling_process_the_batch_is_a_dict_of_tensors() -> None:
    batch = to_batch(PARTS)
    assert isinstance(batch, dict)
    assert_batch(batch)
    assert len({t.untyped_storage().data_ptr() for t in batch.values()}) == 1  # one buffer


def test_a_worker_batch_crosses_as_one_buffer_and_unpacks_to_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batches, "get_worker_info", lambda: object())
    packed = to_batch(PARTS)
    assert isinstance(packed, PackedBatch) and packed.buffer.is_shared()
    received = pickle.loads(ForkingPickler.dumps(packed))
    assert isinstance(received, dict)
    assert_batch(received)
