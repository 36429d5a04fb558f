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
order = ["float", "int16", "int8-per-channel", "int8", "w4a8"]
MODES = ("wrap", "saturate")
cells = defaultdict(lambda: defaultdict(dict))   # (net, precision, words, acc) -> mode -> array -> row
not_run = defaultdict(set)
for r in rows:
    net = r["file"].removesuffix(".npz")
    if r["accuracy"] is None:
        where = f"{r['word_bits']}-bit words" if r["precision_refused"] == "word_bits" else \
            f"a {r['hw.arith.acc_bits']}-bit accumulator"
        why = "the float reference is costed on 16-bit words only" if r["precision"] == "float" else \
            "codes wider than the words" if r["precision_refused"] == "word_bits" else \
            r["accuracy_source"].split(": ", 1)[-1]
        not_run[(r["precision"], where, why)].add(net)
        continue
    mode = "saturate" if r["hw.arith.overflow"] == "saturate" else "wrap"
    cells[(net, r["precision"], r["word_bits"], r["hw.arith.acc_bits"])][mode][(r["pe_rows"], r["pe_cols"])] = r


def same(a: dict, b: dict) -> bool:
    """Wrap and saturate gave the same top-1 and costs on every array."""
    return all(a[k]["accuracy"] == b[k]["accuracy"] and a[k]["energy"] == b[k]["energy"] and
               a[k]["cycles"] == b[k]["cycles"] for k in a) and a.keys() == b.keys()


head = ["network", "precision", "words", "accumulator", "top-1 %", "vs float", "bit-exact", "top-1 is"]
for a in arrays:
    head += [f"{a[0]}x{a[1]} energy", f"{a[0]}x{a[1]} latency ms"]
print("| " + " | ".join(head) + " |")
print("|" + "---|" * len(head))
for (net, precision, words, acc), modes in sorted(cells.items(), key=lambda kv: (kv[0][0], order.index(kv[0][1]),
                                                                                 -kv[0][2], kv[0][3])):
    alike = set(modes) == set(MODES) and same(modes["wrap"], modes["saturate"])
    shown = [("wrap = saturate", modes["wrap"])] if alike else [(m, modes[m]) for m in MODES if m in modes]
    for mode, by_array in shown:
        r = next(iter(by_array.values()))
        top1, ref = r["accuracy"], float_top1.get(r["file"])
        exact = r["precision_bit_exact_images"]
        line = [net, precision, f"{words}-bit", f"{acc}-bit {mode}", f"{top1:.2f}",
                "-" if ref is None else f"{top1 - ref:+.2f}", "-" if exact is None else f"{exact:,}",
                how(r) if len(shown) == 2 or mode != "wrap = saturate" else
                " / ".join(dict.fromkeys(how(modes[m][k]) for m in MODES for k in modes[m]))]
        for a in arrays:
            p = by_array.get(a)
            line += ["-", "-"] if p is None else [f"{p['energy']:.3e}".replace("e+0", "e"), f"{p['latency_ms']:.3f}"]
        print("| " + " | ".join(line) + " |")
print()
for (precision, where, why), nets in sorted(not_run.items()):
    print(f"Not run: {precision} of {', '.join(sorted(nets))} on {where} ({why}).")
