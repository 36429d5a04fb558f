"""The emulator's headline figures beside the paper's, how long the commands that print them
take, and what each modelling parameter does to them (docs/fidelity.md).

    python benchmarks/emu_fidelity.py                    # the commands, timed
    python benchmarks/emu_fidelity.py --set fill_drain=pass [--set ...]   # one alternative
    python benchmarks/emu_fidelity.py --table3-jobs 1,2   # only sqnxt-emu table3, timed per --jobs
    python benchmarks/emu_fidelity.py --table3-jobs 2 --against OTHER/bin/sqnxt-emu  # beside another build

--table3-jobs also prints the peak memory (sampled from /proc every 20 ms: the largest RSS of
one process, and the sum over the command and its workers of their proportional set sizes,
which counts pages the forked workers share with their parent once). --against runs another
installation's sqnxt-emu (e.g. main's, in its own venv) just before each run, and prints the
ratios and whether the two printed the same table (the line naming the paper file's path
aside).

Default: runs the installed commands as a user would, each in a subprocess, wall time measured
here, and prints the headline lines they print (emu/fidelity.py): `sqnxt-emu trace --model
1.0-SqNxt-23 --hw H` on both arrays (stem share, first-module efficiency), `sqnxt-emu table3`
(13 networks x 2 arrays: the co-design steps v2/v1 ... v5/v1 in cycles and energy beside the
paper's and beside the MAC ratio, rank correlation with the paper beside MAC count's); then the
searched cycles of layers that differ by one output pixel a side, beside their MACs.

With --set KEY=VALUE (a hardware file's key: pipeline.fill_drain, dataflow.os_input_reuse,
buffer.words_per_cycle, energy.per_bit, ...) the same figures for 1.0-SqNxt-23 v1-v5 on both
presets with that parameter changed as a file would state it (derived values follow it,
impossible combinations are refused), through the library.

With --each: every modelling parameter's alternative reading (ALTERNATIVES), one at a time,
as one markdown table of the co-design steps and the stem share (docs/modelling-parameters.md):
about a minute per row on 2 free cores.
"""
from __future__ import annotations

import argparse
import ast
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

CONFIGS = ("8x8", "16x16")
# every parameter a source leaves open (emu/hardware.py's module doc argues each default), and
# the other reading each is measured at: (what is changed, as hardware file keys)
ALTERNATIVES = (
    {"pe.rf_words": 32},
    {"pe.rf_double_buffered": False, "pipeline.fill_drain": "pass"},
    {"pipeline.fill_drain": "pass"},
    {"pipeline.fill_drain": "layer"},
    {"buffer.split": {"input": 0.34, "weight": 0.33, "psum": 0.33}},
    {"buffer.double_buffering": False},
    {"buffer.words_per_cycle": 1e12},
    {"arith.acc_bits": 48},
    {"arith.input_bits": 8, "arith.weight_bits": 8, "arith.output_bits": 8},
    {"arith.input_bits": 8, "arith.weight_bits": 8, "arith.output_bits": 8, "arith.split_mac": True},
    {"clock.mhz": 1000},
    {"dram.engines": 2},
    {"dataflow.zero_skip_os": False},
    {"dataflow.os_input_reuse": False},
    {"dataflow.supported": ["ws", "os_socmop", "os_mocsop", "os_mocmop"]},
    {"layers.non_mac_cycles": True},
    {"layers.keep_on_chip": True},
    {"energy.per_bit": False},
    {"energy.model": "horowitz-45nm"},
    {"search.objective": "energy"},
    {"search.objective": "edp"},
)


def _tree(pid: int) -> list[int]:
    """pid and its descendants (Linux /proc)."""
    out = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    out += _tree(int(child))
    except OSError:
        pass
    return out


def _kib(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# the installed command beside the interpreter running this benchmark (its venv's), not the first
# `sqnxt-emu` on PATH: on a machine with another install on PATH that one would be measured
SQNXT_EMU = str(Path(sys.executable).parent / "sqnxt-emu") \
    if (Path(sys.executable).parent / "sqnxt-emu").is_file() else "sqnxt-emu"


def measured(cmd: list[str]) -> dict:
    """Run cmd once: its output, wall and CPU seconds (its workers' included), and its peak
    memory in MB sampled every 20 ms (rss: the largest of one process; pss: the sum over the
    process tree of proportional set sizes)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = {"rss": 0, "pss": 0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            pids = _tree(p.pid)
            peak["pss"] = max(peak["pss"], sum(_kib(q, "Pss:") for q in pids))
            peak["rss"] = max([peak["rss"]] + [_kib(q, "Rss:") for q in pids])
            done.wait(0.02)
    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out = p.communicate()[0]
    done.set()
    watcher.join()
    wall = time.perf_counter() - t0
    if p.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode})")
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
    return {"out": out, "wall": wall, "cpu": cpu, "rss": peak["rss"] / 1024,
            "pss": peak["pss"] / 1024}


def _table_text(out: str) -> str:
    return "\n".join(ln for ln in out.splitlines() if not ln.startswith("paper columns from"))


def table3_runs(jobs_list, repeat: int, against: str | None) -> None:
    """--table3-jobs (module doc): per --jobs value, `repeat` runs (with --against, the other
    build's run just before each of ours), every run's figures and, with --against, the
    ratios of the best (least wall) runs."""
    for jobs in jobs_list:
        best = {}
        for _ in range(repeat):
            for who, exe in ([("other", against)] if against else []) + [("this", SQNXT_EMU)]:
                cmd = [exe, "table3", "--jobs", jobs]
                load = os.getloadavg()[0]
                r = measured(cmd)
                shown = ["sqnxt-emu" if exe == SQNXT_EMU else exe] + cmd[1:]
                print(f"`{' '.join(shown)}`: wall {r['wall']:.2f} s, CPU {r['cpu']:.2f} s, peak "
                      f"RSS of one process {r['rss']:.0f} MB, peak PSS of all {r['pss']:.0f} MB; "
                      f"load average {load:.1f} before, {os.getloadavg()[0]:.1f} after")
                if who not in best or r["wall"] < best[who]["wall"]:
                    best[who] = r
        if against:
            a, b = best["this"], best["other"]
            same = _table_text(a["out"]) == _table_text(b["out"])
            print(f"--jobs {jobs}, this / other: wall {a['wall'] / b['wall']:.2f}, CPU "
                  f"{a['cpu'] / b['cpu']:.2f}, peak RSS {a['rss'] / b['rss']:.2f}, peak PSS "
                  f"{a['pss'] / b['pss']:.2f}; tables {'identical' if same else 'DIFFERENT'}")
        print("\n".join(headline(best["this"]["out"])))


def timed(cmd: list[str], repeat: int) -> tuple[str, str]:
    """Output and 'wall W s, CPU C s' (best of `repeat` runs; CPU: the child's user + system
    time, its worker processes' included, which other jobs on a loaded machine inflate less
    than wall time)."""
    best, out = None, ""
    for _ in range(repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        dt = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
        best = (dt, cpu) if best is None or dt < best[0] else best
    return out, f"wall {best[0]:.2f} s, CPU {best[1]:.2f} s"


def headline(out: str) -> list[str]:
    """The headline lines a command printed (emu/fidelity.py: they start with a preset name),
    and table3's co-design steps table (its rows start with a preset name too)."""
    return [ln for ln in out.splitlines()
            if ln.startswith(tuple(f"{c}{sep}" for c in CONFIGS for sep in (":", " ")))
            or ln.startswith(("config  step", "------  -----"))]


def one_pixel_pairs():
    """(label, shape with n outputs a side, shape with n + 1) pairs."""
    from sqnxt_engine.kernels import ConvShape
    return [("7x7/2 stem 3->64, 111 vs 112 outputs",
             ConvShape(C=3, H=227, W=227, K=64, R=7, S=7, stride=2),
             ConvShape(C=3, H=229, W=229, K=64, R=7, S=7, stride=2)),
            ("3x3 conv 32->32, 55 vs 56 outputs",
             ConvShape(C=32, H=55, W=55, K=32, R=3, S=3, padding=1),
             ConvShape(C=32, H=56, W=56, K=32, R=3, S=3, padding=1)),
            ("3x3 stem 3->64 /2, 112 vs 113 outputs",
             ConvShape(C=3, H=225, W=225, K=64, R=3, S=3, stride=2),
             ConvShape(C=3, H=227, W=227, K=64, R=3, S=3, stride=2))]


def pixel_lines(cfg: str) -> list[str]:
    import numpy as np

    from sqnxt_engine.emu import search as S
    from sqnxt_engine.emu.hardware import load_hardware
    from sqnxt_engine.emu.quantize import prune
    hw = load_hardware(cfg)
    rng = np.random.default_rng(0)
    out = []
    for label, a, b in one_pixel_pairs():
        cyc = []
        for s in (a, b):
            w = prune(rng.standard_normal((s.K, s.Cg, s.R, s.S)), 0.4)
            cyc.append(S.search(s, hw, "best", S.zero_profile(s, hw, w)).timing.total)
        out.append(f"{cfg}: {label}: cycles x{cyc[1] / cyc[0]:.2f}, MACs x{b.macs / a.macs:.2f}")
    return out


def variant(overrides: dict) -> list[str]:
    """The headline figures and the co-design steps of 1.0-SqNxt-23 v1-v5 with `overrides`."""
    from sqnxt_engine.emu import fidelity as F
    from sqnxt_engine.emu import reports as R
    runs = R.Runs(overrides=overrides)
    ref = R.find_reference(None)
    rows = R.table3(R.FIGURE6_MODELS, CONFIGS, runs, R.read_paper_table3(ref) if ref else None)
    steps = [f"{r['config']}: {r['step']} cycles {r['cycles']:.3f} (paper {r['paper_time']:.3f}, "
             f"MACs {r['macs']:.3f}), energy {r['energy']:.3f} (paper {r['paper_energy']:.3f})"
             for r in F.step_rows(rows)]
    return steps + F.table3_lines(rows) + F.network_lines({c: runs.results[(F.V1, c)] for c in CONFIGS})


def each_table() -> list[str]:
    """ALTERNATIVES as markdown rows: the co-design steps' cycles, v5/v1 energy and the stem
    share on 16x16 / 8x8, beside the paper's and the defaults'."""
    from sqnxt_engine.emu import fidelity as F
    from sqnxt_engine.emu import reports as R
    ref = R.find_reference(None)
    paper = R.read_paper_table3(ref) if ref else None
    arrays = ("16x16", "8x8")
    out = ["| changed | v2/v1 cycles | v5/v2 cycles | v5/v1 cycles | v5/v1 energy | stem share |",
           "|---|---|---|---|---|---|"]

    def cells(by, columns) -> str:
        """' | '-joined cells, each 'on 16x16 / on 8x8', of (step, column) pairs."""
        return " | ".join(" / ".join(f"{by[(c, step)][key]:.3f}" for c in arrays)
                          for step, key in columns)

    for overrides in ({},) + ALTERNATIVES:
        runs = R.Runs(overrides=overrides)
        by = {(r["config"], r["step"]): r for r in F.step_rows(R.table3(R.FIGURE6_MODELS, CONFIGS, runs, paper))}
        steps = ("v2/v1", "v5/v2", "v5/v1")
        if not overrides:
            out.append("| (paper) | " + cells(by, [(st, "paper_time") for st in steps] + [("v5/v1", "paper_energy")])
                       + f" | {F.PAPER_STEM_SHARE:.0%} / - |")
        label = ", ".join(f"`{k} = {v!r}`" for k, v in overrides.items()) or "(defaults)"
        stem = " / ".join(f"{F.stem_share(runs.results[(F.V1, c)]):.1%}" for c in arrays)
        out.append(f"| {label} | " + cells(by, [(st, "cycles") for st in steps] + [("v5/v1", "energy")])
                   + f" | {stem} |")
        print(out[-1], file=sys.stderr, flush=True)   # progress: a row a minute
    return out


def parse_set(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", action="append", default=[], type=parse_set,
                    help="KEY=VALUE: a hardware file's key (section.name) changed on both presets")
    ap.add_argument("--skip-table3", action="store_true", help="leave out the 13-network run")
    ap.add_argument("--each", action="store_true",
                    help="every parameter's alternative reading, one markdown table")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each command (best wall time)")
    ap.add_argument("--table3-jobs", help="comma-separated --jobs values: time only `sqnxt-emu "
                    "table3 --jobs N` for each (wall and CPU of the command and its workers)")
    ap.add_argument("--against", metavar="SQNXT_EMU",
                    help="with --table3-jobs: another build's sqnxt-emu, run before each of ours")
    args = ap.parse_args(argv)
    if args.table3_jobs:
        table3_runs([j.strip() for j in args.table3_jobs.split(",")], args.repeat, args.against)
        return 0
    if args.each:
        print("\n".join(each_table()))
        return 0
    if args.set:
        t0 = time.perf_counter()
        lines = variant(dict(args.set))
        print(f"with {', '.join(f'{k}={v!r}' for k, v in args.set)} "
              f"({time.perf_counter() - t0:.1f} s):")
        print("\n".join(lines))
        return 0
    for cfg in CONFIGS:
        cmd = [SQNXT_EMU, "trace", "--model", "1.0-SqNxt-23", "--hw", cfg]
        out, wall = timed(cmd, args.repeat)
        print(f"`{' '.join(cmd)}`: {wall}")
        print("\n".join(headline(out)))
        print("\n".join(pixel_lines(cfg)))
    if not args.skip_table3:
        out, wall = timed([SQNXT_EMU, "table3"], args.repeat)
        print(f"`sqnxt-emu table3`: {wall}; load average {os.getloadavg()[0]:.1f}")
        print("\n".join(headline(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
