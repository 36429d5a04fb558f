"""Mapping search: per layer, the dataflow, loop order and tile sizes of least cost.

The space: every dataflow asked for x every order of the tiled loops (k, c, y, x) x every tile
size from 1 to its loop's extent (the last tile of a loop may be partial), keeping the tiles
that fit the global buffer (Hardware.fits: the input, weight and partial-sum tiles, psums at
accumulator width, twice with double buffering).

What a mapping costs is hardware [search] objective (hardware.py): a key of two numbers,
compared first by the first (`cost`), then by the second (`tiebreak`), from the layer's cycles
(timing.py), its DRAM words (dram_reads + dram_writes of all operands) and its energy (energy.py),
all from the kernels' count-only mode (`count_array`, a batch of mappings per C call):
    cycles:   (cycles, DRAM words)          energy: (energy, cycles)
    edp:      (energy x cycles, cycles)     weighted: (cycles_weight x cycles + dram_weight x
                                                       DRAM words, 0)
The search is exact (the least key over the whole space; tests check it against brute force over
every tile size, for every objective) but does not count every candidate:

1. Tile sizes that cannot be optimal are dropped, loop by loop. Every counter the cost depends
   on is a sum over tiles of products of one factor per loop, and the factor of loop d depends
   on its tiles only through a few per-loop sums: the number of tiles m, the sums over its
   tiles of ceil(t_i / P) for each array dimension P a dataflow spreads it over (Pr, Pc,
   Pr*Pc, and the OS psums per PE), for y and x the input rows / columns the tiles touch
   (in DRAM and in the buffer, halos and padding), for k in a grouped layer the input groups
   its tiles and blocks span, and for k with SOC-MOP input reuse the input reads themselves
   (counted per size: the pieces of one group a PE holds, and the nonzero weights of the
   one-channel pieces, depend on where the k-tiles start); for row stationary also the pieces
   of up to p channels its k-tiles cut into, its c-passes (floor(Pr / R) channels at once) and
   the input rows its strips of Pc output rows read (`_rs_features`); and the fit depends on
   the full tile size t. The cost only grows
   with each of these, so a size t whose every feature is matched or beaten by another size's
   is never needed (`candidate_sizes`: the Pareto-minimal sizes; about 2 sqrt(n) plus the sizes
   aligned to the array).
2. Orders that differ only in the position of loops with a single tile visit the tiles in the
   same sequence, so give the same counts: one order per class is counted.
3. Branch and bound over the tilings: each tiling's bound is its exact compute time (array
   cycles and pipeline fill/drain: they do not depend on the order, and for every dataflow
   they are a product of one factor per loop, so the factors are counted once per loop size,
   `_separable`) with the least DRAM the layer can have (each operand's words once, one
   transfer per distinct tile at the latency), and for the energy objectives the least energy
   (the MACs performed, each with the register-file accesses every performed MAC makes, and
   the least DRAM words at the cheapest word's price); tilings are counted, all their orders in
   one batch, in order of increasing bound until the next bound is no better than the best key.

`dataflow="best"`: the best mapping of each dataflow the hardware supports
(dataflow.supported; the paper's: WS and SOC-MOP, "the faster dataflow" per layer), and the
best of those under the same objective.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from ..kernels import (
    COUNTER_FIELDS,
    DATAFLOWS,
    DISTINCT_ORDERS,
    OPERANDS,
    ORDERS,
    ConvShape,
    Counters,
    Dataflow,
    Mapping,
    ZeroProfile,
    count,
    count_array,
    footprints,
    least_dram_words,
)
from . import timing as T
from .energy import access_energy, energy_total
from .hardware import Hardware

# command-line names of the dataflow choices: each dataflow by its own name, os for SOC-MOP,
# and best: the hardware's supported dataflows (None here: dataflows_of resolves it)
DATAFLOW_CHOICES = {"os": (Dataflow.OS_SOCMOP,), "ws": (Dataflow.WS,), "best": None} | {
    d.value: (d,) for d in DATAFLOWS if d is not Dataflow.WS}
LOOPS = "kcyx"


def dataflows_of(choice: str, hw: Hardware) -> tuple[Dataflow, ...]:
    """The dataflows a --dataflow choice searches on hw."""
    if choice not in DATAFLOW_CHOICES:
        raise UserError(f"unknown dataflow {choice!r} (choose from {', '.join(DATAFLOW_CHOICES)})")
    return DATAFLOW_CHOICES[choice] or tuple(Dataflow(d) for d in hw.dataflows)


@dataclass(frozen=True)
class Choice:
    """A mapping with its count-only counters, timing and objective key (cost, tiebreak)."""
    mapping: Mapping
    counters: Counters
    timing: T.Timing
    cost: float
    tiebreak: float = 0.0

    @property
    def key(self) -> tuple[float, float]:
        return (self.cost, self.tiebreak)

    @property
    def dram_words(self) -> int:
        return int(T.dram_words(self.counters))


def _key(hw: Hardware, total, words, energy):
    """(cost, tiebreak) under hw's [search] objective (module doc) from cycles, DRAM words and
    energy (numbers or arrays, exact or lower bounds; energy a callable, called only by the
    objectives that need it)."""
    if hw.objective == "weighted":
        return hw.cycles_weight * total + hw.dram_weight * words, 0.0 * total
    if hw.objective == "cycles":
        return total, words + 0.0
    e = energy()
    return (e, total) if hw.objective == "energy" else (e * total, total)


def objective(hw: Hardware, shape: ConvShape, total, counters):
    """(cost, tiebreak) of mappings: numbers for one mapping's Counters, arrays for columns of
    many."""
    return _key(hw, total, T.dram_words(counters),
                lambda: energy_total(counters, hw, shape.output_size))


def psums_per_pe(hw: Hardware, dataflow, shape: ConvShape | None = None) -> int:
    """Mapping.psums_per_pe on hw: SOC-MOP's input reuse (hw.os_psums_per_pe), RS's filters
    interleaved per PE for the layer's filter rows (hw.rs_filters_per_pe; shape needed), 1 for
    the others."""
    if dataflow == Dataflow.RS:
        if shape is None:
            raise ValueError("row stationary's psums per PE depend on the layer: pass its shape")
        return max(1, hw.rs_filters_per_pe(shape.S))
    return hw.os_psums_per_pe if dataflow == Dataflow.OS_SOCMOP else 1


def runs_on(shape: ConvShape, hw: Hardware, dataflow) -> bool:
    """Whether hw can run the layer in this dataflow (RS: a filter row fits its scratchpads)."""
    return dataflow != Dataflow.RS or hw.rs_filters_per_pe(shape.S) > 0


def mapping_for(hw: Hardware, dataflow, order, tiles, shape: ConvShape | None = None) -> Mapping:
    """A mapping on hw's array, with hw's input reuse for the dataflow (psums_per_pe)."""
    return Mapping(dataflow, hw.pe_rows, hw.pe_cols, order, tiles,
                   psums_per_pe(hw, Dataflow(dataflow), shape))


def zero_profile(shape: ConvShape, hw: Hardware, weights) -> ZeroProfile:
    """What SOC-MOP may skip on hw: the weights' zeros, or none when zero_skip_os is false."""
    if not hw.zero_skip_os:
        return ZeroProfile.of(shape, np.zeros((shape.K, shape.Cg, shape.R, shape.S), bool))
    return weights if isinstance(weights, ZeroProfile) else ZeroProfile.of(shape, weights)


def zero_count(shape: ConvShape, hw: Hardware, weights) -> int:
    """The zero weights SOC-MOP may skip on hw: zero_profile(...).zeros, counted without its
    table."""
    if not hw.zero_skip_os:
        return 0
    if isinstance(weights, ZeroProfile):
        return weights.zeros
    a = np.asarray(weights)
    return int(np.count_nonzero(a if a.dtype == bool else a == 0))


def spread_zeros(shape: ConvShape, zeros: int) -> ZeroProfile:
    """A zero profile of `zeros` zero weights spread evenly over the layer's weights in (k, c,
    r, s) order: what a network's layers of one shape and one number of zeros are searched on
    (network.kernel_layer), so the mapping they share depends on the layer alone, not on which
    of them was searched first. Magnitude pruning of trained or seeded weights scatters zeros
    across the filters, which an even spread stands for; the chosen mapping is then executed
    and counted on the real weights. Zero j of the spread is weight (j * size) // zeros; the
    mask is made a block of output channels at a time (ZeroProfile.of_rows)."""
    row = shape.Cg * shape.R * shape.S
    size = shape.K * row
    step = max(1, (1 << 20) // row)

    def blocks():
        for k0 in range(0, shape.K, step):
            k1 = min(shape.K, k0 + step)
            mask = np.zeros((k1 - k0) * row, bool)
            if zeros:   # the zeros j with k0 * row <= (j * size) // zeros < k1 * row
                j = np.arange(-(-k0 * row * zeros // size), -(-k1 * row * zeros // size))
                mask[(j * size) // zeros - k0 * row] = True
            yield mask.reshape(k1 - k0, shape.Cg, shape.R, shape.S)
    return ZeroProfile.of_rows(shape, blocks())


def evaluate(shape: ConvShape, mapping: Mapping, hw: Hardware, zeros) -> Choice:
    """Count one mapping (count-only mode) and cost it."""
    c = count(shape, mapping, zeros if mapping.dataflow.skips_zero_weights else None)
    tm = T.timing(shape, mapping, c, hw)
    return Choice(mapping, c, tm, *(float(v) for v in objective(hw, shape, tm.total, c)))


# ---- 1. candidate tile sizes -------------------------------------------------------------------

def _tile_sums(n: int, sizes: np.ndarray, per_tile) -> np.ndarray:
    """For each size t, the sum over the tiles of a loop of extent n of per_tile(start, size):
    per_tile called once, on the tiles of every size (about n ln n of them) one after another."""
    sizes = np.asarray(sizes, np.int64)
    m = -(-n // sizes)                      # tiles of each size
    first = np.concatenate(([0], np.cumsum(m)[:-1]))
    of = np.repeat(np.arange(len(sizes)), m)
    t = sizes[of]
    starts = (np.arange(len(of)) - first[of]) * t
    vals = np.broadcast_to(per_tile(starts, np.minimum(t, n - starts)), starts.shape)
    return np.add.reduceat(vals.astype(np.int64, copy=False), first)


def _touched(starts, sizes, s, R, pad, size, in_dram: bool):
    """Input rows (or columns) tiles of `sizes` outputs from `starts` touch (kernels' definition:
    in the buffer all, padding included; in DRAM those of the real input)."""
    if s <= R:
        lo, hi = starts * s, (starts + sizes - 1) * s + R
        return np.maximum(0, np.minimum(hi, pad + size) - np.maximum(lo, pad)) if in_dram else hi - lo
    o = np.arange(starts.min(), (starts + sizes).max())        # disjoint windows, one each
    per = np.maximum(0, np.minimum(o * s + R, pad + size) - np.maximum(o * s, pad)) if in_dram \
        else np.full(len(o), R)
    cum = np.concatenate(([0], np.cumsum(per)))
    return cum[starts + sizes - o[0]] - cum[starts - o[0]]


def _socmop_input_reads(shape: ConvShape, hw: Hardware, zeros, sizes: np.ndarray) -> np.ndarray:
    """SOC-MOP's input GB reads for k-tiles of each size, the other loops whole. With input
    reuse they depend on the k-tiling only (a PE's pieces of up to Q channels of one group, and
    the nonzero weights of the one-channel pieces: the kernels' single_pieces), not on the
    other tiles: every output pixel's PE reads the same words whatever the pixel blocks."""
    maps = np.zeros((len(sizes), 9), np.int64)
    maps[:, 0] = Dataflow.OS_SOCMOP.index
    maps[:, 1:3] = hw.pe_rows, hw.pe_cols
    maps[:, 4] = sizes
    maps[:, 5:8] = shape.Cg, shape.Ho, shape.Wo
    maps[:, 8] = hw.os_psums_per_pe
    return count_array(shape, maps, zeros)[:, COUNTER_FIELDS.index("input_gb_reads")]


def candidate_sizes(shape: ConvShape, hw: Hardware, zeros=None, rs: bool = False) -> list[np.ndarray]:
    """Per loop (k, c, y, x), the tile sizes that can be optimal (module doc, step 1). zeros:
    the layer's ZeroProfile when SOC-MOP is searched (its input reads depend on the k-tiling);
    rs: when row stationary is searched (_rs_features)."""
    blocks = sorted({hw.pe_rows, hw.pe_cols, hw.pes, hw.os_psums_per_pe})
    kg = shape.K // shape.groups
    out = []
    for d, n in zip(LOOPS, (shape.K, shape.Cg, shape.Ho, shape.Wo)):
        t = np.arange(1, n + 1)
        m = -(-n // t)
        last = n - (m - 1) * t
        feats = [t, m] + [(m - 1) * -(-t // P) + -(-last // P) for P in blocks]
        if d in "yx":
            s, R, pad, size = ((shape.stride[0], shape.R, shape.padding[0], shape.H) if d == "y"
                               else (shape.stride[1], shape.S, shape.padding[2], shape.W))
            for in_dram in (True, False):   # the lambda is called at once, inside this iteration
                feats.append(_tile_sums(
                    n, t, lambda a, b: _touched(a, b, s, R, pad, size, in_dram)))  # noqa: B023
        if d == "k" and zeros is not None and hw.os_psums_per_pe > 1:
            feats.append(_socmop_input_reads(shape, hw, zeros, t))
        if rs:
            feats += _rs_features(shape, hw, d, n, t)
        if d == "k" and shape.groups > 1 and kg > 1:   # (depthwise: a channel is a group)
            def spans(a, b):
                return (a + b - 1) // kg - a // kg + 1
            feats.append(_tile_sums(n, t, spans))
            for P in blocks:   # the input groups the dataflows' k-blocks span
                feats.append(_tile_sums(n, t, lambda a, b, P=P: sum(
                    np.where(j < b, spans(a + j, np.minimum(P, b - j)), 0)
                    for j in range(0, int(b.max()), P))))
        out.append(_pareto(np.stack(feats, axis=1)))
    return out


def _rs_features(shape: ConvShape, hw: Hardware, d: str, n: int, t: np.ndarray) -> list:
    """Row stationary's per-loop sums beyond candidate_sizes' (kernels' array_counts, RS):
    k, the pieces of up to p channels of one group its k-tiles cut into; c, the c-passes
    (floor(Pr / R) channels at once); y, the input rows its strips of Pc output rows read."""
    if d == "k":
        kg, q = shape.K // shape.groups, psums_per_pe(hw, Dataflow.RS, shape)
        def pieces(a, b):   # a k-tile's group runs: first, full middle ones, last
            runs = (a + b - 1) // kg - a // kg + 1
            first = np.minimum(b, kg - a % kg)
            last = (a + b - 1) % kg + 1
            return np.where(runs == 1, -(-b // q), -(-first // q) + -(-last // q)
                            + np.maximum(runs - 2, 0) * -(-kg // q))
        return [_tile_sums(n, t, pieces)]
    if d == "c" and shape.R <= hw.pe_rows:
        return [_tile_sums(n, t, lambda a, b: -(-b // (hw.pe_rows // shape.R)))]
    if d == "y":
        sy, R, Pr, Pc = shape.stride[0], shape.R, hw.pe_rows, hw.pe_cols
        def window(m, rf):
            return np.where(m == 0, 0, np.where(sy <= rf, (m - 1) * sy + rf, m * rf))
        def strip_rows(a, b):
            return sum(b // Pc * window(Pc + 0 * b, min(Pr, R - f)) + window(b % Pc, min(Pr, R - f))
                       for f in range(0, R, Pr))
        return [_tile_sums(n, t, strip_rows)]
    return []


def _pareto(f: np.ndarray) -> np.ndarray:
    """The sizes (row index + 1) not dominated by a smaller size (all features <=). Column 1
    is the tile count, which a smaller size never has fewer of: only sizes of the same count
    (a contiguous range) can dominate each other. Domination is transitive, so a size is kept
    exactly when no smaller size of its range (kept or not) dominates it: checked a block of
    sizes at a time, against the sizes kept before the block and the block's smaller ones."""
    keep: list[np.ndarray] = []
    edges = np.flatnonzero(np.diff(f[:, 1])) + 1
    for start, end in zip(np.concatenate(([0], edges)), np.concatenate((edges, [len(f)]))):
        if end - start == 1:   # a size alone with its count (every size below about sqrt(n))
            keep.append(np.array([start]))
            continue
        kept = f[:0]
        for b0 in range(start, end, 128):
            block = f[b0:min(end, b0 + 128)]
            out = (kept[:, None] <= block[None]).all(axis=2).any(axis=0)
            earlier = np.tri(len(block), k=-1, dtype=bool).T   # [j, i]: j before i
            out |= ((block[:, None] <= block[None]).all(axis=2) & earlier).any(axis=0)
            kept = np.concatenate((kept, block[~out]))
            keep.append(b0 + np.flatnonzero(~out))
    return np.concatenate(keep).astype(np.int64) + 1


@dataclass
class Tilings:
    """Every (tk, tc, ty, tx) of candidate sizes that fits the buffer, as each tile size's index
    in its loop's candidate sizes (`at`, an (n, 4) array: 16 bytes a tiling, where the sizes
    themselves took 32), the candidate sizes per loop, the DRAM words no order of each tiling
    goes below and, with double buffering, its prologue and epilogue at their least."""
    sizes: list[np.ndarray]
    at: np.ndarray
    least_words: np.ndarray
    edges: np.ndarray | None = None
    _common: tuple | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.at)

    def tiles_of(self, rows) -> np.ndarray:
        """The tile sizes (an (n, 4) int64 array) of the tilings `rows` (an index or mask)."""
        at = self.at[rows]
        return np.stack([s[at[:, d]] for d, s in enumerate(self.sizes)], axis=1)

    @property
    def tiles(self) -> np.ndarray:
        """Every tiling's tile sizes."""
        return self.tiles_of(slice(None))

    def index(self, d: int) -> np.ndarray:
        """Each tiling's index in loop d's sizes."""
        return self.at[:, d]

    def count(self, shape: ConvShape, d: int) -> np.ndarray:
        """Each tiling's number of tiles along loop d."""
        return (-(-shape._out[d] // self.sizes[d]))[self.at[:, d]]


def fitting_tilings(shape: ConvShape, hw: Hardware, zeros=None, rs: bool = False) -> Tilings:
    """The tilings of candidate sizes that fit the buffer, in the order of their grid (k
    outermost), found a block of k sizes at a time (the footprints and the fit of about 2**18
    points of the grid at once, not of the whole grid)."""
    sizes = candidate_sizes(shape, hw, zeros, rs)
    step = max(1, (1 << 18) // int(np.prod([len(v) for v in sizes[1:]])))
    ats, edges = [], []
    for k0 in range(0, len(sizes[0]), step):
        fp = footprints(shape, (sizes[0][k0:k0 + step],) + tuple(sizes[1:]))   # broadcast views
        grid = dict(zip(fp, np.broadcast_arrays(*fp.values())))
        fit = hw.fits_array(grid)
        points = np.nonzero(fit)
        at = np.empty((len(points[0]), 4), np.int32)   # (a candidate size's index: small)
        for d, p in enumerate(points):
            at[:, d] = p
        at[:, 0] += k0
        ats.append(at)
        if hw.double_buffering:   # the bound's prologue and epilogue, from these footprints
            edges.append(T.prologue_epilogue(shape, None, shape.input_used, shape.weight_size,
                                             shape.output_size, hw,
                                             {op: v[fit] for op, v in grid.items()}))
    at = np.concatenate(ats) if len(ats) > 1 else ats[0]
    return Tilings(sizes, at, _least_words(shape, sizes, at),
                   (np.concatenate(edges) if len(edges) > 1 else edges[0]) if edges else None)


def _least_words(shape: ConvShape, sizes: list[np.ndarray], at: np.ndarray) -> np.ndarray:
    """least_dram_words of each tiling (at: its sizes' indices). It depends on the tile counts
    alone, and the tilings' counts are few (a loop's candidate sizes have fewer distinct counts
    than sizes, and most tilings fit): where the grid of every loop's distinct counts is smaller
    than the tilings, the bound is computed once per point of that grid and looked up (the same
    values; on SqueezeNet, 1.0-SqNxt-23 and MobileNet 4.2 million points for 17.3 million
    tilings)."""
    per = [-(-e // s) for e, s in zip(shape._out, sizes)]   # each candidate size's tile count
    counts = [np.unique(p) for p in per]
    dims = [len(c) for c in counts]
    if np.prod(dims) >= len(at):
        return least_dram_words(shape, np.stack([p[at[:, d]] for d, p in enumerate(per)], axis=1))
    grid = np.stack(np.meshgrid(*counts, indexing="ij"), axis=-1).reshape(-1, 4)
    # each candidate size's index among its loop's distinct counts, then each tiling's point
    where = [np.searchsorted(c, p) for c, p in zip(counts, per)]
    point = np.ravel_multi_index([w[at[:, d]] for d, w in enumerate(where)], dims)
    return least_dram_words(shape, grid)[point]


# ---- 2. canonical orders: the kernels' table (orders differing only in loops of one tile) ----

CANONICAL = [np.array(o, np.int64) for o in DISTINCT_ORDERS]


# ---- 3. bounds ----------------------------------------------------------------------------------

def _separable(shape: ConvShape, hw: Hardware, dataflow: Dataflow, zeros, tilings: Tilings,
               field: str):
    """`field` (cycles or passes) of every tiling, from counts of one tiling per loop size: the
    counter is a product of one factor per loop (module doc), so f(t) = f(ref) * prod over loops
    of f(ref with t_d) / f(ref). Exact; tests check it against counting."""
    ref = tilings.tiles_of([0])[0]
    rows, where = [], []
    for d in range(4):
        sizes = tilings.sizes[d]
        r = np.repeat(ref[None], len(sizes), axis=0)
        r[:, d] = sizes
        rows.append(r)
        where.append(sizes)
    allr = np.concatenate(rows)
    maps = np.zeros((len(allr), 9), np.int64)
    maps[:, 0] = dataflow.index
    maps[:, 1:3] = hw.pe_rows, hw.pe_cols
    maps[:, 4:8] = allr
    maps[:, 8] = psums_per_pe(hw, dataflow, shape)
    vals = count_array(shape, maps, zeros)[:, COUNTER_FIELDS.index(field)].astype(np.float64)
    base = vals[np.searchsorted(where[0], ref[0])]   # the reference tiling itself
    out = np.full(len(tilings), base)
    at = 0
    for d in range(4):
        v = vals[at:at + len(where[d])]
        at += len(where[d])
        if base:
            out *= (v / base)[tilings.index(d)]   # (each size's ratio, then each tiling's)
    return np.rint(out)


def _dataflow_free(shape: ConvShape, hw: Hardware, tilings: Tilings):
    """The parts of the bound no dataflow changes, made once for the dataflows searched on the
    same tilings: each tiling's number of tiles, its least DMA time (each operand's distinct
    tiles transferred at least once, the least words at the narrowest operand's bytes) and, with
    double buffering, its prologue and epilogue at their least (else None)."""
    if tilings._common is None:
        nk, nc, ny, nx = (tilings.count(shape, d) for d in range(4))
        # distinct tiles of each operand: each is transferred at least once
        in_tiles = nc * ny * nx * (nk if shape.groups > 1 else 1)
        transfers = nk * nc + in_tiles + nk * ny * nx
        del in_tiles
        narrowest = min(min(hw.operand_bits.values()), hw.output_bits) / 8
        dram = T.dma_cycles(transfers, tilings.least_words * narrowest, hw)
        del transfers
        edges = None
        if hw.double_buffering:
            edges = tilings.edges if tilings.edges is not None else T.prologue_epilogue(
                shape, tilings.tiles, shape.input_used, shape.weight_size, shape.output_size, hw)
        tilings._common = (nk * nc * ny * nx, dram, edges)
    return tilings._common


class _Bound:
    """Lower bounds of the key (cost, tiebreak) of every order of each tiling (module doc,
    step 3)."""

    def __init__(self, shape: ConvShape, hw: Hardware, dataflow: Dataflow, zeros, tilings):
        tiles, dram, edges = _dataflow_free(shape, hw, tilings)
        cycles = _separable(shape, hw, dataflow, zeros, tilings, "cycles")
        charged = {"pass": lambda: _separable(shape, hw, dataflow, zeros, tilings, "passes"),
                   "tile": lambda: tiles, "layer": lambda: 1}[hw.fill_drain]()
        compute = T.array_cycles(cycles, hw) + charged * hw.pipeline_skew
        del cycles, charged
        words = tilings.least_words
        if hw.double_buffering:   # timing's prologue and epilogue, at their least
            compute += edges
            total = np.maximum(compute, dram)
        else:
            total = compute + dram
        del compute
        def least_energy():
            # every performed MAC reads its three operands from, and writes its partial sum to,
            # a register file (kernels' counters); every DRAM word costs at least the cheapest
            unit = access_energy(hw)
            rf = {op: unit.of("rf", op) for op in OPERANDS}
            per_mac = unit.mac + sum(rf.values()) + rf["psum"]
            dram = min(min(unit.of("dram", op) for op in OPERANDS), unit.output_write)
            return _separable(shape, hw, dataflow, zeros, tilings, "macs") * per_mac + words * dram
        self.cost, self.tiebreak = _key(hw, total, words, least_energy)

    def below(self, key: tuple[float, float], at=slice(None)) -> np.ndarray:
        """Whether the tilings `at` have a bound below `key` (lexicographically): whether they
        may beat it."""
        cost = self.cost[at]
        return (cost < key[0]) | ((cost == key[0]) & (self.tiebreak[at] < key[1]))


def _rows(tiles: np.ndarray, ext: np.ndarray, dataflow: Dataflow, hw: Hardware,
          q: int) -> np.ndarray:
    """count_array rows of every canonical order of each tiling."""
    masks = ((-(-ext // tiles) > 1) * (1 << np.arange(4))).sum(axis=1)
    parts = []
    for mk in np.unique(masks):
        t = tiles[masks == mk]
        orders = CANONICAL[mk]
        r = np.empty((len(t) * len(orders), 9), np.int64)
        r[:, :3] = dataflow.index, hw.pe_rows, hw.pe_cols
        r[:, 3] = np.tile(orders, len(t))
        r[:, 4:8] = np.repeat(t, len(orders), axis=0)
        r[:, 8] = q
        parts.append(r)
    return np.concatenate(parts)


@dataclass
class SearchStats:
    tilings: int = 0      # fitting tilings of candidate sizes
    counted: int = 0      # mappings counted before the bound stopped the search


def search_dataflow(shape: ConvShape, hw: Hardware, dataflow, zeros=None,
                    stats: SearchStats | None = None, tilings: Tilings | None = None) -> Choice:
    """The least-cost mapping of one dataflow. zeros: the layer's ZeroProfile (SOC-MOP)."""
    dataflow = Dataflow(dataflow)
    if not runs_on(shape, hw, dataflow):
        raise UserError(f"{hw.name} cannot run this layer ({shape_str(shape)}) row stationary: "
                        f"a filter row of {shape.S} words exceeds pe.spad_ifmap_words "
                        f"({hw.spad_ifmap_words}) or pe.spad_filter_words ({hw.spad_filter_words})")
    if dataflow.skips_zero_weights and zeros is None:
        raise ValueError("os_socmop needs the layer's ZeroProfile")
    zeros = zeros if dataflow.skips_zero_weights else None
    if tilings is None:
        tilings = fitting_tilings(shape, hw, zeros, rs=dataflow == Dataflow.RS)
    if not len(tilings):
        raise UserError(f"buffer.bytes ({hw.gb_bytes}) of {hw.name} is smaller than one tile of "
                        f"this layer ({shape_str(shape)})")
    bound = _Bound(shape, hw, dataflow, zeros, tilings)
    ext = np.array([shape.K, shape.Cg, shape.Ho, shape.Wo])
    best_key, best_row, best_counts = (np.inf, np.inf), None, None
    counted = 0
    left = np.ones(len(tilings), bool)         # tilings not counted yet
    k = min(64, len(tilings))
    batch = np.argpartition(bound.cost, k - 1)[:k]  # start with the least bounds, no full sort
    while len(batch):
        batch = batch[np.lexsort((bound.tiebreak[batch], bound.cost[batch]))]
        for start in range(0, len(batch), 256):
            take = batch[start:start + 256]
            take = take[bound.below(best_key, take)]
            if not len(take):
                break
            left[take] = False
            rows = _rows(tilings.tiles_of(take), ext, dataflow, hw, psums_per_pe(hw, dataflow, shape))
            counts = count_array(shape, rows, zeros)
            cols = T.Columns(counts)
            tm = T.timing_columns(shape, rows[:, 4:8], cols, hw)
            costs, ties = objective(hw, shape, tm["total"], cols)
            counted += len(rows)
            i = int(np.lexsort((ties, costs))[0])
            if (costs[i], ties[i]) < best_key:
                best_key, best_row, best_counts = (float(costs[i]), float(ties[i])), rows[i], counts[i]
        batch = np.flatnonzero(left & bound.below(best_key))
        if len(batch) > 4096:
            batch = batch[np.argpartition(bound.cost[batch], 4095)[:4096]]
    if stats is not None:
        stats.tilings += len(tilings)
        stats.counted += counted
    m = mapping_for(hw, dataflow, ORDERS[best_row[3]], tuple(int(v) for v in best_row[4:8]), shape)
    c = Counters._from_array(best_counts.tolist())
    return Choice(m, c, T.timing(shape, m, c, hw), *best_key)


def search(shape: ConvShape, hw: Hardware, dataflow: str = "best", zeros=None,
           stats: SearchStats | None = None) -> Choice:
    """The mapping for a layer: the best one of each dataflow asked for (dataflows_of), then
    the best of those, all under hw's objective."""
    flows = dataflows_of(dataflow, hw)
    if len(flows) > 1:   # the supported dataflows that can run this layer (RS: module doc)
        flows = tuple(df for df in flows if runs_on(shape, hw, df)) or flows
    os_zeros = zeros if any(df.skips_zero_weights for df in flows) else None
    tilings = fitting_tilings(shape, hw, os_zeros, rs=Dataflow.RS in flows)
    return min((search_dataflow(shape, hw, df, zeros, stats, tilings) for df in flows),
               key=lambda ch: ch.key)


def shape_str(s: ConvShape) -> str:
    g = f" g{s.groups}" if s.groups > 1 else ""
    st = f"/{s.stride[0]}" if s.stride != (1, 1) else ""
    return f"{s.C}x{s.H}x{s.W} -> {s.K}x{s.Ho}x{s.Wo} {s.R}x{s.S}{st}{g}"


def mapping_str(m: Mapping) -> str:
    """Compact: order (outermost first) and tiles, e.g. 'kcyx 32/64/55/5'."""
    return "".join(m.order) + " " + "/".join(map(str, m.tiles))
