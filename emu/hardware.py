"""The accelerator's description: small frozen, validated specs read from a TOML file.

A hardware file (or a preset, "8x8" / "16x16", shipped as emu/presets/*.toml) has these
sections; `pe.rows`, `pe.cols` and `buffer.bytes` are required, everything else has the
default below. Each default the paper leaves open was chosen from first principles before any
comparison with the paper's Table 3, and is never tuned to it.

[pe]
  rows, cols        PE array (paper: 8x8 or 16x16).
  rf_words = 16     Register-file words per PE, of arith.word_bits each: one budget in bits
                    (16 x 16 = 256), spent once. Operands in flight take word_bits each, partial
                    sums acc_bits each. WS holds its stationary weight(s), the input in flight
                    and one partial sum; OS (SOC-MOP) the input and the weight in flight and its
                    accumulators. 16 leaves room for a small ping-pong without approaching
                    Eyeriss's 0.5 KB per PE. Validated: the dataflows' smallest sets fit.
  rf_double_buffered = true
                    The register file holds the next stationary block beside the current one
                    (WS: a second weight; OS: a second set of accumulators), so passes follow
                    back to back and pipeline.fill_drain "tile" or "layer" can hide the skew
                    between them; "tile" (the default) needs it. Default true, the reading the
                    fill/drain default was argued from. It halves what OS input reuse may hold:
                    accumulators per PE = (rf_words x word_bits - 2 word_bits) / (acc_bits x 2)
                    = 3 with the defaults (7 when false). Both readings of the paper (Figure 4
                    shows consecutive passes, and says nothing of the register file's use) are
                    this parameter; docs/fidelity.md reports both.
  spad_filter_words = 224, spad_ifmap_words = 12, spad_psum_words = 24
                    The row-stationary PE's three scratchpads (dataflow "rs" only; WS and OS use
                    rf_words): its filter rows, its sliding window of input words, its partial
                    sums, in words. Defaults: the only row-stationary PE published, Eyeriss's
                    (Chen et al., JSSC 2017: 224, 12 and 24 words of 16 bits), the dataflow's
                    own chip, not a budget fitted to anything; on the paper's arrays RS is
                    opt-in (dataflow.supported) and this PE is larger than their 16-word
                    register file, which a comparison must say. RS runs a layer only if a filter
                    row fits (S <= spad_ifmap_words and S <= spad_filter_words); it interleaves
                    p = min(spad_psum_words, spad_filter_words // S) output channels in a PE
                    (Eyeriss's p; its q, channels interleaved in a PE, is 1 here: the channels'
                    partial sums are added down the column instead). More filters never cost
                    cycles and only save input reads, so p is the most that fits, not searched.
[buffer]
  bytes             Global buffer (paper: 32 KB or 128 KB).
  split = "shared"  How the buffer is divided among the operands' tiles: "shared" (one pool:
                    the tiles' sum must fit) or a table {input, weight, psum} of fractions
                    summing to at most 1 (each operand's tile must fit its share). Shared is the
                    default because the paper names one buffer and gives no partition; a fixed
                    partition only ever removes mappings.
  double_buffering = true
                    Each operand's tile is held twice (the DMA fills the next while the array
                    works on this one) so DRAM transfers overlap compute. A DMA engine with
                    ping-pong buffers is the standard design for a tiled accelerator; it costs
                    half the buffer.
  words_per_cycle   (derived unless stated) Global-buffer bandwidth: words read or written per cycle, by the array and
                    the DMA together (they share the buffer's ports). The paper "calculated the
                    cycles consumed by the PE array and the global buffer by modelling the timings
                    of the internal data paths", so the buffer's bandwidth is finite. Default
                    (decided before any comparison): what weight stationary, the dataflow the
                    paper calls the most common, needs at full rate (Pr input words in, Pc partial
                    sums in and Pc out per cycle, at acc_bits each) plus the DMA at the DRAM's
                    full rate, counted in bits and divided by the word (the port moves
                    words_per_cycle x word_bits bits; arith.input_bits): Pr + 2 Pc acc_bits /
                    word_bits + DRAM bytes per cycle / word bytes = 96 on 16x16, 56 on 8x8 (64
                    and 40 before partial sums were counted at their width). A
                    narrower buffer would throttle WS itself; one as wide as SOC-MOP without
                    input reuse asks (a word per PE per cycle) would be an unusually costly SRAM.
                    A layer's array time is at least its GB words / words_per_cycle. Derived
                    from the array and the DRAM unless the file states it (DERIVED), so a
                    file that changes the array changes it too; `sqnxt-emu hardware FILE` and
                    the trace's first line show the value in force.
[arith]
  word_bits = 16    Operand width (paper: 16-bit integer MAC).
  acc_bits = 32     Accumulator width: a 16x16-bit product is 32 bits, the usual accumulator of
                    a 16-bit MAC. Partial sums live in the global buffer (and spill to DRAM) at
                    this width; the emulator warns when a real partial sum overflows it.
  input_bits, weight_bits, output_bits   (derived: word_bits unless stated)
                    The widths at which the hardware stores and moves each operand: input
                    activations, weights, and a layer's final outputs (partial sums are
                    acc_bits). They set how many tiles fit in the buffer, the bytes each DRAM
                    transfer moves, the buffer's time (narrower operands are packed: the buffer
                    moves words_per_cycle x word_bits bits per cycle), the register file's
                    operands in flight, and every access's energy (energy.per_bit). A float file
                    is quantized to them (emu/quantize.py); a quantized file carries its own
                    widths (its `bits`), which replace them for its run, and a file wider than
                    word_bits is refused with one line (its codes do not fit the datapath).
                    Default word_bits, derived: the paper's 16-bit operands throughout. Each at
                    most word_bits.
  split_mac = false Whether a PE's word_bits multiplier splits into
                    lanes = word_bits // max(input_bits, weight_bits) narrower MACs per cycle (two
                    8x8 in a 16-bit PE, as in subword-parallel datapaths). True: a layer's array
                    cycles divide by the lanes (rounded up), the accesses move the narrower
                    operands' bits. Default false: the paper's PE is one 16-bit MAC, and its text
                    says nothing of splitting it; narrower operands then save memory traffic and
                    energy but no MAC cycles.
  overflow = "wrap" What a sum that leaves the accumulator becomes: "wrap" (two's complement)
                    or "saturate" (clamped when the sum is written back). The paper's MAC says
                    nothing of overflow logic; a plain adder wraps, costs nothing more, and wraps
                    to the same integers whatever order a dataflow adds the partial sums in, so
                    every dataflow and loop order gives one result (quant.fixedpoint.Accumulator
                    defines both modes). Both emulated paths (a float file's per-layer check and
                    a quantized file) apply it to every MAC layer's sums; sqnxt-quant --hw takes
                    it into the file.
[clock]
  mhz = 500         The paper gives DRAM bandwidth in GB/s and latency in cycles but no clock.
                    500 MHz sits between Eyeriss (200 MHz, 65 nm) and the 1 GHz of mobile NPUs of
                    2017-18; at 16 GB/s it gives 32 bytes (16 words) per cycle.
[dram]
  latency_cycles = 100, bandwidth_gbps = 16   (paper)
  engines = 1       DMA engines moving tiles between DRAM and the buffer. The paper's Figure 5
                    and text name "a DMA controller" (one). With n engines up to n transfers are
                    in flight: their latencies overlap, the bandwidth stays the DRAM's.
[dataflow]
  zero_skip_os = true  Output stationary (SOC-MOP) skips zero weights (paper). When false, the
                       search and the counts treat every weight as non-zero.
  os_input_reuse = true
                    An OS (SOC-MOP) PE reads its input word once and applies it to several
                    output channels in consecutive cycles, holding one partial sum per channel:
                    the paper's Figure 4 ("In T0 and T1 cycles of OS data flow, the shaded area
                    on left is read and convolved with different filter weights"). How many
                    channels is bounded by the register file's accumulators (pe.rf_words, above;
                    only channels of one group share a read). False: each output channel's
                    cycle re-reads the input (one accumulator per PE).
  supported = ["ws", "os_socmop"]
                    The dataflows the array can run (kernels.DATAFLOWS: ws, os_socmop,
                    os_mocsop, os_mocmop, rs: Eyeriss's row stationary, pe.spad_* above).
                    Default the paper's two: "the faster dataflow" is chosen per layer between
                    weight and output stationary (SOC-MOP, Figure 4); RS is opt-in.
                    `--dataflow best` is the best mapping under [search] objective over these
                    (emu/search.py); one dataflow may still be named on the command line.
[pipeline]
  fill_drain = "tile"  When the array pays its pipeline skew of rows + cols - 2 cycles (the
                    farthest PE starts that late, and the last partial sum leaves that late):
                    "pass" (every time the array starts a new stationary block), "tile" (once per
                    tile) or "layer" (once per layer). Default "tile", decided before any
                    comparison: within a tile the PEs' register files hold the next stationary
                    block beside the current one (pe.rf_double_buffered, which "tile" and
                    "layer" require, and which the register file pays for), so passes follow
                    back to back as in
                    Figure 4's consecutive cycles; at a tile boundary the controller swaps the
                    global buffer's halves and the tile's partial sums must be complete before
                    they are written back, so the array drains.
[layers]
  non_mac_cycles = false
                    Whether the layers without MACs (pooling, element-wise adds, standalone
                    activations, the squeeze-excitation multiply) are charged, cycles and the
                    energy of the words they move, as a shift copied through the buffer is.
                    Default false, decided before any comparison: the paper's accelerator is a
                    MAC array with two conv modes (WS, OS), its Figure 6 shows only conv
                    layers, and pools/adds are cheap next to
                    the convs; a real chip would run them on a small vector unit overlapped with
                    the next layer's DMA. True: each such layer runs on the array at one
                    element operation per PE per cycle, reading its inputs from and writing its
                    output to DRAM (layers run one at a time), bounded by the buffer bandwidth
                    (emu/record.py's pass streamed through the buffer). Concatenation, flatten
                    and slices move no data and are never charged.
  keep_on_chip = false
                    Whether a layer's output may stay in the global buffer for the next layer
                    instead of a DRAM round trip. True: a conv/fc layer whose output only the next
                    conv/fc layer reads (directly or through a flatten), a layer without spilled
                    partial sums, keeps it in the buffer when the whole output (at output_bits)
                    fits beside both layers' tiles (double-buffered copies; a kept input needs no
                    input tile); the producer writes no output to DRAM, the consumer fetches no
                    input (emu/onchip.py). The mappings are searched per layer, as ever; keeping
                    applies where the chosen ones leave room. A shared buffer only (a split's
                    shares are per tile). Default false, decided before any comparison: the paper
                    "processes the neural network one layer at a time", and its estimator
                    "computes the number of clock cycles required to process each layer and sums
                    all the results", each layer's data to and from DRAM; it says nothing of
                    data kept between layers. Both readings are reported (docs/fidelity.md).
  shift = "remap"   How the accelerator performs a shift (Wu et al., no MACs; emu/shift.py):
                    "remap", the following 1x1 convolution fetches its input at per-channel
                    offsets and never reads the border, or "copy", a pass of its own through the
                    buffer (its words fetched, moved and written back). Default "remap", decided
                    before any comparison: it is the Shift paper's premise (a shift is an
                    addressing pattern of the next point-wise convolution's input fetch, "zero
                    FLOP" and no data movement of its own), and an address generator with a
                    per-channel offset is a small addition to a DMA/fetch unit that already
                    walks tiles. A shift that no 1x1 convolution alone consumes is copied either way.
[energy]            The energy of one access at each level (emu/energy.py).
  model = "eyeriss-normalised"
                    The paper's: fixed costs in units of one MAC (Eyeriss, as the paper uses
                    them), set by mac 1, rf 1, pe 2, gb 6, dram 200, the same at any size.
                    "horowitz-45nm": pJ at 45 nm, each memory's cost a function of its size and
                    the access's width through the anchors of Horowitz, ISSCC 2014
                    (emu/energy_models.py: source, anchors, exponents), so a larger buffer costs
                    more per access; the MAC is a word_bits multiply and an acc_bits add.
  per_bit = true    eyeriss-normalised only: the table's entries are the energy of one access of
                    a 16-bit word (Eyeriss's and the paper's 16-bit fixed point), and an access
                    of b bits costs b / 16 of its level's entry at every memory level: a 32-bit
                    partial sum twice a 16-bit operand, an 8-bit operand half. Default true,
                    decided before any comparison: SRAM and DRAM access energy grows with the
                    bits moved (Horowitz's 45 nm figures are per bit for DRAM and near-linear in
                    width for SRAM), and the register file is one budget in bits (pe.rf_words);
                    a table that priced a 32-bit accumulator like a 16-bit operand would let
                    precision change no energy. The MAC stays `mac` at any width (the table has
                    no law for it; horowitz-45nm prices the multiplier by width). False: the
                    table read literally, one access one cost whatever its width.
  dram_pj_per_bit = 30.47 (1.95 nJ / 64)
                    horowitz-45nm only: the middle of the source's 1.3-2.6 nJ per 64-bit DRAM
                    access. A parameter of the other model is an error.
[search]            What the mapping search minimises, per layer and over `dataflow.supported`.
  objective = "cycles"
                    "cycles": the fewest cycles, then the fewest DRAM words between mappings of
                    equal cycles. "energy": the least energy (counts x the [energy] model), then
                    the fewest cycles. "edp": the least energy x cycles. "weighted":
                    cycles_weight x cycles + dram_weight x DRAM words. Default "cycles", decided
                    from the paper's text before any comparison: the paper picks "the faster
                    dataflow" for each layer and reports time first; DRAM traffic only decides
                    between mappings that are equally fast. (The earlier default, "weighted" at
                    1 and 1, was meant to say the same, but it prices a DRAM word like a cycle,
                    and a 1x1 layer moves 3-5x more DRAM words than it takes cycles: speed then
                    stops being the first objective.)
  cycles_weight = 1.0, dram_weight = 1.0
                    "weighted" only (a file that sets them under another objective is refused).

Presets eyeriss and eyeriss-isca16 (the published hardware `sqnxt-emu validate` compares with,
emu/validate.py, docs/validation.md). Stated from the papers: the arrays (12x14; 16x16), the
buffers (108 KB; 128 KB), 16-bit words, the chip's scratchpads (224 / 12 / 24 words), the ISCA
model's 512 B register file per PE and energy table (1 / 1 / 2 / 6 / 200), row stationary.
Left open by the papers, decided here before any comparison, each with its argument:
  clock.mhz = 200   The chip's clock as the analytical reproductions of its Table V model it;
                    eyeriss-isca16 is an energy model (no time compared): the chip's too.
  arith.acc_bits = 32 (default)
                    The chip keeps partial sums in 16-bit words; the emulator's MAC accumulates
                    in at least two words (a 16x16-bit product), so spilled partial sums cost
                    twice the chip's bytes in the buffer's fit and DRAM timing. Kept: a 16-bit
                    psum would need a truncation model the kernels do not have.
  energy.per_bit = false
                    The chip and the ISCA model keep partial sums in 16-bit words, so an access
                    of one is one 16-bit word's, the table's entry; the emulator's 32-bit
                    accumulator (above) must not double its price. (Set when the per-bit default
                    came to the project, after both values had been seen in the validate run:
                    stated here, and the argument is the chip's word width alone.)
  pe.rf_words       eyeriss 260 (its three scratchpads together), eyeriss-isca16 256 (512 B):
                    used by WS/OS only, which these presets do not run.
  pe.spad_* (eyeriss-isca16) = 220 / 12 / 24
                    The ISCA model has one 512 B register file; split as the chip built a year
                    later splits its scratchpads, the filter's trimmed by 4 words so the three sum
                    to the 256 words.
  dram.*, dram.engines, buffer.double_buffering, buffer.split, buffer.words_per_cycle,
  pipeline.fill_drain (defaults)
                    The papers give the DRAM traffic (accesses) but not the off-chip link as the
                    emulator models it; Table V's processing latency is the array's. The
                    project's defaults are kept (16 GB/s, 100 cycles, double buffering, one
                    shared pool, a derived buffer bandwidth, fill/drain per tile), so the
                    emulator's latency is its compute model plus the DRAM stall those defaults
                    leave; validate prints the stall beside each latency.
  search.objective  eyeriss "cycles" (default: Table V is a latency), eyeriss-isca16 "energy"
                    (Figure 10 is an energy breakdown of the mapping the model found best for
                    energy, as its reproduction's search minimises energy).
  Not modelled (no parameter): the chip's zero gating (energy only, no cycles) and run-length
  compression of ifmaps in DRAM (Table V's DRAM accesses are the compressed traffic; the
  emulator's are uncompressed words), Eyeriss's q (channels interleaved in a PE) and its
  spatial folding of output-row strips (the emulator's strips run one after the other), and
  batches: a batch of n is n images one after the other (weights fetched again per image),
  except fully connected layers, run as a 1x1 convolution over the n images (weights once).
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..io.files import read_text
from ..io.structured_text import load_toml
from ..kernels import DATAFLOWS, OPERANDS
from ..quant.fixedpoint import OVERFLOW_MODES
from . import energy_models as EM

PAPER_PRESETS = ("8x8", "16x16", "16x16-45nm")     # the SqueezeNext paper's arrays
VALIDATION_PRESETS = ("eyeriss", "eyeriss-isca16")  # published hardware (module doc)
PRESETS = PAPER_PRESETS + VALIDATION_PRESETS
FILL_DRAIN = ("pass", "tile", "layer")  # when the array pays its pipeline skew (module doc)
OBJECTIVES = ("cycles", "energy", "edp", "weighted")  # [search] objective (module doc, search.py)
WEIGHTED_ONLY = ("search.cycles_weight", "search.dram_weight")
SHIFT_FORMS = ("remap", "copy")          # how a shift moves its data (module doc, emu/shift.py)
EYERISS, HOROWITZ = "eyeriss-normalised", "horowitz-45nm"
OPERAND_WIDTHS = ("input_bits", "weight_bits", "output_bits")   # arith.*, derived from word_bits
DATAFLOW_NAMES = tuple(d.value for d in DATAFLOWS)
ENERGY_MODELS = (EYERISS, HOROWITZ)  # [energy] model (EnergyTable)


class HardwareError(UserError):
    """A malformed hardware file or an impossible configuration; the message names the field."""


def _energy_param(kind: str, default, models: tuple[str, ...]):
    """An EnergyTable field: its TOML key is energy.<name>, `models` the energy models it
    applies to (a file setting it under another model is an error)."""
    return field(default=default, metadata={"kind": kind, "models": models})


@dataclass(frozen=True)
class EnergyTable:
    """[energy]: the model that prices one access at each level, and that model's parameters.
    "eyeriss-normalised" (the paper's, default): fixed costs in units of one MAC, whatever the
    sizes. "horowitz-45nm": pJ at 45 nm, each SRAM's cost following its size and access width
    (emu/energy_models.py has the source, the anchors and the law)."""
    model: str = _energy_param("choice:" + ",".join(ENERGY_MODELS), EYERISS, ENERGY_MODELS)
    mac: float = _energy_param("nonneg", 1.0, (EYERISS,))
    rf: float = _energy_param("nonneg", 1.0, (EYERISS,))
    pe: float = _energy_param("nonneg", 2.0, (EYERISS,))
    gb: float = _energy_param("nonneg", 6.0, (EYERISS,))
    dram: float = _energy_param("nonneg", 200.0, (EYERISS,))
    dram_pj_per_bit: float = _energy_param("posnum", EM.DRAM_PJ_PER_BIT, (HOROWITZ,))
    per_bit: bool = _energy_param("bool", True, (EYERISS,))

    @property
    def unit(self) -> str:
        """The unit of every energy this model gives."""
        return EM.UNIT if self.model == HOROWITZ else "normalised (MAC = 1)"


def _param(key: str, kind: str, default=dataclasses.MISSING, **kw):
    """A Hardware field and its TOML key (section.key) and kind, declared together: the file
    schema (_SCHEMA) is derived from these, so a new parameter is declared in one place."""
    return field(default=default, metadata={"toml": key, "kind": kind}, **kw)


@dataclass(frozen=True)
class Hardware:
    """One accelerator configuration. Build with load_hardware(); fields as in the module doc."""
    name: str = _param("name", "str")
    pe_rows: int = _param("pe.rows", "posint")
    pe_cols: int = _param("pe.cols", "posint")
    gb_bytes: int = _param("buffer.bytes", "posint")
    rf_words: int = _param("pe.rf_words", "posint", 16)
    rf_double_buffered: bool = _param("pe.rf_double_buffered", "bool", True)
    gb_split: tuple[tuple[str, float], ...] | None = _param("buffer.split", "split", None)  # None: shared
    double_buffering: bool = _param("buffer.double_buffering", "bool", True)
    word_bits: int = _param("arith.word_bits", "posint", 16)
    acc_bits: int = _param("arith.acc_bits", "posint", 32)
    input_bits: int | None = _param("arith.input_bits", "posint", None)    # None: word_bits
    weight_bits: int | None = _param("arith.weight_bits", "posint", None)
    output_bits: int | None = _param("arith.output_bits", "posint", None)
    split_mac: bool = _param("arith.split_mac", "bool", False)
    overflow: str = _param("arith.overflow", "choice:" + ",".join(OVERFLOW_MODES), "wrap")
    clock_mhz: float = _param("clock.mhz", "posnum", 500.0)
    dram_latency_cycles: float = _param("dram.latency_cycles", "nonneg", 100.0)
    dram_bandwidth_gbps: float = _param("dram.bandwidth_gbps", "posnum", 16.0)
    zero_skip_os: bool = _param("dataflow.zero_skip_os", "bool", True)
    os_input_reuse: bool = _param("dataflow.os_input_reuse", "bool", True)
    fill_drain: str = _param("pipeline.fill_drain", "choice:" + ",".join(FILL_DRAIN), "tile")
    gb_words_per_cycle: float | None = _param("buffer.words_per_cycle", "posnum", None)
    dma_engines: int = _param("dram.engines", "posint", 1)
    non_mac_cycles: bool = _param("layers.non_mac_cycles", "bool", False)
    keep_on_chip: bool = _param("layers.keep_on_chip", "bool", False)
    shift: str = _param("layers.shift", "choice:" + ",".join(SHIFT_FORMS), "remap")
    energy: EnergyTable = field(default_factory=EnergyTable)
    dataflows: tuple[str, ...] = _param("dataflow.supported", "dataflows", ("ws", "os_socmop"))
    objective: str = _param("search.objective", "choice:" + ",".join(OBJECTIVES), "cycles")
    cycles_weight: float = _param("search.cycles_weight", "nonneg", 1.0)
    dram_weight: float = _param("search.dram_weight", "nonneg", 1.0)
    spad_filter_words: int = _param("pe.spad_filter_words", "posint", 224)
    spad_ifmap_words: int = _param("pe.spad_ifmap_words", "posint", 12)
    spad_psum_words: int = _param("pe.spad_psum_words", "posint", 24)

    def __post_init__(self):
        for name in OPERAND_WIDTHS:   # derived: word_bits unless stated (module doc)
            if getattr(self, name) is None:
                object.__setattr__(self, name, self.word_bits)
        if self.gb_words_per_cycle is None:  # the documented default (module doc)
            object.__setattr__(self, "gb_words_per_cycle", float(
                self.pe_rows + 2 * self.pe_cols * self.acc_bits / self.word_bits
                + self.dram_bytes_per_cycle * 8 / self.word_bits))

    @property
    def os_psums_per_pe(self) -> int:
        """Output channels an OS (SOC-MOP) PE holds at once: its input reuse (module doc)."""
        if not self.os_input_reuse:
            return 1
        return max(1, (self.rf_bits - self.input_bits - self.weight_bits)
                   // (self.acc_bits * self.rf_copies))

    @property
    def operand_bits(self) -> dict[str, int]:
        """Bits of one word of each operand as the hardware stores and moves it (module doc):
        partial sums at acc_bits."""
        return {"input": self.input_bits, "weight": self.weight_bits, "psum": self.acc_bits}

    @property
    def mac_lanes(self) -> int:
        """MACs one PE performs per cycle: 1, or with arith.split_mac the narrower operands'
        lanes in a word_bits multiplier (module doc)."""
        if not self.split_mac:
            return 1
        return max(1, self.word_bits // max(self.input_bits, self.weight_bits))

    def with_operand_bits(self, bits: int, where: str, weight_bits: int | None = None) -> Hardware:
        """This hardware running a quantized file whose codes are `bits` wide (`where` names
        the file), its weights `weight_bits` (default bits): its operands stored and moved at
        those widths. A file wider than the datapath is refused (module doc, arith.input_bits)."""
        if bits > self.word_bits:
            raise HardwareError(f"{where}: its {bits}-bit codes are wider than {self.name}'s "
                                f"{self.word_bits}-bit datapath (arith.word_bits); quantize it "
                                f"with --bits {self.word_bits} or less, or use wider hardware")
        return dataclasses.replace(self, input_bits=bits, weight_bits=weight_bits or bits,
                                   output_bits=bits)

    def rs_filters_per_pe(self, filter_cols: int) -> int:
        """Row stationary: output channels a PE interleaves for a layer whose filter rows have
        filter_cols (S) taps (Eyeriss's p, module doc: pe.spad_*); 0 if a row does not fit."""
        if filter_cols > min(self.spad_ifmap_words, self.spad_filter_words):
            return 0
        return min(self.spad_psum_words, self.spad_filter_words // filter_cols)

    @property
    def rf_bits(self) -> int:
        """The register file's budget in bits (module doc, pe.rf_words)."""
        return self.rf_words * self.word_bits

    @property
    def rf_copies(self) -> int:
        """Stationary blocks the register file holds: 2 when double-buffered."""
        return 2 if self.rf_double_buffered else 1

    @property
    def pipeline_skew(self) -> int:
        """Cycles before the farthest PE starts (and after the last one finishes)."""
        return self.pe_rows + self.pe_cols - 2

    @property
    def pes(self) -> int:
        return self.pe_rows * self.pe_cols

    @property
    def word_bytes(self) -> float:
        return self.word_bits / 8

    @property
    def acc_bytes(self) -> float:
        return self.acc_bits / 8

    @property
    def dram_bytes_per_cycle(self) -> float:
        """Effective DRAM bandwidth in bytes per clock cycle."""
        return self.dram_bandwidth_gbps * 1e9 / (self.clock_mhz * 1e6)

    def buffer_budget(self) -> dict[str, float] | float:
        """Bytes available to one copy of the tiles: the shared pool (a float) or a share per
        operand (a dict). Halved when double buffering."""
        copies = 2 if self.double_buffering else 1
        if self.gb_split is None:
            return self.gb_bytes / copies
        return {op: self.gb_bytes * frac / copies for op, frac in self.gb_split}

    def fits(self, footprint_words: dict[str, int]) -> bool:
        """Whether tiles of these sizes (words per operand, each at its operand_bits) fit."""
        return bool(self.fits_array({op: np.asarray(footprint_words[op]) for op in OPERANDS}))

    def tile_bytes(self, footprint_words: dict) -> dict:
        """Bytes of tiles of these sizes (words per operand, numbers or arrays), each operand at
        its operand_bits: one copy."""
        return {op: footprint_words[op] * (bits / 8) for op, bits in self.operand_bits.items()}

    def fits_array(self, footprint_words: dict[str, np.ndarray]) -> np.ndarray:
        """fits() for arrays of footprints (kernels.footprints): a boolean array."""
        nbytes = self.tile_bytes(footprint_words)
        budget = self.buffer_budget()
        if isinstance(budget, dict):
            return np.logical_and.reduce([nbytes[op] <= budget[op] for op in OPERANDS])
        return sum(nbytes.values()) <= budget

    def describe(self) -> str:
        split = "shared" if self.gb_split is None else \
            ", ".join(f"{op} {frac:g}" for op, frac in self.gb_split)
        return (f"{self.name}: {self.pe_rows}x{self.pe_cols} PEs, {self.gb_bytes // 1024} KB buffer "
                f"({split}{', double-buffered' if self.double_buffering else ''}), "
                f"{self.word_bits}-bit words{self._operands_note()}, {self.acc_bits}-bit "
                f"accumulators, {self.clock_mhz:g} MHz, "
                f"DRAM {self.dram_latency_cycles:g} cycles + {self.dram_bandwidth_gbps:g} GB/s, "
                f"{self.dma_engines} DMA engine{'s' if self.dma_engines > 1 else ''}, buffer "
                f"{self.gb_words_per_cycle:g} words/cycle, fill/drain per {self.fill_drain}, "
                f"dataflows {'/'.join(self.dataflows)}, search objective {self.objective}")

    def _operands_note(self) -> str:
        """' (operands 8/8/8 bits, 2 MACs per PE)' where they differ from the word."""
        widths = (self.input_bits, self.weight_bits, self.output_bits)
        note = []
        if widths != (self.word_bits,) * 3:
            note.append("operands in/weight/out " + "/".join(map(str, widths)) + " bits")
        if self.mac_lanes > 1:
            note.append(f"{self.mac_lanes} MACs per PE")
        return f" ({', '.join(note)})" if note else ""


# ---- loading ------------------------------------------------------------------------------

# TOML key (section.key) -> (Hardware field, kind, required), from the fields' declarations
_SCHEMA: dict[str, tuple[str, str, bool]] = {
    f.metadata["toml"]: (f.name, f.metadata["kind"],
                         f.default is dataclasses.MISSING and f.name != "name")
    for f in fields(Hardware) if "toml" in f.metadata}
# energy.<name> -> (kind, models it applies to), from EnergyTable's fields
_ENERGY_SCHEMA = {f.name: (f.metadata["kind"], f.metadata["models"]) for f in fields(EnergyTable)}
_SECTIONS = {k.split(".")[0] for k in _SCHEMA if "." in k} | {"energy"}


# the largest value a number may take: far beyond any real design, small enough that the
# kernels' int64 counts (PEs x cycles, buffer words, accumulators) cannot overflow
_MAX = {"pe.rows": 4096, "pe.cols": 4096, "pe.rf_words": 1 << 20, "buffer.bytes": 1 << 40,
        "pe.spad_filter_words": 1 << 20, "pe.spad_ifmap_words": 1 << 20,
        "pe.spad_psum_words": 1 << 20,
        "arith.acc_bits": 64, "dram.engines": 1024}
_MAX_INT, _MAX_NUMBER = (1 << 31) - 1, 1e15


def _check(where: str, key: str, kind: str, v: Any):
    def bad(what):
        raise HardwareError(f"{where}: {key} must be {what}, got {v!r:.60}")

    if kind == "str":
        if not isinstance(v, str) or not v:
            bad("a non-empty string")
        return v
    if kind.startswith("choice:"):
        choices = kind.split(":", 1)[1].split(",")
        if v not in choices:
            bad(" or ".join(f'"{c}"' for c in choices))
        return v
    if kind == "bool":
        if not isinstance(v, bool):
            bad("true or false")
        return v
    if kind == "posint":
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            bad("a positive integer")
        if v > _MAX.get(key, _MAX_INT):
            bad(f"at most {_MAX.get(key, _MAX_INT):,}")
        return v
    if kind in ("posnum", "nonneg"):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            bad("a number")
        if v < 0 or (kind == "posnum" and v == 0):
            bad("a positive number" if kind == "posnum" else "a non-negative number")
        if v > _MAX_NUMBER:
            bad(f"at most {_MAX_NUMBER:g}")
        return float(v)
    if kind == "dataflows":
        if not isinstance(v, list) or not v or not all(isinstance(d, str) for d in v) \
                or len(set(v)) < len(v):
            bad("a non-empty list of distinct dataflow names")
        unknown = [d for d in v if d not in DATAFLOW_NAMES]
        if unknown:
            raise HardwareError(f"{where}: {key}: unknown dataflow {unknown[0]!r:.40} (the kernels "
                                f"model {', '.join(DATAFLOW_NAMES)})")
        return tuple(d for d in DATAFLOW_NAMES if d in v)   # one order, whatever the file's
    if kind == "split":
        if v == "shared":
            return None
        if not isinstance(v, dict):
            bad('"shared" or a table {input, weight, psum} of fractions')
        for op in v:
            if op not in OPERANDS:
                raise HardwareError(f"{where}: {key}.{op} is not an operand "
                                    f"(expected {', '.join(OPERANDS)})")
        out = []
        for op in OPERANDS:
            if op not in v:
                raise HardwareError(f"{where}: {key}.{op} is missing (a split names every operand)")
            f = v[op]
            if isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f <= 1:
                raise HardwareError(f"{where}: {key}.{op} must be a fraction in (0, 1], got {f!r}")
            out.append((op, float(f)))
        if sum(f for _, f in out) > 1 + 1e-9:
            raise HardwareError(f"{where}: {key} fractions sum to {sum(f for _, f in out):g}, more than 1")
        return tuple(out)
    raise AssertionError(kind)


def hardware_from_dict(doc: dict, where: str = "hardware") -> Hardware:
    """Validate a parsed hardware document; every error names `where` and the field."""
    flat: dict[str, Any] = {}
    for k, v in doc.items():
        if isinstance(v, dict) and k in _SECTIONS:
            for kk, vv in v.items():
                flat[f"{k}.{kk}"] = vv
        elif k in _SCHEMA:
            flat[k] = v
        else:
            raise HardwareError(f"{where}: unknown field {k!r}")
    kwargs: dict[str, Any] = {}
    energy: dict[str, Any] = {}
    for key, v in flat.items():
        if key.startswith("energy."):
            name = key.split(".", 1)[1]
            if name not in _ENERGY_SCHEMA:
                raise HardwareError(f"{where}: unknown field {key!r} (energy has {', '.join(_ENERGY_SCHEMA)})")
            energy[name] = _check(where, key, _ENERGY_SCHEMA[name][0], v)
            continue
        if key not in _SCHEMA:
            raise HardwareError(f"{where}: unknown field {key!r}")
        fname, kind, _ = _SCHEMA[key]
        kwargs[fname] = _check(where, key, kind, v)
    for key, (fname, _, required) in _SCHEMA.items():
        if required and fname not in kwargs:
            raise HardwareError(f"{where}: {key} is missing")
    kwargs.setdefault("name", Path(where).stem)
    objective = kwargs.get("objective", Hardware.objective)
    for key in WEIGHTED_ONLY:
        if key in flat and objective != "weighted":
            raise HardwareError(f"{where}: {key} applies to search.objective \"weighted\", not "
                                f"{objective!r}: remove it, or state objective = \"weighted\" "
                                "(the search's only objective before it had a name)")
    hw = Hardware(energy=_energy_table(energy, where), **kwargs)
    _validate_combination(hw, where)
    return hw


def _energy_table(given: dict[str, Any], where: str) -> EnergyTable:
    """The [energy] section's table; a parameter of another model than the one named is an
    error (it would be silently ignored)."""
    model = given.get("model", EnergyTable.model)
    for name in given:
        models = _ENERGY_SCHEMA[name][1]
        if model not in models:
            raise HardwareError(f"{where}: energy.{name} applies to energy.model "
                                f"{' or '.join(repr(m) for m in models)}, not {model!r}")
    return EnergyTable(**given)


def _validate_combination(hw: Hardware, where: str) -> None:
    if hw.word_bits % 8 or hw.acc_bits % 8:
        raise HardwareError(f"{where}: arith.word_bits and arith.acc_bits must be whole bytes, "
                            f"got {hw.word_bits} and {hw.acc_bits}")
    for name in OPERAND_WIDTHS:
        if getattr(hw, name) > hw.word_bits:
            raise HardwareError(f"{where}: arith.{name} ({getattr(hw, name)}) is wider than the "
                                f"datapath (arith.word_bits = {hw.word_bits})")
    if hw.word_bits > 16:
        raise HardwareError(f"{where}: arith.word_bits must be at most 16 (the kernels' MAC is "
                            f"16-bit), got {hw.word_bits}")
    if hw.acc_bits < 2 * hw.word_bits:
        raise HardwareError(f"{where}: arith.acc_bits ({hw.acc_bits}) must hold a product of two "
                            f"{hw.word_bits}-bit words ({2 * hw.word_bits} bits)")
    # the register file, one budget in bits (module doc): each dataflow's smallest set fits
    copies = hw.rf_copies
    operands = hw.input_bits + hw.weight_bits
    need = max(operands + copies * hw.acc_bits,                      # OS: operands + accumulator(s)
               operands + (copies - 1) * hw.weight_bits + hw.acc_bits)   # WS: weight(s), input, psum
    if hw.rf_bits < need:
        raise HardwareError(f"{where}: pe.rf_words ({hw.rf_words} x {hw.word_bits} bits) cannot hold "
                            f"an operand pair and {copies} accumulator(s) of {hw.acc_bits} bits "
                            f"({need} bits{', double-buffered' if copies == 2 else ''})")
    if hw.fill_drain != "pass" and not hw.rf_double_buffered:
        raise HardwareError(f"{where}: pipeline.fill_drain = {hw.fill_drain!r} hides the skew "
                            "between passes, which needs pe.rf_double_buffered = true; use "
                            "fill_drain = \"pass\" without it")
    # the smallest tile (one word of each operand) must fit: otherwise no layer can run
    if not hw.fits({"input": 1, "weight": 1, "psum": 1}):
        raise HardwareError(f"{where}: buffer.bytes ({hw.gb_bytes}) is smaller than one tile "
                            f"(one word per operand{', twice: double buffering' if hw.double_buffering else ''})")


DERIVED = {"buffer.words_per_cycle": "pe.rows + 2 pe.cols acc_bits / word_bits + DRAM bytes per "
                                     "cycle / word bytes",
           **{f"arith.{name}": "arith.word_bits" for name in OPERAND_WIDTHS}}


def resolved(spec: str | Path) -> tuple[Hardware, list[tuple[str, Any, str]]]:
    """A preset or hardware file and every parameter it runs with: (TOML key, value, origin),
    origin "file" (stated there), "default" (the documented default, module doc) or "derived"
    (DERIVED: computed from other parameters because the file does not state it)."""
    doc, _ = hardware_document(spec)
    hw = load_hardware(spec)
    stated = {f"{k}.{kk}" if isinstance(v, dict) else k
              for k, v in doc.items() for kk in (v if isinstance(v, dict) else [None])}
    return hw, [(key, value, "file" if key in stated else "derived" if key in DERIVED else "default")
                for key, value in parameters(hw).items()]


def parameters(hw: Hardware) -> dict[str, Any]:
    """Every parameter `hw` runs with, by TOML key (section.key), from the schema: the file's
    fields and the energy model's (a parameter declared later appears here by itself)."""
    out: dict[str, Any] = {}
    for key, (fname, _, _) in _SCHEMA.items():
        value = getattr(hw, fname)
        if key == "buffer.split":
            value = "shared" if value is None else dict(value)
        out[key] = value
    for f in fields(EnergyTable):
        if hw.energy.model in f.metadata["models"]:
            out[f"energy.{f.name}"] = getattr(hw.energy, f.name)
    return out


def with_overrides(spec: str | Path, overrides: dict[str, Any]) -> Hardware:
    """A preset or hardware file with some parameters changed, by TOML key ("pipeline.fill_drain",
    "energy.per_bit"): merged into its document and validated as a file stating them would be,
    so derived values (DERIVED) follow the changed ones and impossible combinations are refused.
    A changed energy.model drops the parameters of the model it replaces."""
    if not overrides:
        return load_hardware(spec)
    doc, where = hardware_document(spec)
    if "energy.model" in overrides:   # the other model's parameters go with it
        model = overrides["energy.model"]
        doc = {**doc, "energy": {k: v for k, v in doc.get("energy", {}).items()
                                 if k in _ENERGY_SCHEMA and model in _ENERGY_SCHEMA[k][1]}}
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        doc = merge_document(doc, {section: {name: value}} if name else {key: value})
    shown = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    return hardware_from_dict(doc, f"{where} with {shown}")


def merge_document(a: dict, b: dict) -> dict:
    """Hardware document a with b's entries, tables merged key by key (a is not changed)."""
    out = dict(a)
    for k, v in b.items():
        out[k] = merge_document(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_hardware(spec: str | Path) -> Hardware:
    """A preset name ("8x8", "16x16") or the path of a TOML hardware file."""
    doc, where = hardware_document(spec)
    hw = hardware_from_dict(doc, where)
    if str(spec) in PRESETS and hw.name != str(spec):
        raise HardwareError(f"{where}: name is {hw.name!r}, expected {str(spec)!r}")
    return hw


def hardware_document(spec: str | Path) -> tuple[dict, str]:
    """The parsed, not yet validated document of a preset or hardware file, and the name errors
    give it (a sweep merges its overrides into it before hardware_from_dict validates)."""
    s = str(spec)
    if s in PRESETS:
        text = resources.files(__package__).joinpath("presets", f"{s}.toml").read_text("utf-8")
        where = f"preset {s}"
    else:
        path = Path(s)
        if not os.path.exists(path):   # (False, not an OSError, for a name too long to look up)
            shown = s if len(s) <= 100 else s[:97] + "..."
            raise HardwareError(f"{shown}: no such hardware file (presets: {', '.join(PRESETS)})")
        text = read_text(path)  # a regular file, size-bounded, UTF-8
        where = path.name
    try:
        return load_toml(text, where), where  # nesting depth bounded
    except UserError as e:
        raise HardwareError(str(e)) from None
