"""The emulator beside two public accelerator simulators, SCALE-Sim and ZigZag, on the same
layers of the same network on the same array: wall time, peak memory, cycles.

    python benchmarks/emu_peers.py [--hw 16x16] [--model 1.0-SqNxt-23] [--layers ...]
                                   [--venvs DIR] [--skip scalesim,zigzag]
                                   [--scalesim-bandwidth USER|CALC]

Peers are installed from PyPI into their own venvs under --venvs (created on first use):
SCALE-Sim `scalesim==3.0.0` with `numpy==2.2.6` (it crashes with numpy 2.4), ZigZag
`zigzag-dse==3.9.1` with `six` (needed, not declared). No peer code is in this repository.
Every tool runs in its own subprocess under /usr/bin/time -v: wall time and peak resident
memory are that process's (interpreter start and imports included).

The layers: full networks take SCALE-Sim 3-10+ minutes and ZigZag ~8 minutes here, so the
default is a stated subset: every layer of the first unit of each stage, and fc (25 of
1.0-SqNxt-23's 112 conv/fc layers; the list is printed). The 7x7 stem is left out by default:
SCALE-Sim simulates it cycle by cycle (8.3 million cycles in OS) and took most of a 14-minute
run on it; add it with --layers stem,... (docs/benchmarks.md records such a run).

What is compared, and how far the models agree:
- emulator: each layer searched and executed as `sqnxt-emu trace` does (real arithmetic,
  counted), at weight sparsity 0 (the peers skip no zeros) and, for reference, 0.4 with the
  per-layer faster dataflow (the paper's setting). Cycles include fill/drain and exposed DRAM.
- SCALE-Sim: a systolic array of the same size, os and ws, user bandwidth of 16 words a cycle
  (16 GB/s at the presets' 500 MHz, 2-byte words; --scalesim-bandwidth CALC: the bandwidth
  each layer needs, i.e. unlimited, no stalls), SRAMs of the same total (3/8 input, 3/8
  weights, 1/4 outputs: it has one SRAM per operand). Padding is given as the effective input
  extent (Ho - 1) * s + R. It does not tile over output channels the way we do, has no DRAM
  latency, and no zero skipping: the same order of magnitude is the expectation, not equality.
- ZigZag: its TPU-like weight-stationary example resized to the array (K x C spatial), 16-bit
  operands and 32-bit output registers (its example: 8 and 16), its own temporal-mapping search
  (LOMA) minimising latency. Its memory hierarchy is
  its example's (not ours), so its cycles are its own model's.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PEERS = {
    "scalesim": ["scalesim==3.0.0", "numpy==2.2.6"],
    "zigzag": ["zigzag-dse==3.9.1", "six"],
}
DEFAULT_VENVS = os.environ.get("SQNXT_PEER_VENVS", str(Path.home() / ".cache" / "sqnxt-engine" / "peers"))


# ---- the layers ------------------------------------------------------------------------------

def default_layers(graph) -> list[str]:
    from sqnxt_engine.graph import ops as O
    names = [l.name for l in graph.layers if isinstance(l.op, (O.Conv2d, O.Linear))]
    return [n for n in names if n == "fc" or ".unit1." in n]


def layer_shapes(model: str, layers: list[str] | None):
    """[(name, ConvShape)] of the chosen layers, in network order."""
    from sqnxt_engine import zoo
    from sqnxt_engine.emu.network import conv_shape
    from sqnxt_engine.graph import ops as O
    g = zoo.build(model)
    want = layers or default_layers(g)
    by_name = {l.name: l for l in g.layers if isinstance(l.op, (O.Conv2d, O.Linear))}
    missing = [n for n in want if n not in by_name]
    if missing:
        sys.exit(f"error: {model} has no conv/fc layer {missing[0]!r}")
    out = []
    for n in want:
        l = by_name[n]
        s = conv_shape(l.op, l.in_shapes[0])
        if s.groups != 1:
            sys.exit(f"error: {n} is grouped; the peers here take ungrouped layers only")
        out.append((n, s))
    return out


def shape_dict(s) -> dict:
    return {"C": s.C, "H": s.H, "W": s.W, "K": s.K, "R": s.R, "S": s.S, "stride": s.stride[0],
            "Ho": s.Ho, "Wo": s.Wo, "macs": s.macs}


# ---- drivers (run in subprocesses) -----------------------------------------------------------

OURS = r'''
import json, sys
import numpy as np
from sqnxt_engine.emu.hardware import load_hardware
from sqnxt_engine.emu.quantize import prune
from sqnxt_engine.emu.search import search
from sqnxt_engine.emu.timing import timing
from sqnxt_engine.kernels import ConvShape, ZeroProfile, execute
job = json.loads(sys.argv[1])
hw = load_hardware(job["hw"])
rng = np.random.default_rng(0)
out = {}
for run in job["runs"]:
    cache, cyc = {}, []
    for L in job["layers"]:
        s = ConvShape(C=L["C"], H=L["H"], W=L["W"], K=L["K"], R=L["R"], S=L["S"], stride=L["stride"],
                      padding=tuple(L["padding"]))
        x = rng.integers(-2000, 2000, (s.C, s.H, s.W)).astype(np.int16)
        w = prune(rng.integers(-2000, 2000, (s.K, s.C, s.R, s.S)), run["sparsity"]).astype(np.int16)
        zp = ZeroProfile.of(s, w)
        key = (s, zp.zeros)
        if key not in cache:
            cache[key] = search(s, hw, run["dataflow"], zp)
        m = cache[key].mapping
        _, c = execute(s, m, x, w)
        cyc.append(timing(s, m, c, hw).total)
    out[run["name"]] = cyc
print(json.dumps(out))
'''

SCALESIM = r'''
import contextlib, io, json, os, sys
from scalesim.scale_sim import scalesim
job = json.loads(sys.argv[1])
d = job["dir"]
topo = os.path.join(d, "topo.csv")
open(topo, "w").write(job["topology"])   # sqnxt-emu export --format scalesim's (emu/export.py)
layout = os.path.join(d, "layout.csv")
open(layout, "w").write("Layer name,\n")
out = {}
for df in ("os", "ws"):
    cfg = os.path.join(d, f"{df}.cfg")
    a = job["array"]
    kb = job["buffer_kb"]
    open(cfg, "w").write(f"""[general]
run_name = sqnxt_{df}
[run_presets]
InterfaceBandwidth = {job['scalesim_bandwidth']}
UseRamulatorTrace = False
[architecture_presets]
ArrayHeight = {a}
ArrayWidth = {a}
IfmapSramSzkB = {kb * 3 // 8}
FilterSramSzkB = {kb * 3 // 8}
OfmapSramSzkB = {kb // 4}
IfmapOffset = 0
FilterOffset = 10000000
OfmapOffset = 20000000
Bandwidth = {job['bandwidth_words']}
Dataflow = {df}
ReadRequestBuffer = 32
WriteRequestBuffer = 32
[layout]
IfmapCustomLayout = False
IfmapSRAMBankBandwidth = 10
IfmapSRAMBankNum = 10
IfmapSRAMBankPort = 2
FilterCustomLayout = False
FilterSRAMBankBandwidth = 10
FilterSRAMBankNum = 10
FilterSRAMBankPort = 2
[sparsity]
SparsitySupport = false
SparseRep = ellpack_block
OptimizedMapping = false
BlockSize = 8
RandomNumberGeneratorSeed = 40
""")
    s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout)
    with contextlib.redirect_stdout(io.StringIO()):
        s.run_scale(top_path=os.path.join(d, f"out_{df}"))
    out[df] = [int(o.get_compute_report_items()[0]) for o in s.runner.single_layer_sim_object_list]
print(json.dumps(out))
'''

ZIGZAG = r'''
import json, logging, os, sys, yaml
import zigzag
from zigzag.api import get_hardware_performance_zigzag
logging.disable(logging.CRITICAL)
job = json.loads(sys.argv[1])
d = job["dir"]
a = job["array"]
base = os.path.join(os.path.dirname(zigzag.__file__), "inputs")
hw = yaml.safe_load(open(os.path.join(base, "hardware", "tpu_like.yaml")))
hw["operational_array"]["sizes"] = [a, a]
# its example is 8-bit with 16-bit output registers: widen them to our 32-bit accumulator
acc = hw["memories"]["rf_2B"]
acc["size"] = 32
for port in acc["ports"]:
    port["bandwidth_min"] = port["bandwidth_max"] = 32
hw_path = os.path.join(d, "hw.yaml")
yaml.safe_dump(hw, open(hw_path, "w"), sort_keys=False)  # memory order = hierarchy
mapping = [{"name": "default", "spatial_mapping": {"D1": [f"K, {a}"], "D2": [f"C, {a}"]},
            "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}]
map_path = os.path.join(d, "mapping.yaml")
yaml.safe_dump(mapping, open(map_path, "w"), sort_keys=False)
out = []
for i, layer in enumerate(job["zigzag_layers"]):   # sqnxt-emu export --format zigzag's layers
    layer = dict(layer, id=0, operand_source={"I": 0})   # each layer a workload of its own
    wl_path = os.path.join(d, f"l{i}.yaml")
    yaml.safe_dump([layer], open(wl_path, "w"), sort_keys=False)
    _, latency, _ = get_hardware_performance_zigzag(
        wl_path, hw_path, map_path, opt="latency", dump_folder=os.path.join(d, f"out{i}"),
        loma_show_progress_bar=False)
    out.append(float(latency))
print(json.dumps({"ws": out}))
'''


def timed(python: str, code: str, job: dict, cwd: str) -> tuple[dict, float, float]:
    """Run `code` in `python` under /usr/bin/time -v: (its JSON result, wall s, peak MB)."""
    cmd = ["/usr/bin/time", "-v", python, "-c", code, json.dumps(job)]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    peak = int(m.group(1)) / 1024 if m else float("nan")
    if p.returncode != 0:
        own = p.stderr.split("\tCommand being timed:")[0]  # what the tool said, not time's report
        tail = "\n".join(own.strip().splitlines()[-15:])
        raise RuntimeError(f"{python} failed ({p.returncode}):\n{tail}")
    return json.loads(p.stdout.strip().splitlines()[-1]), wall, peak


def peer_python(venvs: Path, peer: str) -> str:
    """The peer's venv interpreter, created and installed from PyPI on first use."""
    venv = venvs / peer
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"installing {' '.join(PEERS[peer])} into {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PEERS[peer]], check=True)
    return str(py)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hw", default="16x16", choices=["8x8", "16x16"])
    ap.add_argument("--model", default="1.0-SqNxt-23")
    ap.add_argument("--layers", help="comma-separated conv/fc layer names (default: each stage's "
                    "first unit, and fc)")
    ap.add_argument("--venvs", default=DEFAULT_VENVS, help=f"where the peers' venvs live (default {DEFAULT_VENVS})")
    ap.add_argument("--skip", default="", help="comma-separated peers to leave out (scalesim, zigzag)")
    ap.add_argument("--scalesim-bandwidth", default="USER", choices=["USER", "CALC"],
                    help="SCALE-Sim's InterfaceBandwidth: USER, the DRAM bandwidth of --hw (stalls "
                    "when it is short); CALC, the bandwidth each layer needs (no stalls: unlimited)")
    args = ap.parse_args(argv)

    from sqnxt_engine.emu.hardware import load_hardware
    hw = load_hardware(args.hw)
    shapes = layer_shapes(args.model, args.layers.split(",") if args.layers else None)
    layers = [dict(shape_dict(s), padding=list(s.padding)) for _, s in shapes]
    names = [n for n, _ in shapes]
    total = len([l for l in __import__("sqnxt_engine").zoo.build(args.model).layers
                 if type(l.op).__name__ in ("Conv2d", "Linear")])
    print(f"{args.model} on {hw.describe()}")
    print(f"layers: {len(names)} of {total} conv/fc layers: {', '.join(names)}")
    print(f"MACs of these layers: {sum(l['macs'] for l in layers):,}\n")

    from sqnxt_engine.emu.export import scalesim_topology, zigzag_layers
    job = {"hw": args.hw, "array": hw.pe_rows, "buffer_kb": hw.gb_bytes // 1024,
           "topology": scalesim_topology(shapes), "zigzag_layers": zigzag_layers(shapes, hw),
           "bandwidth_words": round(hw.dram_bytes_per_cycle / hw.word_bytes), "layers": layers,
           "scalesim_bandwidth": args.scalesim_bandwidth}
    results = []  # (tool, {run: per-layer cycles}, wall, peak)
    with tempfile.TemporaryDirectory(prefix="emu_peers.") as tmp:
        runs = [{"name": "os", "dataflow": "os", "sparsity": 0.0},
                {"name": "ws", "dataflow": "ws", "sparsity": 0.0},
                {"name": "best, sparsity 0.4", "dataflow": "best", "sparsity": 0.4}]
        print("running sqnxt-emu ...", flush=True)
        results.append(("sqnxt-emu",) + timed(sys.executable, OURS, dict(job, runs=runs), tmp))
        skip = {s.strip() for s in args.skip.split(",") if s.strip()}
        for peer, code in (("scalesim", SCALESIM), ("zigzag", ZIGZAG)):
            if peer in skip:
                continue
            py = peer_python(Path(args.venvs), peer)
            d = Path(tmp) / peer
            d.mkdir()
            print(f"running {peer} ...", flush=True)
            try:
                results.append((peer,) + timed(py, code, dict(job, dir=str(d)), str(d)))
            except RuntimeError as e:
                print(f"{peer} failed: {e}", file=sys.stderr)

    print(f"\n{'tool':<10} {'wall s':>8} {'peak MB':>8}   total cycles of the {len(names)} layers")
    for tool, cyc, wall, peak in results:
        runs_s = ", ".join(f"{k}: {sum(v):,.0f}" for k, v in cyc.items())
        print(f"{tool:<10} {wall:>8.1f} {peak:>8.0f}   {runs_s}")

    print("\nper layer (cycles):")
    cols = [(tool, k, v) for tool, cyc, _, _ in results for k, v in cyc.items()]
    head = "layer".ljust(24) + "".join(f"{(t + ' ' + k)[:18]:>19}" for t, k, _ in cols)
    print(head)
    for i, n in enumerate(names):
        print(n.ljust(24) + "".join(f"{v[i]:>19,.0f}" for _, _, v in cols))
    stem = names.index("stem") if "stem" in names else None
    if stem is not None:
        print("\nshare of the stem in these layers' cycles: " + ", ".join(
            f"{t} {k} {v[stem] / sum(v):.0%}" for t, k, v in cols))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
