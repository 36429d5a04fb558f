"""docs/quantization.md's precision table: a precision sweep's database (sqnxt-emu sweep
docs/sweeps/precision-fmnist.toml --db DB) as one row per network, precision and arithmetic,
with the top-1 each measured on the emulated datapath and its cost on each array.

    python docs/outputs/precision_table.py DB
"""
import sys
from collections import defaultdict

from sqnxt_engine.emu.results import sweep_rows


def arithmetic(r: dict) -> str:
    mode = "saturate" if r["hw.arith.overflow"] == "saturate" else "wrap"
    return f"{r['word_bits']}-bit words, {r['hw.arith.acc_bits']}-bit {mode}"


def how(r: dict) -> str:
    """Whether the row's top-1 was measured for it or shared (emu/precision.py)."""
    source = r["accuracy_source"] or ""
    if r["accuracy"] is None:
        return source.split(":")[0]
    return "shared" if "no sum left it" in source else "measured"


rows = sweep_rows(sys.argv[1])
float_top1 = {r["file"]: r["accuracy"] for r in rows if r["precision"] == "float" and r["accuracy"] is not None}
arrays = sorted({(r["pe_rows"], r["pe_cols"]) for r in rows})
cells = defaultdict(dict)
for r in rows:
    key = (r["file"].removesuffix(".npz"), r["precision"], arithmetic(r))
    cells[key]["row"] = r
    cells[key][(r["pe_rows"], r["pe_cols"])] = r
order = ["float", "int16", "int8-per-channel", "int8", "w4a8"]
head = ["network", "precision", "arithmetic", "top-1 %", "vs float", "bit-exact", "top-1 is"]
for a in arrays:
    head += [f"{a[0]}x{a[1]} energy", f"{a[0]}x{a[1]} latency ms"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for (net, precision, arith), c in sorted(cells.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]), kv[0][2])):
    r = c["row"]
    top1 = r["accuracy"]
    ref = float_top1.get(r["file"])
    exact = r["precision_bit_exact_images"]
    line = [net, precision, arith, "-" if top1 is None else f"{top1:.2f}",
            "-" if top1 is None or ref is None else f"{top1 - ref:+.2f}",
            "-" if exact is None else f"{exact:,}", how(r)]
    for a in arrays:
        p = c.get(a)
        line += ["-", "-"] if p is None or p["energy"] is None else \
            [f"{p['energy']:.3e}".replace("e+0", "e"), f"{p['latency_ms']:.3f}"]
    print("| " + " | ".join(line) + " |")
