"""How the benchmarks time calls and measure memory.

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

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any


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
