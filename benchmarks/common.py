"""Shared pieces of the benchmarks: settings, timing, memory, child processes, machine facts.

Conventions (also in ``docs/performance.md`` § Performance):

* **Timing**: ``warmup`` untimed calls, then ``repeats`` timed blocks of ``iterations`` calls; the
  figure is the *median* block time divided by its calls. On CUDA every block ends with
  ``torch.cuda.synchronize``. A measurement has a time budget: when one warm-up call already takes
  long (DSen2-CR at 256 px on a CPU takes tens of seconds), the iterations and repeats are cut
  down so the block fits the budget, and the numbers actually used are reported.
* **Peak memory**: on CUDA ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``.
  On the CPU the peak resident set size of the measuring process (``VmHWM`` of
  ``/proc/self/status``, else ``resource.getrusage(RUSAGE_SELF).ru_maxrss``) minus its resident
  size just before the model is built. Each measurement runs in a fresh child process, so the
  peak is that measurement's own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tdpcr_lib.core.paths import REPO_ROOT

#: The three models every benchmark compares, by their ``tdpcr_lib.models.named_configs`` name.
MODEL_NAMES: tuple[str, ...] = ("tdpcr", "dsen2cr", "multitask_unet")


@dataclass
class Settings:
    """Sizes and repetition counts of one benchmark run (see :func:`settings_for`).

    Attributes
    ----------
    tiny
        Tiny mode: small models (``named_configs(small=True)``), tiny tiles, few iterations; for
        the test suite. Its speed figures say nothing about the real models.
    device
        ``"cpu"`` or ``"cuda"``: the accelerator measured besides the CPU (``"cpu"`` = CPU only).
    inference_size, inference_batch
        Tile side and batch of the inference measurement (256 = a LuojiaSET-OSFCR tile).
    train_crop, train_batch, gpu_train_crop, gpu_train_batch
        Crop side and batch of the training-step measurement on the CPU and on CUDA; the data
        pipeline is measured with the same crop and batch, so both rates count the same samples.
    warmup, iterations, repeats, budget_s
        Timing (module docstring); ``budget_s`` caps one timed block.
    compile_cpu
        Also time ``torch.compile`` on the CPU (always tried on CUDA unless ``no_compile``).
    no_compile
        Never time ``torch.compile``.
    pipeline_tile, pipeline_tiles, pipeline_epoch_samples, pipeline_epochs
        Data pipeline: tile side and count of the synthetic twin it reads, samples per epoch (the
        training split is repeated to this length, so worker start-up is amortised as in a real
        epoch) and epochs timed.
    scene_sizes, scene_tile, scene_overlap, scene_batch
        Scene inference: the two (height, width) scenes and the tiling of ``predict_scene``
        (its defaults: 256 px tiles, overlap 64, its own batch default — 2 tiles on CPU, 16 on CUDA —
        when ``scene_batch`` is None). Both scenes share a width of at
        least ``scene_batch`` tiles per row, so every forward pass holds a full batch: the
        activations of one batch are most of the RAM, and a narrow scene that cannot fill a
        batch would look cheaper than a wide one for that reason alone.
    gpu_scene_sizes
        The two scenes on CUDA (larger; the bigger one is extrapolated to 10980 × 10980).
    full_scene
        On CUDA, also generate and predict a real 10980 × 10980 scene (slow to generate).
    scene_variants
        Also time ``predict_scene`` variants (batch 1, channels-last/bf16 wrapper) on the small
        scene, as before/after figures for recommended changes.
    ab_rounds, ab_dsen2cr_tile
        Rounds of the interleaved FLOP-rate comparison (TDP-CR fused, TDP-CR reference
        kernels, DSen2-CR, one call each per round) and DSen2-CR's tile there.
    scene_bound_calls
        Timed bare-model calls per scene run (half before, half after ``predict_scene``), for
        the bare-model bound: bare tiles/s × (tile − overlap)².
    ddp_steps, ddp_warmup, ddp_batch, ddp_crop
        Distributed: timed optimizer steps, warm-up steps, *global* batch and crop.
    timeout_s
        Limit for every child process.
    threads
        Intra-op threads of every child (``OMP_NUM_THREADS`` and ``torch.set_num_threads``);
        ``None`` = torch's default (all cores). One thread is far faster on an oversubscribed
        machine, where OpenMP threads wait for each other at every barrier.
    """

    tiny: bool = False
    device: str = "cpu"
    inference_size: int = 256
    inference_batch: int = 1
    train_crop: int = 64
    train_batch: int = 4
    gpu_train_crop: int = 128
    gpu_train_batch: int = 16
    warmup: int = 2
    iterations: int = 3
    repeats: int = 3
    budget_s: float = 45.0
    compile_cpu: bool = False
    no_compile: bool = False
    pipeline_tile: int = 256
    pipeline_tiles: int = 10
    pipeline_epoch_samples: int = 48
    pipeline_epochs: int = 2
    scene_sizes: tuple[tuple[int, int], ...] = ((448, 1664), (1344, 1664))
    gpu_scene_sizes: tuple[tuple[int, int], ...] = ((1024, 2048), (4096, 2048))
    scene_tile: int = 256
    scene_overlap: int = 64
    scene_batch: int | None = None
    full_scene: bool = False
    scene_variants: bool = True
    ab_rounds: int = 5
    scene_bound_calls: int = 4
    ab_dsen2cr_tile: int = 64
    ddp_steps: int = 4
    ddp_warmup: int = 1
    ddp_batch: int = 8
    ddp_crop: int = 64
    timeout_s: float = 1800.0
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Settings:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        for key in ("scene_sizes", "gpu_scene_sizes"):
            if key in data:
                data[key] = tuple(tuple(int(v) for v in size) for size in data[key])
        return cls(**data)

    @property
    def accelerator(self) -> str | None:
        """``"cuda"`` when a GPU is measured, else ``None``."""
        return "cuda" if self.device == "cuda" else None

    def child_env(self, processes: int = 1) -> dict[str, str]:
        """Environment for a child (``OMP_NUM_THREADS`` split over ``processes``)."""
        if self.threads is None:
            return {}
        return {"OMP_NUM_THREADS": str(max(1, self.threads // processes))}

    def apply_threads(self) -> None:
        """In a child: use ``threads`` intra-op threads (when set)."""
        if self.threads is not None:
            import torch

            torch.set_num_threads(max(1, self.threads))

    def train_shape(self, device: str) -> tuple[int, int]:
        """(crop, batch) of a training step on ``device`` (``"cpu"`` or ``"cuda"``)."""
        if device == "cuda":
            return self.gpu_train_crop, self.gpu_train_batch
        return self.train_crop, self.train_batch

    def scene_sizes_for(self, device: str) -> tuple[tuple[int, int], ...]:
        return self.gpu_scene_sizes if device == "cuda" else self.scene_sizes


def settings_for(tiny: bool, device: str) -> Settings:
    """The settings of a run: tiny (test suite, well under a minute) or the default.

    The default is sized to finish in about ten minutes on a quiet 2-core CPU: training steps are
    timed on 64 px crops (``TrainConfig``'s default crop) in batches of 4, because one DSen2-CR
    training sample at the recipe's 128 px crop costs minutes of CPU time; on CUDA the full
    recipe's crop 128 and batch 16 are used.
    """
    if not tiny:
        return Settings(tiny=False, device=device)
    return Settings(
        tiny=True,
        device=device,
        inference_size=32,
        inference_batch=2,
        train_crop=32,
        train_batch=2,
        gpu_train_crop=32,
        gpu_train_batch=2,
        warmup=1,
        iterations=1,
        repeats=2,
        budget_s=5.0,
        pipeline_tile=32,
        pipeline_tiles=10,
        pipeline_epoch_samples=8,
        pipeline_epochs=1,
        scene_sizes=((64, 128), (160, 128)),
        gpu_scene_sizes=((64, 128), (160, 128)),
        scene_tile=32,
        scene_overlap=8,
        scene_batch=4,
        scene_variants=False,
        ddp_steps=1,
        ddp_warmup=1,
        ddp_batch=2,
        ddp_crop=32,
        timeout_s=300.0,
        ab_rounds=1,
        ab_dsen2cr_tile=16,
        scene_bound_calls=2,
    )


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------
def time_call(
    fn: Callable[[], Any],
    *,
    warmup: int,
    iterations: int,
    repeats: int,
    budget_s: float,
    synchronize: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Median seconds per call of ``fn`` (module docstring: warm-up, blocks, budget).

    Parameters
    ----------
    fn
        The call to time (no arguments).
    warmup, iterations, repeats
        Untimed calls, calls per timed block, timed blocks (each at least 1 after the budget cut,
        ``warmup`` may be 0).
    budget_s
        The timed blocks together should take about this long; when the last warm-up call shows
        they would not, ``iterations`` and then ``repeats`` are reduced (never below 1).
    synchronize
        Called after the warm-up and at the end of every block (``torch.cuda.synchronize``).

    Returns
    -------
    dict
        ``seconds_per_call`` (median block time / iterations), ``block_seconds`` (every block),
        ``iterations``, ``repeats``, ``warmup``, ``warmup_seconds`` (last warm-up call).
    """
    if iterations < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"need iterations >= 1, repeats >= 1, warmup >= 0; got {iterations}, {repeats}, {warmup}")
    sync = synchronize or (lambda: None)
    last_warmup = None
    for _ in range(warmup):
        start = time.perf_counter()
        fn()
        sync()
        last_warmup = time.perf_counter() - start
    if last_warmup is not None and last_warmup > 0:
        affordable = max(1, int(budget_s / last_warmup))  # calls that fit the budget
        iterations = max(1, min(iterations, affordable // repeats or 1))
        repeats = max(1, min(repeats, affordable // iterations))
    blocks = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(iterations):
            fn()
        sync()
        blocks.append(time.perf_counter() - start)
    return {
        "seconds_per_call": statistics.median(blocks) / iterations,
        "block_seconds": [round(b, 6) for b in blocks],
        "iterations": iterations,
        "repeats": repeats,
        "warmup": warmup,
        "warmup_seconds": None if last_warmup is None else round(last_warmup, 6),
    }


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------
def _proc_status_bytes(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024  # reported in kB
    except OSError:
        return None
    return None


def current_rss_bytes() -> int | None:
    """Resident set size of this process now (``None`` where ``/proc`` is missing)."""
    return _proc_status_bytes("VmRSS")


def peak_rss_bytes() -> int | None:
    """Peak resident set size of this process so far (``VmHWM``, else ``ru_maxrss``)."""
    peak = _proc_status_bytes("VmHWM")
    if peak is not None:
        return peak
    try:
        import resource
    except ImportError:  # Windows
        return None
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss if sys.platform == "darwin" else maxrss * 1024)  # macOS: bytes, Linux: kB


def mib(n_bytes: float | None) -> float | None:
    return None if n_bytes is None else round(n_bytes / 2**20, 1)


# --------------------------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------------------------
class ChildError(RuntimeError):
    """A benchmark child process failed; the message holds the end of its output."""


def run_child(argv: Sequence[str], *, timeout_s: float, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run ``python <argv> --json FILE`` from the repository root and return the JSON it wrote.

    Raises
    ------
    ChildError
        Non-zero exit, timeout, or no JSON written (the message shows the command and the last
        lines of its output).
    """
    with tempfile.TemporaryDirectory(prefix="tdpcr-bench-") as scratch:
        result_path = Path(scratch) / "result.json"
        command = [sys.executable, *argv, "--json", str(result_path)]
        child_env = {**os.environ, **(env or {})}
        child_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), child_env.get("PYTHONPATH", "")) if p)
        try:
            proc = subprocess.run(
                command, cwd=REPO_ROOT, env=child_env, capture_output=True, text=True, timeout=timeout_s
            )
        except subprocess.TimeoutExpired as err:
            raise ChildError(f"{' '.join(command)} timed out after {timeout_s:.0f} s") from err
        if proc.returncode != 0 or not result_path.is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
            raise ChildError(f"{' '.join(command)} exited with {proc.returncode}:\n{tail}")
        return json.loads(result_path.read_text())


def write_child_result(path: str | Path, result: dict[str, Any]) -> None:
    """What a child writes for :func:`run_child` (atomically)."""
    from tdpcr_lib.core.io import atomic_write_json

    atomic_write_json(path, result)


# --------------------------------------------------------------------------------------------
# Machine facts
# --------------------------------------------------------------------------------------------
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else :func:`platform.processor`)."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info(device: str) -> dict[str, Any]:
    """CPU, cores, memory, torch/Python versions, GPU (if measured) and the git revision."""
    import torch

    from tdpcr_lib.core.revision import git_sha

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        load = None
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gib": None if memory is None else round(memory / 2**30, 1),
        "load_average_at_start": load,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "git_sha": git_sha(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "gpu": None,
    }
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = {
            "name": torch.cuda.get_device_name(0),
            "memory_gib": round(props.total_memory / 2**30, 1),
            "count": torch.cuda.device_count(),
            "cuda": torch.version.cuda,
            "bf16_supported": torch.cuda.is_bf16_supported(),
        }
    return info


def random_sample(size: int, seed: int, num_classes: int = 7) -> dict[str, Any]:
    """One training sample in the dataset's contract (optical/sar/target/mask/cloud_mask)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    optical = torch.rand(13, size, size, generator=generator)
    return {
        "optical": optical,
        "sar": torch.rand(2, size, size, generator=generator),
        "target": (optical * 0.8).clamp(0, 1),
        "mask": torch.randint(num_classes, (size, size), generator=generator),
        "cloud_mask": (torch.rand(size, size, generator=generator) > 0.5).float(),
        "bucket": "40%-60%",
        "id": f"random-{seed}",
    }


class RandomTiles:
    """A map-style dataset of ``length`` deterministic random samples of ``size`` px.

    Model and DDP benchmarks train on it so that they time computation, not file reading (the
    data pipeline has its own benchmark), and every model sees the same inputs.
    """

    def __init__(self, length: int, size: int, seed: int = 0) -> None:
        self.length, self.size, self.seed = int(length), int(size), int(seed)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return random_sample(self.size, self.seed * 100_003 + index)
