"""The emulator's headline figures beside the paper's, and how long the commands that print them
take: the numbers of issue 11's before/after table.

    python benchmarks/emu_fidelity.py [--skip-table3] [--repeat 1]

Runs the installed commands as a user would (each in a subprocess, wall time measured here):
- `sqnxt-emu table3 --json` (13 networks x 2 arrays): wall time; v5/v1 cycles and energy per
  array; Spearman rank correlation of the normalised times (and energies) with the paper's;
- `sqnxt-emu trace --model 1.0-SqNxt-23 --hw H --json` for both arrays: wall time; the 7x7
  stem's share of the network's cycles; Figure 6's "early-layer efficiency": the efficiency
  (dense MACs / cycle / PEs) of the first module's layers (stage1) over that of the layers
  after it (stage2 onwards). The paper: lower on 16x16 than on 8x8;
- layers that differ by one output pixel a side (the searched cycles of a 7x7/2 stem with a
  111x111 and a 112x112 output, and a 3x3 conv on 55x55 and 56x56): cycles ratio beside MACs
  ratio, on both arrays.
Only the installed package and its commands are used, so the same script measures any commit.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

PAPER_STEM_SHARE = 0.26      # paper, Section 4: "the first 7x7 convolutional layer accounts for 26%"
CONFIGS = ("8x8", "16x16")


def timed_json(cmd: list[str], repeat: int) -> tuple[object, float]:
    best = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    return json.loads(out), best


def spearman(a, b) -> float:
    def ranks(v):
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(order):  # average ranks of ties
            j = i
            while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra) ** 0.5
    vb = sum((y - mb) ** 2 for y in rb) ** 0.5
    return cov / (va * vb)


def efficiency(layers, pes) -> float:
    macs = sum(r["macs"] for r in layers)
    cycles = sum(r["cycles"] for r in layers)
    return macs / cycles / pes


def one_pixel_pairs():
    """(label, shape with n outputs a side, shape with n + 1) pairs."""
    from sqnxt_engine.kernels import ConvShape
    return [("7x7/2 stem 3->64, 111 vs 112 outputs",
             ConvShape(C=3, H=227, W=227, K=64, R=7, S=7, stride=2),
             ConvShape(C=3, H=229, W=229, K=64, R=7, S=7, stride=2)),
            ("3x3 conv 32->32, 55 vs 56 outputs",
             ConvShape(C=32, H=55, W=55, K=32, R=3, S=3, padding=1),
             ConvShape(C=32, H=56, W=56, K=32, R=3, S=3, padding=1))]


def pixel_check(cfg: str):
    import numpy as np
    from sqnxt_engine.emu.hardware import load_hardware
    from sqnxt_engine.emu.quantize import prune
    from sqnxt_engine.emu.search import search
    from sqnxt_engine.kernels import ZeroProfile
    hw = load_hardware(cfg)
    rng = np.random.default_rng(0)
    out = []
    for label, a, b in one_pixel_pairs():
        cyc = []
        for s in (a, b):
            w = prune(rng.standard_normal((s.K, s.Cg, s.R, s.S)), 0.4)
            cyc.append(search(s, hw, "best", ZeroProfile.of(s, w)).timing.total)
        out.append((label, cyc[1] / cyc[0], b.macs / a.macs))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-table3", action="store_true", help="leave out the 13-network run")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each command (best wall time)")
    args = ap.parse_args(argv)
    lines = []
    for cfg in CONFIGS:
        d, wall = timed_json(["sqnxt-emu", "trace", "--model", "1.0-SqNxt-23", "--hw", cfg,
                              "--json"], args.repeat)
        layers, pes = d["layers"], None
        from sqnxt_engine.emu.hardware import load_hardware
        pes = load_hardware(cfg).pes
        total = sum(r["cycles"] for r in layers)
        stem = sum(r["cycles"] for r in layers if r["layer"].split(".")[0] == "stem")
        first = [r for r in layers if r["layer"].startswith("stage1.")]
        later = [r for r in layers if r["layer"].split(".")[0] not in ("stem", "stage1")]
        lines.append(f"{cfg}: `sqnxt-emu trace --model 1.0-SqNxt-23 --hw {cfg} --json` wall "
                     f"{wall:.2f} s; stem share {stem / total:.1%} (paper "
                     f"{PAPER_STEM_SHARE:.0%}); first-module efficiency "
                     f"{efficiency(first, pes):.3f} / later {efficiency(later, pes):.3f} = "
                     f"{efficiency(first, pes) / efficiency(later, pes):.2f}")
        for label, cr, mr in pixel_check(cfg):
            lines.append(f"{cfg}: {label}: cycles x{cr:.2f}, MACs x{mr:.2f}")
    if not args.skip_table3:
        rows, wall = timed_json(["sqnxt-emu", "table3", "--json"], args.repeat)
        lines.append(f"`sqnxt-emu table3 --json` wall {wall:.1f} s")
        for cfg in CONFIGS:
            part = {r["model"]: r for r in rows if r["config"] == cfg}
            v1, v5 = part["1.0-SqNxt-23"], part["1.0-SqNxt-23v5"]
            pt = (v5["paper_time"] / v1["paper_time"]) if v1.get("paper_time") else float("nan")
            pe = (v5["paper_energy"] / v1["paper_energy"]) if v1.get("paper_energy") else float("nan")
            have = [r for r in part.values() if r.get("paper_time") is not None]
            rt = spearman([r["time"] for r in have], [r["paper_time"] for r in have])
            re_ = spearman([r["energy"] for r in have], [r["paper_energy"] for r in have])
            lines.append(f"{cfg}: v5/v1 cycles {v5['cycles'] / v1['cycles']:.3f} (paper {pt:.3f}), "
                         f"energy {v5['energy'] / v1['energy']:.3f} (paper {pe:.3f}); Spearman "
                         f"rank correlation with the paper: time {rt:.3f}, energy {re_:.3f} "
                         f"({len(have)} networks)")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
