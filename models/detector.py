"""PillarDetector: a lidar 3D detector, pillars to a BEV CNN to CenterPoint-style heads.

Lang et al., PointPillars (2019) for the encoder; Yin et al., CenterPoint (2021) for the heads:

1. Pillar feature net: a shared linear + BatchNorm + ReLU over each point's 10 features
   (`andon.datasets.features.POINT_FEATURES`), max over the pillar's points (padding masked).
2. Scatter: each pillar's feature vector goes to its (batch, iy, ix) cell of a BEV canvas, in one
   `index_put` (pillar coordinates are unique per frame). The canvas is padded up to a multiple
   of the backbone's total stride.
3. Backbone: blocks of 3x3 convolutions (the first of each strided); every block's output is
   resampled to the output stride and concatenated (SECOND/PointPillars' multi-scale neck).
4. Heads: per-class centre heatmaps and the regression channels of `andon.models.detector_codec`.

Batches are the DetectionDataModule's (`andon.datasets.loaders`): pillars (ΣP, T, 10),
pillar_num_points (ΣP,), pillar_coords (ΣP, 3) as (batch, iy, ix), boxes (B, N, 7), labels (B, N)
padded with -1, and optionally velocities (B, N, 2) NaN where unknown. Validation decodes every
batch and accumulates detections and ground truth over the epoch; at its end nuScenes mAP
(`andon.models.detection_metrics`) is logged as `val/mAP` with `val/AP_<class>` per class present.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn

from andon.datasets.features import DETECTION_CLASSES, POINT_FEATURES
from andon.errors import BadInput
from andon.models.detection_metrics import DetectionSet, evaluate_detection
from andon.models.detector_codec import (
    HEATMAP_PRIOR,
    N_REGRESSION,
    Detections,
    HeadGeometry,
    decode,
    encode_targets,
    focal_loss,
    regression_loss,
)
from andon.scenarios.records import CLASSES

INPUT_KEYS: tuple[str, ...] = ("pillars", "pillar_num_points", "pillar_coords")
# DETECTION_CLASSES index -> andon's CLASSES index (what DetectionSet counts in)
_CLASS_CODES = np.array([CLASSES.index(name) for name in DETECTION_CLASSES], dtype=np.int64)
EXAMPLE_PILLARS = 64  # pillars kept in the logged input example: a full sweep's are ~15 MB


class PillarFeatureNet(nn.Module):
    """Linear + BatchNorm + ReLU shared by every point, then max over the pillar's points.

    Only the points themselves go through the layers (a sweep fills ~10% of the T slots), and the
    per-pillar max is one scatter-max over them; padding slots never enter the BatchNorm statistics.
    """

    def __init__(self, in_features: int, channels: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, channels, bias=False)
        self.norm = nn.BatchNorm1d(channels)

    def forward(self, pillars: torch.Tensor, num_points: torch.Tensor) -> torch.Tensor:
        """(P, T, D) points and (P,) counts -> (P, C) pillar features."""
        n_pillars, n_slots, _ = pillars.shape
        channels = self.linear.out_features
        present = torch.arange(n_slots, device=pillars.device)[None, :] < num_points[:, None]
        owner = torch.nonzero(present)[:, 0]
        if len(owner) == 0:  # a batch of empty sweeps: BatchNorm cannot normalise zero rows
            return pillars.new_zeros(n_pillars, channels) + 0.0 * self.linear.weight.sum()
        x = torch.relu(self.norm(self.linear(pillars[present])))
        out = x.new_zeros(n_pillars, channels)
        return out.scatter_reduce(0, owner[:, None].expand(-1, channels), x, reduce="amax", include_self=False)


def _conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class BevBackbone(nn.Module):
    """Strided blocks of 3x3 convolutions, each resampled to `out_stride` and concatenated."""

    def __init__(self, in_channels: int, channels: Sequence[int], layers: Sequence[int], strides: Sequence[int],
                 upsample_channels: int, out_stride: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList()
        self.resample = nn.ModuleList()
        total = 1
        previous = in_channels
        for width, depth, stride in zip(channels, layers, strides, strict=True):
            total *= stride
            self.blocks.append(nn.Sequential(_conv(previous, width, stride), *[_conv(width, width) for _ in range(depth)]))
            if total >= out_stride:
                factor = total // out_stride
                up: nn.Module = (nn.ConvTranspose2d(width, upsample_channels, factor, stride=factor, bias=False)
                                 if factor > 1 else nn.Conv2d(width, upsample_channels, 1, bias=False))
            else:
                factor = out_stride // total
                up = nn.Conv2d(width, upsample_channels, factor, stride=factor, bias=False)
            self.resample.append(nn.Sequential(up, nn.BatchNorm2d(upsample_channels), nn.ReLU(inplace=True)))
            previous = width
        self.total_stride = total
        self.out_channels = upsample_channels * len(channels)

    def forward(self, canvas: torch.Tensor) -> torch.Tensor:
        outputs = []
        x = canvas
        for block, resample in zip(self.blocks, self.resample, strict=True):
            x = block(x)
            outputs.append(resample(x))
        return torch.cat(outputs, dim=1)


class PillarDetector(pl.LightningModule):
    """The lidar detector of the cascade (module docstring); hyperparameters in `andon.models.train_config`."""

    task: ClassVar[str] = "detection"
    monitor: ClassVar[tuple[str, str]] = ("val/mAP", "max")
    classes: ClassVar[tuple[str, ...]] = DETECTION_CLASSES

    def __init__(self, sampling: Mapping[str, Any], name: str = "detector", pfn_channels: int = 32,
                 backbone_channels: Sequence[int] = (32, 64), backbone_layers: Sequence[int] = (1, 2),
                 backbone_strides: Sequence[int] = (2, 2), upsample_channels: int = 32, out_stride: int = 2,
                 head_channels: int = 32, gaussian_overlap: float = 0.1, min_radius: int = 2, max_radius: int = 8,
                 max_objects: int = 100, score_threshold: float = 0.1,
                 nms_radius_m: Sequence[float] = (2.0, 0.5, 1.0), heatmap_weight: float = 1.0,
                 regression_weight: float = 0.25, velocity_weight: float = 0.2,
                 optimizer: Mapping[str, Any] | None = None) -> None:
        """
        Args:
            sampling: the dataset version's sampling (pillar grid); the detector decodes in its metres.
            name: the registered model name.
            optimizer: the OptimizerConfig fields (name, lr, weight_decay, betas, scheduler, ...);
                None trains with Adam at 2e-3 and no schedule.
            others: see andon.models.train_config.DetectorConfig.

        Raises:
            BadInput: naming a size or setting that cannot build the network.
        """
        super().__init__()
        _validate(backbone_channels, backbone_layers, backbone_strides, out_stride, nms_radius_m, pfn_channels,
                  head_channels, upsample_channels, max_objects, min_radius, max_radius)
        # The whole config and the sampling travel with every checkpoint, so one loads without its run.
        self.save_hyperparameters(logger=False)
        self.sampling = dict(sampling)
        self.pfn = PillarFeatureNet(len(POINT_FEATURES), pfn_channels)
        self.backbone = BevBackbone(pfn_channels, backbone_channels, backbone_layers, backbone_strides,
                                    upsample_channels, out_stride)
        self.geometry = HeadGeometry.from_sampling(self.sampling, out_stride, pad_to=self.backbone.total_stride)
        self.canvas_shape = (self.geometry.ny * out_stride, self.geometry.nx * out_stride)
        self.shared = _conv(self.backbone.out_channels, head_channels)
        self.heatmap_head = nn.Conv2d(head_channels, len(self.classes), 1)
        self.regression_head = nn.Conv2d(head_channels, N_REGRESSION, 1)
        nn.init.constant_(self.heatmap_head.bias, float(np.log(HEATMAP_PRIOR / (1 - HEATMAP_PRIOR))))
        # The scattered canvas is born channels-last (B, H, W, C); keeping the convolutions in that
        # layout skips a copy and lets oneDNN / cuDNN use their NHWC kernels (~1.4x faster on CPU).
        self.to(memory_format=torch.channels_last)
        self._val_gt: list[dict[str, np.ndarray]] = []
        self._val_pred: list[dict[str, np.ndarray]] = []

    # ----- network --------------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Head outputs of a batch: {"heatmap": (B, C, ny, nx) logits, "regression": (B, R, ny, nx)}."""
        features = self.pfn(batch["pillars"], batch["pillar_num_points"])
        canvas = self.scatter(features, batch["pillar_coords"], _batch_size(batch))
        x = self.shared(self.backbone(canvas))
        return {"heatmap": self.heatmap_head(x), "regression": self.regression_head(x)}

    def scatter(self, features: torch.Tensor, coords: torch.Tensor, batch_size: int) -> torch.Tensor:
        """(P, C) pillar features to their (batch, iy, ix) cells of a (B, C, H, W) canvas, zeros elsewhere."""
        coords = coords.long()
        height, width = self.canvas_shape
        flat = (coords[:, 0] * height + coords[:, 1]) * width + coords[:, 2]
        canvas = features.new_zeros(batch_size * height * width, features.shape[1])
        # Pillar coordinates are unique per frame, so a plain (deterministic) index_put places them.
        canvas = canvas.index_put((flat,), features)
        return canvas.view(batch_size, height, width, -1).permute(0, 3, 1, 2)  # channels-last strides

    def losses(self, outputs: Mapping[str, torch.Tensor], batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """{"loss", "heatmap", "regression"} of head outputs against the batch's boxes."""
        hp = self.hparams
        # Targets and losses in float32 under any autocast: half precision would round box centres by
        # centimetres and underflow the focal loss's small terms.
        with torch.autocast(device_type=outputs["heatmap"].device.type, enabled=False):
            velocities = batch.get("velocities")
            targets = encode_targets(batch["boxes"].float(), batch["labels"], self.geometry, len(self.classes),
                                     hp.gaussian_overlap, hp.min_radius, hp.max_radius,
                                     None if velocities is None else velocities.float())
            heat = focal_loss(outputs["heatmap"].float(), targets.heatmap)
            reg = regression_loss(outputs["regression"].float(), targets, hp.velocity_weight)
        return {"loss": hp.heatmap_weight * heat + hp.regression_weight * reg, "heatmap": heat, "regression": reg}

    def decode(self, outputs: Mapping[str, torch.Tensor]) -> Detections:
        """Detections (boxes in ego metres) from head outputs."""
        hp = self.hparams
        with torch.autocast(device_type=outputs["heatmap"].device.type, enabled=False):  # metres need float32
            return decode(outputs["heatmap"].float(), outputs["regression"].float(), self.geometry, hp.max_objects,
                          hp.score_threshold, hp.nms_radius_m)

    @torch.no_grad()
    def detect(self, batch: Mapping[str, torch.Tensor]) -> Detections:
        """Run and decode a batch (eval mode is the caller's choice)."""
        return self.decode(self(batch))

    # ----- Lightning ------------------------------------------------------------------------------
    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self.losses(self(batch), batch)
        size = _batch_size(batch)
        self.log("train/loss", losses["loss"], prog_bar=True, batch_size=size)
        self.log_dict({"train/heatmap_loss": losses["heatmap"], "train/regression_loss": losses["regression"]},
                      batch_size=size)
        return losses["loss"]

    def on_validation_epoch_start(self) -> None:
        self._val_gt, self._val_pred = [], []

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        outputs = self(batch)
        losses = self.losses(outputs, batch)
        self.log("val/loss", losses["loss"], batch_size=_batch_size(batch))
        gt, pred = detection_arrays(batch, self.decode(outputs))
        self._val_gt.append(gt)
        self._val_pred.append(pred)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self._val_gt:
            return
        result = evaluate_frames(self._val_gt, self._val_pred)
        self._val_gt, self._val_pred = [], []
        # No ground-truth box in the validation frames: mAP is undefined, and NaN says so (never 0).
        metrics = {"val/mAP": float("nan") if result is None else result["mAP"]}
        if result is not None:
            metrics.update({f"val/AP_{name}": value for name, value in result["ap_mean"].items()})
        self.log_dict(metrics, sync_dist=True)

    def configure_optimizers(self) -> Any:
        settings = dict(self.hparams.optimizer or {})
        name = settings.get("name", "adam")
        kwargs = {"lr": float(settings.get("lr", 2e-3)), "weight_decay": float(settings.get("weight_decay", 0.0)),
                  "betas": tuple(settings.get("betas", (0.9, 0.99)))}
        optimizers = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
        if name not in optimizers:
            raise BadInput(f"optimizer.name {name!r}: choose one of {', '.join(optimizers)}")
        optimizer = optimizers[name](self.parameters(), **kwargs)
        scheduler = settings.get("scheduler", "none")
        if scheduler == "none":
            return optimizer
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        if scheduler == "onecycle":
            schedule = torch.optim.lr_scheduler.OneCycleLR(
                optimizer, max_lr=kwargs["lr"], total_steps=total, pct_start=float(settings.get("pct_start", 0.3)),
                div_factor=float(settings.get("div_factor", 10.0)),
                final_div_factor=float(settings.get("final_div_factor", 100.0)), cycle_momentum=False)
        elif scheduler == "cosine":
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
        else:
            raise BadInput(f"optimizer.scheduler {scheduler!r}: choose one of onecycle, cosine, none")
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    # ----- serving --------------------------------------------------------------------------------
    @staticmethod
    def example_input(batch: Mapping[str, torch.Tensor], max_pillars: int = EXAMPLE_PILLARS) -> dict[str, np.ndarray]:
        """A batched model input (numpy) from a loader batch, cut to its first `max_pillars` pillars.

        The cut keeps the layout (pillar_coords still carry the batch column), so the example runs
        through `forward` as it is; a whole sweep's pillars would make a ~15 MB example.
        """
        return {key: batch[key][:max_pillars].detach().to("cpu").numpy() for key in INPUT_KEYS}


def _batch_size(batch: Mapping[str, torch.Tensor]) -> int:
    """Frames in a batch: the padded label rows, else the largest batch index + 1 (serving inputs)."""
    if "labels" in batch:
        return int(batch["labels"].shape[0])
    if "sample_index" in batch:
        return int(batch["sample_index"].shape[0])
    coords = batch["pillar_coords"]
    return int(coords[:, 0].max()) + 1 if len(coords) else 1


def _validate(channels: Sequence[int], layers: Sequence[int], strides: Sequence[int], out_stride: int,
              nms_radius_m: Sequence[float], *positive: int) -> None:
    if not (len(channels) == len(layers) == len(strides)) or not channels:
        raise BadInput(f"model.backbone_channels {list(channels)}, backbone_layers {list(layers)} and "
                       f"backbone_strides {list(strides)} must be non-empty lists of one length (one per block)")
    if any(c < 1 for c in channels) or any(n < 0 for n in layers) or any(s < 1 for s in strides):
        raise BadInput(f"model.backbone_channels {list(channels)} must be >= 1, backbone_layers {list(layers)} "
                       f">= 0 and backbone_strides {list(strides)} >= 1")
    total = int(np.prod(strides))
    if out_stride < 1 or any(step % out_stride and out_stride % step for step in np.cumprod(strides)):
        raise BadInput(f"model.out_stride {out_stride} must divide (or be a multiple of) every block's cumulative "
                       f"stride {np.cumprod(strides).tolist()}, e.g. out_stride=2 with backbone_strides=[2, 2]")
    if total % out_stride:
        raise BadInput(f"model.out_stride {out_stride} must divide the backbone's total stride {total}")
    if len(nms_radius_m) != len(DETECTION_CLASSES) or any(r < 0 for r in nms_radius_m):
        raise BadInput(f"model.nms_radius_m {list(nms_radius_m)} must be {len(DETECTION_CLASSES)} radii >= 0 [m] "
                       f"({', '.join(DETECTION_CLASSES)})")
    if any(v < 1 for v in positive[:4]) or positive[4] < 0 or positive[5] < positive[4]:
        raise BadInput(f"model sizes (pfn_channels, head_channels, upsample_channels, max_objects) "
                       f"{list(positive[:4])} must be >= 1, and 0 <= min_radius <= max_radius ({list(positive[4:])})")


# ----- evaluation --------------------------------------------------------------------------------
def _numpy(tensor: torch.Tensor) -> np.ndarray:
    # The metrics are numpy: this is the one host copy of a validation batch, whatever the device.
    return tensor.detach().to("cpu").numpy()


def detection_arrays(batch: Mapping[str, torch.Tensor], detections: Detections) -> tuple[dict[str, np.ndarray],
                                                                                        dict[str, np.ndarray]]:
    """Ground truth and kept detections of a batch as flat numpy columns, frames named by sample_index."""
    frames = _numpy(batch["sample_index"]) if "sample_index" in batch else np.arange(_batch_size(batch))
    mask = _numpy(batch["labels"] >= 0)
    gt_frame, _ = np.nonzero(mask)
    keep = _numpy(detections.keep)
    pred_frame, _ = np.nonzero(keep)
    gt = {"frame_ids": frames.astype(np.int64), "frame": gt_frame, "boxes": _numpy(batch["boxes"])[mask].astype(np.float64),
          "labels": _numpy(batch["labels"])[mask]}
    pred = {"frame": pred_frame, "boxes": _numpy(detections.boxes)[keep].astype(np.float64),
            "labels": _numpy(detections.labels)[keep], "scores": _numpy(detections.scores)[keep].astype(np.float64)}
    return gt, pred


def evaluate_frames(gt_parts: Sequence[Mapping[str, np.ndarray]],
                    pred_parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, Any] | None:
    """nuScenes metrics over accumulated batches (`detection_arrays`); None without any ground-truth box.

    Frame ids are the batches' sample indices, so they must be unique across the parts (one split).
    """
    offsets = np.cumsum([0, *[len(p["frame_ids"]) for p in gt_parts]])
    frame_ids = [str(int(f)) for part in gt_parts for f in part["frame_ids"]]

    def columns(parts: Sequence[Mapping[str, np.ndarray]], with_scores: bool) -> dict[str, np.ndarray]:
        frame = np.concatenate([p["frame"] + offsets[i] for i, p in enumerate(parts)]).astype(np.int64)
        labels = np.concatenate([p["labels"] for p in parts]).astype(np.int64)
        out = {"frame": frame, "boxes": np.concatenate([p["boxes"] for p in parts]).reshape(-1, 7),
               "classes": _CLASS_CODES[labels]}
        if with_scores:
            out["scores"] = np.concatenate([p["scores"] for p in parts])
        return out

    gt = columns(gt_parts, with_scores=False)
    if len(gt["boxes"]) == 0:
        return None
    pred = columns(pred_parts, with_scores=True)
    gt_set = DetectionSet.from_arrays(frame_ids, gt["frame"], gt["boxes"], gt["classes"])
    pred_set = DetectionSet.from_arrays(frame_ids, pred["frame"], pred["boxes"], pred["classes"],
                                        scores=pred["scores"])
    return evaluate_detection(gt_set, pred_set, classes=DETECTION_CLASSES)
