"""CenterPoint-style targets, losses and decoding of the pillar detector, vectorised in torch.

The heads see a BEV map of `HeadGeometry.ny x nx` cells, each `out_stride` pillars wide, whose cell
(iy, ix) covers x in [x0 + ix * cell_x_m, x0 + (ix + 1) * cell_x_m) and likewise in y. Per class
(`DETECTION_CLASSES`: vehicle, pedestrian, cyclist) a heatmap is 1 at the cell holding a box's BEV
centre and falls off as a Gaussian around it (Zhou et al., CenterNet 2019; Yin et al., CenterPoint
2021). At that cell the regression channels (`REGRESSION_CHANNELS`) hold:

    dx, dy      centre offset inside the cell [cells], in [0, 1)
    z_m         box centre height [m]
    log_l, log_w, log_h   log of the size [m]
    sin_yaw, cos_yaw      yaw as a unit vector (no wrap-around discontinuity)
    vx_mps, vy_mps        velocity [m/s], learnt only where known (NaN or absent: masked)

Decoding: sigmoid heatmap, peaks are cells equal to the 3x3 max-pool of their neighbourhood, the
`max_objects` best per frame, a score floor, then per-class suppression by BEV centre distance
(a peak within `nms_radius_m[class]` of a higher-scoring kept peak of the same class is dropped).
Suppression is Fast NMS (Bolya et al., YOLACT 2019): it compares each peak with every higher-scoring
candidate at once, which is one matrix operation instead of a loop over boxes; it may drop a little
more than greedy NMS when three peaks form a chain, which heatmap peaks rarely do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from andon.datasets.features import DETECTION_CLASSES, pillar_grid
from andon.errors import BadInput

REGRESSION_CHANNELS: tuple[str, ...] = ("dx", "dy", "z_m", "log_l", "log_w", "log_h", "sin_yaw", "cos_yaw",
                                        "vx_mps", "vy_mps")
N_REGRESSION = len(REGRESSION_CHANNELS)
VELOCITY = slice(8, 10)
HEATMAP_PRIOR = 0.1  # initial heatmap probability: the head's bias starts at logit(0.1), as CenterNet
_PROB_EPS = 1e-4  # heatmap probabilities are clamped to [eps, 1 - eps] so the focal loss stays finite
_MAX_LOG_SIZE = 4.0  # exp(4) = 55 m: decoding clamps log sizes so an untrained head gives finite boxes


@dataclass(frozen=True, slots=True)
class HeadGeometry:
    """Where the head's cells lie in the ego frame (see the module docstring)."""

    x0_m: float
    y0_m: float
    cell_x_m: float
    cell_y_m: float
    nx: int
    ny: int

    @classmethod
    def from_sampling(cls, sampling: Mapping[str, Any], out_stride: int, pad_to: int = 1) -> HeadGeometry:
        """The head grid of a detector whose pillar grid is the sampling's, seen at `out_stride`.

        Args:
            sampling: the dataset version's sampling (point_cloud_range_m, voxel_size_m).
            out_stride: pillars per head cell along x and y.
            pad_to: the BEV canvas is padded up to a multiple of this many pillars (the backbone's
                total stride), so every pillar maps to a head cell.
        """
        grid = pillar_grid(sampling)
        ny = math.ceil(grid.ny / pad_to) * pad_to // out_stride
        nx = math.ceil(grid.nx / pad_to) * pad_to // out_stride
        return cls(x0_m=grid.range_m[0], y0_m=grid.range_m[1], cell_x_m=grid.voxel_m[0] * out_stride,
                   cell_y_m=grid.voxel_m[1] * out_stride, nx=nx, ny=ny)


@dataclass(frozen=True, slots=True)
class Targets:
    """Training targets of a batch: dense heatmaps, and per valid box its cell and regression.

    Attributes:
        heatmap: (B, C, ny, nx) float, 1 at box centres, Gaussian around them.
        batch, cell_y, cell_x: (N,) long, where each valid box's centre lies.
        regression: (N, N_REGRESSION) float targets (velocity NaN where unknown).
    """

    heatmap: torch.Tensor
    batch: torch.Tensor
    cell_y: torch.Tensor
    cell_x: torch.Tensor
    regression: torch.Tensor


def gaussian_radius(length_cells: torch.Tensor, width_cells: torch.Tensor, overlap: float) -> torch.Tensor:
    """CenterNet's radius: how far a corner may move with the box still overlapping the truth by `overlap`.

    The smallest root of the three cases of CenterNet's `gaussian_radius` (as CenterPoint uses it),
    in cells, elementwise.
    """
    h, w = length_cells, width_cells
    b1 = h + w
    c1 = w * h * (1 - overlap) / (1 + overlap)
    r1 = (b1 + torch.sqrt(b1 * b1 - 4 * c1)) / 2
    b2 = 2 * (h + w)
    c2 = (1 - overlap) * w * h
    r2 = (b2 + torch.sqrt(b2 * b2 - 16 * c2)) / 2
    a3 = 4 * overlap
    b3 = -2 * overlap * (h + w)
    c3 = (overlap - 1) * w * h
    r3 = (b3 + torch.sqrt(b3 * b3 - 4 * a3 * c3)) / 2
    return torch.minimum(torch.minimum(r1, r2), r3)


def encode_targets(boxes: torch.Tensor, labels: torch.Tensor, geometry: HeadGeometry, n_classes: int,
                   overlap: float, min_radius: int, max_radius: int,
                   velocities: torch.Tensor | None = None) -> Targets:
    """Heatmaps and regression targets of a padded batch of boxes.

    Args:
        boxes: (B, N, 7) x, y, z_centre, l, w, h, yaw [m, rad], ego frame; padding rows are ignored.
        labels: (B, N) long class index into DETECTION_CLASSES, -1 for padding.
        geometry: the head grid.
        n_classes: heatmap channels.
        overlap, min_radius, max_radius: the Gaussian's radius (cells) = clamp(gaussian_radius, min, max).
        velocities: (B, N, 2) [m/s], NaN where unknown; None when the batch has none.

    Returns:
        The Targets; all Gaussians are drawn at once (a scatter-max over every box's window).
    """
    batch_size = boxes.shape[0]
    device, dtype = boxes.device, boxes.dtype
    valid = labels >= 0
    b_index = torch.nonzero(valid, as_tuple=True)[0]
    box = boxes[valid]
    label = labels[valid]
    fx = (box[:, 0] - geometry.x0_m) / geometry.cell_x_m
    fy = (box[:, 1] - geometry.y0_m) / geometry.cell_y_m
    cx = fx.floor().long().clamp(0, geometry.nx - 1)
    cy = fy.floor().long().clamp(0, geometry.ny - 1)
    radius = gaussian_radius(box[:, 3] / geometry.cell_x_m, box[:, 4] / geometry.cell_y_m, overlap)
    radius = radius.floor().long().clamp(min_radius, max_radius)

    heatmap = torch.zeros(batch_size, n_classes, geometry.ny, geometry.nx, device=device, dtype=dtype)
    if len(box):
        span = int(radius.max())
        steps = torch.arange(-span, span + 1, device=device)
        dy, dx = torch.meshgrid(steps, steps, indexing="ij")
        dy, dx = dy.reshape(1, -1), dx.reshape(1, -1)  # (1, W) window offsets
        sigma = ((2 * radius + 1).to(dtype) / 6.0)[:, None]
        value = torch.exp(-(dx * dx + dy * dy).to(dtype) / (2 * sigma * sigma))
        px, py = cx[:, None] + dx, cy[:, None] + dy
        inside = ((dx.abs() <= radius[:, None]) & (dy.abs() <= radius[:, None]) & (px >= 0) & (px < geometry.nx)
                  & (py >= 0) & (py < geometry.ny))
        flat = ((b_index[:, None] * n_classes + label[:, None]) * geometry.ny + py) * geometry.nx + px
        heatmap.view(-1).scatter_reduce_(0, flat[inside], value[inside], reduce="amax")

    if velocities is None:
        velocity = torch.full((len(box), 2), float("nan"), device=device, dtype=dtype)
    else:
        velocity = velocities[valid].to(dtype)
    regression = torch.stack([fx - cx.to(dtype), fy - cy.to(dtype), box[:, 2], box[:, 3].log(), box[:, 4].log(),
                              box[:, 5].log(), torch.sin(box[:, 6]), torch.cos(box[:, 6])], dim=1)
    return Targets(heatmap=heatmap, batch=b_index, cell_y=cy, cell_x=cx,
                   regression=torch.cat([regression, velocity], dim=1))


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CornerNet's penalty-reduced focal loss over heatmaps, normalised by the number of centres."""
    prob = torch.sigmoid(logits).clamp(_PROB_EPS, 1 - _PROB_EPS)
    positive = target.eq(1.0)
    pos_loss = -torch.log(prob) * (1 - prob).pow(alpha)
    neg_loss = -torch.log(1 - prob) * prob.pow(alpha) * (1 - target).pow(beta)
    loss = torch.where(positive, pos_loss, neg_loss).sum()
    return loss / positive.sum().clamp(min=1)


def regression_loss(regression_map: torch.Tensor, targets: Targets, velocity_weight: float) -> torch.Tensor:
    """L1 at the boxes' centre cells, averaged over boxes; velocity only where known."""
    if len(targets.batch) == 0:
        return regression_map.sum() * 0.0  # keeps the graph (and DDP) intact on a frame without boxes
    predicted = regression_map.permute(0, 2, 3, 1)[targets.batch, targets.cell_y, targets.cell_x]
    known = torch.isfinite(targets.regression)
    error = torch.where(known, (predicted - torch.nan_to_num(targets.regression)).abs(), 0.0)
    weight = torch.ones(N_REGRESSION, device=error.device, dtype=error.dtype)
    weight[VELOCITY] = velocity_weight
    return (error * weight).sum() / len(targets.batch)


@dataclass(frozen=True, slots=True)
class Detections:
    """Decoded detections of a batch, padded to K per frame.

    Attributes:
        boxes: (B, K, 7) x, y, z_centre, l, w, h, yaw [m, rad] in the ego frame.
        labels: (B, K) long index into DETECTION_CLASSES.
        scores: (B, K) heatmap probability.
        velocities: (B, K, 2) [m/s].
        keep: (B, K) bool, the detections that survive the score floor and suppression.
    """

    boxes: torch.Tensor
    labels: torch.Tensor
    scores: torch.Tensor
    velocities: torch.Tensor
    keep: torch.Tensor


def decode(heatmap_logits: torch.Tensor, regression_map: torch.Tensor, geometry: HeadGeometry, max_objects: int,
           score_threshold: float, nms_radius_m: Sequence[float]) -> Detections:
    """Boxes from the heads (module docstring): peaks, top-k, score floor, per-class Fast NMS.

    Args:
        heatmap_logits: (B, C, ny, nx).
        regression_map: (B, N_REGRESSION, ny, nx).
        geometry: the head grid.
        max_objects: candidates kept per frame (K).
        score_threshold: minimum heatmap probability.
        nms_radius_m: per class, the BEV distance within which a lower-scoring peak is suppressed.
    """
    batch_size, n_classes, ny, nx = heatmap_logits.shape
    if len(nms_radius_m) != n_classes:
        raise BadInput(f"nms_radius_m {list(nms_radius_m)} must give one radius per class "
                       f"({', '.join(DETECTION_CLASSES[:n_classes])})")
    heat = torch.sigmoid(heatmap_logits)
    peaks = heat * (F.max_pool2d(heat, kernel_size=3, stride=1, padding=1) == heat)
    k = min(max_objects, n_classes * ny * nx)
    scores, index = peaks.reshape(batch_size, -1).topk(k, dim=1)  # sorted, best first
    labels = torch.div(index, ny * nx, rounding_mode="floor")
    pixel = index % (ny * nx)
    cell_y = torch.div(pixel, nx, rounding_mode="floor")
    cell_x = pixel % nx
    reg = regression_map.reshape(batch_size, N_REGRESSION, ny * nx).gather(
        2, pixel[:, None, :].expand(batch_size, N_REGRESSION, k))  # (B, R, K)
    dtype = reg.dtype
    x = (cell_x.to(dtype) + reg[:, 0]) * geometry.cell_x_m + geometry.x0_m
    y = (cell_y.to(dtype) + reg[:, 1]) * geometry.cell_y_m + geometry.y0_m
    size = reg[:, 3:6].clamp(-_MAX_LOG_SIZE, _MAX_LOG_SIZE).exp()
    yaw = torch.atan2(reg[:, 6], reg[:, 7])
    yaw = torch.where(yaw <= -math.pi, yaw + 2 * math.pi, yaw)  # (-pi, pi], the contract's range
    boxes = torch.stack([x, y, reg[:, 2], size[:, 0], size[:, 1], size[:, 2], yaw], dim=-1)
    velocities = reg[:, VELOCITY].permute(0, 2, 1)

    keep = scores >= score_threshold
    radius = torch.as_tensor(list(nms_radius_m), device=boxes.device, dtype=dtype)[labels]  # (B, K)
    gap = torch.cdist(boxes[..., :2], boxes[..., :2])  # (B, K, K), row i: the candidate, column j: others
    higher = torch.ones(k, k, dtype=torch.bool, device=boxes.device).triu(diagonal=1)  # i before j
    suppresses = (higher & (labels[:, :, None] == labels[:, None, :]) & (gap < radius[:, None, :])
                  & keep[:, :, None])
    keep = keep & ~suppresses.any(dim=1)
    return Detections(boxes=boxes, labels=labels, scores=scores, velocities=velocities, keep=keep)
