"""Cycles of a layer: array cycles (from the kernels' counters) + fill/drain + DRAM transfers.

The model, in words:
- Array cycles: the kernels' `cycles` counter (every active PE does at most one MAC a cycle).
- Fill/drain: each *pass* of the array (the array starting on a new stationary block: a new
  Pr x Pc weight block in WS, a new block of outputs in OS) costs pe_rows + pe_cols - 2 cycles
  of pipeline skew, the delay before the farthest PE gets its first operands (the same charge
  per fold as SCALE-Sim's formulas). Passes per dataflow, with nt tiles of (tk, tc, ty, tx):
    ws         nt * ceil(tk/Pc) * ceil(tc/Pr) * R * S   (one pass per weight block and tap)
    os_socmop  nt * tk * ceil(ty/Pr) * ceil(tx/Pc)      (one per output block and channel)
    os_mocsop  nt * ty * tx * ceil(tk/(Pr*Pc))
    os_mocmop  nt * ceil(tk/Pr) * ty * ceil(tx/Pc)
  Off when hardware.fill_drain is false.
- DRAM: one DMA transfer each time a tile of an operand becomes resident (the tile walk's
  residencies, below), costing latency + bytes / (bytes per cycle). Bytes: inputs and weights
  at word width; outputs at word width, spilled partial sums (written and read back) at
  accumulator width. Transfers are serial (one DMA engine).
- Overlap: without double buffering the array waits for every transfer: cycles = compute +
  DRAM. With it, transfers run while the array computes, except the first input and weight
  tiles (the prologue: nothing to compute yet) and the last output tile (the epilogue):
  cycles = prologue + max(compute, DRAM - prologue - epilogue) + epilogue.

Residencies of an operand's tile: loops with one tile never change anything, so drop them from
the loop order; a tile of an operand indexed by loops D is fetched once per iteration of the
loops from the outermost down to the innermost loop in D. Weights: D = {k, c}; inputs: {c, y, x}
(and k for grouped layers, whose k-tile selects the groups); partial sums: {k, y, x}, read back
from DRAM on every residency except those that start at the first c-tile.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil, prod

from .hardware import Hardware

LOOPS = ("k", "c", "y", "x")


def tile_counts(shape, mapping) -> dict[str, int]:
    ext = {"k": shape.K, "c": shape.Cg, "y": shape.Ho, "x": shape.Wo}
    return {d: ext[d] // t for d, t in zip(LOOPS, mapping.tiles)}


def residencies(n: dict[str, int], order, loops) -> int:
    """Times a tile indexed by `loops` becomes resident in a walk of `order` (outermost first)."""
    eff = [d for d in order if n[d] > 1]
    inner = max((i for i, d in enumerate(eff) if d in loops), default=-1)
    return prod(n[d] for d in eff[:inner + 1])


@dataclass(frozen=True)
class Transfers:
    """DMA transfers of a layer and their bytes, per operand (psum: reads are spills read back,
    writes are the outputs plus spills)."""
    input_reads: int
    weight_reads: int
    psum_reads: int
    psum_writes: int
    input_bytes: float
    weight_bytes: float
    psum_read_bytes: float
    psum_write_bytes: float

    @property
    def count(self) -> int:
        return self.input_reads + self.weight_reads + self.psum_reads + self.psum_writes

    @property
    def bytes(self) -> float:
        return self.input_bytes + self.weight_bytes + self.psum_read_bytes + self.psum_write_bytes


def transfers(shape, mapping, counters, hw: Hardware) -> Transfers:
    n = tile_counts(shape, mapping)
    in_loops = {"c", "y", "x"} | ({"k"} if shape.groups > 1 else set())
    w = residencies(n, mapping.order, {"k", "c"})
    i = residencies(n, mapping.order, in_loops)
    runs = residencies(n, mapping.order, {"k", "y", "x"})
    eff = [d for d in mapping.order if n[d] > 1]
    last_out = max((j for j, d in enumerate(eff) if d in "kyx"), default=-1)
    c_outside = "c" in eff and eff.index("c") < last_out
    reloads = runs * (n["c"] - 1) // n["c"] if c_outside else 0
    outputs = shape.K * shape.Ho * shape.Wo
    spilled = int(counters.psum_dram_writes) - outputs
    return Transfers(
        input_reads=i, weight_reads=w, psum_reads=reloads, psum_writes=runs,
        input_bytes=int(counters.input_dram_reads) * hw.word_bytes,
        weight_bytes=int(counters.weight_dram_reads) * hw.word_bytes,
        psum_read_bytes=int(counters.psum_dram_reads) * hw.acc_bytes,
        psum_write_bytes=outputs * hw.word_bytes + max(spilled, 0) * hw.acc_bytes)


def passes_raw(df: str, tiles, nt: int, R: int, S: int, pr: int, pc: int) -> int:
    """Passes of the array for a dataflow, tiles (tk, tc, ty, tx), nt tiles, an R x S kernel."""
    tk, tc, ty, tx = tiles
    if df == "ws":
        return nt * ceil(tk / pc) * ceil(tc / pr) * R * S
    if df == "os_socmop":
        return nt * tk * ceil(ty / pr) * ceil(tx / pc)
    if df == "os_mocsop":
        return nt * ty * tx * ceil(tk / (pr * pc))
    if df == "os_mocmop":
        return nt * ceil(tk / pr) * ty * ceil(tx / pc)
    raise ValueError(f"unknown dataflow {df!r}")


def passes(shape, mapping) -> int:
    """Passes of the array (see the module doc)."""
    nt = prod(tile_counts(shape, mapping).values())
    return passes_raw(mapping.dataflow, mapping.tiles, nt, shape.R, shape.S,
                      mapping.pe_rows, mapping.pe_cols)


@dataclass(frozen=True)
class Timing:
    array: int          # the kernels' array cycles
    fill_drain: int     # pipeline skew over all passes
    dram: float         # DMA busy cycles (latency + bytes / bandwidth, all transfers)
    exposed_dram: float  # DMA cycles the array waits for
    total: float        # cycles of the layer
    transfers: Transfers

    @property
    def compute(self) -> int:
        return self.array + self.fill_drain


def timing(shape, mapping, counters, hw: Hardware) -> Timing:
    tr = transfers(shape, mapping, counters, hw)
    fd = passes(shape, mapping) * (hw.pe_rows + hw.pe_cols - 2) if hw.fill_drain else 0
    compute = int(counters.cycles) + fd
    bpc = hw.dram_bytes_per_cycle
    lat = hw.dram_latency_cycles
    dram = tr.count * lat + tr.bytes / bpc
    if hw.double_buffering:
        fp = mapping.footprint(shape)
        first_in = min(fp["input"] * hw.word_bytes, tr.input_bytes)
        first_w = min(fp["weight"] * hw.word_bytes, tr.weight_bytes)
        prologue = (lat if tr.input_reads else 0) + (lat if tr.weight_reads else 0) + (first_in + first_w) / bpc
        epilogue = lat + min(fp["psum"], shape.K * shape.Ho * shape.Wo) * hw.word_bytes / bpc
        rest = max(0.0, dram - prologue - epilogue)
        total = prologue + max(compute, rest) + epilogue
    else:
        total = compute + dram
    return Timing(int(counters.cycles), fd, dram, total - compute, total, tr)
