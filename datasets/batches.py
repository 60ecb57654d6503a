"""Batches that cross from a DataLoader worker to the trainer as one shared-memory buffer.

Torch sends each tensor of a worker's batch through its own shared-memory segment and file
descriptor hand-over, a fixed cost per tensor (about 0.3 ms here) that a batch of eight small
tensors pays eight times. `to_batch` writes all of a batch's arrays into one byte buffer (in shared
memory when called in a worker) and returns tensors that view it: in the calling process directly,
from a worker as a `PackedBatch`, which pickles as that single buffer and becomes the same dict of
tensor views again when the trainer unpickles it. Arrays are concatenated straight into the buffer,
so a batch is copied once, whatever its size.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import get_worker_info

ALIGN_BYTES = 64  # every array starts on a cache line, so any dtype views it aligned

Layout = tuple[tuple[str, int, int, str, tuple[int, ...]], ...]  # (name, offset, nbytes, dtype, shape)


class PackedBatch:
    """A worker's batch in transit: one uint8 buffer and where each named array lies in it."""

    __slots__ = ("buffer", "layout")

    def __init__(self, buffer: torch.Tensor, layout: Layout) -> None:
        self.buffer = buffer
        self.layout = layout

    def __reduce__(self) -> tuple[Any, tuple[torch.Tensor, Layout]]:
        return unpack, (self.buffer, self.layout)


def unpack(buffer: torch.Tensor, layout: Layout) -> dict[str, torch.Tensor]:
    """The named tensors viewing `buffer` (no copy)."""
    batch = {}
    for name, offset, nbytes, dtype, shape in layout:
        torch_dtype = torch.from_numpy(np.empty(0, dtype=np.dtype(dtype))).dtype
        batch[name] = buffer[offset:offset + nbytes].view(torch_dtype).view(shape)
    return batch


def to_batch(parts: Mapping[str, Sequence[np.ndarray]]) -> dict[str, torch.Tensor] | PackedBatch:
    """One tensor per name, each the concatenation (along axis 0) of its parts, all in one buffer.

    Args:
        parts: name -> arrays of one dtype and equal trailing shape, concatenated in order.

    Returns:
        The dict of tensors; in a DataLoader worker, a PackedBatch that unpickles into it.
    """
    layout = []
    offset = 0
    for name, arrays in parts.items():
        first = np.asarray(arrays[0])
        shape = (sum(len(a) for a in arrays), *first.shape[1:])
        nbytes = math.prod(shape) * first.dtype.itemsize
        layout.append((name, offset, nbytes, first.dtype.str, shape))
        offset += -(-nbytes // ALIGN_BYTES) * ALIGN_BYTES
    in_worker = get_worker_info() is not None
    buffer = _shared_bytes(max(offset, 1)) if in_worker else torch.empty(max(offset, 1), dtype=torch.uint8)
    packed = tuple(layout)
    batch = unpack(buffer, packed)
    for name, arrays in parts.items():
        target = batch[name].numpy()
        if len(arrays) == 1:
            target[...] = arrays[0]
        else:
            np.concatenate(arrays, axis=0, out=target)
    return PackedBatch(buffer, packed) if in_worker else batch


def _shared_bytes(nbytes: int) -> torch.Tensor:
    """A uint8 tensor in shared memory, allocated there directly as torch's default_collate does."""
    storage = torch.empty(0, dtype=torch.uint8)._typed_storage()._new_shared(nbytes)
    return torch.empty(0, dtype=torch.uint8).new(storage).view(nbytes)
