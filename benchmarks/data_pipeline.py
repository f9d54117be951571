"""Data pipeline: samples/s the training DataLoader delivers vs samples/s a training step consumes.

The loader is the one training uses: :meth:`tdpcr_lib.training.trainer.Trainer._train_loader` of a
``Trainer`` built with the run's ``TrainConfig`` (its ``num_workers``; pinned memory on CUDA;
a new ``DataLoader`` every epoch, as ``Trainer.fit`` does), over
:class:`tdpcr_lib.datasets.luojiaset.LuojiaSETOSFCR` reading a synthetic twin with the real GeoTIFF layout,
with the run's random crop/flip/rot90 augmentation. On CUDA each batch is also copied to the GPU
(``Trainer._to_device``), since that copy is part of what a step waits for.

Measured for ``num_workers`` = the default/notebook preset's value and the full (GPU) recipe's
value, plus, for a worker count > 0, the same loader with ``persistent_workers=True`` made once
for all epochs (a candidate change to ``Trainer``). A per-sample breakdown (GeoTIFF decoding,
normalisation, augmentation) says whether decoding is the limit. Finally the same loader over the
optional memory-mapped cache of the split (:mod:`tdpcr_lib.datasets.cache`; built once, its build time is
reported and not counted), which skips the GeoTIFF decoding.

The twin's training split is repeated to ``pipeline_epoch_samples`` per epoch, so worker start-up
is amortised over an epoch of realistic length rather than over a handful of tiles.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .children import ChildError, run_child, write_child_result
from .common import Settings


def preset_workers() -> dict[str, int]:
    """``num_workers`` of the training presets (default/notebook and full GPU recipe)."""
    from tdpcr_lib.training.presets import preset_config

    return {"default": preset_config("phase1").num_workers, "full": preset_config("phase1", full=True).num_workers}


def twin_root(work_dir: Path, settings: Settings) -> Path:
    return Path(work_dir) / f"twin_{settings.pipeline_tiles}x{settings.pipeline_tile}"


def _time_loader(trainer, epochs: int, device, loader_factory=None) -> dict[str, Any]:
    """Iterate ``epochs`` epochs of the trainer's loader; samples/s including worker start-up."""
    import torch

    samples, first_batch_s, started = 0, [], time.perf_counter()
    persistent = loader_factory() if loader_factory is not None else None
    for epoch in range(epochs):
        trainer.epoch, trainer.step_in_epoch = epoch, 0
        if persistent is None:
            loader = trainer._train_loader()
        else:  # same data, sampler and batch; the loader object (and its workers) is reused
            trainer.train_data.set_epoch(epoch)
            trainer.sampler.set_epoch(epoch)
            loader = persistent
        epoch_start = time.perf_counter()
        for index, batch in enumerate(loader):
            batch = trainer._to_device(batch)
            if index == 0:
                first_batch_s.append(round(time.perf_counter() - epoch_start, 4))
            samples += batch["optical"].shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    return {
        "samples": samples,
        "seconds": round(seconds, 4),
        "samples_per_s": samples / seconds,
        "first_batch_s": first_batch_s,
    }


def measure(settings: Settings, device_name: str, work_dir: Path) -> dict[str, Any]:
    """Loader samples/s for the preset worker counts, plus the per-sample cost breakdown."""
    import torch
    from torch.utils.data import DataLoader, Subset

    from tdpcr_lib.core.runtime import resolve_device
    from tdpcr_lib.datasets.cache import ensure_cache
    from tdpcr_lib.datasets.luojiaset.dataset import LuojiaSETOSFCR
    from tdpcr_lib.datasets.synthetic.tiles import make_synthetic_luojiaset
    from tdpcr_lib.models import ModelConfig, build_model
    from tdpcr_lib.training.config import TrainConfig
    from tdpcr_lib.training.trainer import Trainer
    from tdpcr_lib.transforms import TrainAugment

    device = resolve_device(device_name)
    crop, batch_size = settings.train_shape(device.type)
    started = time.perf_counter()
    root = make_synthetic_luojiaset(
        twin_root(work_dir, settings), n_tiles=settings.pipeline_tiles, size=settings.pipeline_tile, seed=0
    )
    twin_seconds = time.perf_counter() - started
    base = LuojiaSETOSFCR(root, split="train")
    n_base = len(base)
    indices = [i % n_base for i in range(max(settings.pipeline_epoch_samples, batch_size))]
    data = Subset(base, indices)

    # Per-sample breakdown, single process: decode (rasterio) / full __getitem__ / + augment.
    augment = TrainAugment(crop if crop < settings.pipeline_tile else None)
    breakdown: dict[str, float] = {}
    for label, fn in (
        ("decode_geotiffs", base.load_raw),
        ("getitem", base.__getitem__),
        ("getitem_and_augment", lambda i: augment(base[i])),
    ):
        fn(0)  # warm the page cache and imports
        start = time.perf_counter()
        for i in range(n_base):
            fn(i)
        breakdown[label + "_ms"] = 1000 * (time.perf_counter() - start) / n_base
    breakdown["decode_share_of_sample"] = breakdown["decode_geotiffs_ms"] / breakdown["getitem_and_augment_ms"]

    presets = preset_workers()
    worker_counts = sorted({presets["default"], presets["full"]})
    if settings.tiny:
        worker_counts = sorted({0, 1})
    model = build_model(ModelConfig.small())  # the loader does not depend on the model
    loaders: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tdpcr-bench-loader-") as out_dir:
        for workers in worker_counts:
            config = TrainConfig(
                batch_size=batch_size,
                crop_size=crop,
                num_workers=workers,
                epochs=settings.pipeline_epochs,
                progress=False,
            )
            trainer = Trainer(
                model, config, data, None, out_dir, device=device, train_transform=TrainAugment(config.crop_size)
            )
            loaders[f"num_workers={workers}"] = {
                "num_workers": workers,
                "pin_memory": device.type == "cuda",
                "persistent_workers": False,
                **_time_loader(trainer, settings.pipeline_epochs, device),
            }
            if workers > 0:

                def factory(trainer=trainer, workers=workers):
                    return DataLoader(
                        trainer.train_data,
                        batch_size=trainer.local_batch,
                        sampler=trainer.sampler,
                        num_workers=workers,
                        drop_last=trainer.drop_last,
                        pin_memory=device.type == "cuda",
                        persistent_workers=True,
                    )

                loaders[f"num_workers={workers}, persistent"] = {
                    "num_workers": workers,
                    "pin_memory": device.type == "cuda",
                    "persistent_workers": True,
                    **_time_loader(trainer, settings.pipeline_epochs, device, factory),
                }
        # The optional memory-mapped cache (tdpcr_lib.datasets.cache), with the preset's workers.
        started = time.perf_counter()
        cached = ensure_cache(root, "train", cache_dir=Path(work_dir) / f"{root.name}_cache")
        cache_seconds = time.perf_counter() - started
        cached[0]
        start = time.perf_counter()
        for i in range(n_base):
            cached[i]  # memory maps read lazily: time the whole item, normalisation included
        breakdown["cache_getitem_ms"] = 1000 * (time.perf_counter() - start) / n_base
        workers = presets["full" if device.type == "cuda" else "default"]
        if settings.tiny:
            workers = 0
        config = TrainConfig(
            batch_size=batch_size, crop_size=crop, num_workers=workers, epochs=settings.pipeline_epochs, progress=False
        )
        trainer = Trainer(
            model,
            config,
            Subset(cached, indices),
            None,
            out_dir,
            device=device,
            train_transform=TrainAugment(config.crop_size),
        )
        loaders[f"num_workers={workers}, memory-mapped cache"] = {
            "num_workers": workers,
            "pin_memory": device.type == "cuda",
            "persistent_workers": False,
            "cache": True,
            "cache_build_seconds": round(cache_seconds, 2),
            **_time_loader(trainer, settings.pipeline_epochs, device),
        }
    return {
        "device": str(device),
        "tile": settings.pipeline_tile,
        "crop": crop,
        "batch": batch_size,
        "train_tiles": n_base,
        "epoch_samples": len(indices),
        "epochs": settings.pipeline_epochs,
        "twin_root": str(root),
        "twin_seconds": round(twin_seconds, 2),
        "presets": presets,
        "per_sample": breakdown,
        "loaders": loaders,
        "torch_threads": torch.get_num_threads(),
    }


def run(settings: Settings, work_dir: Path, devices: list[str], log=print) -> dict[str, Any]:
    """Measure the loader on every device (each in a child process)."""
    out: dict[str, Any] = {}
    for device in devices:
        log(f"[data] loader on {device} ...")
        try:
            result = run_child(
                [
                    "-m",
                    "benchmarks.data_pipeline",
                    "--worker",
                    "--device",
                    device,
                    "--work-dir",
                    str(work_dir),
                    "--settings",
                    json.dumps(settings.to_dict()),
                ],
                timeout_s=settings.timeout_s,
                env=settings.child_env(),
            )
            for name, loader in result["loaders"].items():
                log(f"          {name:28s} {loader['samples_per_s']:.1f} samples/s")
        except ChildError as err:
            result = {"error": str(err)}
            log("          ERROR " + str(err).splitlines()[-1][:200])
        out[device] = result
    return out


def consumption_ratios(pipeline: dict[str, Any], models: dict[str, Any]) -> dict[str, Any]:
    """Loader samples/s ÷ TDP-CR training samples/s, per device and loader setting.

    The target is checked on the loader of the preset that trains on that device: the default
    preset's ``num_workers`` on the CPU, the full recipe's on CUDA.
    """
    out: dict[str, Any] = {}
    for device, result in pipeline.items():
        training = models.get("training", {}).get(device, {}).get("tdpcr", {})
        consumed = training.get("samples_per_s")
        if "error" in result or not consumed:
            continue
        same_shape = (training.get("crop"), training.get("batch")) == (result["crop"], result["batch"])
        preset = "full" if device == "cuda" else "default"
        target_key = f"num_workers={result['presets'][preset]}"
        per_loader = {name: loader["samples_per_s"] / consumed for name, loader in result["loaders"].items()}
        out[device] = {
            "consumed_samples_per_s": consumed,
            "same_crop_and_batch": same_shape,
            "ratios": per_loader,
            "target_loader": target_key,
            "target_ratio": per_loader.get(target_key),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Data pipeline benchmark worker (run benchmarks.run_all for the whole benchmark)."
    )
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--settings", required=True)
    parser.add_argument("--json", required=True)
    args = parser.parse_args(argv)
    settings = Settings.from_dict(json.loads(args.settings))
    settings.apply_threads()
    write_child_result(args.json, measure(settings, args.device, Path(args.work_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
