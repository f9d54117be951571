"""Streaming accumulation of cloud-removal and segmentation metrics over a dataset."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch

from tdpcr_lib.metrics.functional import (
    CR_METRICS,
    REGIONS,
    confusion_matrix,
    cr_metrics_by_region,
    segmentation_scores,
)


# ----------------------------------------------------------------------------------------------
# accumulator
# ----------------------------------------------------------------------------------------------
def _bucket_sort_key(name: str) -> tuple[float, str]:
    match = re.match(r"\s*(\d+(?:\.\d+)?)", name)
    return (float(match.group(1)) if match else math.inf, name)


class EvaluationAccumulator:
    """Accumulates cloud-removal and segmentation metrics over batches, mergeable across processes.

    Parameters
    ----------
    num_classes
        Segmentation classes (7).
    ignore_index
        Label value skipped by the segmentation metrics (255).
    keep_per_image
        Also keep one record per image (id, bucket, cloud fraction and the five CR metrics of the
        reconstruction and of the input, all pixels) for :meth:`per_image`.

    Examples
    --------
    >>> acc = EvaluationAccumulator()
    >>> for batch in loader:  # doctest: +SKIP
    ...     acc.update(model(batch["optical"], batch["sar"]), batch)
    >>> results = acc.compute()  # doctest: +SKIP
    >>> results["cr"]["cloudy"]["psnr"], results["seg"]["all"]["miou"]  # doctest: +SKIP
    """

    def __init__(self, num_classes: int = 7, ignore_index: int = 255, keep_per_image: bool = True) -> None:
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.keep_per_image = keep_per_image
        self.reset()

    def reset(self) -> None:
        # per group ("all" or a bucket name): CR sums/counts (source x region x metric) and seg CMs
        self._cr_sum: dict[str, torch.Tensor] = {}
        self._cr_count: dict[str, torch.Tensor] = {}
        self._confusion: dict[str, torch.Tensor] = {}
        self._n_images: dict[str, int] = {}
        self._records: list[dict[str, Any]] = []
        self._seen_segmentation = False

    # -- bookkeeping -------------------------------------------------------------------------
    def _ensure(self, group: str) -> None:
        if group not in self._cr_sum:
            shape = (2, len(REGIONS), len(CR_METRICS))
            self._cr_sum[group] = torch.zeros(shape, dtype=torch.float64)
            self._cr_count[group] = torch.zeros(shape, dtype=torch.float64)
            self._confusion[group] = torch.zeros(len(REGIONS), self.num_classes, self.num_classes,
                                                 dtype=torch.int64)
            self._n_images[group] = 0

    @property
    def has_segmentation(self) -> bool:
        """Whether any batch carried a segmentation output."""
        return self._seen_segmentation

    # -- updating ----------------------------------------------------------------------------
    @torch.no_grad()
    def update(self, outputs: dict[str, Any], batch: dict[str, Any]) -> None:
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
        """
        for key in ("target", "optical", "cloud_mask"):
            if key not in batch:
                raise KeyError(f"EvaluationAccumulator.update: batch has no {key!r} "
                               f"(keys: {sorted(batch)})")
        if "reconstruction" not in outputs:
            raise KeyError(f"EvaluationAccumulator.update: outputs have no 'reconstruction' "
                           f"(keys: {sorted(outputs)})")
        target = batch["target"].detach().float()
        recon = outputs["reconstruction"].detach().float().to(target.device)
        cloudy_input = batch["optical"].detach().float().to(target.device)
        cloud = batch["cloud_mask"].detach().to(target.device).float()
        if cloud.ndim == 4:
            cloud = cloud[:, 0]
        cloud = (cloud > 0.5).float()
        n = target.shape[0]
        buckets = batch.get("bucket")
        if buckets is None:
            buckets = [None] * n
        elif isinstance(buckets, str):
            buckets = [buckets] * n
        ids = batch.get("id")
        if ids is None:
            ids = [None] * n
        elif isinstance(ids, str):
            ids = [ids] * n
        else:
            ids = [i.item() if isinstance(i, torch.Tensor) else i for i in ids]
        if len(buckets) != n:
            raise ValueError(f"batch['bucket'] has {len(buckets)} entries for {n} images")

        region_masks = {"all": None, "cloudy": cloud, "clear": 1.0 - cloud}
        # values[source][region][metric] -> (B,)
        values = [cr_metrics_by_region(prediction, target, region_masks)
                  for prediction in (recon, cloudy_input)]
        stacked = torch.stack([torch.stack([torch.stack([values[s][r][k] for k in CR_METRICS])
                                            for r in REGIONS]) for s in range(2)])  # (2, 3, 5, B)
        stacked = stacked.double().cpu()
        defined = ~torch.isnan(stacked)
        sums = torch.where(defined, stacked, torch.zeros_like(stacked))

        confusions = None
        if "segmentation" in outputs and outputs["segmentation"] is not None:
            if "mask" not in batch:
                raise KeyError("EvaluationAccumulator.update: outputs have 'segmentation' but the "
                               "batch has no 'mask' (labels)")
            self._seen_segmentation = True
            seg = outputs["segmentation"].detach()
            labels = seg.argmax(dim=1) if seg.ndim == 4 else seg
            labels = labels.to(target.device)
            truth = batch["mask"].to(target.device)
            confusions = [
                [confusion_matrix(labels[i], truth[i], self.num_classes, self.ignore_index,
                                  None if m is None else m[i]).cpu() for m in region_masks.values()]
                for i in range(n)]

        for i in range(n):
            groups = ["all"] + ([str(buckets[i])] if buckets[i] is not None else [])
            for group in groups:
                self._ensure(group)
                self._cr_sum[group] += sums[..., i]
                self._cr_count[group] += defined[..., i].double()
                self._n_images[group] += 1
                if confusions is not None:
                    self._confusion[group] += torch.stack(confusions[i])
            if self.keep_per_image:
                record: dict[str, Any] = {"id": None if ids[i] is None else str(ids[i]),
                                          "bucket": None if buckets[i] is None else str(buckets[i]),
                                          "cloud_fraction": float(cloud[i].mean())}
                for k, metric in enumerate(CR_METRICS):
                    record[metric] = float(stacked[0, 0, k, i])
                    record[f"input_{metric}"] = float(stacked[1, 0, k, i])
                if confusions is not None:
                    record["pixel_accuracy"] = segmentation_scores(confusions[i][0])["oa"]
                self._records.append(record)

    # -- combining ---------------------------------------------------------------------------
    def merge(self, other: EvaluationAccumulator) -> EvaluationAccumulator:
        """Add another accumulator's data into this one (in place) and return ``self``."""
        if (other.num_classes, other.ignore_index) != (self.num_classes, self.ignore_index):
            raise ValueError("cannot merge accumulators with different num_classes/ignore_index: "
                             f"{(self.num_classes, self.ignore_index)} vs "
                             f"{(other.num_classes, other.ignore_index)}")
        for group in other._cr_sum:
            self._ensure(group)
            self._cr_sum[group] += other._cr_sum[group]
            self._cr_count[group] += other._cr_count[group]
            self._confusion[group] += other._confusion[group]
            self._n_images[group] += other._n_images[group]
        self._records.extend(other._records)
        self._seen_segmentation = self._seen_segmentation or other._seen_segmentation
        return self

    def all_reduce(self, device: str | torch.device | None = None) -> EvaluationAccumulator:
        """Sum the state over all ``torch.distributed`` processes (in place; every rank ends equal).

        A no-op when ``torch.distributed`` is not initialised. Bucket names are gathered first so
        ranks that saw different buckets still agree. ``device`` is where the reduction runs
        (default: the current CUDA device for the NCCL backend, else CPU).
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self
        if device is None:
            device = (torch.device("cuda", torch.cuda.current_device())
                      if dist.get_backend() == "nccl" else torch.device("cpu"))
        world = dist.get_world_size()
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, (sorted(self._cr_sum), self._records, self._seen_segmentation))
        groups = sorted({g for names, _, _ in gathered for g in names})
        for group in groups:
            self._ensure(group)
        flat = torch.cat([torch.cat([self._cr_sum[g].flatten(), self._cr_count[g].flatten(),
                                     self._confusion[g].double().flatten(),
                                     torch.tensor([float(self._n_images[g])], dtype=torch.float64)])
                          for g in groups]).to(device)
        dist.all_reduce(flat)
        flat = flat.cpu()
        offset = 0
        for group in groups:
            for store in (self._cr_sum, self._cr_count):
                size = store[group].numel()
                store[group] = flat[offset: offset + size].reshape(store[group].shape).clone()
                offset += size
            size = self._confusion[group].numel()
            self._confusion[group] = flat[offset: offset + size].round().long().reshape(
                self._confusion[group].shape)
            offset += size
            self._n_images[group] = int(round(float(flat[offset])))
            offset += 1
        self._records = [r for _, records, _ in gathered for r in records]
        self._seen_segmentation = any(seen for _, _, seen in gathered)
        return self

    # -- results -----------------------------------------------------------------------------
    def _cr_results(self, group: str, source: int) -> dict[str, dict[str, float]]:
        sums, counts = self._cr_sum[group][source], self._cr_count[group][source]
        means = torch.where(counts > 0, sums / counts.clamp_min(1), torch.full_like(sums, math.nan))
        return {region: {metric: float(means[r, k]) for k, metric in enumerate(CR_METRICS)}
                for r, region in enumerate(REGIONS)}

    def _seg_results(self, group: str) -> dict[str, dict[str, Any]]:
        return {region: segmentation_scores(self._confusion[group][r]) for r, region in enumerate(REGIONS)}

    def compute(self) -> dict[str, Any]:
        """Final metrics as a nested dict (JSON-ready; undefined values are NaN).

        Returns
        -------
        dict
            ``{"cr": {region: {psnr, ssim, sam, mae, rmse}}, "cr_input": {...},
            "seg": {region: {oa, macc, fwiou, miou, per_class_iou}}`` (only when segmentation
            was scored), ``"per_bucket": {bucket: {"cr", "cr_input", "seg"?, "n_images"}},
            "n_images": int}`` with ``region`` in ``all``, ``cloudy``, ``clear``.
        """
        if "all" not in self._cr_sum:
            raise RuntimeError("EvaluationAccumulator.compute: no batch was added")
        with_seg = self._seen_segmentation

        def block(group: str) -> dict[str, Any]:
            out: dict[str, Any] = {"cr": self._cr_results(group, 0),
                                   "cr_input": self._cr_results(group, 1)}
            if with_seg:
                out["seg"] = self._seg_results(group)
            out["n_images"] = self._n_images[group]
            return out

        results = block("all")
        buckets = sorted((g for g in self._cr_sum if g != "all"), key=_bucket_sort_key)
        results["per_bucket"] = {bucket: block(bucket) for bucket in buckets}
        return results

    def confusion(self, region: str = "all", bucket: str | None = None) -> torch.Tensor:
        """The accumulated (K, K) confusion matrix for a region (and bucket)."""
        return self._confusion[bucket or "all"][REGIONS.index(region)].clone()

    def per_image(self):
        """One row per image (a pandas DataFrame); requires ``keep_per_image=True``."""
        import pandas as pd

        return pd.DataFrame(self._records)

    # -- (de)serialisation -------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Plain-Python state (lists and numbers), e.g. to save partial evaluations as JSON."""
        return {
            "num_classes": self.num_classes,
            "ignore_index": self.ignore_index,
            "seen_segmentation": self._seen_segmentation,
            "groups": {g: {"cr_sum": self._cr_sum[g].tolist(), "cr_count": self._cr_count[g].tolist(),
                           "confusion": self._confusion[g].tolist(), "n_images": self._n_images[g]}
                       for g in self._cr_sum},
            "records": list(self._records),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output (replaces the current state)."""
        if (state["num_classes"], state["ignore_index"]) != (self.num_classes, self.ignore_index):
            raise ValueError("state was saved with num_classes/ignore_index "
                             f"{(state['num_classes'], state['ignore_index'])}, this accumulator "
                             f"has {(self.num_classes, self.ignore_index)}")
        self.reset()
        self._seen_segmentation = bool(state["seen_segmentation"])
        for group, g in state["groups"].items():
            self._cr_sum[group] = torch.tensor(g["cr_sum"], dtype=torch.float64)
            self._cr_count[group] = torch.tensor(g["cr_count"], dtype=torch.float64)
            self._confusion[group] = torch.tensor(g["confusion"], dtype=torch.int64)
            self._n_images[group] = int(g["n_images"])
        self._records = list(state["records"])

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], keep_per_image: bool = True) -> EvaluationAccumulator:
        acc = cls(state["num_classes"], state["ignore_index"], keep_per_image)
        acc.load_state_dict(state)
        return acc


def merge_all(accumulators: Sequence[EvaluationAccumulator]) -> EvaluationAccumulator:
    """A new accumulator holding the sum of ``accumulators``."""
    if not accumulators:
        raise ValueError("merge_all needs at least one accumulator")
    first = accumulators[0]
    out = EvaluationAccumulator(first.num_classes, first.ignore_index, first.keep_per_image)
    for acc in accumulators:
        out.merge(acc)
    return out
