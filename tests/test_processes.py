"""Pool workers never outlive the process that started them (a killed notebook 04 or
``tdpcr reproduce`` must not leave training runs holding the CPU)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

import pytest

from tdpcr_lib.core.processes import die_with_parent, stop_pool

PARENT = textwrap.dedent(
    """
    import multiprocessing, os, time
    from concurrent.futures import ProcessPoolExecutor
    from tdpcr_lib.core.processes import die_with_parent

    if __name__ == "__main__":
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(1, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),))
        print(pool.submit(os.getpid).result(), flush=True)
        pool.submit(time.sleep, 120)  # a long training run
        time.sleep(120)
    """
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as stat:  # a zombie nobody reaped yet counts as gone
            return stat.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def _gone_within(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_a_worker_dies_when_its_parent_is_killed(tmp_path):
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        worker = int(parent.stdout.readline())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)  # as `kill -9` of the kernel or the OOM killer would
        parent.wait(timeout=10)
        assert _gone_within(worker, 10), "the pool worker outlived its killed parent"
    finally:
        parent.kill()
        parent.wait()


def test_stop_pool_ends_a_busy_worker_without_waiting_for_its_run():
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(1, mp_context=context, initializer=die_with_parent, initargs=(os.getpid(),))
    worker = pool.submit(os.getpid).result()
    pool.submit(time.sleep, 120)
    queued = pool.submit(time.sleep, 120)
    started = time.monotonic()
    stop_pool(pool)
    assert time.monotonic() - started < 15
    # the queued run never runs: cancelled if it was still waiting, BrokenProcessPool if the
    # executor had already handed it to the worker's queue (a race the executor decides)
    wait([queued], timeout=10)
    assert queued.cancelled() or isinstance(queued.exception(timeout=0), BrokenProcessPool)
    assert _gone_within(worker, 5)
