"""Fuzz every file loader (issue 16): many mutated files each, in forked workers with a time limit
per case, and a table of what happened.

    python benchmarks/fuzz.py                      # 10,000 cases per loader
    python benchmarks/fuzz.py --cases 500 --loaders onnx,image

The targets, seeds and mutations are tests/fuzz_targets.py (shared with tests/test_fuzz.py). Per
loader it prints: cases; clean errors (a UserError: one line, exit 2 on the command line); crashes
(any other exception, or a worker killed by a signal or by the address-space limit); hangs (a case
past --timeout); peak memory (the largest resident set of a worker, which includes the ~150 MB of
imported libraries); files left behind (anything but the case file and a command's output, e.g.
temporary files); code executed (the canary: a file CANARY in the working folder, or an audit event
of a process-spawning call, from the hostile pickles among the seeds).
Exit status 1 if any crash, hang, file left behind or code execution was seen.

This is the exploring fuzz beside the deterministic suite (tests/test_fuzz.py runs a fixed 200
cases per loader; `pytest --hypothesis-profile=fuzz tests/test_fuzz.py` runs 2,000 random ones).
The cases follow from --seed: the default (0) repeats the same 10,000, another seed explores new
ones. Each crash it prints names the seed of its case (`case_seed`); that case is kept as a
regression by adding (loader, case_seed, message pattern) to tests/test_fuzz.py's FOUND.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import fuzz_targets as ft  # noqa: E402

_SPAWN_EVENTS = {"os.system", "subprocess.Popen", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                 "ctypes.dlopen", "socket.connect", "os.kill"}


class CaseTimeout(BaseException):
    pass


def _seeds(name: str, folder: Path) -> list[bytes]:
    """A loader's seeds, made in a child process: torch (for .pth seeds) never enters the
    workers, whose memory is measured."""
    code = (f"import sys, json; sys.path.insert(0, {str(ROOT / 'tests')!r}); import fuzz_targets as ft; "
            f"from pathlib import Path; seeds = ft.LOADERS[{name!r}][2](Path({str(folder)!r})); "
            f"[Path({str(folder)!r}, f'seed{{i}}').write_bytes(s) for i, s in enumerate(seeds)]; print(len(seeds))")
    n = int(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                           cwd=folder).stdout)
    return [(folder / f"seed{i}").read_bytes() for i in range(n)]


def _worker(name, seeds, first, last, seed, timeout, mem_bytes, folder: Path, out_fd):
    """Run cases first..last-1 in this (forked) process; one JSON line per case on out_fd."""
    resource.setrlimit(resource.RLIMIT_AS, (mem_bytes, mem_bytes))
    ft.WARM_UP.get(name, lambda: None)()   # libraries a loader loads (torch's dlopen), before the watch
    spawned = []
    sys.addaudithook(lambda event, args: spawned.append(event) if event in _SPAWN_EVENTS else None)
    os.chdir(folder)
    suffix, load, _ = ft.LOADERS[name]
    from sqnxt_engine.errors import UserError

    def expire(*_):
        raise CaseTimeout()
    signal.signal(signal.SIGALRM, expire)
    out = os.fdopen(out_fd, "w", buffering=1)
    for i in range(first, last):
        rng = random.Random(f"{seed}/{name}/{i}")
        path = folder / f"case{suffix}"
        path.write_bytes(ft.case(seeds, rng))
        outcome, detail = "ok", ""
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            load(path)
        except UserError as e:
            outcome, detail = ("clean", "") if "\n" not in str(e) else ("crash", "multi-line error")
        except CaseTimeout:
            outcome = "hang"
        except BaseException as e:  # noqa: BLE001 - everything else is what we are looking for
            outcome, detail = "crash", f"{type(e).__name__}: {str(e)[:200]}"
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        left = sorted(p.name for p in folder.iterdir() if p != path and p.name not in ft.OUTPUTS)
        executed = bool(spawned) or (folder / ft.CANARY).exists()
        for p in folder.iterdir():
            if p != path:
                p.unlink()
        spawned.clear()
        out.write(json.dumps({"i": i, "outcome": outcome, "detail": detail, "left": left,
                              "executed": executed}) + "\n")
    out.write(json.dumps({"maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}) + "\n")
    out.close()
    os._exit(0)


def fuzz(name: str, cases: int, seed: int, timeout: float, mem_gb: float, workers: int) -> dict:
    base = Path(tempfile.mkdtemp(prefix="sqnxt-fuzz-"))
    seeds = _seeds(name, base)
    stats = {"cases": 0, "ok": 0, "clean": 0, "crash": 0, "hang": 0, "left": 0, "executed": 0,
             "peak_mb": 0.0, "examples": []}
    todo = [(k * cases // workers, (k + 1) * cases // workers) for k in range(workers)]
    running = {}  # read fd -> [pid, next case, last case, buffer, folder, last activity]

    def start(first, last):
        folder = Path(tempfile.mkdtemp(dir=base))
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                _worker(name, seeds, first, last, seed, timeout, int(mem_gb * (1 << 30)), folder, w)
            finally:
                os._exit(3)
        os.close(w)
        running[r] = [pid, first, last, b"", folder, time.monotonic()]

    def record(msg):
        if "maxrss_kb" in msg:
            stats["peak_mb"] = max(stats["peak_mb"], msg["maxrss_kb"] / 1024)
            return
        stats["cases"] += 1
        stats[msg["outcome"]] += 1
        stats["left"] += bool(msg["left"])
        stats["executed"] += msg["executed"]
        if (msg["outcome"] in ("crash", "hang") or msg["left"] or msg["executed"]) and len(stats["examples"]) < 8:
            stats["examples"].append({**msg, "case_seed": f"{seed}/{name}/{msg['i']}"})  # as in _worker

    for first, last in todo:
        start(first, last)
    while running:
        ready, _, _ = select.select(list(running), [], [], 1.0)
        now = time.monotonic()
        for r in list(running):
            pid, nxt, last, buf, folder, seen = running[r]
            if r in ready:
                chunk = os.read(r, 1 << 16)
                if chunk:
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        msg = json.loads(line)
                        record(msg)
                        nxt = msg.get("i", nxt - 1) + 1
                    running[r] = [pid, nxt, last, buf, folder, now]
                    continue
                # the worker ended: normally after its last case; else case `nxt` killed it
                os.close(r)
                del running[r]
                _, status = os.waitpid(pid, 0)
                if nxt < last:
                    record({"i": nxt, "outcome": "crash", "left": [], "executed": False,
                            "detail": f"worker died (status {status}) on case {nxt}"})
                    start(nxt + 1, last)
            elif now - seen > timeout + 10:  # stuck where SIGALRM cannot reach (C code)
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                os.close(r)
                del running[r]
                record({"i": nxt, "outcome": "hang", "left": [], "executed": False, "detail": "killed"})
                if nxt + 1 < last:
                    start(nxt + 1, last)
    subprocess.run(["rm", "-rf", str(base)], check=False)
    return stats


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=10_000, help="cases per loader (default 10,000)")
    p.add_argument("--loaders", help=f"comma-separated subset of: {', '.join(ft.LOADERS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per case before it counts as a hang")
    p.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit of a worker")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    names = list(ft.LOADERS) if not args.loaders else [n.strip() for n in args.loaders.split(",")]
    for n in names:
        if n not in ft.LOADERS:
            p.error(f"unknown loader {n!r}")
    import onnx  # noqa: E401, F401

    import sqnxt_engine.io.onnx_import  # noqa: F401 - imported once, before the workers fork
    from sqnxt_engine.emu import hardware  # noqa: F401
    from sqnxt_engine.io import datasets, model, prototxt, pth  # noqa: F401

    print(f"python benchmarks/fuzz.py --cases {args.cases} --seed {args.seed} --timeout {args.timeout:g} "
          f"--workers {args.workers}" + (f" --loaders {args.loaders}" if args.loaders else ""))
    cols = ["loader", "cases", "loaded", "clean errors", "crashes", "hangs", "peak MB", "files left", "code run", "s"]
    rows, bad = [], False
    for name in names:
        t0 = time.time()
        s = fuzz(name, args.cases, args.seed, args.timeout, args.memory_gb, args.workers)
        rows.append([name, s["cases"], s["ok"], s["clean"], s["crash"], s["hang"], f"{s['peak_mb']:.0f}",
                     s["left"], s["executed"], f"{time.time() - t0:.0f}"])
        for ex in s["examples"]:
            print(f"  {name}: {json.dumps(ex)}", file=sys.stderr)
        bad |= bool(s["crash"] or s["hang"] or s["left"] or s["executed"])
    widths = [max(len(str(c)), *(len(str(r[k])) for r in rows)) for k, c in enumerate(cols)]
    print("  ".join(str(c).ljust(w) if k == 0 else str(c).rjust(w) for k, (c, w) in enumerate(zip(cols, widths))))
    for r in rows:
        print("  ".join(str(v).ljust(w) if k == 0 else str(v).rjust(w) for k, (v, w) in enumerate(zip(r, widths))))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
