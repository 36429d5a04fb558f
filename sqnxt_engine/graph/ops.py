"""The operators of the graph IR: one class per operator.

Each operator is a small immutable spec that knows its output shape, the shapes of the
parameters it owns, its parameter and MAC counts, and how to run on NumPy arrays.
Shapes are per sample, without the batch axis: (C, H, W) for feature maps, (F,) for vectors.

Counting conventions (MODELS.md): parameters are weights + biases + batch-norm scale and
shift (running statistics are not parameters); MACs are the multiply-accumulates of
convolutions and fully connected layers, plus one per output element for a bias or a batch
norm (a batch norm right after a biased conv folds into that bias and adds nothing).
Pooling, activations, additions and concatenations count no MACs.

Arguments are checked when an operator is made, from one declaration per operator: each field's
annotated type (int, float, bool, str, a tuple of ints), with every int non-negative (and at least 1
for the fields named in `positive`), every float finite, and every str one of the field's `choices`.
Operators come from files (ONNX, prototxt, graphs stored in weight files), so a zero stride or a
three-value kernel is a GraphError naming the operator, never a crash later in a kernel.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import cache
from math import isfinite, prod
from typing import ClassVar, get_type_hints

import numpy as np

from .. import functional as F
from ..errors import GraphError

Shape = tuple[int, ...]


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _ints(v, what: str) -> tuple:
    if not isinstance(v, (tuple, list)) or not all(_is_int(x) for x in v):
        raise GraphError(f"{what} must be an int or a list of ints, got {v!r:.80}")
    return tuple(int(x) for x in v)


def pair(v) -> tuple[int, int]:
    """An int or a pair of ints, as a pair."""
    if _is_int(v):
        return (int(v), int(v))
    v = _ints(v, "a 2-D size")
    if len(v) != 2:
        raise GraphError(f"a 2-D size needs one or two values, got {len(v)}: {v}")
    return v


def quad(v) -> tuple[int, int, int, int]:
    """Padding as (top, bottom, left, right) from an int, a (vertical, horizontal) pair or a quad."""
    if _is_int(v):
        return (int(v),) * 4
    v = _ints(v, "padding")
    if len(v) == 2:
        return (v[0], v[0], v[1], v[1])
    if len(v) == 4:
        return v
    raise GraphError(f"padding must be an int, a pair or (top, bottom, left, right), got {v}")


# Ints larger than this are no size any network has; refusing them keeps shape arithmetic small.
_MAX_ARG = 1 << 31


@cache
def _hints(cls) -> dict:
    return get_type_hints(cls)


def _check_args(op: Op) -> None:
    """Every field of `op` against its annotated type and range (see the module notes)."""
    hints = _hints(type(op))
    for f in fields(op):
        v, hint = getattr(op, f.name), hints[f.name]
        where = f"{op.kind}: {f.name}"
        if hint is bool:
            if not isinstance(v, (bool, np.bool_)):
                raise GraphError(f"{where} must be true or false, got {v!r:.80}")
            v = bool(v)
        elif hint is str:
            choices = op.choices.get(f.name, ())
            if not isinstance(v, str) or v not in choices:
                raise GraphError(f"{where} must be one of {', '.join(choices)}, got {v!r:.80}")
        elif hint is float:
            if not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)) or not isfinite(v):
                raise GraphError(f"{where} must be a finite number, got {v!r:.80}")
            v = float(v)
        else:  # int, or a tuple of ints (normalised by pair/quad in __post_init__ first)
            values = _ints(v, where) if isinstance(v, (tuple, list)) else (v,)
            if not all(_is_int(x) for x in values):
                raise GraphError(f"{where} must be an integer, got {v!r:.80}")
            low = 1 if f.name in op.positive else 0
            if not all(low <= x <= _MAX_ARG for x in values):
                raise GraphError(f"{where} must be {'positive' if low else 'non-negative'} "
                                 f"(at most {_MAX_ARG:,}), got {v!r:.80}")
            v = tuple(int(x) for x in values) if isinstance(v, (tuple, list)) else int(v)
        object.__setattr__(op, f.name, v)


def _need_map(op: Op, shape: Shape) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise GraphError(f"{op.kind} needs a (C, H, W) input, got {shape}")
    return shape


@dataclass(frozen=True)
class Op:
    """Base operator. Subclasses set `kind`, and override what differs from 'one input, same shape'."""

    kind: ClassVar[str] = "op"
    arity: ClassVar[int | None] = 1  # None: one or more inputs
    trainable: ClassVar[tuple[str, ...]] = ()  # parameter names that count as parameters
    positive: ClassVar[tuple[str, ...]] = ()  # int fields that must be at least 1
    choices: ClassVar[dict[str, tuple[str, ...]]] = {}  # the values each str field may take

    def __post_init__(self):
        _check_args(self)

    def output_shape(self, shapes: list[Shape]) -> Shape:
        return shapes[0]

    def param_shapes(self, shapes: list[Shape]) -> dict[str, Shape]:
        return {}

    def params(self, shapes: list[Shape]) -> int:
        ps = self.param_shapes(shapes)
        return sum(prod(ps[name]) for name in self.trainable if name in ps)

    def macs(self, shapes: list[Shape], out: Shape) -> int:
        return 0

    def forward(self, xs: list[np.ndarray], p: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def prepare(self, p: dict[str, np.ndarray], dtype) -> Callable[[list[np.ndarray]], np.ndarray]:
        """The forward pass specialised to fixed parameters, for a runner that calls it many times.
        Operators with costly per-call set-up (convolution) override it."""
        return lambda xs: self.forward(xs, p)

    def describe(self) -> str:
        return self.kind


@dataclass(frozen=True)
class Conv2d(Op):
    out_channels: int
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: bool = False

    kind: ClassVar[str] = "conv"
    trainable: ClassVar[tuple[str, ...]] = ("weight", "bias")
    positive: ClassVar[tuple[str, ...]] = ("out_channels", "kernel", "stride", "dilation", "groups")

    def __post_init__(self):
        object.__setattr__(self, "kernel", pair(self.kernel))
        object.__setattr__(self, "stride", pair(self.stride))
        object.__setattr__(self, "padding", quad(self.padding))
        object.__setattr__(self, "dilation", pair(self.dilation))
        super().__post_init__()
        if self.out_channels % self.groups:
            raise GraphError(f"conv: {self.out_channels} output channels do not split into {self.groups} groups")

    def output_shape(self, shapes):
        c, h, w = _need_map(self, shapes[0])
        if c % self.groups:
            raise GraphError(f"conv: {c} input channels do not split into {self.groups} groups")
        t, b, l, r = self.padding
        ho = F.out_size(h, self.kernel[0], self.stride[0], t, b, self.dilation[0])
        wo = F.out_size(w, self.kernel[1], self.stride[1], l, r, self.dilation[1])
        if ho <= 0 or wo <= 0:
            raise GraphError(f"conv: kernel {self.kernel} does not fit the {h}x{w} input")
        return (self.out_channels, ho, wo)

    def param_shapes(self, shapes):
        cin = shapes[0][0]
        ps = {"weight": (self.out_channels, cin // self.groups) + self.kernel}
        if self.bias:
            ps["bias"] = (self.out_channels,)
        return ps

    def dense_macs(self, shapes, out) -> int:
        cin = shapes[0][0]
        return prod(out) * (cin // self.groups) * self.kernel[0] * self.kernel[1]

    def macs(self, shapes, out):
        return self.dense_macs(shapes, out) + (prod(out) if self.bias else 0)

    def forward(self, xs, p):
        return self.prepare(p, xs[0].dtype)(xs)

    def prepare(self, p, dtype, clamp=None):
        """clamp: (lo, hi) of an activation fused into the plan (`bounds` of ReLU, ReLU6)."""
        plan = F.ConvPlan(p["weight"], p.get("bias"), self.stride, self.padding, self.dilation,
                          self.groups, dtype, clamp)
        run = lambda xs: plan(xs[0])  # noqa: E731
        run.conv_plan = plan  # what a compiled pass builds its native steps from (runtime.runner)
        return run

    def describe(self):
        kh, kw = self.kernel
        s = f"conv {kh}x{kw}"
        if self.stride != (1, 1):
            s += f"/{self.stride[0]}" if self.stride[0] == self.stride[1] else f"/{self.stride}"
        if self.groups > 1:
            s += f" g{self.groups}"
        return s


@dataclass(frozen=True)
class BatchNorm(Op):
    eps: float = 1e-5

    kind: ClassVar[str] = "bn"
    trainable: ClassVar[tuple[str, ...]] = ("gamma", "beta")
    # PyTorch's BatchNorm parameter and buffer names -> this op's (the one place the map is
    # written: the pytorchcv and EfficientNet converters and sqnxt-train's torch module read it)
    torch_names: ClassVar[dict[str, str]] = {"weight": "gamma", "bias": "beta",
                                             "running_mean": "mean", "running_var": "var"}

    def param_shapes(self, shapes):
        c = (shapes[0][0],)
        return {"gamma": c, "beta": c, "mean": c, "var": c}

    def macs(self, shapes, out):
        return prod(out)

    def forward(self, xs, p):
        return F.batch_norm(xs[0], p["gamma"], p["beta"], p["mean"], p["var"], self.eps)


_CONSTANTS: dict = {}


def _constant_like(y: np.ndarray, value: float) -> np.ndarray:
    """A read-only array of `value` shaped like `y`, from a cached buffer. NumPy's maximum and
    minimum run vectorised against an array but not against a scalar (NumPy 2.4, float32: 3x
    slower), and these run after nearly every layer."""
    key = (y.dtype.str, value)
    buf = _CONSTANTS.get(key)
    if buf is None or buf.size < y.size:
        buf = np.full(max(y.size, 1 << 16), value, dtype=y.dtype)
        buf.flags.writeable = False
        _CONSTANTS[key] = buf
    return buf[: y.size].reshape(y.shape)


@dataclass(frozen=True)
class ReLU(Op):
    kind: ClassVar[str] = "relu"
    # an activation that is a clamp to (lo, hi) can be fused into a convolution's epilogue
    bounds: ClassVar[tuple[float, float] | None] = (0.0, float("inf"))

    def forward(self, xs, p):
        return np.maximum(xs[0], 0)

    def apply_(self, y: np.ndarray) -> None:
        """In place, for an activation fused into the producing layer."""
        np.maximum(y, _constant_like(y, 0.0), out=y)


@dataclass(frozen=True)
class ReLU6(Op):
    kind: ClassVar[str] = "relu6"
    bounds: ClassVar[tuple[float, float] | None] = (0.0, 6.0)

    def forward(self, xs, p):
        return np.clip(xs[0], 0, 6)

    def apply_(self, y):
        np.maximum(y, _constant_like(y, 0.0), out=y)
        np.minimum(y, _constant_like(y, 6.0), out=y)


@dataclass(frozen=True)
class LeakyReLU(Op):
    slope: float = 0.1
    kind: ClassVar[str] = "leaky_relu"
    bounds: ClassVar[tuple[float, float] | None] = None  # not a clamp

    def forward(self, xs, p):
        x = xs[0]
        return np.where(x > 0, x, x * x.dtype.type(self.slope))

    def apply_(self, y):
        np.multiply(y, np.where(y > 0, 1, self.slope).astype(y.dtype), out=y)


@dataclass(frozen=True)
class Sigmoid(Op):
    kind: ClassVar[str] = "sigmoid"
    bounds: ClassVar[tuple[float, float] | None] = None  # not a clamp

    def forward(self, xs, p):
        return F.sigmoid(xs[0])

    def apply_(self, y):
        y[...] = F.sigmoid(y)


@dataclass(frozen=True)
class HardSigmoid(Op):
    """max(0, min(1, alpha x + beta)); PyTorch's hardsigmoid is alpha 1/6, beta 1/2."""
    alpha: float = 0.2
    beta: float = 0.5
    kind: ClassVar[str] = "hard_sigmoid"
    bounds: ClassVar[tuple[float, float] | None] = None  # a clamp of alpha x + beta, not of x

    def forward(self, xs, p):
        return F.hard_sigmoid(xs[0], self.alpha, self.beta)

    def apply_(self, y):
        y[...] = F.hard_sigmoid(y, self.alpha, self.beta)


@dataclass(frozen=True)
class HardSwish(Op):
    """x * hardsigmoid(x) with alpha 1/6, beta 1/2 (ONNX HardSwish, MobileNet-v3)."""
    kind: ClassVar[str] = "hard_swish"
    bounds: ClassVar[tuple[float, float] | None] = None

    def forward(self, xs, p):
        return xs[0] * F.hard_sigmoid(xs[0], 1 / 6, 0.5)

    def apply_(self, y):
        y *= F.hard_sigmoid(y, 1 / 6, 0.5)


@dataclass(frozen=True)
class SiLU(Op):
    """x * sigmoid(x) (ONNX Swish with alpha 1; exporters also write it as Sigmoid and Mul)."""
    kind: ClassVar[str] = "silu"
    bounds: ClassVar[tuple[float, float] | None] = None

    def forward(self, xs, p):
        return xs[0] * F.sigmoid(xs[0])

    def apply_(self, y):
        y *= F.sigmoid(y)


@dataclass(frozen=True)
class Mul(Op):
    """The element-wise product of two tensors of one shape, or of a (C, H, W) map and a
    (C, 1, 1) per-channel scale (squeeze-and-excitation), broadcast over H and W."""
    kind: ClassVar[str] = "mul"
    arity: ClassVar[int | None] = 2

    def output_shape(self, shapes):
        a, b = shapes
        if a == b:
            return a
        big, small = (a, b) if prod(a) >= prod(b) else (b, a)
        if len(big) != 3 or small != (big[0], 1, 1):
            raise GraphError(f"mul: inputs {a} and {b} are neither of one shape nor a (C, H, W) map "
                             "and its (C, 1, 1) per-channel scale")
        return big

    def forward(self, xs, p):
        return xs[0] * xs[1]


@dataclass(frozen=True)
class Resize(Op):
    """A feature map resized to `size` (H, W) as ONNX Resize does (functional.resize)."""
    size: tuple[int, int]
    mode: str = "nearest"
    coordinates: str = "half_pixel"
    nearest: str = "round_prefer_floor"
    kind: ClassVar[str] = "resize"
    positive: ClassVar[tuple[str, ...]] = ("size",)
    choices: ClassVar[dict[str, tuple[str, ...]]] = {
        "mode": F.RESIZE_MODES, "coordinates": F.RESIZE_COORDINATES, "nearest": F.NEAREST_ROUNDING}

    def __post_init__(self):
        object.__setattr__(self, "size", pair(self.size))
        super().__post_init__()

    def output_shape(self, shapes):
        c, _, _ = _need_map(self, shapes[0])
        return (c,) + self.size

    def forward(self, xs, p):
        return F.resize(xs[0], self.size, self.mode, self.coordinates, self.nearest)

    def describe(self):
        return f"resize {self.mode} to {self.size[0]}x{self.size[1]}"


@dataclass(frozen=True)
class Slice(Op):
    """Channels start..stop-1 of a map (or features of a vector): a channel Slice or one part of
    a channel Split."""
    start: int
    stop: int
    kind: ClassVar[str] = "slice"
    positive: ClassVar[tuple[str, ...]] = ("stop",)

    def output_shape(self, shapes):
        if not 0 <= self.start < self.stop <= shapes[0][0]:
            raise GraphError(f"slice: channels {self.start}..{self.stop - 1} are not within the "
                             f"{shapes[0][0]} of {shapes[0]}")
        return (self.stop - self.start,) + tuple(shapes[0][1:])

    def forward(self, xs, p):
        return np.ascontiguousarray(xs[0][:, self.start:self.stop])

    def describe(self):
        return f"slice channels {self.start}:{self.stop}"


@dataclass(frozen=True)
class Add(Op):
    kind: ClassVar[str] = "add"
    arity: ClassVar[int | None] = None

    def output_shape(self, shapes):
        if any(s != shapes[0] for s in shapes):
            raise GraphError(f"add: input shapes differ: {shapes}")
        return shapes[0]

    def forward(self, xs, p):
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out += x
        return out


@dataclass(frozen=True)
class Concat(Op):
    kind: ClassVar[str] = "concat"
    arity: ClassVar[int | None] = None

    def output_shape(self, shapes):
        if any(s[1:] != shapes[0][1:] for s in shapes):
            raise GraphError(f"concat: inputs differ beyond the channel axis: {shapes}")
        return (sum(s[0] for s in shapes),) + shapes[0][1:]

    def forward(self, xs, p):
        return np.concatenate(xs, axis=1)


@dataclass(frozen=True)
class _Pool2d(Op):
    kernel: tuple[int, int] = (2, 2)
    stride: tuple[int, int] = (2, 2)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    ceil_mode: bool = False
    positive: ClassVar[tuple[str, ...]] = ("kernel", "stride")

    def __post_init__(self):
        object.__setattr__(self, "kernel", pair(self.kernel))
        object.__setattr__(self, "stride", pair(self.stride))
        object.__setattr__(self, "padding", quad(self.padding))
        super().__post_init__()

    def output_shape(self, shapes):
        c, h, w = _need_map(self, shapes[0])
        t, b, l, r = self.padding
        ho = F.out_size(h, self.kernel[0], self.stride[0], t, b, 1, self.ceil_mode)
        wo = F.out_size(w, self.kernel[1], self.stride[1], l, r, 1, self.ceil_mode)
        if ho <= 0 or wo <= 0:
            raise GraphError(f"{self.kind}: window {self.kernel} does not fit the {h}x{w} input")
        return (c, ho, wo)

    def describe(self):
        return f"{self.kind} {self.kernel[0]}x{self.kernel[1]}/{self.stride[0]}" + (" ceil" if self.ceil_mode else "")


@dataclass(frozen=True)
class MaxPool(_Pool2d):
    kind: ClassVar[str] = "maxpool"

    def forward(self, xs, p):
        return F.max_pool2d(xs[0], self.kernel, self.stride, self.padding, self.ceil_mode)


@dataclass(frozen=True)
class AvgPool(_Pool2d):
    count_include_pad: bool = True
    kind: ClassVar[str] = "avgpool"

    def forward(self, xs, p):
        return F.avg_pool2d(xs[0], self.kernel, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


@dataclass(frozen=True)
class GlobalAvgPool(Op):
    kind: ClassVar[str] = "gap"

    def output_shape(self, shapes):
        c, _, _ = _need_map(self, shapes[0])
        return (c, 1, 1)

    def forward(self, xs, p):
        return F.global_avg_pool(xs[0])


@dataclass(frozen=True)
class LRN(Op):
    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 1.0
    kind: ClassVar[str] = "lrn"
    positive: ClassVar[tuple[str, ...]] = ("size",)

    def output_shape(self, shapes):
        return _need_map(self, shapes[0])

    def forward(self, xs, p):
        return F.lrn(xs[0], self.size, self.alpha, self.beta, self.k)


@dataclass(frozen=True)
class Flatten(Op):
    kind: ClassVar[str] = "flatten"

    def output_shape(self, shapes):
        return (prod(shapes[0]),)

    def forward(self, xs, p):
        return xs[0].reshape(xs[0].shape[0], -1)


@dataclass(frozen=True)
class Linear(Op):
    out_features: int
    bias: bool = True
    kind: ClassVar[str] = "fc"
    positive: ClassVar[tuple[str, ...]] = ("out_features",)
    trainable: ClassVar[tuple[str, ...]] = ("weight", "bias")

    def output_shape(self, shapes):
        if len(shapes[0]) != 1:
            raise GraphError(f"fc needs a flat (F,) input, got {shapes[0]}: insert a flatten")
        return (self.out_features,)

    def param_shapes(self, shapes):
        ps = {"weight": (self.out_features, shapes[0][0])}
        if self.bias:
            ps["bias"] = (self.out_features,)
        return ps

    def macs(self, shapes, out):
        return shapes[0][0] * self.out_features + (self.out_features if self.bias else 0)

    def forward(self, xs, p):
        x = xs[0]
        y = x @ p["weight"].astype(x.dtype, copy=False).T
        if "bias" in p:
            y += p["bias"].astype(x.dtype, copy=False)
        return y


@dataclass(frozen=True)
class Dropout(Op):
    """Identity at inference; kept so that imported graphs keep their layer names."""
    rate: float = 0.5
    kind: ClassVar[str] = "dropout"

    def forward(self, xs, p):
        return xs[0]


@dataclass(frozen=True)
class Shift(Op):
    """The shift of Wu et al. (arXiv 1711.08141): every channel moves by a fixed spatial offset,
    zeros enter at the borders (functional.shift_groups defines which channel moves where).
    kernel: the side k of the k x k neighbourhood the offsets cover (odd, so that one offset is
    the centre); dilation: the spacing of the offsets; assignment: "interleaved" (channel c in
    group c mod k^2, the authors' CUDA code) or "grouped" (contiguous groups, the paper's text).
    No parameters, no MACs: it moves data (its cost on the accelerator is data movement)."""
    kernel: int = 3
    dilation: int = 1
    assignment: str = "interleaved"

    kind: ClassVar[str] = "shift"

    def __post_init__(self):
        if not isinstance(self.kernel, int) or self.kernel < 1 or self.kernel % 2 == 0:
            raise GraphError(f"shift: kernel must be a positive odd integer, got {self.kernel!r}")
        if not isinstance(self.dilation, int) or self.dilation < 1:
            raise GraphError(f"shift: dilation must be a positive integer, got {self.dilation!r}")
        if self.assignment not in F.SHIFT_ASSIGNMENTS:
            raise GraphError(f"shift: assignment must be one of {', '.join(F.SHIFT_ASSIGNMENTS)}, "
                             f"got {self.assignment!r}")

    def output_shape(self, shapes):
        return _need_map(self, shapes[0])

    def offsets(self, channels: int) -> np.ndarray:
        """Per-channel (dy, dx), shape (C, 2)."""
        return F.shift_offsets(channels, self.kernel, self.dilation, self.assignment)

    def forward(self, xs, p):
        return F.shift(xs[0], self.kernel, self.dilation, self.assignment)

    def describe(self):
        s = f"shift {self.kernel}x{self.kernel}"
        if self.dilation != 1:
            s += f" d{self.dilation}"
        return s + (" grouped" if self.assignment == "grouped" else "")


ACTIVATIONS = (ReLU, ReLU6, LeakyReLU, Sigmoid, HardSigmoid, HardSwish, SiLU)
OPS = {cls.kind: cls for cls in (Conv2d, BatchNorm, ReLU, ReLU6, LeakyReLU, Sigmoid, HardSigmoid,
                                 HardSwish, SiLU, Mul, Resize, Slice, Add, Concat, MaxPool,
                                 AvgPool, GlobalAvgPool, LRN, Flatten, Linear, Dropout, Shift)}
