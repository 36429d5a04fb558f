"""The accelerator's description: small frozen, validated specs read from a TOML file.

A hardware file (or a preset, "8x8" / "16x16", shipped as emu/presets/*.toml) has these
sections; `pe.rows`, `pe.cols` and `buffer.bytes` are required, everything else has the
default below. Each default the paper leaves open was chosen from first principles before any
comparison with the paper's Table 3, and is never tuned to it.

[pe]
  rows, cols        PE array (paper: 8x8 or 16x16).
  rf_words = 16     Register-file words per PE. The dataflows here keep one weight (WS) or one
                    accumulator (OS) per PE plus the operand in flight, i.e. 3 words; 16 leaves
                    room for a small ping-pong of each without approaching Eyeriss's 0.5 KB per
                    PE. Validated: at least the 3 words the dataflows need.
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
[arith]
  word_bits = 16    Operand width (paper: 16-bit integer MAC).
  acc_bits = 32     Accumulator width: a 16x16-bit product is 32 bits, the usual accumulator of
                    a 16-bit MAC. Partial sums live in the global buffer (and spill to DRAM) at
                    this width; the emulator warns when a real partial sum overflows it.
[clock]
  mhz = 500         The paper gives DRAM bandwidth in GB/s and latency in cycles but no clock.
                    500 MHz sits between Eyeriss (200 MHz, 65 nm) and the 1 GHz of mobile NPUs of
                    2017-18; at 16 GB/s it gives 32 bytes (16 words) per cycle.
[dram]
  latency_cycles = 100, bandwidth_gbps = 16   (paper)
[dataflow]
  zero_skip_os = true  Output stationary (SOC-MOP) skips zero weights (paper).
  fill_drain = true    Each pass of the array (a new stationary block) costs rows + cols - 2
                       cycles of pipeline skew (the farthest PE starts that late), see timing.py.
[energy]            Normalised energy per access (Eyeriss, as in the paper): mac 1, rf 1, pe 2,
                    gb 6, dram 200.
[search]            Mapping cost = cycles_weight * cycles + dram_weight * DRAM words (search.py).
  cycles_weight = 1.0, dram_weight = 1.0
                    One DRAM word is priced like one cycle: with 64-256 PEs a cycle is worth
                    64-256 MACs, so speed stays the first objective and DRAM traffic decides
                    between mappings of about the same speed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..io.files import read_text
from ..io.structured_text import load_toml

PRESETS = ("8x8", "16x16")
OPERANDS = ("input", "weight", "psum")


class HardwareError(UserError):
    """A malformed hardware file or an impossible configuration; the message names the field."""


@dataclass(frozen=True)
class EnergyTable:
    """Normalised energy per access at each level (Eyeriss): one MAC, one register-file word,
    one PE-to-PE word, one global-buffer word, one DRAM word."""
    mac: float = 1.0
    rf: float = 1.0
    pe: float = 2.0
    gb: float = 6.0
    dram: float = 200.0


@dataclass(frozen=True)
class Hardware:
    """One accelerator configuration. Build with load_hardware(); fields as in the module doc."""
    name: str
    pe_rows: int
    pe_cols: int
    gb_bytes: int
    rf_words: int = 16
    gb_split: tuple[tuple[str, float], ...] | None = None  # None: shared pool
    double_buffering: bool = True
    word_bits: int = 16
    acc_bits: int = 32
    clock_mhz: float = 500.0
    dram_latency_cycles: float = 100.0
    dram_bandwidth_gbps: float = 16.0
    zero_skip_os: bool = True
    fill_drain: bool = True
    energy: EnergyTable = field(default_factory=EnergyTable)
    cycles_weight: float = 1.0
    dram_weight: float = 1.0

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
        """Whether tiles of these sizes (words per operand; psums at accumulator width) fit."""
        nbytes = {"input": footprint_words["input"] * self.word_bytes,
                  "weight": footprint_words["weight"] * self.word_bytes,
                  "psum": footprint_words["psum"] * self.acc_bytes}
        budget = self.buffer_budget()
        if isinstance(budget, dict):
            return all(nbytes[op] <= budget[op] for op in OPERANDS)
        return sum(nbytes.values()) <= budget

    def describe(self) -> str:
        split = "shared" if self.gb_split is None else \
            ", ".join(f"{op} {frac:g}" for op, frac in self.gb_split)
        return (f"{self.name}: {self.pe_rows}x{self.pe_cols} PEs, {self.gb_bytes // 1024} KB buffer "
                f"({split}{', double-buffered' if self.double_buffering else ''}), "
                f"{self.word_bits}-bit words, {self.acc_bits}-bit accumulators, {self.clock_mhz:g} MHz, "
                f"DRAM {self.dram_latency_cycles:g} cycles + {self.dram_bandwidth_gbps:g} GB/s")


# ---- loading ------------------------------------------------------------------------------

# TOML key (section.key) -> (Hardware field, kind, required)
_SCHEMA: dict[str, tuple[str, str, bool]] = {
    "name": ("name", "str", False),
    "pe.rows": ("pe_rows", "posint", True),
    "pe.cols": ("pe_cols", "posint", True),
    "pe.rf_words": ("rf_words", "posint", False),
    "buffer.bytes": ("gb_bytes", "posint", True),
    "buffer.split": ("gb_split", "split", False),
    "buffer.double_buffering": ("double_buffering", "bool", False),
    "arith.word_bits": ("word_bits", "posint", False),
    "arith.acc_bits": ("acc_bits", "posint", False),
    "clock.mhz": ("clock_mhz", "posnum", False),
    "dram.latency_cycles": ("dram_latency_cycles", "nonneg", False),
    "dram.bandwidth_gbps": ("dram_bandwidth_gbps", "posnum", False),
    "dataflow.zero_skip_os": ("zero_skip_os", "bool", False),
    "dataflow.fill_drain": ("fill_drain", "bool", False),
    "search.cycles_weight": ("cycles_weight", "nonneg", False),
    "search.dram_weight": ("dram_weight", "nonneg", False),
}
_ENERGY_KEYS = tuple(f.name for f in fields(EnergyTable))
_SECTIONS = {k.split(".")[0] for k in _SCHEMA if "." in k} | {"energy"}


def _check(where: str, key: str, kind: str, v: Any):
    def bad(what):
        raise HardwareError(f"{where}: {key} must be {what}, got {v!r}")

    if kind == "str":
        if not isinstance(v, str) or not v:
            bad("a non-empty string")
        return v
    if kind == "bool":
        if not isinstance(v, bool):
            bad("true or false")
        return v
    if kind == "posint":
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            bad("a positive integer")
        return v
    if kind in ("posnum", "nonneg"):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            bad("a number")
        if v < 0 or (kind == "posnum" and v == 0):
            bad("a positive number" if kind == "posnum" else "a non-negative number")
        return float(v)
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
    energy: dict[str, float] = {}
    for key, v in flat.items():
        if key.startswith("energy."):
            name = key.split(".", 1)[1]
            if name not in _ENERGY_KEYS:
                raise HardwareError(f"{where}: unknown field {key!r} (energy has {', '.join(_ENERGY_KEYS)})")
            energy[name] = _check(where, key, "nonneg", v)
            continue
        if key not in _SCHEMA:
            raise HardwareError(f"{where}: unknown field {key!r}")
        fname, kind, _ = _SCHEMA[key]
        kwargs[fname] = _check(where, key, kind, v)
    for key, (fname, _, required) in _SCHEMA.items():
        if required and fname not in kwargs:
            raise HardwareError(f"{where}: {key} is missing")
    kwargs.setdefault("name", Path(where).stem)
    hw = Hardware(energy=EnergyTable(**energy), **kwargs)
    _validate_combination(hw, where)
    return hw


def _validate_combination(hw: Hardware, where: str) -> None:
    if hw.rf_words < 3:
        raise HardwareError(f"{where}: pe.rf_words must be at least 3 (an operand pair and an "
                            f"accumulator), got {hw.rf_words}")
    if hw.word_bits % 8 or hw.acc_bits % 8:
        raise HardwareError(f"{where}: arith.word_bits and arith.acc_bits must be whole bytes, "
                            f"got {hw.word_bits} and {hw.acc_bits}")
    if hw.word_bits > 16:
        raise HardwareError(f"{where}: arith.word_bits must be at most 16 (the kernels' MAC is "
                            f"16-bit), got {hw.word_bits}")
    if hw.acc_bits < 2 * hw.word_bits:
        raise HardwareError(f"{where}: arith.acc_bits ({hw.acc_bits}) must hold a product of two "
                            f"{hw.word_bits}-bit words ({2 * hw.word_bits} bits)")
    # the smallest tile (one word of each operand) must fit: otherwise no layer can run
    if not hw.fits({"input": 1, "weight": 1, "psum": 1}):
        raise HardwareError(f"{where}: buffer.bytes ({hw.gb_bytes}) is smaller than one tile "
                            f"(one word per operand{', twice: double buffering' if hw.double_buffering else ''})")


def load_hardware(spec: str | Path) -> Hardware:
    """A preset name ("8x8", "16x16") or the path of a TOML hardware file."""
    s = str(spec)
    if s in PRESETS:
        text = resources.files(__package__).joinpath("presets", f"{s}.toml").read_text("utf-8")
        where = f"preset {s}"
    else:
        path = Path(s)
        if not path.exists():
            raise HardwareError(f"{s}: no such hardware file (presets: {', '.join(PRESETS)})")
        text = read_text(path)  # a regular file, size-bounded, UTF-8
        where = path.name
    try:
        doc = load_toml(text, where)  # nesting depth bounded
    except UserError as e:
        raise HardwareError(str(e)) from None
    hw = hardware_from_dict(doc, where)
    if s in PRESETS and hw.name != s:
        raise HardwareError(f"{where}: name is {hw.name!r}, expected {s!r}")
    return hw
