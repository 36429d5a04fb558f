"""The emulator's worker pool (emu/workers.py): workers share the CPUs, BLAS included."""
from __future__ import annotations

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
