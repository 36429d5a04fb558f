"""Cycles of a layer from the kernels' counters: array, buffer, pipeline and DRAM time.

Every loop-nest fact comes from the kernels (count-only or execute mode): array cycles, passes,
global-buffer words, DRAM words and DMA transfers per operand. What is added here is hardware
timing, each part a documented parameter of hardware.py:
- Compute: the array's cycles (divided by the PE's MAC lanes where arith.split_mac splits
  it, rounded up), or the buffer's time if longer: (GB bits read and written, by the array
  and the DMA, each operand at its width, hardware.operand_bits) / (buffer.words_per_cycle x
  word_bits); plus the pipeline skew (rows + cols - 2 cycles) once per array pass, per tile or
  per layer (pipeline.fill_drain).
- DRAM: one DMA transfer per tile made resident or written back (the kernels' transfer
  counters), each costing the latency plus its bytes over the bandwidth. Bytes: inputs,
  weights and final outputs at their widths (arith.input_bits, weight_bits, output_bits),
  spilled partial sums (written and read back) at accumulator width. With n DMA engines
  (dram.engines) up to n transfers overlap their latencies; the bandwidth is shared:
  DRAM time = max(bytes / bandwidth, (transfers * latency + bytes / bandwidth) / n).
- Overlap: without double buffering the array waits for every transfer: cycles = compute +
  DRAM. With it, transfers run while the array computes, except the first input and weight
  tiles (the prologue: nothing to compute yet) and the last output tile (the epilogue):
  cycles = prologue + max(compute, DRAM - prologue - epilogue) + epilogue.
- Steps without MACs (pools, adds, a shift copied through the buffer, ...): `stream_timing`,
  a pass streamed through the buffer and the array (its own section there).

Where a step's cycles go (`Timing.parts`, CYCLE_PARTS), parts that add up to its total exactly
(the total is computed as their sum, in this order): the array's cycles; the buffer stall (the
buffer's time beyond the array's, when its bandwidth is the bound); the fill/drain skew; the
DRAM edges (with double buffering: the prologue and epilogue no compute can hide); the DRAM
stall (DMA time beyond what overlaps compute; without double buffering, all of it).

The functions take one mapping's Counters or, for the search, columns of many (`Columns`):
one implementation costs both. This module is the only place a Timing is made.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import COUNTER_FIELDS, OPERANDS, ConvShape, Counters, Mapping, footprints
from .hardware import Hardware

_COL = {f: i for i, f in enumerate(COUNTER_FIELDS)}


class Columns:
    """Counters of many mappings (count_array's (n, 30) rows), field by field as arrays."""

    def __init__(self, rows: np.ndarray):
        self.rows = rows

    def __getattr__(self, name):
        try:
            return self.rows[:, _COL[name]]
        except KeyError:
            raise AttributeError(name) from None


# the parts of a layer's cycles (module doc), in the order they are summed
CYCLE_PARTS = ("array", "buffer_stall", "fill_drain", "dram_edges", "dram_stall")


@dataclass(frozen=True)
class Timing:
    array: int           # the kernels' array cycles
    buffer: float        # cycles the global buffer needs for its words (bandwidth bound)
    fill_drain: int      # pipeline skew charged
    dram: float          # DMA busy cycles (latency + bytes / bandwidth, all transfers)
    exposed_dram: float  # DMA cycles the array waits for: dram_edges + the DRAM stall
    total: float         # cycles of the layer
    dram_bytes: float    # bytes moved between DRAM and the buffer
    transfers: int       # DMA transfers
    dram_edges: float = 0.0  # exposed DMA no compute can hide (double buffering's edges)
    dram_stall: float = 0.0  # exposed DMA beyond the edges: exposed_dram - dram_edges

    @property
    def compute(self) -> float:
        return max(self.array, self.buffer) + self.fill_drain

    @property
    def parts(self) -> dict[str, float]:
        """Where the cycles go (CYCLE_PARTS); sum(parts.values()) == total exactly."""
        return {"array": self.array, "buffer_stall": max(self.array, self.buffer) - self.array,
                "fill_drain": self.fill_drain, "dram_edges": self.dram_edges,
                "dram_stall": self.dram_stall}


def gb_bits(c, bits: dict[str, int]):
    """Global-buffer bits read and written (array and DMA), each operand's words at bits[op]."""
    return sum((getattr(c, f"{op}_gb_reads") + getattr(c, f"{op}_gb_writes")) * bits[op]
               for op in OPERANDS)


def buffer_cycles(c, hw: Hardware, bits: dict[str, int] | None = None):
    """Cycles the global buffer's port needs for a step's accesses (module doc)."""
    return gb_bits(c, hw.operand_bits if bits is None else bits) / (
        hw.gb_words_per_cycle * hw.word_bits)


def array_cycles(cycles, hw: Hardware):
    """A MAC step's array cycles on hw: the kernels' cycles (a number or an array) over the
    PE's MAC lanes, rounded up."""
    lanes = hw.mac_lanes
    return np.asarray(cycles) if lanes == 1 else -(-np.asarray(cycles) // lanes)


def dram_words(c):
    """DRAM words read and written, all operands."""
    return sum(getattr(c, f"{op}_dram_reads") + getattr(c, f"{op}_dram_writes") for op in OPERANDS)


def dma_cycles(transfers, nbytes, hw: Hardware):
    """DMA busy time of `transfers` transfers moving `nbytes` (module doc)."""
    stream = nbytes / hw.dram_bytes_per_cycle
    return np.maximum(stream, (transfers * hw.dram_latency_cycles + stream) / hw.dma_engines)


def timing_columns(shape: ConvShape, tiles, c, hw: Hardware) -> dict[str, np.ndarray]:
    """The parts of Timing for mappings with tile sizes `tiles` ((n, 4)) and counters `c`
    (Columns of n rows, or one Counters with tiles of one row)."""
    tiles = np.asarray(tiles, np.int64).reshape(-1, 4)
    ext = np.array([shape.K, shape.Cg, shape.Ho, shape.Wo])
    array = array_cycles(c.cycles, hw)
    buffer = buffer_cycles(c, hw)
    charged = {"pass": np.asarray(c.passes), "tile": np.prod(-(-ext // tiles), axis=1),
               "layer": 1}[hw.fill_drain]
    fill_drain = charged * hw.pipeline_skew
    buffer_stall = np.maximum(array, buffer) - array
    ib, wb, ob, ab = hw.input_bits / 8, hw.weight_bits / 8, hw.output_bits / 8, hw.acc_bytes
    outputs = np.minimum(shape.output_size, c.psum_dram_writes)  # none when kept on chip
    nbytes = (c.input_dram_reads * ib + c.weight_dram_reads * wb + c.psum_dram_reads * ab
              + outputs * ob + (c.psum_dram_writes - outputs) * ab)  # spills at acc width
    transfers = (c.input_transfers + c.weight_transfers + c.psum_read_transfers
                 + c.psum_write_transfers)
    dram = dma_cycles(transfers, nbytes, hw)
    if hw.double_buffering:
        # edges + max(compute, dram - edges): the DMA beyond compute and the edges stalls
        edges = prologue_epilogue(shape, tiles, c.input_dram_reads, c.weight_dram_reads, outputs, hw)
        stall = np.maximum(0.0, dram - edges - (array + buffer_stall + fill_drain))
    else:
        edges, stall = np.zeros_like(dram), dram
    # summed part by part in CYCLE_PARTS' order, so that Timing.parts add up to it exactly
    total = array + buffer_stall + fill_drain + edges + stall
    return {"array": array, "buffer": buffer, "fill_drain": fill_drain, "dram": dram,
            "exposed_dram": edges + stall, "total": total, "dram_bytes": nbytes,
            "transfers": transfers, "dram_edges": edges, "dram_stall": stall}


def prologue_epilogue(shape: ConvShape, tiles, input_words, weight_words, output_words,
                      hw: Hardware, fp: dict | None = None):
    """With double buffering, the DMA time the array cannot overlap: the first input and weight
    tiles (nothing to compute yet; at most all the input / weight words the layer fetches, none
    of an operand it does not fetch) and the last output tile (none when no output is written:
    onchip.py). fp: the tiles' footprints (kernels.footprints) where the caller has them (tiles
    is then not read)."""
    fp = footprints(shape, tiles) if fp is None else fp
    bpc, lat = hw.dram_bytes_per_cycle, hw.dram_latency_cycles
    first = (np.minimum(fp["input"], input_words) * hw.input_bits
             + np.minimum(fp["weight"], weight_words) * hw.weight_bits) / 8
    fetched = (np.asarray(input_words) > 0).astype(int) + (np.asarray(weight_words) > 0)
    prologue = lat * np.ceil(fetched / hw.dma_engines) + first / bpc   # an input and a weight tile
    last = np.minimum(fp["psum"], output_words)
    epilogue = np.where(last > 0, lat + last * hw.output_bits / 8 / bpc, 0.0)
    return prologue + epilogue


def timing(shape: ConvShape, mapping: Mapping, counters: Counters, hw: Hardware) -> Timing:
    """Timing of one mapping from its counters."""
    rows = Columns(np.array([counters], np.int64))
    t = timing_columns(shape, [mapping.tiles], rows, hw)
    first = {k: np.ravel(v)[0] for k, v in t.items()}
    return Timing(int(first["array"]), float(first["buffer"]), int(first["fill_drain"]),
                  float(first["dram"]), float(first["exposed_dram"]), float(first["total"]),
                  float(first["dram_bytes"]), int(first["transfers"]), float(first["dram_edges"]),
                  float(first["dram_stall"]))


def stream_bits(hw: Hardware) -> dict[str, int]:
    """The widths of a streamed step's words by counter operand: its outputs, counted as psum
    words, are final outputs at output_bits (stream_timing)."""
    return {**hw.operand_bits, "psum": hw.output_bits}


def stream_timing(c: Counters, hw: Hardware) -> Timing:
    """A step without MACs (pool, add, activation, a shift copied through the buffer) on the
    accelerator, from its counters (record.stream_counters): its element operations at one per
    PE per cycle (the counters' array cycles), its inputs fetched from DRAM and its outputs
    written back (layers run one at a time) in one streamed transfer each way, both passing
    through the buffer (written by the DMA and read by the array, written by the array and read
    by the DMA). The three overlap; the first transfer's latency does not:
    cycles = latency + max(array, buffer, DRAM stream). As parts: the array's cycles, the
    buffer's time beyond them, the latency as the DRAM edge no compute hides, and the stream's
    time beyond the array's and the buffer's as the DRAM stall. No pipeline skew: an element
    operation needs no systolic fill. A step that moves nothing costs nothing. Its inputs move
    at arith.input_bits, its outputs (the counters' psum words: final, never partial sums) at
    output_bits (stream_bits)."""
    if not dram_words(c):
        return Timing(0, 0.0, 0, 0.0, 0.0, 0.0, 0.0, 0)
    bits = stream_bits(hw)
    nbytes = sum((getattr(c, f"{op}_dram_reads") + getattr(c, f"{op}_dram_writes")) * b
                 for op, b in bits.items()) / 8
    array = c.cycles
    buffer = buffer_cycles(c, hw, bits)
    stream = nbytes / hw.dram_bytes_per_cycle
    edges = float(hw.dram_latency_cycles)
    stall = max(0.0, stream - max(array, buffer))
    total = array + (max(array, buffer) - array) + 0 + edges + stall   # CYCLE_PARTS' order
    return Timing(array, buffer, 0, edges + stream, edges + stall, total, nbytes,
                  c.input_transfers + c.psum_write_transfers, edges, stall)
