"""A trace row's energy recomputed by hand from its raw counts and the trace's energy per access
(--json's `energy_per_access`, emu/breakdown.py): each operand's accesses at its own price, a
step's final outputs written to DRAM at the output's price, a streamed step's outputs (its psum
counts) at the output's width at every level."""
from sqnxt_engine.emu.energy import LEVEL_KINDS
from sqnxt_engine.kernels import OPERANDS


def energy_by_level(row: dict, cost: dict) -> dict[str, float]:
    counts = row["counts"]
    streamed = row.get("streamed", False)
    by_level = {"mac": counts["macs"] * cost["mac"]}
    for level, kinds in LEVEL_KINDS.items():
        price = dict(cost[level])
        if streamed:
            price["psum"] = cost["streamed_psum"][level]
        by_level[level] = sum(counts[f"{op}_{k}"] * price[op] for op in OPERANDS for k in kinds)
    by_level["dram"] += row["outputs"] * (
        cost["dram_output_write"] - (cost["streamed_psum"]["dram"] if streamed else cost["dram"]["psum"]))
    return by_level
