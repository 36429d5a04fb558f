"""Post-training quantization: a float network and a calibration set -> a QuantizedModel.

    plan = FloatPlan.from_weights(graph, weights)    # batch norm folded (the runner's folding)
    equalize(plan)                                   # only for method 'equalize'
    ranges = calibrate(plan, batches, n, rule)       # activation ranges, layer-wise
    model = build(plan, ranges, bits, method, accumulator, meta)

Methods (weights): 'layer' (one symmetric scale per layer), 'shift-scaler' (the per-channel
4-bit binary shift scaler before the layer-wise scale, weights.py), 'per-channel' (one scale
per output channel: the reference the shift scaler approaches), 'equalize' (cross-layer
equalization, then layer-wise).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ..errors import UserError
from ..graph.graph import INPUT
from .accfit import Target, fit
from .biascorr import correct_biases
from .calibrate import calibrate, resolve_rule
from .equalize import equalize
from .fixedpoint import Accumulator, common_shift_multipliers, quantize_multiplier
from .model import FORMAT, META_KEY, IntegerStep, QuantizedModel, Tensor, code_range, window_counts
from .plan import FloatPlan, PlanStep
from .pow2 import activation_thresholds
from .schema import check_file_accumulator, validate
from .weights import quantize_weight

METHODS = ("layer", "shift-scaler", "per-channel", "equalize", "equalize-shift-scaler")
PASS_THROUGH = ("maxpool", "flatten", "identity", "clamp", "shift", "resize", "slice")  # keep the input's scale


def default_accumulator(bits: int) -> Accumulator:
    """32 bits for 8-bit codes (gemmlowp's); 48 for 16-bit codes, whose products alone take 31
    bits (a 32-bit accumulator overflows on real layers)."""
    return Accumulator(32 if bits == 8 else 48, "wrap")


def quantize_network(graph, weights: dict, batches: Iterable[np.ndarray], images: int, bits: int = 8,
                     method: str = "layer", rule: str = "auto", accumulator: Accumulator | None = None,
                     meta: dict | None = None, on_batch: Callable[[int], None] | None = None,
                     target: Target | None = None, acc_rule: str = "observed",
                     batches_again: Callable[[], Iterable[np.ndarray]] | None = None,
                     bias_correction: bool = False, weight_bits: int | None = None,
                     pow2_weights: bool = False
                     ) -> tuple[QuantizedModel, FloatPlan]:
    """The quantized model and the float plan it was made from (equalized if asked: the float
    network it approximates, for comparisons). weight_bits: every MAC layer's weights at this
    many bits (2..bits; default bits), recorded in the file (schema.check_weight_bits).
    target: the hardware the file is made for (its
    accumulator replaces `accumulator`); every MAC layer is then fitted to it (accfit.py, by
    acc_rule), running the calibration images again (batches_again() yields them) if the rule
    is 'observed'; model.info['accumulator_fit'] reports the layers. pow2_weights: the weights'
    thresholds by power-of-two search (pow2.py; layer-wise or shift-scaler methods); the rule
    'pow2' does the same for the activations."""
    if method not in METHODS:
        raise UserError(f"unknown quantization method {method!r} ({', '.join(METHODS)})")
    if bits not in (8, 16):
        raise UserError(f"bits must be 8 or 16, got {bits}")
    rule = resolve_rule(rule, bits)
    if weight_bits is not None and not (isinstance(weight_bits, int) and 2 <= weight_bits <= bits):
        raise UserError(f"weight bits must be 2 to the {bits} bits of the codes, got {weight_bits}")
    if target is not None:
        if bits > target.word_bits:
            raise UserError(f"{bits}-bit codes do not fit the {target.word_bits}-bit words of {target.name}")
        accumulator = target.accumulator
    accumulator = accumulator or default_accumulator(bits)
    check_file_accumulator(accumulator)
    plan = FloatPlan.from_weights(graph, weights)
    if method.startswith("equalize"):
        equalize(plan)
    if (bias_correction or rule == "pow2" or (target is not None and acc_rule == "observed")) \
            and batches_again is None:
        raise ValueError("quantize_network: bias correction, the pow2 and the 'observed' rules need "
                         "batches_again")
    ranges = calibrate(plan, batches, images, "max" if rule == "pow2" else rule, on_batch)
    if rule == "pow2":
        ranges = activation_thresholds(plan, ranges, batches_again(), bits, PASS_THROUGH)

    def make(narrowed):
        model = build(plan, ranges, bits, method, rule, accumulator, meta or {}, narrowed, weight_bits,
                      pow2_weights)
        if bias_correction:
            correct_biases(model, plan, batches_again)
            model.info["bias_correction"] = True
            validate(model)
        return model
    if target is None:
        return make({}), plan
    model, report = fit(make, batches_again, weight_bits or bits, acc_rule)
    model.info.update(hardware=target.record(), accumulator_rule=acc_rule,
                      accumulator_fit={r.pop("layer"): r for r in report})
    return model, plan


def quantize_file(weights, calib, bits: int, method: str, rule: str, accumulator: Accumulator | None = None,
                  on_batch: Callable[[int], None] | None = None, batch_size: int = 32, **options) -> QuantizedModel:
    """The QuantizedModel of a float weight file calibrated on `calib` (a calibrate.CalibrationSet)
    in batches of batch_size, preprocessed as the file says: what `sqnxt-quant` writes, for the
    CLI and for the emulator's precision sweeps (one sequence, so a sweep's file is the one the
    command would make). options: quantize_network's (target, acc_rule, bias_correction,
    weight_bits, pow2_weights); the calibration images are read again when fitting to a target
    needs them."""
    from ..io.images import Preprocess
    from ..io.model import load_model
    graph, arrays, meta = load_model(weights, quantized=False)
    pre = Preprocess.from_meta({**graph.meta, **meta})
    model, _ = quantize_network(graph, arrays, calib.batches(pre, batch_size), len(calib), bits, method, rule,
                                accumulator, meta, on_batch,
                                batches_again=lambda: calib.batches(pre, batch_size), **options)
    return model


def build(plan: FloatPlan, ranges: dict[str, float], bits: int, method: str, rule: str,
          accumulator: Accumulator, meta: dict, weight_bits: dict[str, int] | None = None,
          all_weight_bits: int | None = None, pow2_weights: bool = False) -> QuantizedModel:
    """weight_bits: {mac step: its weights' bits} where fewer than the rest's (accfit.py);
    all_weight_bits: the rest's (default `bits`), recorded in the file if set; rule 'pow2':
    `ranges` are power-of-two thresholds (step threshold / (largest code + 1))."""
    weight_method = {"equalize": "layer", "equalize-shift-scaler": "shift-scaler"}.get(method, method)
    nonneg = plan.nonnegative()
    pow2 = rule == "pow2"
    tensors: dict[str, Tensor] = {INPUT: _tensor(ranges[INPUT], bits, nonneg[INPUT], pow2)}
    steps = []
    for s in plan.steps:
        if s.kind in PASS_THROUGH:
            t_in = tensors[s.inputs[0]]
            tensors[s.name] = Tensor(t_in.scale, t_in.lo, t_in.hi)
        else:
            tensors[s.name] = _tensor(ranges[s.name], bits, nonneg[s.name], pow2)
        steps.append(_step(s, tensors, (weight_bits or {}).get(s.name, all_weight_bits or bits),
                           weight_method, accumulator, plan, pow2_weights))
    info = {"format": FORMAT, "bits": bits, "method": method, "activations": rule,
            **({"weight_bits": all_weight_bits} if all_weight_bits else {})}
    if pow2_weights:
        info["weight_thresholds"] = "pow2"
    model = QuantizedModel(plan.graph, {**meta, META_KEY: info}, steps, tensors, accumulator)
    validate(model)  # never write a file the readers would refuse (quant/schema.py)
    return model


def _tensor(rng: float, bits: int, nonnegative: bool, pow2: bool = False) -> Tensor:
    """rng: the range the largest code stands for, or with `pow2` a power-of-two threshold (the
    step is threshold / (largest code + 1), a power of two)."""
    lo, hi = code_range(bits, nonnegative)
    if pow2:
        return Tensor(rng / (hi + 1), lo, hi)
    return Tensor(rng / hi if rng > 0 else 1.0, lo, hi)


def _clamp_codes(s: PlanStep, t: Tensor, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """The output codes' per-channel bounds: the tensor's code range, narrowed by the fused
    activation's clamp (ReLU6's 6 rounds to the nearest code)."""
    lo = np.full(channels, t.lo, np.int64)
    hi = np.full(channels, t.hi, np.int64)
    if s.lo is not None:
        lo = np.maximum(lo, np.rint(s.lo / t.scale)).astype(np.int64)
        finite = np.isfinite(s.hi)
        hi[finite] = np.minimum(hi[finite], np.rint(s.hi[finite] / t.scale)).astype(np.int64)
    return lo, hi


def _step(s: PlanStep, tensors: dict, bits: int, weight_method: str, accumulator: Accumulator,
          plan: FloatPlan, pow2_weights: bool = False) -> IntegerStep:
    """bits: the weights' (a mac step's may be fewer than the file's, accfit.py)."""
    out = tensors[s.name]
    step = IntegerStep(s.name, s.kind, s.op, s.inputs, s.covers)
    a = step.arrays
    channels = plan.graph.shapes[s.name][0]
    if s.kind == "mac":
        x = tensors[s.inputs[0]]
        qw = bias_room(s, quantize_weight(s.weight, bits, weight_method, pow2_weights), x.scale, accumulator, bits,
                       weight_method)
        a["weight"] = qw.codes
        mb = accumulator.multiplier_bits
        if weight_method == "per-channel":
            pairs = [quantize_multiplier(x.scale * sc / out.scale, mb) for sc in qw.scale]
            m = np.array([p[0] for p in pairs], np.int64)
            r = np.array([p[1] for p in pairs], np.int64)
        else:  # one multiplier; the shift scaler's s_o joins the right shift
            m0, r0 = quantize_multiplier(x.scale * qw.layer_scale / out.scale, mb)
            m = np.full(channels, m0, np.int64)
            r = r0 + qw.shifts.astype(np.int64)
            too_far = r > 62  # below half an output code whatever the sum: the result is 0
            m[too_far], r[too_far] = 0, 62
        a["lo"], a["hi"] = _clamp_codes(s, out, channels)
        a["bias"] = _bias_codes(s, s.bias / (x.scale * qw.scale), accumulator, qw.codes,
                                max(abs(x.lo), abs(x.hi)), m, r, a["lo"], a["hi"])
        lost = (m == 0) & (np.abs(s.bias) / out.scale >= 0.5)
        if lost.any():  # the multiplier underflowed: the bias alone would move the output
            o = int(np.argmax(lost))
            raise UserError(f"layer {s.covers[0]} cannot be represented: channel {o}'s requantization "
                            f"multiplier is below 2**-62 while its bias alone is "
                            f"{s.bias[o] / out.scale:.3g} output codes (its weights are too small for "
                            f"their bias at one scale per layer; try --per-channel or --shift-scaler)")
        a["multiplier"], a["shift"] = m, r
        step.weight_scale = qw.scale
        if weight_method == "shift-scaler":
            step.weight_shift = qw.shifts
    elif s.kind == "add":
        ins = [tensors[i] for i in s.inputs]
        m, r = common_shift_multipliers([t.scale / out.scale for t in ins])
        a["multiplier"], a["shift"] = m, np.int64(r)
        a["lo"], a["hi"] = _clamp_codes(s, out, channels)
    elif s.kind == "concat":
        ms, rs = [], []
        for i in s.inputs:
            m, r = common_shift_multipliers([tensors[i].scale / out.scale])
            ms.append(m[0])
            rs.append(r)
        a["multiplier"], a["shift"] = np.array(ms, np.int64), np.array(rs, np.int64)
    elif s.kind in ("avgpool", "gap"):
        x = tensors[s.inputs[0]]
        _, h, w = plan.graph.shapes[s.inputs[0]]
        counts = window_counts(s.op, h, w)
        m, r = common_shift_multipliers(x.scale / (out.scale * counts))
        a["multiplier"], a["shift"] = m, np.int64(r)
    elif s.kind == "clamp":
        a["lo"], a["hi"] = _clamp_codes(s, out, channels)
    elif s.kind == "mul":
        sa, sb = (tensors[i].scale for i in s.inputs)
        m, r = common_shift_multipliers([sa * sb / out.scale])
        a["multiplier"], a["shift"] = m, np.int64(r)
    elif s.kind == "lut":
        a["lut"] = lookup_table(s.op, tensors[s.inputs[0]], out)
    return step


def lookup_table(op, x: Tensor, out: Tensor) -> np.ndarray:
    """The output code of every input code x.lo..x.hi of an element-wise activation: the
    activation of the code's real value, rounded to the nearest output code (ties to even) and
    clamped to the output's codes. Exact by construction: the table is the integer function."""
    codes = np.arange(x.lo, x.hi + 1, dtype=np.int64)
    y = op.forward([(codes * x.scale).reshape(1, -1)], {}).reshape(-1)
    return np.clip(np.rint(y / out.scale), out.lo, out.hi).astype(np.int64)


BIAS_SHARE_BITS = 2  # a bias may take at most a quarter of the accumulator's range


def bias_room(s: PlanStep, qw, x_scale: float, accumulator: Accumulator, bits: int, method: str):
    """qw with coarser weight scales where a bias, in accumulator units (bias / (input scale *
    the channel's weight scale)), would take more than 2**-BIAS_SHARE_BITS of the accumulator's
    range: a channel of tiny weights beside a real bias (the shift scaler gives it its largest
    shift, 15), or 16-bit codes whose scales leave a 32-bit accumulator no room for the bias.
    First per channel (the shift scaler lowers s_o; per-channel scales grow), then, for what is
    left, the whole layer's scale (fewer weight bits), by the powers of two that bring every
    bias within its share; the weights are requantized at the coarser scales."""
    from .fixedpoint import qmax
    budget = float(1 << (accumulator.bits - 1 - BIAS_SHARE_BITS))

    def needed():
        real = np.abs(s.bias / (x_scale * qw.scale))
        k = np.zeros(len(real), np.int64)
        over = real >= budget
        k[over] = np.ceil(np.log2(real[over] / budget)).astype(np.int64) + 1
        return k
    k = needed()
    if not k.any():
        return qw
    if method == "shift-scaler":  # lower s_o (it cannot go below 0)
        k = np.minimum(k, qw.shifts.astype(np.int64))
        qw.shifts = (qw.shifts.astype(np.int64) - k).astype(np.uint8)
    elif method != "per-channel":
        k[:] = 0
    qw.scale = qw.scale * np.ldexp(1.0, k)
    layer = int(needed().max())  # what per-channel freedom could not give: the layer's scale
    qw.scale, qw.layer_scale = qw.scale * 2.0 ** layer, qw.layer_scale * 2.0 ** layer
    w = np.asarray(s.weight, np.float64).reshape(len(k), -1)
    codes = np.rint(w / qw.scale[:, None]).clip(-qmax(bits), qmax(bits))
    qw.codes = codes.reshape(qw.codes.shape).astype(qw.codes.dtype)
    return qw


def _bias_codes(s: PlanStep, real: np.ndarray, accumulator: Accumulator, codes: np.ndarray, x_big: int,
                m: np.ndarray, r: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The bias in accumulator units. A channel whose bias leaves the accumulator has an output
    its bias alone decides (the sums cannot move it off the clamp): its bias becomes the smallest
    one that decides the same clamped output for every input code (the worst-case sum plus what
    drives the output past its clamp), so the result is unchanged. If even that does not fit,
    the layer is refused with its name."""
    lim = 1 << (accumulator.bits - 1)
    bad = ~(np.abs(real) < lim - 1)
    if not bad.any():
        return np.rint(real).astype(np.int64)
    out = np.where(bad, 0.0, real)
    worst = np.abs(codes.astype(np.int64)).reshape(len(codes), -1).sum(axis=1) * x_big
    for o in np.flatnonzero(bad):
        if not np.isfinite(real[o]):
            raise UserError(f"layer {s.covers[0]} cannot be represented: channel {o}'s bias is not finite "
                            "in accumulator units")
        mult = m[o] / 2.0 ** r[o]
        edge = abs(int(lo[o] if real[o] < 0 else hi[o])) + 1
        need = int(worst[o]) + (int(np.ceil(edge / mult)) + 1 if mult > 0 else 0)
        if need >= lim - 1:
            raise UserError(f"layer {s.covers[0]} cannot be represented: channel {o}'s bias is "
                            f"{real[o]:.3g} in accumulator units, beyond the {accumulator.bits}-bit "
                            f"accumulator (its weights are too small for their bias)")
        out[o] = np.sign(real[o]) * need
    return np.rint(out).astype(np.int64)
