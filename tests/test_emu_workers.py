"""The emulator's worker pool (emu/workers.py): workers share the CPUs, BLAS included."""
from __future__ import annotations

import pytest
from processes import started_workers

from sqnxt_engine.emu.workers import available_cpus, pool, worker_count


def _blas_threads(_) -> list[int]:
    import numpy  # noqa: F401
    from threadpoolctl import threadpool_info
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_each_worker_limits_blas_to_its_share_of_the_cpus():
    """Before, every worker's OpenBLAS started a thread per core: two workers on two cores ran
    four BLAS threads, whose waits spin (a sweep's float evaluations took twice the CPU)."""
    workers = 2
    with pool(workers) as ex:
        found = list(ex.map(_blas_threads, range(workers)))
    share = max(1, available_cpus() // workers)
    assert all(threads and set(threads) == {share} for threads in found), found


def test_never_more_workers_than_tasks_or_cpus():
    assert worker_count(8, 3) == min(3, available_cpus())
    assert worker_count(1, 100) == 1 and worker_count(4, 0) == 1


SLOW_SWEEP = r'''
import sys, time
from sqnxt_engine.emu import sweep as SW
from sqnxt_engine.emu.cli import main

def slow(task):   # a task that runs for minutes, as a precision sweep's does
    time.sleep(300)
    return []

SW.compute_task = slow   # (the forked workers see it too)
main(["sweep", sys.argv[1], "--db", sys.argv[2], "--jobs", "2"])
'''


def test_a_stopped_sweep_does_not_wait_for_the_tasks_in_hand(tmp_path):
    """SIGTERM (or Ctrl-C) ends the command and its workers at once; before, the pool's shutdown
    waited for every running task to finish."""
    import signal
    import subprocess
    import sys
    import time
    psutil = pytest.importorskip("psutil")
    sweep = tmp_path / "s.toml"
    sweep.write_text('[[network]]\nmodel = "1.0-SqNxt-23"\n[hardware]\nbase = "8x8"\n'
                     '[hardware.grid]\nbuffer.bytes = [16384, 32768]\n')
    (tmp_path / "slow.py").write_text(SLOW_SWEEP)
    proc = subprocess.Popen([sys.executable, str(tmp_path / "slow.py"), str(sweep), str(tmp_path / "d.sqlite")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path)
    try:
        children = started_workers(psutil, proc)
        assert len(children) >= 2, f"no workers started (exit {proc.poll()})"
        time.sleep(1.0)   # the tasks are in hand
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive
        assert "interrupted: 0 of 2 points are stored" in proc.stderr.read().decode()
    finally:
        if proc.poll() is None:
            proc.kill()
