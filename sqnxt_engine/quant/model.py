"""A quantized network and the pure-integer NumPy runner that executes it.

Every tensor between steps is an array of integer codes with one real scale (layer-wise,
symmetric, zero point 0): value = code * scale. Codes fit the 16-bit operand of the MAC: signed
tensors use [-(2**(bits-1) - 1), 2**(bits-1) - 1]; tensors that are >= 0 by construction
(after a ReLU or ReLU6 clamp) use the unsigned range [0, 2**bits - 1], capped at 2**15 - 1 for
16-bit codes (the operand's sign bit), so 8-bit activations after a ReLU keep all 8 bits.

Steps (the float runner's fused steps, see plan.py), all in integers:
  mac      conv or fc: exact sums of code products plus the bias (already in accumulator units)
           -> the Accumulator (width, wrap or saturate) -> requantize: one multiplier and a
           right shift per output channel (for layer-wise and shift-scaler weights one shared
           multiplier; the shift scaler only adds s_o to the right shift) -> the fused
           activation as a clamp of the codes.
  add      each input times its multiplier, one shared right shift, clamp.
  concat   each input requantized to the output scale (multiplier and shift), then stacked.
  maxpool  on the codes (monotone: the scale passes through).
  avgpool, gap   window sums, times a multiplier per output position (1/count folded in), shift.
  clamp    a ReLU the runner could not fuse: a clamp of the codes.
  mul      the product of two codes (a squeeze-and-excitation map times its (C, 1, 1) gate),
           one multiplier and a right shift to the output scale, clamp.
  lut      an element-wise activation that is not a clamp (hard-swish, hard-sigmoid, sigmoid,
           SiLU, leaky ReLU): a lookup table indexed by the input code (one entry per code of
           the input tensor: 256 or 65,536), made when the model is built from the float
           activation of each code's value, rounded to the output code. A mac or add with
           such an activation requantizes to its own calibrated tensor first.
  shift, resize (nearest), slice   move codes: exact (a shift's zeros are value 0).
  flatten, identity   the codes as they are.
The only float operations are at the edges: quantizing the input image and reading the logits.

NumPy computes a conv's sums with a float64 matrix product when every partial sum is an integer
below 2**53 (checked per layer from the codes' bounds), which is then exact; otherwise in int64.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import UserError
from ..functional import ConvPlan, max_pool2d
from ..graph import ops as O
from ..graph.graph import INPUT, Graph
from ..io.model import QUANTIZED_KEY as META_KEY
from ..io.model import load_model
from ..io.weights import save_weights
from .fixedpoint import OPERAND_BITS, Accumulator, requantize
from .plan import kind_of
from .schema import ARRAYS, FORMAT, OPTIONAL, check_structure, code_range, validate  # noqa: F401

EXACT_FLOAT = 1 << 53


@dataclass
class Tensor:
    scale: float
    lo: int
    hi: int


@dataclass
class IntegerStep:
    name: str
    kind: str
    op: O.Op
    inputs: tuple[str, ...]
    covers: tuple[str, ...]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    weight_shift: np.ndarray | None = None  # the shift scaler's s_o (already inside `shift`)
    weight_scale: np.ndarray | None = None  # per channel, when built (not in files): bias correction
    _sums: object = None

    def channel_view(self, a: np.ndarray, ndim: int) -> np.ndarray:
        """A per-output-channel array shaped to broadcast over (N, K, ...) of `ndim` dims."""
        return np.asarray(a).reshape((-1,) + (1,) * (ndim - 2))

    def mac_sums(self, x: np.ndarray) -> np.ndarray:
        """Exact int64 sums of code products (no bias) for a batch of input codes."""
        if self._sums is None:
            w = self.arrays["weight"]
            x_bound = 1 << OPERAND_BITS
            bound = x_bound * int(np.abs(w.astype(np.int64)).reshape(len(w), -1).sum(axis=1).max(initial=0))
            dtype = np.float64 if bound < EXACT_FLOAT else np.int64
            if isinstance(self.op, O.Linear):
                wt = np.ascontiguousarray(w.astype(dtype).T)
                self._sums = lambda x: x.astype(dtype) @ wt
            else:
                op = self.op
                # winograd=False: the sums must be exact, and Winograd's transforms round
                plan = ConvPlan(w.astype(dtype), None, op.stride, op.padding, op.dilation, op.groups, dtype,
                                winograd=False)
                self._sums = plan
        y = self._sums(x)
        return y if y.dtype == np.int64 else np.rint(y).astype(np.int64)

    def finish(self, acc: np.ndarray, accumulator: Accumulator) -> np.ndarray:
        """A mac step's output codes from its exact sums with bias (int64, (N, K, ...)): the
        accumulator's overflow behaviour, requantization and the clamp."""
        a = self.arrays
        v = lambda k: self.channel_view(a[k], acc.ndim)  # noqa: E731
        return requantize(accumulator.apply(acc), v("multiplier"), v("shift"), v("lo"), v("hi"))

    def bias_view(self, ndim: int) -> np.ndarray:
        return self.channel_view(self.arrays["bias"].astype(np.int64), ndim)

    def run(self, xs: list[np.ndarray], accumulator: Accumulator, tensors: dict) -> np.ndarray:
        """The step on input codes (int64 batches)."""
        a, k = self.arrays, self.kind
        if k == "mac":
            sums = self.mac_sums(xs[0])
            return self.finish(sums + self.bias_view(sums.ndim), accumulator)
        if k == "add":
            acc = sum(x * m for x, m in zip(xs, a["multiplier"].astype(np.int64)))
            return requantize(acc, 1, a["shift"], self.channel_view(a["lo"], acc.ndim),
                              self.channel_view(a["hi"], acc.ndim))
        if k == "concat":
            t = tensors[self.name]
            return np.concatenate([requantize(x, m, r, t.lo, t.hi) for x, m, r in
                                   zip(xs, a["multiplier"].astype(np.int64), a["shift"])], axis=1)
        if k == "maxpool":
            op = self.op
            # float64 holds every 16-bit code exactly; the padding (-inf) never wins a window
            return max_pool2d(xs[0].astype(np.float64), op.kernel, op.stride, op.padding,
                              op.ceil_mode).astype(np.int64)
        if k in ("avgpool", "gap"):
            t = tensors[self.name]
            return requantize(window_sums(self.op, xs[0]), a["multiplier"], a["shift"], t.lo, t.hi)
        if k == "clamp":
            x = xs[0]
            return np.clip(x, self.channel_view(a["lo"], x.ndim), self.channel_view(a["hi"], x.ndim))
        if k == "mul":  # the product of two codes, one multiplier and shift to the output scale
            t = tensors[self.name]
            return requantize(xs[0] * xs[1], a["multiplier"].astype(np.int64), a["shift"], t.lo, t.hi)
        if k == "lut":  # the producer clamped its codes to the input tensor's range
            return a["lut"].astype(np.int64)[xs[0] - tensors[self.inputs[0]].lo]
        if k in ("shift", "resize", "slice"):  # moves codes (zeros enter a shift: value 0)
            return self.op.forward(xs, {})
        if k == "flatten":
            return xs[0].reshape(len(xs[0]), -1)
        return xs[0]  # identity (dropout)


def window_sums(op: O.Op, x: np.ndarray) -> np.ndarray:
    """int64 sums of each pooling window (zero padding); global pooling: per-channel sums."""
    if isinstance(op, O.GlobalAvgPool):
        return x.sum(axis=(2, 3), keepdims=True)
    n, c, h, w = x.shape
    kh, kw = op.kernel
    sh, sw = op.stride
    t, b, l, r = op.padding
    ho, wo = pool_out_hw(op, h, w)
    hp, wp = (ho - 1) * sh + kh, (wo - 1) * sw + kw  # ceil mode may overhang the padding
    xp = np.zeros((n, c, max(hp, h + t + b), max(wp, w + l + r)), np.int64)
    xp[:, :, t:t + h, l:l + w] = x
    out = np.zeros((n, c, ho, wo), np.int64)
    for i in range(kh):
        for j in range(kw):
            out += xp[:, :, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw]
    return out


def pool_out_hw(op, h, w):
    shape = op.output_shape([(1, h, w)])
    return shape[1], shape[2]


def window_counts(op: O.Op, h: int, w: int) -> np.ndarray:
    """The divisor of each output position of an average pool, as PyTorch counts: the window
    clipped to the padded input (count_include_pad) or to the input itself."""
    if isinstance(op, O.GlobalAvgPool):
        return np.array([[h * w]], np.int64)
    ho, wo = pool_out_hw(op, h, w)
    t, b, l, r = op.padding

    def along(n_out, k, s, lo, hi, size):
        start = np.arange(n_out) * s - lo  # window start in input coordinates
        first, last = (-lo, size + hi) if op.count_include_pad else (0, size)
        return np.minimum(start + k, last) - np.maximum(start, first)

    return np.outer(along(ho, op.kernel[0], op.stride[0], t, b, h),
                    along(wo, op.kernel[1], op.stride[1], l, r, w)).astype(np.int64)


@dataclass
class QuantizedModel:
    graph: Graph
    meta: dict  # the float file's metadata (preprocessing, labels...) and META_KEY
    steps: list[IntegerStep]
    tensors: dict[str, Tensor]
    accumulator: Accumulator

    @property
    def info(self) -> dict:
        return self.meta[META_KEY]

    @property
    def bits(self) -> int:
        return int(self.info["bits"])

    @property
    def weight_bits(self) -> int:
        """The widest weight code of the file (sqnxt-quant --weight-bits; default its bits)."""
        return int(self.info.get("weight_bits", self.bits))

    def with_accumulator(self, accumulator: Accumulator) -> QuantizedModel:
        return replace(self, accumulator=accumulator)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        t = self.tensors[INPUT]
        return np.clip(np.rint(np.asarray(x, np.float64) / t.scale), t.lo, t.hi).astype(np.int64)

    def run_codes(self, xq: np.ndarray, capture: bool = False, accumulator: Accumulator | None = None,
                  mac_step=None) -> dict[str, np.ndarray]:
        """Integer codes in, {output name: codes} out (every step's, the input's too, with
        capture=True). accumulator: the datapath's, instead of the file's (the emulated
        hardware's width). mac_step: a function (step, inputs) -> output codes that computes
        the MAC steps instead of NumPy (the emulator runs them on the accelerator's kernels)."""
        acc = self.accumulator if accumulator is None else accumulator
        env = {INPUT: np.asarray(xq, np.int64)}
        for s in self.steps:
            xs = [env[i] for i in s.inputs]
            env[s.name] = (mac_step(s, xs) if mac_step is not None and s.kind == "mac"
                           else s.run(xs, acc, self.tensors))
        return env if capture else {o: env[o] for o in self.graph.outputs}

    def dequantize(self, name: str, codes: np.ndarray) -> np.ndarray:
        return codes.astype(np.float64) * self.tensors[name].scale

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Float input batch -> the first output's real values (codes times their scale)."""
        expected = self.graph.input_shape
        x = np.asarray(x)
        if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise UserError(f"{self.graph.name} takes input (N, {', '.join(map(str, expected))}), "
                            f"got {tuple(x.shape)}")
        out = self.graph.outputs[0]
        return self.dequantize(out, self.run_codes(self.quantize_input(x))[out]).astype(np.float32)

    # --- files -----------------------------------------------------------------------------

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict]:
        # arrays are named after the step's first node, like a float file's `<node>.weight`, and
        # stored in the narrowest integer type that holds them (the runner widens to int64)
        arrays = {f"{s.covers[0]}.{k}": _narrowest(v) for s in self.steps for k, v in s.arrays.items()}
        for s in self.steps:
            if s.weight_shift is not None:
                arrays[f"{s.covers[0]}.weight_shift"] = s.weight_shift
        info = dict(self.info)
        info["accumulator"] = {"bits": self.accumulator.bits, "overflow": self.accumulator.overflow}
        info["tensors"] = {n: {"scale": t.scale, "lo": t.lo, "hi": t.hi} for n, t in self.tensors.items()}
        info["steps"] = [{"name": s.name, "kind": s.kind, "inputs": list(s.inputs),
                          "covers": list(s.covers)} for s in self.steps]
        return arrays, {**self.meta, META_KEY: info}

    @classmethod
    def from_arrays(cls, graph: Graph, arrays: dict, meta: dict, source="") -> QuantizedModel:
        """Rebuild from a file's arrays and metadata, refusing the first inconsistency (the
        message starts with `source`, the file)."""
        try:
            return cls._from_arrays(graph, arrays, meta)
        except UserError as e:
            raise UserError(f"{source}: {e}" if source else str(e)) from None

    @classmethod
    def _from_arrays(cls, graph: Graph, arrays: dict, meta: dict) -> QuantizedModel:
        info = meta.get(META_KEY)
        try:
            if not isinstance(info, dict) or info.get("format") != FORMAT:
                raise UserError(f"unknown quantized format {info.get('format') if isinstance(info, dict) else info!r}")
            acc = Accumulator(int(info["accumulator"]["bits"]), info["accumulator"]["overflow"])
            tensors = {str(n): Tensor(float(t["scale"]), int(t["lo"]), int(t["hi"]))
                       for n, t in info["tensors"].items()}
            records = [(str(r["name"]), str(r["kind"]), tuple(map(str, r["inputs"])),
                        tuple(map(str, r["covers"]))) for r in info["steps"]]
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise UserError(f"malformed quantization metadata ({type(e).__name__}: {e})") from None
        for r in records:
            if r[1] not in ARRAYS:
                raise UserError(f"step {r[0]}: unknown step kind {r[1]!r}")
            for c in r[3]:
                if c not in graph:
                    raise UserError(f"step {r[0]}: {c} is not a node of {graph.name}")
        check_structure(graph, records, kind_of)
        missing = [n for n in [INPUT] + [r[0] for r in records] if n not in tensors]
        if missing:
            raise UserError(f"tensor {missing[0]} has no scale")
        steps, used = [], set()
        for r in records:
            steps.append(_step_from_record(graph, r, arrays, used))
        extra = sorted(set(arrays) - used)
        if extra:
            raise UserError(f"{extra[0]} belongs to no step of the quantized model")
        model = cls(graph, meta, steps, tensors, acc)
        validate(model)  # every shift, multiplier, scale, range and code (quant/schema.py)
        return model


def _step_from_record(graph: Graph, rec: tuple, arrays: dict, used: set) -> IntegerStep:
    name, kind, inputs, covers = rec
    op = graph[covers[0]].op
    if kind == "mac":
        op = replace(op, bias=True)
    step = IntegerStep(name, kind, op, inputs, covers)
    for k in ARRAYS[kind] + OPTIONAL.get(kind, ()):
        key = f"{covers[0]}.{k}"
        if key not in arrays:
            if k in OPTIONAL.get(kind, ()):
                continue
            raise UserError(f"quantized weights lack {key}")
        a = np.asarray(arrays[key])
        if a.dtype.kind not in "iu":
            raise UserError(f"{key} holds {a.dtype} values; a quantized file holds integers")
        step.arrays[k] = a
        used.add(key)
    if "weight_shift" in step.arrays:
        step.weight_shift = step.arrays.pop("weight_shift")
    return step


def _narrowest(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu" or a.dtype.itemsize == 1:
        return a
    lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    for t in (np.int8, np.int16, np.int32):
        if np.iinfo(t).min <= lo and hi <= np.iinfo(t).max:
            return a.astype(t)
    return a


def load_quantized(weights) -> QuantizedModel:
    """A quantized model from a file or name (io.model.load_model's lookup); a float file is
    refused with one line."""
    graph, arrays, meta = load_model(weights, quantized=True)
    return QuantizedModel.from_arrays(graph, arrays, meta, source=weights)


def save_quantized(path, model: QuantizedModel, force: bool = False):
    arrays, meta = model.to_arrays()
    return save_weights(path, meta.get("architecture", model.graph.name), arrays, meta, force=force)
