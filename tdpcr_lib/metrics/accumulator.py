"""Streaming accumulation of cloud-removal and segmentation metrics over a dataset.

:class:`EvaluationAccumulator` is a :class:`torchmetrics.Metric`: its states are sums (per
cloud-cover bucket: CR metric sums and counts, confusion matrices, image counts) that
torchmetrics sums over DDP ranks on :meth:`compute` and over accumulators with
:meth:`merge_state`. :meth:`compute` returns the tidy result frame of
:mod:`tdpcr_lib.metrics.results`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
import torch
import torch.distributed as dist
from torchmetrics import Metric
from torchmetrics.utilities.distributed import gather_all_tensors

from tdpcr_lib.datasets.samples import BUCKETS
from tdpcr_lib.metrics.functional import confusion_matrix, cr_metrics_by_region, segmentation_scores
from tdpcr_lib.metrics.input_cache import InputMetricsCache, batch_key
from tdpcr_lib.metrics.results import (
    ALL,
    COUNT_METRIC,
    CR_METRICS,
    INPUT_PREFIX,
    REGIONS,
    SEG_METRICS,
    iou_class,
    label,
    make_frame,
)

#: Per-image record columns kept in the ``images`` state (besides ``id``), in order.
_IMAGE_COLUMNS: tuple[str, ...] = (
    "bucket",
    "cloud_fraction",
    *CR_METRICS,
    *(INPUT_PREFIX + m for m in CR_METRICS),
    "pixel_accuracy",
)


class EvaluationAccumulator(Metric):
    """Accumulates cloud-removal and segmentation metrics over batches (a torchmetrics Metric).

    Parameters
    ----------
    num_classes
        Segmentation classes (7).
    ignore_index
        Label value skipped by the segmentation metrics (255).
    keep_per_image
        Also keep one record per image (id, bucket, cloud fraction and the five CR metrics of the
        reconstruction and of the input, all pixels) for :meth:`per_image`.
    buckets
        The cloud-cover bucket names a batch may carry (default: LuojiaSET's five); the states
        have one slot per bucket, which is what lets torchmetrics sum them over ranks.
    **kwargs
        Passed to :class:`torchmetrics.Metric` (e.g. ``sync_on_compute=False`` when only one
        rank evaluates under ``torch.distributed``).

    Examples
    --------
    >>> acc = EvaluationAccumulator()
    >>> for batch in loader:  # doctest: +SKIP
    ...     acc.update(model(batch["optical"], batch["sar"]), batch)
    >>> frame = acc.to_frame(model="tdpcr", split="test")  # doctest: +SKIP
    >>> value(frame, "psnr", "cloudy"), value(frame, "miou")  # doctest: +SKIP
    """

    # every state is a sum: merging and DDP reduction need no full recomputation
    full_state_update = False
    is_differentiable = False

    def __init__(
        self,
        num_classes: int = 7,
        ignore_index: int = 255,
        keep_per_image: bool = True,
        buckets: Sequence[str] = BUCKETS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.keep_per_image = keep_per_image
        self.buckets = tuple(str(b) for b in buckets)
        groups = 1 + len(self.buckets)  # group 0 = every image, then one per bucket
        cr_shape = (groups, 2, len(REGIONS), len(CR_METRICS))  # source: reconstruction, input
        self.add_state("cr_sum", torch.zeros(cr_shape, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("cr_count", torch.zeros(cr_shape, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state(
            "confusion",
            torch.zeros(groups, len(REGIONS), self.num_classes, self.num_classes, dtype=torch.int64),
            dist_reduce_fx="sum",
        )
        self.add_state("n_images", torch.zeros(groups, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("seen_segmentation", torch.zeros((), dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("images", [], dist_reduce_fx="cat")
        # image ids are strings (no tensor state); gathered beside ``images`` in _sync_dist
        self._ids: list[str | None] = []
        self._ids_cache: list[str | None] | None = None

    @property
    def has_segmentation(self) -> bool:
        """Whether any batch carried a segmentation output."""
        return bool(self.seen_segmentation > 0)

    def reset(self) -> None:
        super().reset()
        self._ids, self._ids_cache = [], None

    # -- updating ----------------------------------------------------------------------------
    def _group(self, bucket: Any) -> int | None:
        if bucket is None:
            return None
        try:
            return 1 + self.buckets.index(str(bucket))
        except ValueError:
            raise ValueError(
                f"EvaluationAccumulator: bucket {bucket!r} is not one of "
                f"{self.buckets} (pass buckets=... to the constructor)"
            ) from None

    @torch.no_grad()
    def update(
        self, outputs: dict[str, Any], batch: dict[str, Any], input_cache: InputMetricsCache | None = None
    ) -> None:
        """Add one batch.

        Parameters
        ----------
        outputs
            Model outputs: ``reconstruction`` (B, 13, H, W) and optionally ``segmentation``
            (B, K, H, W) logits (or (B, H, W) class indices).
        batch
            The data batch: ``target`` (B, 13, H, W), ``optical`` (the cloudy input),
            ``cloud_mask`` (B, H, W) in {0, 1}; ``mask`` (B, H, W) labels when segmentation is
            scored; optionally ``bucket`` (str or list of str) and ``id``.
        input_cache
            Remembers the cloudy input's metrics by batch content (validation every epoch).
        """
        for key in ("target", "optical", "cloud_mask"):
            if key not in batch:
                raise KeyError(f"EvaluationAccumulator.update: batch has no {key!r} (keys: {sorted(batch)})")
        if "reconstruction" not in outputs:
            raise KeyError(f"EvaluationAccumulator.update: outputs have no 'reconstruction' (keys: {sorted(outputs)})")
        target = batch["target"].detach().float()
        recon = outputs["reconstruction"].detach().float().to(target.device)
        cloudy_input = batch["optical"].detach().float().to(target.device)
        cloud = batch["cloud_mask"].detach().to(target.device).float()
        if cloud.ndim == 4:
            cloud = cloud[:, 0]
        cloud = (cloud > 0.5).float()
        n = target.shape[0]
        buckets = batch.get("bucket")
        if buckets is None or isinstance(buckets, str):
            buckets = [buckets] * n
        ids = batch.get("id")
        if ids is None or isinstance(ids, str):
            ids = [ids] * n
        else:
            ids = [i.item() if isinstance(i, torch.Tensor) else i for i in ids]
        if len(buckets) != n:
            raise ValueError(f"batch['bucket'] has {len(buckets)} entries for {n} images")
        groups = [self._group(b) for b in buckets]

        region_masks = {"all": None, "cloudy": cloud, "clear": 1.0 - cloud}
        values = [cr_metrics_by_region(recon, target, region_masks)]
        if input_cache is None:
            values.append(cr_metrics_by_region(cloudy_input, target, region_masks))
        else:
            values.append(
                input_cache.get_or_compute(
                    batch_key(ids, cloudy_input, target, cloud),
                    lambda: cr_metrics_by_region(cloudy_input, target, region_masks),
                )
            )
        stacked = torch.stack(
            [torch.stack([torch.stack([values[s][r][k] for k in CR_METRICS]) for r in REGIONS]) for s in range(2)]
        )  # (2, 3, 5, B)
        stacked = stacked.double().to(self.device)
        defined = ~torch.isnan(stacked)  # NaN = region empty in that image: left out of the mean
        sums = torch.where(defined, stacked, torch.zeros_like(stacked))

        confusions = None
        if "segmentation" in outputs and outputs["segmentation"] is not None:
            if "mask" not in batch:
                raise KeyError(
                    "EvaluationAccumulator.update: outputs have 'segmentation' but the batch has no 'mask' (labels)"
                )
            self.seen_segmentation += 1
            seg = outputs["segmentation"].detach()
            labels = (seg.argmax(dim=1) if seg.ndim == 4 else seg).to(target.device)
            truth = batch["mask"].to(target.device)
            confusions = torch.stack(
                [
                    torch.stack(
                        [
                            confusion_matrix(
                                labels[i], truth[i], self.num_classes, self.ignore_index, None if m is None else m[i]
                            )
                            for m in region_masks.values()
                        ]
                    )
                    for i in range(n)
                ]
            ).to(self.device)  # (B, 3, K, K)

        for i in range(n):
            for group in (0, groups[i]):
                if group is None:
                    continue
                self.cr_sum[group] += sums[..., i]
                self.cr_count[group] += defined[..., i].double()
                self.n_images[group] += 1
                if confusions is not None:
                    self.confusion[group] += confusions[i]
        if self.keep_per_image:
            accuracy = [
                segmentation_scores(confusions[i][0])["oa"] if confusions is not None else math.nan for i in range(n)
            ]
            records = torch.stack(
                [
                    torch.tensor(
                        [-1.0 if g is None else float(g - 1) for g in groups], dtype=torch.float64, device=self.device
                    ),
                    cloud.double().flatten(1).mean(dim=1).to(self.device),
                    *stacked[0, 0],
                    *stacked[1, 0],
                    torch.tensor(accuracy, dtype=torch.float64, device=self.device),
                ],
                dim=1,
            )
            self.images.append(records)
            self._ids.extend(None if i is None else str(i) for i in ids)

    # -- combining ---------------------------------------------------------------------------
    def merge_state(self, incoming_state: dict[str, Any] | Metric) -> None:
        """Add another accumulator's state into this one (torchmetrics' merge, plus image ids)."""
        if isinstance(incoming_state, EvaluationAccumulator):
            mine = (self.num_classes, self.ignore_index, self.buckets)
            theirs = (incoming_state.num_classes, incoming_state.ignore_index, incoming_state.buckets)
            if mine != theirs:
                raise ValueError(
                    f"cannot merge accumulators with different num_classes/ignore_index/buckets: {mine} vs {theirs}"
                )
            incoming_ids = list(incoming_state._ids)
        else:
            incoming_ids = [None] * sum(len(t) for t in incoming_state.get("images", []))
        super().merge_state(incoming_state)
        # torchmetrics puts the incoming list state first; keep the ids aligned with it
        self._ids = incoming_ids + self._ids

    def _sync_dist(self, dist_sync_fn: Callable = gather_all_tensors, process_group: Any | None = None) -> None:
        super()._sync_dist(dist_sync_fn, process_group)
        group = process_group or self.process_group
        gathered: list[Any] = [None] * dist.get_world_size(group)
        dist.all_gather_object(gathered, self._ids, group=group)  # rank order, like the tensors
        self._ids_cache = self._ids
        self._ids = [i for ids in gathered for i in ids]

    def unsync(self, should_unsync: bool = True) -> None:
        super().unsync(should_unsync)
        if should_unsync and self._ids_cache is not None:
            self._ids, self._ids_cache = self._ids_cache, None

    # -- results -----------------------------------------------------------------------------
    def _group_rows(self, group: int, name: str, with_seg: bool) -> list[tuple[str, str, str, float]]:
        sums, counts = self.cr_sum[group].cpu(), self.cr_count[group].cpu()
        means = torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, math.nan))
        rows = [(ALL, name, COUNT_METRIC, float(self.n_images[group]))]
        for r, region in enumerate(REGIONS):
            for source, prefix in enumerate(("", INPUT_PREFIX)):
                rows += [
                    (region, name, prefix + metric, float(means[source, r, k])) for k, metric in enumerate(CR_METRICS)
                ]
            if with_seg:
                scores = segmentation_scores(self.confusion[group, r])
                rows += [(region, name, metric, scores[metric]) for metric in SEG_METRICS]
                rows += [(region, name, iou_class(k), v) for k, v in enumerate(scores["per_class_iou"])]
        return rows

    def compute(self) -> pd.DataFrame:
        """The metrics as a result frame (:mod:`tdpcr_lib.metrics.results`), labels unset.

        One row per (region, bucket, metric): bucket ``all`` and every bucket that received an
        image; segmentation rows only when some batch was segmented. Undefined values are NaN.
        """
        if int(self.n_images[0]) == 0:
            raise RuntimeError("EvaluationAccumulator.compute: no batch was added")
        with_seg = self.has_segmentation
        rows = self._group_rows(0, ALL, with_seg)
        for g, bucket in enumerate(self.buckets, start=1):
            if int(self.n_images[g]) > 0:
                rows += self._group_rows(g, bucket, with_seg)
        return make_frame(rows)

    def to_frame(self, *, model: str | None = None, seed: int | None = None, split: str | None = None) -> pd.DataFrame:
        """:meth:`compute` with the ``model``/``seed``/``split`` columns filled in."""
        return label(self.compute(), model=model, seed=seed, split=split)

    def confusion_matrix(self, region: str = ALL, bucket: str = ALL) -> torch.Tensor:
        """The accumulated (K, K) confusion matrix for a region (and bucket)."""
        group = 0 if bucket == ALL else self._group(bucket)
        return self.confusion[group, REGIONS.index(region)].cpu().clone()

    def per_image(self) -> pd.DataFrame:
        """One row per image; requires ``keep_per_image=True``."""
        values = (
            torch.cat(self.images)
            if isinstance(self.images, list) and self.images
            else self.images
            if isinstance(self.images, torch.Tensor)
            else torch.zeros(0, len(_IMAGE_COLUMNS), dtype=torch.float64)
        )
        frame = pd.DataFrame(values.cpu().numpy(), columns=list(_IMAGE_COLUMNS))
        frame["bucket"] = [None if b < 0 else self.buckets[int(b)] for b in frame["bucket"]]
        frame.insert(0, "id", self._ids[: len(frame)])
        return frame

    # -- (de)serialisation -------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        """Plain-Python state (lists and numbers), e.g. to save partial evaluations as JSON."""
        images = torch.cat(self.images) if self.images else torch.zeros(0, len(_IMAGE_COLUMNS))
        return {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "buckets": list(self.buckets),
            **{
                name: getattr(self, name).tolist()
                for name in ("cr_sum", "cr_count", "confusion", "n_images", "seen_segmentation")
            },
            "images": images.tolist(),
            "ids": list(self._ids),
        }

    @classmethod
    def from_export(cls, state: dict[str, Any], keep_per_image: bool = True, **kwargs: Any) -> EvaluationAccumulator:
        """An accumulator holding an :meth:`export_state` state."""
        acc = cls(state["num_classes"], state["ignore_index"], keep_per_image, buckets=state["buckets"], **kwargs)
        acc.merge_state(
            {
                **{
                    name: torch.tensor(state[name], dtype=getattr(acc, name).dtype)
                    for name in ("cr_sum", "cr_count", "confusion", "n_images", "seen_segmentation")
                },
                "images": [torch.tensor(state["images"], dtype=torch.float64).reshape(-1, len(_IMAGE_COLUMNS))],
            }
        )
        acc._ids = list(state["ids"])
        acc._update_count = max(acc._update_count, 1)  # it holds data: compute() may run
        return acc
