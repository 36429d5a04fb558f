"""Mapping search: per layer, the dataflow, loop order and tile sizes of least cost.

The space: every dataflow asked for x every order of the tiled loops (k, c, y, x) x every tile
size that divides its loop, keeping the tiles that fit the global buffer (Hardware.fits: the
input, weight and partial-sum tiles, psums at accumulator width, twice with double buffering).

The cost of a mapping (documented in hardware.py, [search]):
    cost = cycles_weight * cycles + dram_weight * DRAM words
with cycles the layer's total from timing.py (array + fill/drain + exposed DRAM) and DRAM words
the kernels' dram_reads + dram_writes of all operands, both from count-only mode.

The search is exact (the least cost over the whole space; tests check it against brute force)
but does not count every candidate:
- Orders that differ only in the position of loops with a single tile visit the tiles in the
  same sequence, so give the same counts: one order per class is counted.
- Branch and bound: each candidate gets a lower bound from facts of its dataflow and tiling
  alone, candidates are counted in order of increasing bound, and the search stops when the
  next bound is no better than the best cost found. The bound: the array does at least
  (dense MACs - zero weights skipped) MACs at most `parallel` per cycle, where `parallel` is
  what the dataflow can spread over the array (WS: min(tk, Pc) * min(tc, Pr); SOC-MOP:
  min(ty, Pr) * min(tx, Pc); MOC-SOP: min(tk, Pr*Pc); MOC-MOP: min(tk, Pr) * min(tx, Pc));
  fill/drain and the number of DMA transfers are exact (timing.py); DRAM words are at least
  the weights, the input words read and the outputs, once each.

"The faster dataflow": with `dataflow="best"` the search finds the best WS and the best OS
(SOC-MOP) mapping and keeps the one with fewer cycles (then lower cost), as the paper chooses
per layer.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from itertools import permutations, product
from math import ceil, prod

from ..errors import UserError
from ..kernels import ConvShape, Counters, Mapping, count, divisors
from . import timing as T
from .hardware import Hardware

DATAFLOW_CHOICES = {"ws": ("ws",), "os": ("os_socmop",), "best": ("ws", "os_socmop"),
                    "os_socmop": ("os_socmop",), "os_mocsop": ("os_mocsop",),
                    "os_mocmop": ("os_mocmop",), "all": ("ws", "os_socmop", "os_mocsop", "os_mocmop")}
ORDERS = tuple(permutations(("k", "c", "y", "x")))


@dataclass(frozen=True)
class Choice:
    """A mapping with its count-only counters, timing and cost."""
    mapping: Mapping
    counters: Counters
    timing: T.Timing
    cost: float

    @property
    def dram_words(self) -> int:
        return dram_words(self.counters)


def dram_words(c) -> int:
    return sum(int(getattr(c, f"{op}_dram_{rw}")) for op in ("input", "weight", "psum")
               for rw in ("reads", "writes"))


def cost(hw: Hardware, tm: T.Timing, counters) -> float:
    return hw.cycles_weight * tm.total + hw.dram_weight * dram_words(counters)


def evaluate(shape: ConvShape, mapping: Mapping, hw: Hardware, zeros) -> Choice:
    """Count one mapping (count-only mode) and cost it."""
    c = count(shape, mapping, zeros if mapping.dataflow == "os_socmop" else None)
    tm = T.timing(shape, mapping, c, hw)
    return Choice(mapping, c, tm, cost(hw, tm, c))


def fitting_tiles(shape: ConvShape, hw: Hardware) -> list[tuple[int, int, int, int]]:
    """Every tile tuple (tk, tc, ty, tx) of divisors that fits the buffer."""
    out = []
    for tiles in product(*(divisors(n) for n in (shape.K, shape.Cg, shape.Ho, shape.Wo))):
        fp = Mapping("ws", hw.pe_rows, hw.pe_cols, ("k", "c", "y", "x"), tiles).footprint(shape)
        if hw.fits(fp):
            out.append(tiles)
    return out


def canonical_orders(shape: ConvShape, tiles) -> list[tuple[str, ...]]:
    """One order per class of orders that visit the tiles in the same sequence."""
    n = dict(zip("kcyx", (shape.K // tiles[0], shape.Cg // tiles[1], shape.Ho // tiles[2],
                          shape.Wo // tiles[3])))
    seen, out = set(), []
    for o in ORDERS:
        key = tuple(d for d in o if n[d] > 1)
        if key not in seen:
            seen.add(key)
            out.append(o)
    return out


def _parallel(df: str, tiles, pr: int, pc: int) -> int:
    tk, tc, ty, tx = tiles
    if df == "ws":
        return min(tk, pc) * min(tc, pr)
    if df == "os_socmop":
        return min(ty, pr) * min(tx, pc)
    if df == "os_mocsop":
        return min(tk, pr * pc)
    return min(tk, pr) * min(tx, pc)


class _Bound:
    """Lower bounds of the cost for one layer and dataflow (see the module doc)."""

    def __init__(self, shape: ConvShape, hw: Hardware, dataflow: str, nzeros: int):
        self.shape, self.hw, self.df = shape, hw, dataflow
        skipped = nzeros * shape.Ho * shape.Wo if dataflow == "os_socmop" else 0
        self.macs = max(shape.macs - skipped, 0)
        self.words = shape.weight_size + shape.input_used + shape.output_size
        self.in_loops = {"c", "y", "x"} | ({"k"} if shape.groups > 1 else set())
        self.skew = hw.pe_rows + hw.pe_cols - 2 if hw.fill_drain else 0
        self.ext = (shape.K, shape.Cg, shape.Ho, shape.Wo)

    def compute(self, tiles) -> int:
        """Array cycles (at least) plus fill/drain (exact) of a tiling."""
        hw, s = self.hw, self.shape
        nt = prod(e // t for e, t in zip(self.ext, tiles))
        array = ceil(self.macs / _parallel(self.df, tiles, hw.pe_rows, hw.pe_cols))
        return array + T.passes_raw(self.df, tiles, nt, s.R, s.S, hw.pe_rows, hw.pe_cols) * self.skew

    def tiles_bound(self, tiles, compute: int) -> float:
        """A bound for every order of a tiling (DMA transfers at no latency)."""
        return self._cost(compute, 0)

    def __call__(self, order, tiles, compute: int | None = None) -> float:
        n = {d: e // t for d, e, t in zip("kcyx", self.ext, tiles)}
        ntr = (T.residencies(n, order, {"k", "c"}) + T.residencies(n, order, self.in_loops)
               + T.residencies(n, order, {"k", "y", "x"}))
        return self._cost(self.compute(tiles) if compute is None else compute, ntr)

    def _cost(self, compute: int, ntransfers: int) -> float:
        hw = self.hw
        dram = ntransfers * hw.dram_latency_cycles + self.words * hw.word_bytes / hw.dram_bytes_per_cycle
        cycles = max(compute, dram) if hw.double_buffering else compute + dram
        return hw.cycles_weight * cycles + hw.dram_weight * self.words


def lower_bound(shape: ConvShape, mapping: Mapping, hw: Hardware, nzeros: int) -> float:
    """A cost no lower than the mapping's real cost can be (see the module doc)."""
    return _Bound(shape, hw, mapping.dataflow, nzeros)(mapping.order, mapping.tiles)


@dataclass
class SearchStats:
    candidates: int = 0   # mappings given a bound (tilings the bound cut are not expanded)
    counted: int = 0      # mappings counted before the bound stopped the search


def search_dataflow(shape: ConvShape, hw: Hardware, dataflow: str, zeros=None,
                    stats: SearchStats | None = None, tiles_list=None) -> Choice:
    """The least-cost mapping of one dataflow. zeros: the layer's ZeroProfile (SOC-MOP)."""
    if dataflow == "os_socmop" and zeros is None:
        raise ValueError("os_socmop needs the layer's ZeroProfile")
    nzeros = zeros.zeros if (zeros is not None and dataflow == "os_socmop") else 0
    tiles_list = fitting_tiles(shape, hw) if tiles_list is None else tiles_list
    if not tiles_list:
        raise UserError(f"buffer.bytes ({hw.gb_bytes}) of {hw.name} is smaller than one tile of "
                        f"this layer ({shape_str(shape)})")
    bound = _Bound(shape, hw, dataflow, nzeros)
    # best first over a heap of tilings (bound for all their orders) and single mappings;
    # a tiling popped from the heap is expanded into its orders
    heap = []
    for i, tiles in enumerate(tiles_list):
        comp = bound.compute(tiles)
        heap.append((bound.tiles_bound(tiles, comp), 0, i, tiles, None, comp))
    heapq.heapify(heap)
    serial = len(heap)
    best = None
    counted = candidates = 0
    while heap:
        lb, kind, _, tiles, order, comp = heapq.heappop(heap)
        if best is not None and lb >= best.cost:
            break
        if kind == 0:
            for o in canonical_orders(shape, tiles):
                candidates += 1
                serial += 1
                heapq.heappush(heap, (bound(o, tiles, comp), 1, serial, tiles, o, comp))
            continue
        ch = evaluate(shape, Mapping(dataflow, hw.pe_rows, hw.pe_cols, order, tiles), hw, zeros)
        counted += 1
        if best is None or ch.cost < best.cost:
            best = ch
    if stats is not None:
        stats.candidates += candidates
        stats.counted += counted
    return best


def search(shape: ConvShape, hw: Hardware, dataflow: str = "best", zeros=None,
           stats: SearchStats | None = None) -> Choice:
    """The mapping for a layer: the least-cost one of each dataflow asked for, then the fastest."""
    if dataflow not in DATAFLOW_CHOICES:
        raise UserError(f"unknown dataflow {dataflow!r} (choose from {', '.join(DATAFLOW_CHOICES)})")
    tiles_list = fitting_tiles(shape, hw)
    choices = [search_dataflow(shape, hw, df, zeros, stats, tiles_list)
               for df in DATAFLOW_CHOICES[dataflow]]
    return min(choices, key=lambda ch: (ch.timing.total, ch.cost))


def shape_str(s: ConvShape) -> str:
    g = f" g{s.groups}" if s.groups > 1 else ""
    st = f"/{s.stride[0]}" if s.stride != (1, 1) else ""
    return f"{s.C}x{s.H}x{s.W} -> {s.K}x{s.Ho}x{s.Wo} {s.R}x{s.S}{st}{g}"


def mapping_str(m: Mapping) -> str:
    """Compact: order (outermost first) and tiles, e.g. 'kcyx 32/64/55/5'."""
    return "".join(m.order) + " " + "/".join(map(str, m.tiles))
