"""Helpers of the tests that run a command in a subprocess and watch its worker processes."""
from __future__ import annotations

import time


def started_workers(psutil, proc, count: int = 2, timeout: float = 60.0) -> list:
    """The child processes of `proc` once it has at least `count` (or what it has when it exits
    or `timeout` seconds pass)."""
    deadline = time.time() + timeout
    children: list = []
    while time.time() < deadline and len(children) < count and proc.poll() is None:
        time.sleep(0.05)
        children = psutil.Process(proc.pid).children(recursive=True)
    return children
