"""Where a trace's cycles go, as table rows and one line (`sqnxt-emu trace --breakdown`), and
what a trace's --json carries beyond its rows so that its energy can be recomputed by hand.

The parts themselves are timing.py's (CYCLE_PARTS, Timing.parts), of every charged step (MAC
layers and steps without MACs alike, record.py) and, for a whole network, NetworkResult.cycle_parts
(the steps' parts summed)."""
from __future__ import annotations

from .energy import access_energy
from .timing import CYCLE_PARTS, stream_bits


def breakdown_columns(share: bool = True) -> list[str]:
    """The --breakdown columns (`share`: with breakdown_row's dram_share)."""
    return (["layer", "dataflow", "cycles"] + [f"cycles_{p}" for p in CYCLE_PARTS]
            + (["dram_share"] if share else []))


def breakdown_row(row: dict) -> dict:
    """A trace row (StepRecord.row / NetworkResult.total_row) with its cycle parts rounded
    to whole cycles for the table, and the DRAM's share of the cycles (edges and stall)."""
    out = dict(row)
    exact = [k for k in row if k.startswith("cycles_")]
    total = sum(row[k] for k in exact)
    for k in exact:
        out[k] = round(row[k])
    dram = row["cycles_dram_edges"] + row["cycles_dram_stall"]
    out["dram_share"] = f"{dram / total:.1%}" if total else ""
    return out


def describe_parts(parts: dict[str, float]) -> str:
    """'array 61.2%, buffer_stall 0.0%, ... of 123,456' of a network's cycles by part, or by
    step kind ('conv 95.1%, add 2.9%, ...')."""
    total = sum(parts.values())
    return ", ".join(f"{p} {v / total:.1%}" for p, v in parts.items() if total) + \
        f" of {total:,.0f}"


def energy_per_access(hw) -> dict:
    """The cost of one MAC and of one word's access at each memory level, by operand, under hw's
    energy model (energy.access_energy), each operand at its width: energy = counts x these,
    except that a step's final outputs (its row's `outputs`) go to DRAM at `dram_output_write`
    each (output_bits; spilled partial sums at the psum figure), and that a streamed step's
    (row `streamed`) psum counts are its outputs, at `streamed_psum` (output_bits) per level."""
    cost = access_energy(hw)
    out = {"unit": cost.unit, "mac": cost.mac}
    for level, op, e in cost.words:
        out.setdefault(level, {})[op] = e
    out["dram_output_write"] = cost.output_write
    streamed = access_energy(hw, stream_bits(hw))
    out["streamed_psum"] = {lv: e for lv, op, e in streamed.words if op == "psum"}
    return out
