"""Worker processes of the commands that spread their work (`table3 --jobs`, `sweep --jobs`):
how many to start, and that none outlives the command that started it.

- `worker_count`: never more workers than tasks or than the CPUs this process may use (more only
  time-slice the same cores and multiply the memory); the caller says so when it lowers --jobs.
- `pool`: a process pool whose workers share the CPUs: each limits BLAS to its share (the CPUs
  over the workers, at least one thread; OpenBLAS' default, a thread per core in every worker,
  oversubscribes the cores, and its waiting threads spin), and whose workers end when their
  parent does, however it ends (`stop` ends them at once when the command stops early). A pool's
  workers notice an orderly shutdown, but after SIGKILL of the parent they would finish the
  task in hand and then wait on a queue nobody writes to, for ever: each worker asks the kernel
  for SIGTERM when its parent dies (Linux' PR_SET_PDEATHSIG) and, everywhere, watches its
  parent's pid from a thread.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def worker_count(jobs: int, tasks: int) -> int:
    """The workers to start for `tasks` tasks when `jobs` are asked for (module doc)."""
    return max(1, min(jobs, tasks, available_cpus()))


def pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` processes that die with this one (module doc)."""
    return ProcessPoolExecutor(workers, initializer=_start_worker,
                               initargs=(os.getpid(), max(1, available_cpus() // workers)))


def stop(executor: ProcessPoolExecutor, wait: bool) -> None:
    """Shut a pool down: after its work (wait), or at once, the tasks not started cancelled and
    the workers in a task terminated (the executor has no public way to end a running task)."""
    if not wait:
        running = list((getattr(executor, "_processes", None) or {}).values())  # (shutdown forgets them)
        executor.shutdown(wait=False, cancel_futures=True)
        for process in running:
            process.terminate()
    executor.shutdown(wait=True, cancel_futures=True)


def _start_worker(parent: int, blas_threads: int) -> None:
    import numpy  # noqa: F401  (loads the BLAS library whose threads are limited)
    from threadpoolctl import ThreadpoolController
    ThreadpoolController().limit(limits=blas_threads, user_api="blas")   # not a context: it stays
    _die_with_parent(parent)


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:   # the parent died before the line above ran
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="die-with-parent").start()
