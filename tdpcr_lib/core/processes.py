"""Worker processes that do not outlive the process that started them.

Notebook 04 trains its ablation runs in a ``ProcessPoolExecutor``. When ``tdpcr reproduce`` or the
notebook's kernel is killed, a pool worker would otherwise finish (or keep) its current training
run as an orphan, holding the CPU for minutes. :func:`die_with_parent` asks the Linux kernel to
send the worker SIGTERM when its parent dies; :func:`stop_pool` ends a pool's workers at once
when the parent itself stops on an error or an interrupt.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> bool:
    """Have this process receive SIGTERM when ``parent_pid`` (its parent) dies.

    Returns whether the request is in force (Linux only; elsewhere the caller relies on
    :func:`stop_pool`). Exits at once if the parent already died before the request was made.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent_pid:  # the parent died between fork and prctl
        os._exit(1)
    return True


def stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and terminate the workers now (no waiting for their runs)."""
    # ``_processes`` is the executor's pid -> Process map; there is no public way to end a worker
    # that is busy, and shutdown(wait=True) would wait for its whole training run.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    # cancel first: a run still waiting is cancelled; one already handed to a worker's queue
    # cannot be, and fails with BrokenProcessPool once its worker is gone
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)
