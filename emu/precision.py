"""Precision as a sweep axis: a float weight file quantized for each hardware point and its
top-1 measured on the emulated datapath, beside the point's cycles and energy.

A sweep network with `precision = [...]` (sweep.py) is one point per precision and hardware
point. Each precision is a recipe of `sqnxt-quant` (PRECISIONS); a quantized point's file is
made for the point's hardware exactly as `sqnxt-quant --hw` makes it (its accumulator width and
overflow mode and its word width; every MAC layer fitted to the accumulator, quant/accfit.py),
calibrated on the first `calib_images` of the data set's train split, and its accuracy is
`sqnxt-emu eval`'s: every one of the first `images` test images through the loop-nest kernels
on that hardware (integer.emulate_dataset), beside the file's own integer path. The cost is the
point's trace of the same file (one image's records: they do not depend on the input).

What is measured once and shared. The emulated codes depend on the arithmetic (the file's codes,
the accumulator's width and overflow mode), never on the array, the buffer or the mapping: the
kernels compute exact sums in every loop order and tiling, and integer.emulate_codes is held
bit-exact to the NumPy integer path for every dataflow and tile (tests/test_emu_integer.py). So
the points of a network and precision that share the arithmetic (the accumulator's width and
overflow mode) and the file's codes (quantized_digest: a file made for another word width may
hold the same codes) share one measurement, made on the first of them; and a measurement in
which no sum left the accumulator holds for the other overflow mode and for every wider
accumulator too (wrap and saturate differ only on sums that leave it; a sum that stays within A
bits stays within more), so the narrowest accumulator is measured first (measuring_order). Each record's
`accuracy_source` says which measurement it carries.

The float precision is the reference: the float32 engine's top-1 on the same images (what
`sqnxt-eval` prints), and the cost of the float network's emulation at the hardware's word
width (network.emulate; its weights as the file holds them: a precision sweep's sparsity is 0).
A precision the hardware cannot run (codes wider than its words, the float reference on words
narrower than 16 bits, or a layer the accumulator cannot hold even at 2-bit weights) gets a
record without costs or accuracy that says why: the export lists it, `pareto` leaves it out.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from ..errors import UserError
from .hardware import HardwareError


@dataclass(frozen=True)
class Precision:
    """One `sqnxt-quant` recipe (bits None: the float reference)."""
    name: str
    bits: int | None
    method: str = "shift-scaler"
    weight_bits: int | None = None

    @property
    def describe(self) -> str:
        if self.bits is None:
            return "float32 (the reference)"
        weights = f"{self.weight_bits}-bit" if self.weight_bits else f"{self.bits}-bit"
        return f"{weights} {self.method} weights, {self.bits}-bit activations"


# The shift scaler is the hardware's recipe (one requantization multiplier per layer, the
# per-channel part a shift: MODELS.md); per-channel scales are the reference it approaches, shown
# at 8 bits where they differ. At 16 bits the method hardly matters; the shift scaler keeps the
# datapath the same as at 8.
PRECISIONS = {p.name: p for p in (
    Precision("float", None),
    Precision("int16", 16),
    Precision("int8-per-channel", 8, "per-channel"),
    Precision("int8", 8),
    Precision("w4a8", 8, weight_bits=4),
)}

# the float reference's emulated cost is the paper's 16-bit datapath's (network.emulate runs the
# float network in words of the hardware's width; on narrower words it would be another network)
FLOAT_WORD_BITS = 16

@dataclass(frozen=True)
class AccuracySettings:
    """[accuracy] of a sweep file: the data set, its first `images` test images, and the
    first `calib_images` of its train split for calibration."""
    data: str = "fashion-mnist"
    images: int = 10000
    calib_images: int = 500

    def record(self) -> dict:
        return {"data": self.data, "images": self.images, "calib_images": self.calib_images}


@dataclass
class Measured:
    """A precision's accuracy on one arithmetic, and the quantized model its cost is traced on."""
    top1: float | None
    source: str
    model: object | None = None          # the QuantizedModel (None: float, or not quantizable)
    digest: str | None = None            # quantized_digest(model)
    overflowed: bool = False             # some sum left the accumulator on some image
    fields: dict | None = None           # what the record adds (precision_* fields)


def quantized_digest(model) -> str:
    """The sha256 of a quantized model's arrays and its tensors' scales and ranges (not of the
    accumulator it names): equal digests compute equal codes on equal accumulators."""
    h = hashlib.sha256()
    arrays, meta = model.to_arrays()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    h.update(repr(sorted((n, t["scale"], t["lo"], t["hi"]) for n, t in
                         meta["quantization"]["tensors"].items())).encode())
    return h.hexdigest()


def _test_set(settings: AccuracySettings):
    """(uint8 images, labels): the first `images` of the data set's test split."""
    from ..io.datasets import load_dataset
    images, labels = load_dataset(settings.data, "test")
    if settings.images > len(images):
        raise UserError(f"accuracy.images is {settings.images:,}; {settings.data}'s test split "
                        f"has {len(images):,}")
    return images[:settings.images], labels[:settings.images]


def quantize_for(file: str, precision: Precision, hw, settings: AccuracySettings):
    """The QuantizedModel `sqnxt-quant --weights FILE --bits B [--weight-bits W] --<method>
    --hw HW --calib DATA --calib-count N` writes (the default activation rule and batches)."""
    from ..quant.accfit import Target
    from ..quant.calibrate import CalibrationSet, resolve_rule
    from ..quant.fixedpoint import Accumulator
    from ..quant.quantize import quantize_file
    target = Target(hw.name, Accumulator(hw.acc_bits, hw.overflow), hw.word_bits)
    return quantize_file(file, CalibrationSet([settings.data], settings.calib_images), precision.bits,
                         precision.method, resolve_rule("auto", precision.bits), target=target,
                         weight_bits=precision.weight_bits)


def measure(file: str, precision: Precision, hw, dataflow: str, settings: AccuracySettings) -> Measured:
    """The accuracy of `precision` of the float weight file on hw (module doc)."""
    what = (f"{settings.data} test, first {settings.images:,} images")
    if precision.bits is None and hw.word_bits < FLOAT_WORD_BITS:
        return Measured(None, f"not run: the float reference is costed on {FLOAT_WORD_BITS}-bit words "
                        f"(the paper's datapath), {hw.name} has {hw.word_bits}",
                        fields={"precision_refused": "word_bits"})
    if precision.bits is None:
        from ..runtime.predict import engine_accuracy
        correct, n = engine_accuracy(file, *_test_set(settings))
        return Measured(100.0 * correct / n, f"top-1 of the float32 engine (sqnxt-eval), {what}",
                        fields={"precision_bit_exact_images": None})
    try:  # the hardware's own refusal of codes wider than its words, before any quantizing
        hw.with_operand_bits(precision.bits, f"{precision.name} ({precision.describe})", precision.weight_bits)
    except HardwareError as e:
        return Measured(None, f"not run: {e}", fields={"precision_refused": "word_bits"})
    try:
        model = quantize_for(file, precision, hw, settings)
    except UserError as e:   # a layer the accumulator cannot hold: the point's answer, not an error
        return Measured(None, f"not quantizable for this arithmetic: {e}",
                        fields={"precision_refused": "accumulator"})
    from ..io.images import Preprocess, batch_from_arrays
    from .integer import emulate_dataset
    images, labels = _test_set(settings)
    pre = Preprocess.from_meta({**model.graph.meta, **model.meta})
    r = emulate_dataset(model, batch_from_arrays(images, pre), labels, hw, dataflow)
    fit = model.info.get("accumulator_fit", {})
    narrowed = sorted(k for k, v in fit.items() if v["weight_bits"] < (precision.weight_bits or precision.bits))
    source = (f"top-1 on the emulated datapath (sqnxt-emu eval; {r['bit_exact_images']:,}/{r['images']:,} "
              f"images bit-exact with the file's integer path), {what}, file quantized for "
              f"{hw.acc_bits}-bit {hw.overflow} accumulation on {settings.calib_images} train images")
    return Measured(r["top1"], source, model, quantized_digest(model), bool(r["acc_overflow_layers"]),
                    {"precision_bit_exact_images": r["bit_exact_images"],
                     "precision_file_top1": r["numpy_top1"],
                     "precision_overflow_layers": r["acc_overflow_layers"],
                     "precision_narrowed_layers": narrowed})


def shared_measurement(measured: dict, point, precision: Precision, hw, settings) -> Measured | None:
    """A measurement already made that holds for this point (module doc), with its source
    saying so; None if it must be measured. measured: {arithmetic_key: Measured} of this
    network and precision."""
    same = measured.get(arithmetic_key(hw))
    if same is not None:
        return same
    if precision.bits is None:   # the float reference depends on no arithmetic (on its words)
        return next((m for m in measured.values() if m.top1 is not None), None) \
            if hw.word_bits >= FLOAT_WORD_BITS else None
    again = None
    for (_, acc_bits, mode), m in measured.items():
        same_arithmetic = (acc_bits, mode) == (hw.acc_bits, hw.overflow)
        if m.model is None or not (same_arithmetic or (not m.overflowed and acc_bits <= hw.acc_bits)):
            continue
        if precision.bits > hw.word_bits:
            return None
        again = again or quantize_for(point.network.file, precision, hw, settings)
        if quantized_digest(again) == m.digest:
            why = "" if same_arithmetic else (
                f"; measured with a {acc_bits}-bit {mode} accumulator: no sum left it, so a "
                f"{hw.acc_bits}-bit {hw.overflow} one computes the same codes")
            return Measured(m.top1, m.source + why, again, m.digest, m.overflowed, m.fields)
    return None


def measuring_order(points: list) -> list:
    """The points of one network and precision in the order they are measured: narrowest
    accumulator first, wrap before saturate, so that a measurement without overflow serves the
    wider ones (shared_measurement)."""
    return sorted(points, key=lambda p: (p.hardware.acc_bits, p.hardware.overflow != "wrap"))


def arithmetic_key(hw) -> tuple:
    """What a measurement is filed under: the words, the accumulator and its overflow mode."""
    return hw.word_bits, hw.acc_bits, hw.overflow
