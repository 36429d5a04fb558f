"""Thin validated Python wrappers of the loop-nest kernels.

ConvShape (one layer), Mapping (how it runs on the PE array), Counters (what it costs),
execute() (real outputs and counters) and count() (the same counters without arithmetic).
Every user error is a ValueError raised here, before any C code runs.
Shifted fetch (`shift=`, per input channel (dy, dx)): the layer reads input channel c of output
(y, x) at (y*sy + dy, x*sx + dx), zero outside the image, i.e. it computes a 1x1 convolution of
the shifted input (the shift of Wu et al. as an address remap): the border is neither fetched
from DRAM nor read from the buffer, the array's MACs and cycles are those of the plain layer.
Definitions of the dataflows and of every counter: docs/kernels.md.
"""
from __future__ import annotations

import enum
import warnings
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np

from . import _loopnest as _ln


class Dataflow(enum.StrEnum):
    """The five dataflows, and the one table of their facts (docs/kernels.md defines them).
    A member is its name as a string ("ws", "os_socmop", ...), so it prints, compares and
    serialises as that name; its position is the kernel's dataflow index (DF_* in
    _loopnest_defs.pxd)."""

    WS = "ws"
    OS_SOCMOP = "os_socmop"
    OS_MOCSOP = "os_mocsop"
    OS_MOCMOP = "os_mocmop"
    RS = "rs"

    @property
    def index(self) -> int:
        return _DF_INDEX[self]

    @property
    def title(self) -> str:
        """The paper's name for it."""
        return _DF_FACTS[self][0]

    @property
    def skips_zero_weights(self) -> bool:
        """Whether a zero weight skips its MAC and cycle (so counts depend on the weights)."""
        return _DF_FACTS[self][1]

    @property
    def reuses_inputs_over_channels(self) -> bool:
        """Whether a PE can hold the partial sums of several output channels and apply one input
        read to them in consecutive cycles (Mapping.psums_per_pe; the paper's Figure 4, T0/T1;
        Eyeriss's p filters interleaved in a row-stationary PE; only channels of one group
        share a read)."""
        return _DF_FACTS[self][2]


# name, skips zero weights, a PE may reuse its input over the output channels it holds
_DF_FACTS = {Dataflow.WS: ("weight stationary", False, False),
             Dataflow.OS_SOCMOP: ("output stationary, SOC-MOP", True, True),
             Dataflow.OS_MOCSOP: ("output stationary, MOC-SOP", False, False),
             Dataflow.OS_MOCMOP: ("output stationary, MOC-MOP", False, False),
             Dataflow.RS: ("row stationary", False, True)}
DATAFLOWS = tuple(Dataflow)
_DF_INDEX = {d: i for i, d in enumerate(DATAFLOWS)}
LOOPS = ("k", "c", "y", "x")
ORDERS = tuple(tuple(o) for o in _ln.ORDERS)       # the 24 loop orders, as generated
_ORDER_INDEX = {o: i for i, o in enumerate(ORDERS)}
# per mask of loops with several tiles (bit d: LOOPS[d]), one order index per class of orders
# that visit the tiles in the same sequence (so give the same counts)
DISTINCT_ORDERS = tuple(tuple(o) for o in _ln.DISTINCT_ORDERS)
OPERANDS = ("input", "weight", "psum")
KINDS = ("rf_reads", "rf_writes", "pe_transfers", "gb_reads", "gb_writes", "dram_reads",
         "dram_writes")
# what the timing model needs from a walk beyond the accesses: array passes, DMA transfers
TRANSFERS = ("input_transfers", "weight_transfers", "psum_read_transfers", "psum_write_transfers")
# slot order of the C counter vector (kernels/_loopnest_defs.pxd)
COUNTER_FIELDS = tuple(f"{op}_{k}" for op in OPERANDS for k in KINDS) + (
    "macs", "skipped_macs", "cycles", "pe_slots", "passes") + TRANSFERS
assert len(COUNTER_FIELDS) == _ln.N_COUNTERS
MAP_WIDTH = _ln.MAP_WIDTH  # columns of a mapping row: dataflow, Pr, Pc, order, tk, tc, ty, tx, Q


def _int(name, v, lo=1):
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {v!r}")
    v = int(v)
    if v < lo:
        raise ValueError(f"{name} must be >= {lo}, got {v}")
    return v


def _pair(name, v):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        v = (v, v)
    try:
        a, b = v
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair, got {v!r}") from None
    return (_int(name, a), _int(name, b))


@dataclass(frozen=True)
class ConvShape:
    """One convolution layer, batch 1: input C x H x W, K output channels, R x S kernel
    (R rows, S columns), stride (sy, sx), padding (top, bottom, left, right), groups.
    Weights are (K, C/groups, R, S); output channel k reads input channels of group
    k // (K/groups). A fully connected layer is a 1x1 convolution on a 1x1 map (ConvShape.fc)."""

    C: int
    H: int
    W: int
    K: int
    R: int = 1
    S: int = 1
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    _tup: tuple = field(init=False, repr=False, compare=False)
    _out: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        for name in ("C", "H", "W", "K", "R", "S", "groups"):
            object.__setattr__(self, name, _int(name, getattr(self, name)))
        object.__setattr__(self, "stride", _pair("stride", self.stride))
        p = self.padding
        if isinstance(p, (int, np.integer)) and not isinstance(p, bool):
            p = (p,) * 4
        try:
            p = tuple(p)
        except TypeError:
            raise ValueError(f"padding must be an int or (top, bottom, left, right), got {p!r}") from None
        if len(p) == 2:
            p = (p[0], p[0], p[1], p[1])
        if len(p) != 4:
            raise ValueError(f"padding must be an int, a pair or 4 values, got {p!r}")
        object.__setattr__(self, "padding", tuple(_int("padding", v, 0) for v in p))
        if self.C % self.groups or self.K % self.groups:
            raise ValueError(f"groups={self.groups} must divide C={self.C} and K={self.K}")
        if self.H + self.padding[0] + self.padding[1] < self.R or \
                self.W + self.padding[2] + self.padding[3] < self.S:
            raise ValueError(f"kernel {self.R}x{self.S} larger than the padded input "
                             f"{self.H}x{self.W} with padding {self.padding}")
        ho = (self.H + self.padding[0] + self.padding[1] - self.R) // self.stride[0] + 1
        wo = (self.W + self.padding[2] + self.padding[3] - self.S) // self.stride[1] + 1
        object.__setattr__(self, "_out", (self.K, self.C // self.groups, ho, wo))
        object.__setattr__(self, "_tup", (self.C, self.H, self.W, self.K, self.R, self.S,
                                          *self.stride, *self.padding, self.groups))

    @classmethod
    def fc(cls, in_features: int, out_features: int) -> ConvShape:
        """A fully connected layer as a 1x1 convolution on a 1x1 map."""
        return cls(C=in_features, H=1, W=1, K=out_features)

    @property
    def Cg(self) -> int:
        """Input channels per group (the c loop's extent)."""
        return self.C // self.groups

    @property
    def Ho(self) -> int:
        return self._out[2]

    @property
    def Wo(self) -> int:
        return self._out[3]

    @property
    def macs(self) -> int:
        """Dense MACs: K * Ho * Wo * (C/groups) * R * S (padding taps included)."""
        return self.K * self.Ho * self.Wo * self.Cg * self.R * self.S

    @property
    def input_size(self) -> int:
        return self.C * self.H * self.W

    @property
    def weight_size(self) -> int:
        return self.K * self.Cg * self.R * self.S

    @property
    def output_size(self) -> int:
        return self.K * self.Ho * self.Wo

    @property
    def input_used(self) -> int:
        """Input words any output depends on (= input_size unless a stride larger than the
        kernel, or a window that stops short of the last rows/columns, leaves some unread)."""
        def used(n_out, s, r, pad, size):
            hit = np.zeros(size + pad + r + n_out * s, bool)
            for o in range(n_out):
                hit[o * s:o * s + r] = True
            return int(hit[pad:pad + size].sum())
        return self.C * used(self.Ho, self.stride[0], self.R, self.padding[0], self.H) * \
            used(self.Wo, self.stride[1], self.S, self.padding[2], self.W)

    def loop_extents(self) -> dict[str, int]:
        """Extents of the tiled loops: k over K, c over C/groups, y over Ho, x over Wo."""
        return dict(zip(LOOPS, self._out))

    def legal_tiles(self) -> dict[str, range]:
        """Legal tile sizes per loop: 1 to its extent (the last tile of a loop may be partial)."""
        return {d: range(1, n + 1) for d, n in self.loop_extents().items()}



@dataclass(frozen=True)
class Mapping:
    """How a layer runs: dataflow, PE array pe_rows x pe_cols, the order of the tiled
    (global-buffer level) loops outermost first, and tile sizes tiles = (tk, tc, ty, tx).
    A tile size is 1 to its loop's extent; when it does not divide the loop, the last tile is
    partial (check(shape) validates). tc counts input channels per group; ty, tx count output
    rows / columns. psums_per_pe (SOC-MOP and RS): output channels whose partial sums a PE holds
    at once, so one input read serves up to that many channels of one group in consecutive
    cycles (RS: the filters interleaved in a PE, Eyeriss's p; 1: none; a depthwise layer: none
    whatever the value; docs/kernels.md)."""

    dataflow: Dataflow
    pe_rows: int
    pe_cols: int
    order: tuple[str, str, str, str] = ("k", "c", "y", "x")
    tiles: tuple[int, int, int, int] = (1, 1, 1, 1)
    psums_per_pe: int = 1
    _tup: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if self.dataflow not in _DF_INDEX:
            raise ValueError(f"dataflow must be one of {', '.join(DATAFLOWS)}, got {self.dataflow!r}")
        object.__setattr__(self, "dataflow", Dataflow(self.dataflow))
        q = _int("psums_per_pe", self.psums_per_pe)
        if q > 1 and not self.dataflow.reuses_inputs_over_channels:
            q = 1  # only SOC-MOP and RS have the choice; the others' reuse is fixed by the dataflow
        object.__setattr__(self, "psums_per_pe", q)
        object.__setattr__(self, "pe_rows", _int("pe_rows", self.pe_rows))
        object.__setattr__(self, "pe_cols", _int("pe_cols", self.pe_cols))
        order = tuple(self.order) if not isinstance(self.order, str) else tuple(self.order)
        if order not in _ORDER_INDEX:
            raise ValueError(f"order must be a permutation of {LOOPS}, got {self.order!r}")
        object.__setattr__(self, "order", order)
        try:
            t = tuple(self.tiles)
        except TypeError:
            raise ValueError(f"tiles must be (tk, tc, ty, tx), got {self.tiles!r}") from None
        if len(t) != 4:
            raise ValueError(f"tiles must be (tk, tc, ty, tx), got {self.tiles!r}")
        object.__setattr__(self, "tiles", tuple(_int(f"tile t{d}", v) for d, v in zip(LOOPS, t)))
        # the kernel's view: (dataflow, Pr, Pc, order index, tk, tc, ty, tx, Q)
        object.__setattr__(self, "_tup", (_DF_INDEX[self.dataflow], self.pe_rows, self.pe_cols,
                                          _ORDER_INDEX[order], *self.tiles, q))

    @classmethod
    def untiled(cls, shape: ConvShape, dataflow: str, pe_rows: int, pe_cols: int,
                order=("k", "c", "y", "x"), psums_per_pe: int = 1) -> Mapping:
        """One tile holding the whole layer."""
        return cls(dataflow, pe_rows, pe_cols, order, (shape.K, shape.Cg, shape.Ho, shape.Wo),
                   psums_per_pe)

    def check(self, shape: ConvShape) -> None:
        """ValueError unless every tile size is at most its loop's extent."""
        if not isinstance(shape, ConvShape):
            raise ValueError(f"shape must be a ConvShape, got {type(shape).__name__}")
        for d, t, n in zip(LOOPS, self.tiles, shape._out):
            if t > n:
                raise ValueError(f"tile t{d}={t} exceeds the {d} loop ({n})")

    def footprint(self, shape: ConvShape) -> dict[str, int]:
        """Global-buffer words one tile of each operand occupies (a full tile, padding
        materialised for the input; the input of a grouped layer covers every group its
        k-tile needs). The emulator compares their sum with the buffer size."""
        self.check(shape)
        return {op: int(v[0]) for op, v in footprints(shape, np.array([self.tiles])).items()}


def footprints(shape: ConvShape, tiles) -> dict[str, np.ndarray]:
    """Mapping.footprint for an (n, 4) array of tile sizes (tk, tc, ty, tx): GB words per
    operand of a full tile, as arrays. tiles may instead be a tuple of each loop's sizes (four
    1-D arrays): the footprints of every tiling of their grid, as arrays that broadcast to
    (len(tk), len(tc), len(ty), len(tx)) (no array of the tilings is made)."""
    if isinstance(tiles, tuple):
        tk, tc, ty, tx = (np.asarray(v, np.int64).reshape([-1 if i == d else 1 for i in range(4)])
                          for d, v in enumerate(tiles))
    else:
        tk, tc, ty, tx = np.asarray(tiles, np.int64).T
    sy, sx = shape.stride
    rows = (ty - 1) * sy + shape.R if sy <= shape.R else ty * shape.R
    cols = (tx - 1) * sx + shape.S if sx <= shape.S else tx * shape.S
    kg = shape.K // shape.groups
    ng = np.ones_like(tk)
    if shape.groups > 1:  # the most groups any k-tile of that size needs
        for v in np.unique(tk):
            k0 = np.arange(0, shape.K, v)
            k1 = np.minimum(k0 + v, shape.K)
            ng[tk == v] = ((k1 - 1) // kg - k0 // kg + 1).max()
    return {"input": ng * tc * rows * cols, "weight": tk * tc * shape.R * shape.S,
            "psum": tk * ty * tx}


_DOC_COUNTERS = """

Per operand (input, weight, psum: partial sums and, at the end, the outputs), in words:
  rf_reads      words read from a PE register file: one per performed MAC for each operand (its
                input, its weight, its partial sum), plus each psum word leaving a PE (to the PE
                below, or to the global buffer)
  rf_writes     words written into a PE register file: each operand word delivered to a PE (a
                broadcast to n PEs is n writes), plus one psum write per performed MAC
  pe_transfers  words passed from one PE to its neighbour (WS and RS: partial sums down a
                column; the OS dataflows fetch from the GB and have none)
  gb_reads      global-buffer words read, by the array (operand fetches, psum reloads) and by the
                DMA (psum/output write-back to DRAM)
  gb_writes     global-buffer words written, by the array (partial sums) and by the DMA (tiles
                fetched from DRAM, with input padding zeros)
  dram_reads    DRAM words read: tile fetches, spilled partial sums read back
  dram_writes   DRAM words written: psum/output tiles written back (inputs and weights: 0)
Work:
  macs          MACs performed (WS, RS and the MOC dataflows perform zero-weight MACs)
  skipped_macs  MACs SOC-MOP did not perform because the weight was zero (macs + skipped_macs =
                the layer's MACs)
  cycles        PE-array cycles: steps in which every active PE performs at most one MAC; no
                DRAM stalls, no fill/drain (DRAM and pipeline timing are the emulator's)
  pe_slots      cycles * Pr * Pc, PE-cycles available, additive over layers; utilisation =
                macs / pe_slots
  passes        times the array starts a new stationary block: WS a weight block and tap;
                SOC-MOP an output channel's pixel block; MOC-SOP a pixel's channel block; MOC-MOP
                a channel block and pixel-row block; RS a piece of output channels, a block of
                input channels (or filter rows) and a strip of output rows (the emulator's
                fill_drain = "pass" pays the pipeline skew once per pass)
Transfers, what the emulator's DRAM timing needs beside the words (TRANSFERS):
  input_transfers, weight_transfers
                DMA transfers from DRAM: tiles of the operand made resident in the GB
  psum_read_transfers, psum_write_transfers
                spilled partial-sum tiles read back; partial-sum / output tiles written back
                (the last write of each tile holds its final outputs)
"""


# the fields, in slot order, each defaulting to 0 (_DOC_COUNTERS defines them)
_CounterFields = namedtuple("_CounterFields", COUNTER_FIELDS, defaults=(0,) * len(COUNTER_FIELDS))


class Counters(_CounterFields):
    __doc__ = ("Access and work counters of one layer (or, summed, of several). Immutable; "
               "+ sums field by field (sum() works), == compares every field." + _DOC_COUNTERS)
    __slots__ = ()

    @classmethod
    def _from_array(cls, a) -> Counters:
        return tuple.__new__(cls, a)

    @property
    def utilisation(self) -> float:
        """macs / (cycles * pe_rows * pe_cols); 0 for no cycles."""
        return self.macs / self.pe_slots if self.pe_slots else 0.0

    def to_dict(self) -> dict:
        d = dict(zip(COUNTER_FIELDS, self))
        d["utilisation"] = self.utilisation
        return d

    def __add__(self, other):
        if not isinstance(other, Counters):
            return NotImplemented
        return tuple.__new__(Counters, [a + b for a, b in zip(self, other)])

    def __radd__(self, other):  # so sum() works
        if isinstance(other, int) and other == 0:
            return self
        return NotImplemented

    def __eq__(self, other):
        return isinstance(other, Counters) and tuple.__eq__(self, other)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = tuple.__hash__

    def __mul__(self, other):
        return NotImplemented

    __rmul__ = __mul__


assert Counters._fields == COUNTER_FIELDS


class AccumulatorOverflowWarning(UserWarning):
    """A partial sum left the range of a signed acc_bits accumulator (execute(acc_bits=...)).
    Attributes: acc_bits, peak (largest |partial sum|), bits_needed."""

    def __init__(self, acc_bits: int, peak: int):
        self.acc_bits = acc_bits
        self.peak = peak
        self.bits_needed = _bits_needed(peak)
        super().__init__(f"partial sums reach {peak} in magnitude: a {acc_bits}-bit signed "
                         f"accumulator overflows ({self.bits_needed} bits needed)")


def _bits_needed(v: int) -> int:
    """Signed bits holding every value in [-v, v]... conservatively, [-v-1, v] both ways."""
    return int(v).bit_length() + 1


@dataclass(frozen=True)
class ZeroProfile:
    """The zero pattern of a layer's weights as count() needs it: 2-D prefix sums over (k, c)
    of the zero weights (all R x S taps), int32 (a layer holds fewer than 2**31 weights).
    Make it once per layer for a mapping search."""

    shape: ConvShape
    table: np.ndarray = field(repr=False, compare=False)
    zeros: int = 0

    @classmethod
    def of(cls, shape: ConvShape, w_or_mask) -> ZeroProfile:
        a = np.asarray(w_or_mask)
        want = (shape.K, shape.Cg, shape.R, shape.S)
        if a.shape != want:
            raise ValueError(f"weights / zero mask must have shape {want} (K, C/groups, R, S), "
                             f"got {a.shape}")
        if a.dtype == bool:
            z = a  # a mask: True where the weight is zero
        elif a.dtype.kind in "iuf":
            z = a == 0
        else:
            raise ValueError(f"weights must be numeric or a boolean zero mask, got {a.dtype}")
        if z.size > np.iinfo(np.int32).max:
            raise ValueError(f"a zero profile holds at most 2**31 - 1 weights, got {z.size}")
        z = np.ascontiguousarray(z).reshape(shape.K * shape.Cg, shape.R * shape.S)
        t = _ln.zero_table(z.view(np.uint8), shape.K, shape.Cg)
        return cls(shape, t, int(t[-1]))

    @classmethod
    def of_rows(cls, shape: ConvShape, masks) -> ZeroProfile:
        """The profile of a zero mask given as consecutive blocks of output channels (boolean
        (k1 - k0, C/groups, R, S) arrays, True = zero, covering k = 0..K-1 in order): the
        same table as of() on the whole mask, which is never held at once."""
        if shape.K * shape.Cg * shape.R * shape.S > np.iinfo(np.int32).max:
            raise ValueError("a zero profile holds at most 2**31 - 1 weights")
        n = shape.Cg + 1
        t = np.empty((shape.K + 1) * n, np.int32)
        t[:n] = 0
        k = 0
        for m in masks:
            m = np.ascontiguousarray(m, bool)
            if m.shape[1:] != (shape.Cg, shape.R, shape.S) or k + len(m) > shape.K:
                raise ValueError(f"mask blocks must be (k, {shape.Cg}, {shape.R}, {shape.S}) "
                                 f"and cover {shape.K} output channels")
            part = _ln.zero_table(m.reshape(-1, shape.R * shape.S).view(np.uint8), len(m), shape.Cg)
            # rows k+1.. of the whole table: this block's own prefix sums on top of row k
            t[(k + 1) * n:(k + 1 + len(m)) * n] = (part.reshape(-1, n)[1:] + t[k * n:(k + 1) * n]).ravel()
            k += len(m)
        if k != shape.K:
            raise ValueError(f"mask blocks cover {k} of {shape.K} output channels")
        return cls(shape, t, int(t[-1]))


def shift_offsets_array(shape: ConvShape, shift) -> np.ndarray | None:
    """Validate the per-input-channel offsets of a shifted fetch: None, or a (C, 2) integer
    array (dy, dx) for a 1x1 layer without padding or groups. Returns it as int64."""
    if shift is None:
        return None
    a = np.asarray(shift)
    if a.shape != (shape.C, 2) or a.dtype.kind not in "iu":
        raise ValueError(f"shift must be a ({shape.C}, 2) integer array of (dy, dx) per input "
                         f"channel, got {a.dtype} {a.shape}")
    if (shape.R, shape.S) != (1, 1) or any(shape.padding) or shape.groups != 1:
        raise ValueError(f"a shifted fetch needs a 1x1 layer without padding or groups, got "
                         f"{shape.R}x{shape.S}, padding {shape.padding}, groups {shape.groups}")
    return np.ascontiguousarray(a, np.int64)


def count(shape: ConvShape, mapping: Mapping, w_or_zero_mask=None, *, walk: bool = False,
          shift=None) -> Counters:
    """Count-only mode: the counters execute() would give for this mapping, no arithmetic.
    Only SOC-MOP's skipped zero weights depend on the data: pass the weights, a boolean mask
    (True = zero weight) or a ZeroProfile (fastest); other dataflows may pass None.
    The tile tallies come in closed form, one class of equal tiles at a time (at most 16
    classes), so the cost grows with the number of tiles per loop;
    walk=True walks the tiles like execute() instead (a cross-check, slower).
    shift: a shifted fetch's (dy, dx) per input channel (module doc), or None."""
    if type(shape) is not ConvShape or type(mapping) is not Mapping:
        if not isinstance(shape, ConvShape) or not isinstance(mapping, Mapping):
            raise ValueError("count(shape, mapping, w): shape must be a ConvShape and mapping "
                             "a Mapping")
    mapping.check(shape)
    zp = None
    if mapping.dataflow.skips_zero_weights:
        if w_or_zero_mask is None:
            raise ValueError("os_socmop skips zero weights: count() needs the weights, a zero "
                             "mask or a ZeroProfile")
        if isinstance(w_or_zero_mask, ZeroProfile):
            if w_or_zero_mask.shape is not shape and w_or_zero_mask.shape != shape:
                raise ValueError("the ZeroProfile was made for another layer shape")
            zp = w_or_zero_mask.table
        else:
            zp = ZeroProfile.of(shape, w_or_zero_mask).table
    elif w_or_zero_mask is not None and not isinstance(w_or_zero_mask, ZeroProfile):
        want = (shape.K, shape.Cg, shape.R, shape.S)
        if np.shape(w_or_zero_mask) != want:  # not needed by this dataflow: shape check only
            raise ValueError(f"weights / zero mask must have shape {want} (K, C/groups, R, S), "
                             f"got {np.shape(w_or_zero_mask)}")
    off = shift_offsets_array(shape, shift)
    return Counters._from_array(_ln.count_raw(shape._tup, mapping._tup, zp, walk, off))


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_MACS = COUNTER_FIELDS.index("macs")
KINNER_BELOW_PIXELS = 64  # tiles with fewer output pixels use the k-innermost layout
KINNER_BELOW_PIXELS_SOCMOP = 8  # its zero skip is a branch per weight there: rarely worth it


def execute(shape: ConvShape, mapping: Mapping, x, w, bias=None, acc_bits: int | None = None,
            shift=None):
    """Execute-and-count mode. x: one image (C, H, W) or a batch (N, C, H, W), w: (K, C/groups,
    R, S), both int16 (integer mode: int64 accumulators, int64 outputs, bias int64 added into the
    accumulator first) or both float32 / both float64 (float mode: accumulate and return in that
    dtype). acc_bits: in integer mode, warn (AccumulatorOverflowWarning) if any partial sum, in
    the order the dataflow accumulates, leaves the signed acc_bits range (in any image of a
    batch). shift: a shifted fetch's (dy, dx) per input channel (module doc): y is then the 1x1
    convolution of the shifted x. Returns (y, Counters), y of shape (K, Ho, Wo), or (N, K, Ho, Wo)
    for a batch, and the counters of one image: a batch is validated and prepared once and its
    images walked one after the other by the C code, and every image's counts are the same
    (they depend on the weights, never on the input; checked)."""
    if not isinstance(shape, ConvShape) or not isinstance(mapping, Mapping):
        raise ValueError("execute(shape, mapping, x, w): shape must be a ConvShape and mapping "
                         "a Mapping")
    mapping.check(shape)
    x = np.asarray(x)
    w = np.asarray(w)
    batch = x.ndim == 4
    if x.shape[batch:] != (shape.C, shape.H, shape.W) or (batch and not len(x)):
        raise ValueError(f"input must have shape {(shape.C, shape.H, shape.W)} (C, H, W) or a "
                         f"batch of at least one (N, C, H, W), got {x.shape}")
    want = (shape.K, shape.Cg, shape.R, shape.S)
    if w.shape != want:
        raise ValueError(f"weights must have shape {want} (K, C/groups, R, S), got {w.shape}")
    if x.dtype != w.dtype:
        raise ValueError(f"input and weights must have the same dtype, got {x.dtype} and "
                         f"{w.dtype}")
    integer = x.dtype == np.int16
    if not integer and x.dtype not in _FLOATS:
        raise ValueError(f"dtype must be int16, float32 or float64, got {x.dtype}")
    acc_dtype = np.int64 if integer else x.dtype
    off = shift_offsets_array(shape, shift)
    # k-innermost layout for tiles with few output pixels (late layers, fc): the same MACs
    # in the same per-output order, vectorised over output channels instead of pixels
    tk, tc, ty, tx = mapping.tiles
    kinner = shape.groups == 1 and ty * tx < (
        KINNER_BELOW_PIXELS_SOCMOP if mapping.dataflow.skips_zero_weights else KINNER_BELOW_PIXELS)
    xb = x if batch else x[None]
    out = np.zeros((len(xb), shape.K, shape.Ho, shape.Wo), acc_dtype)
    peak0 = 0
    if bias is not None:
        b = np.asarray(bias)
        if b.shape != (shape.K,):
            raise ValueError(f"bias must have shape ({shape.K},), got {b.shape}")
        if integer and b.dtype.kind not in "iu":
            raise ValueError(f"integer mode needs an integer bias, got {b.dtype}")
        if not integer and b.dtype.kind not in "iuf":
            raise ValueError(f"bias must be numeric, got {b.dtype}")
        if integer and b.dtype == np.uint64 and b.size and b.max() > np.iinfo(np.int64).max:
            raise ValueError("bias does not fit int64")
        out += b.astype(acc_dtype)[:, None, None]
        peak0 = int(np.abs(b.astype(np.int64)).max()) if integer and b.size else 0
    if acc_bits is not None:
        acc_bits = _int("acc_bits", acc_bits, 2)
        if not integer:
            raise ValueError("acc_bits applies to integer (int16) mode only")
    pt, pb, pl, pr = shape.padding
    xp = np.ascontiguousarray(np.pad(xb, ((0, 0), (0, 0), (pt, pb), (pl, pr))))  # padding in the GB
    w = np.ascontiguousarray(w)
    zp = ZeroProfile.of(shape, w).table if mapping.dataflow.skips_zero_weights else None
    # the extreme partial sums are tracked (a compare per MAC) only where one could leave the range
    track = acc_bits is not None and _sum_bound(xb, w, bias) > (1 << (acc_bits - 1)) - 1
    if kinner:
        out = np.ascontiguousarray(out.transpose(0, 2, 3, 1))
        w = _k_last(w)
    first, vmax, vmin = None, None, None
    for image_in, image_out in zip(xp, out):
        res, done, hi, lo = _ln.execute_raw(shape._tup, mapping._tup, zp, image_in, w, image_out,
                                            track, kinner, off)
        if first is None:
            first, vmax, vmin = res, hi, lo
        elif res != first:
            raise RuntimeError("internal error: the images of a batch were counted differently")
        vmax, vmin = max(vmax, hi), min(vmin, lo)
        if done != first[_MACS]:  # the arithmetic and the counting model must agree
            raise RuntimeError(f"internal error: executed {done} MACs, counted {first[_MACS]}")
    counters = Counters._from_array(first)
    if kinner:
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    if acc_bits is not None:
        peak = peak0
        if counters.macs:
            peak = max(peak, abs(int(vmax)), abs(int(vmin)))
        lim = 1 << (acc_bits - 1)
        over = peak0 > lim - 1 or (counters.macs and (vmax > lim - 1 or vmin < -lim))
        if over:
            warnings.warn(AccumulatorOverflowWarning(acc_bits, peak), stacklevel=2)
    return (out if batch else out[0]), counters


def _k_last(w: np.ndarray) -> np.ndarray:
    """w (K, C/groups, R, S) as a C-contiguous (C/groups, R, S, K) array: the transpose of its
    (K, C/groups * R * S) matrix, copied 128 x 128 blocks at a time (twice as fast as one
    strided copy of AlexNet's fc6, whose rows are 18 KB apart)."""
    k = len(w)
    m = w.reshape(k, -1)
    out = np.empty((m.shape[1], k), w.dtype)
    for c0 in range(0, m.shape[1], 128):
        for k0 in range(0, k, 128):
            out[c0:c0 + 128, k0:k0 + 128] = m[k0:k0 + 128, c0:c0 + 128].T
    return out.reshape(w.shape[1:] + (k,))


def _sum_bound(x, w, bias) -> int:
    """No partial sum of any output, in any order, exceeds this in magnitude: the largest over
    output channels k of |bias[k]| + max |x| * sum |w[k]| (x (N, C, H, W), w (K, C/groups, R, S),
    both int16; exact, in Python integers). The magnitudes are read as uint16, which holds
    |-32768| (np.abs wraps it to its own bit pattern), so no wider copy of the operands is made
    (AlexNet's fc6: an int64 copy and its magnitudes were 600 MB)."""
    per_k = np.abs(w.reshape(len(w), -1)).view(np.uint16).sum(axis=1, dtype=np.int64)
    if bias is not None:
        b = np.abs(np.asarray(bias).astype(object))
    else:
        b = np.zeros(len(w), object)
    x_max = int(np.abs(x).view(np.uint16).max()) if x.size else 0
    return int((b + per_k.astype(object) * x_max).max()) if len(w) else 0


def count_many(shape: ConvShape, mappings, w_or_zero_mask=None, shift=None) -> list[Counters]:
    """count() for many mappings of one layer in one call (the mapping search's inner loop):
    the mappings are validated here, then one C loop counts them all."""
    if not isinstance(shape, ConvShape):
        raise ValueError("count_many(shape, mappings, w): shape must be a ConvShape")
    mappings = list(mappings)
    rows = np.empty((len(mappings), MAP_WIDTH), np.int64)
    for r, m in enumerate(mappings):
        if not isinstance(m, Mapping):
            raise ValueError(f"mappings[{r}] is not a Mapping")
        m.check(shape)
        rows[r] = m._tup
    return [Counters._from_array(v)
            for v in count_array(shape, rows, w_or_zero_mask, shift).tolist()]


def count_array(shape: ConvShape, rows, w_or_zero_mask=None, shift=None) -> np.ndarray:
    """Count-only mode, fully vectorised: rows is an (n, MAP_WIDTH) integer array of mappings
    (dataflow index in DATAFLOWS, pe_rows, pe_cols, order index in ORDERS, tk, tc, ty, tx,
    psums_per_pe: Mapping._tup); returns an (n, 30) int64 array of counters in COUNTER_FIELDS
    order (shift: as in count). Validated in NumPy."""
    if not isinstance(shape, ConvShape):
        raise ValueError("count_array(shape, rows, w): shape must be a ConvShape")
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != MAP_WIDTH:
        raise ValueError(f"rows must be an (n, {MAP_WIDTH}) array, got shape {rows.shape}")
    if ((rows[:, 0] < 0) | (rows[:, 0] >= len(DATAFLOWS))).any():
        raise ValueError("rows[:, 0] must index DATAFLOWS")
    if ((rows[:, 3] < 0) | (rows[:, 3] >= len(ORDERS))).any():
        raise ValueError("rows[:, 3] must index ORDERS")
    if (rows[:, 1:3] < 1).any() or (rows[:, 4:] < 1).any():
        raise ValueError("PE array sizes, tile sizes and psums_per_pe must be >= 1")
    ext = np.array(shape._out, np.int64)
    bad = rows[:, 4:8] > ext
    if bad.any():
        r, d = np.argwhere(bad)[0]
        raise ValueError(f"rows[{r}]: tile t{LOOPS[d]}={rows[r, 4 + d]} exceeds the "
                         f"{LOOPS[d]} loop ({ext[d]})")
    zp = None
    if isinstance(w_or_zero_mask, ZeroProfile):
        if w_or_zero_mask.shape != shape:
            raise ValueError("the ZeroProfile was made for another layer shape")
        zp = w_or_zero_mask.table
    elif w_or_zero_mask is not None:
        zp = ZeroProfile.of(shape, w_or_zero_mask).table
    elif (rows[:, 0] == Dataflow.OS_SOCMOP.index).any():
        raise ValueError("os_socmop skips zero weights: counting needs the weights, a zero "
                         "mask or a ZeroProfile")
    out = np.empty((len(rows), len(COUNTER_FIELDS)), np.int64)
    _ln.count_batch(shape._tup, rows, zp, out, shift_offsets_array(shape, shift))
    return out


def least_dram_words(shape: ConvShape, tiles_per_loop) -> np.ndarray:
    """For each row of tile counts (nk, nc, ny, nx): DRAM words no loop order of such a tiling
    goes below (each operand's distinct tiles made resident as often as the best order makes
    them, one pass over an operand costing its weights, used inputs or outputs)."""
    n = np.ascontiguousarray(tiles_per_loop, dtype=np.int64).reshape(-1, 4)
    out = np.empty(len(n))
    _ln.least_refetch_words(n, shape.weight_size, shape.input_used, shape.output_size,
                            shape.groups > 1, out)
    return out
