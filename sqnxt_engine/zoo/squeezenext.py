"""SqueezeNext: one parametric builder for every variant (MODELS.md).

Two published forms share the skeleton (stem, four stages, head) and differ in the block:
- "paper": the authors' Caffe networks (no conv bias, BN + ReLU after every conv, separable order
  alternating over blocks, shortcut conv on the first block of every stage, v1 or v5 wiring);
- "pytorchcv": the definitions behind the public pretrained weights (conv bias, 1x3 then 3x1,
  pytorchcv's channel-reduction rule). Node names equal pytorchcv's module paths, so its state-dict
  keys map one-to-one onto weight names: `X.conv.weight` -> `X.weight`, `X.bn.weight` -> `X.bn.gamma`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace

from .. import limits
from ..errors import UserError
from ..graph import ops as O
from ..graph.graph import Graph, GraphBuilder
from .preprocess import PRESETS

# Blocks per stage. 34 and 44 have no published definition: these depth lists reproduce the
# paper's parameter counts (MODELS.md) and are a choice, not a fact.
DEPTHS = {
    "23": (6, 6, 8, 1), "23v2": (6, 6, 8, 1), "23v3": (4, 8, 8, 1), "23v4": (2, 10, 8, 1),
    "23v5": (2, 4, 14, 1), "34": (9, 9, 12, 2), "44": (12, 12, 16, 2),
}
STAGE_CHANNELS = (32, 64, 128, 256)

# preprocessing of the two families' ImageNet weights: the presets of io/images.py
IMAGENET_CAFFE = {**PRESETS["caffe-squeezenext"].meta(), "labels": "imagenet"}
IMAGENET_TORCH = {**PRESETS["imagenet-torch"].meta(), "labels": "imagenet"}


@dataclass(frozen=True)
class SqueezeNextSpec:
    """Everything that distinguishes one SqueezeNext from another.

    wiring: "parallel" (v1: the first block's branch reads the block input beside the shortcut
    conv) or "projection" (v2-v5: project first, then p + branch(p)).
    small_input: a 3x3 stem without max pool, for 28x28 / 32x32 images (CIFAR-style), of stride
    `stem_stride` (default 1; 2 quarters the work of every later layer).
    stem_stride: the stem's stride; None keeps the form's own (2 normally, 1 with small_input).
    small_stem_kernel: the small-input stem's kernel (odd; default 3, padded to keep the side);
    stem_kernel is the ImageNet stem's and does not apply to it.
    spatial: "separable" (the 3x1 / 1x3 pair) or "shift" (ours, "paper" family only: the pair
    becomes a 1x1 conv C/4 -> C/2 + BN + ReLU followed by a 3x3 shift, so that the shift sits
    between two 1x1 convolutions as in the shift paper's CSC module, on the wider C/2 tensor:
    a shift moves floor(C/9) 9 channels, none of the 8 that C/4 is in stage 1 at width 1.0).
    """
    width: float = 1.0
    depths: tuple[int, ...] = DEPTHS["23"]
    stem_kernel: int = 7
    wiring: str = "parallel"
    groups: int = 1
    family: str = "paper"
    input_size: int = 227
    in_channels: int = 3
    num_classes: int = 1000
    small_input: bool = False
    stem_stride: int | None = None
    spatial: str = "separable"
    small_stem_kernel: int = 3

    def __post_init__(self):
        if self.family not in ("paper", "pytorchcv"):
            raise UserError(f"unknown SqueezeNext family {self.family!r} (paper, pytorchcv)")
        if self.wiring not in ("parallel", "projection"):
            raise UserError(f"unknown wiring {self.wiring!r} (parallel, projection)")
        if len(self.depths) != 4 or min(self.depths) < 1:
            raise UserError(f"depths must be four positive block counts, got {self.depths}")
        # bounded before anything is built: every block is at least five convolutions
        limits.check("depths: nodes of the blocks", 5 * sum(self.depths), "max_graph_nodes")
        if self.width <= 0:
            raise UserError(f"width must be positive, got {self.width}")
        if self.spatial not in ("separable", "shift"):
            raise UserError(f"unknown spatial form {self.spatial!r} (separable, shift)")
        if self.spatial == "shift" and self.family != "paper":
            raise UserError("the shift form exists for the paper family only")
        if self.small_stem_kernel < 1 or self.small_stem_kernel % 2 == 0:
            raise UserError(f"small_stem_kernel must be odd and positive, got {self.small_stem_kernel}")
        if self.stem_stride is not None and self.stem_stride < 1:
            raise UserError(f"stem_stride must be positive, got {self.stem_stride}")

    def stage_channels(self) -> tuple[int, ...]:
        return tuple(int(c * self.width) for c in STAGE_CHANNELS)


def build_squeezenext(spec: SqueezeNextSpec, name: str) -> Graph:
    meta = dict(IMAGENET_TORCH if spec.family == "pytorchcv" else IMAGENET_CAFFE)
    meta.update(architecture=name, family=spec.family, input_size=spec.input_size)
    b = GraphBuilder(name, (spec.in_channels, spec.input_size, spec.input_size), meta)
    unit = _pytorchcv_unit if spec.family == "pytorchcv" else _paper_unit
    prefix = "features." if spec.family == "pytorchcv" else ""

    x = _stem(b, spec, prefix)
    block = 0
    for s, (depth, channels) in enumerate(zip(spec.depths, spec.stage_channels()), start=1):
        for u in range(1, depth + 1):
            block += 1
            stride = 2 if (u == 1 and s > 1) else 1
            x = unit(b, spec, f"{prefix}stage{s}.unit{u}", x, channels, stride, u == 1, block)
    return _head(b, spec, prefix, x).build()


def _stem(b: GraphBuilder, spec: SqueezeNextSpec, prefix: str) -> str:
    pytorchcv = spec.family == "pytorchcv"
    name = f"{prefix}init_block.conv" if pytorchcv else "stem"
    channels = int(64 * spec.width) if pytorchcv else 64
    if spec.small_input:
        k = spec.small_stem_kernel
        return b.conv_bn_act(name, b.input, channels, k, spec.stem_stride or 1, k // 2, bias=pytorchcv)
    pad = 1 if pytorchcv else 0
    x = b.conv_bn_act(name, b.input, channels, spec.stem_kernel, spec.stem_stride or 2, pad, bias=pytorchcv)
    return b.add(f"{prefix}init_block.pool" if pytorchcv else "pool1", O.MaxPool(3, 2, 0, True), x)


def _head(b: GraphBuilder, spec: SqueezeNextSpec, prefix: str, x: str) -> Graph:
    if spec.family == "pytorchcv":
        x = b.conv_bn_act(f"{prefix}final_block", x, int(128 * spec.width), 1, bias=True)
        x = b.add(f"{prefix}final_pool", O.GlobalAvgPool(), x)
        x = b.add("flatten", O.Flatten(), x)
        b.add("output", O.Linear(spec.num_classes, bias=True), x)
    else:
        x = b.conv_bn_act("final_block", x, 128, 1)
        x = b.add("pool", O.GlobalAvgPool(), x)
        x = b.add("flatten", O.Flatten(), x)
        b.add("fc", O.Linear(spec.num_classes, bias=False), x)
    return b


def _paper_unit(b, spec, name, x, channels, stride, first, block):
    """The authors' block: 1x1 C/2, 1x1 C/4, separable C/2 (order alternating by block), 1x1 C."""
    g = spec.groups
    if first and spec.wiring == "projection":
        x = shortcut = b.conv_bn_act(f"{name}.proj", x, channels, 1, stride)
        stride = 1
    elif first:
        shortcut = b.conv_bn_act(f"{name}.identity", x, channels, 1, stride)
    else:
        shortcut = x
    h = b.conv_bn_act(f"{name}.conv1", x, channels // 2, 1, stride, groups=g)
    h = b.conv_bn_act(f"{name}.conv2", h, channels // 4, 1)
    if spec.spatial == "shift":
        h = b.conv_bn_act(f"{name}.conv3", h, channels // 2, 1, groups=g)
        h = b.add(f"{name}.shift", O.Shift(3), h)
    else:
        seps = [((3, 1), (1, 0)), ((1, 3), (0, 1))]
        if block % 2 == 0:
            seps.reverse()
        for k, (kernel, pad) in enumerate(seps, start=3):
            h = b.conv_bn_act(f"{name}.conv{k}", h, channels // 2, kernel, 1, pad, groups=g)
    h = b.conv_bn_act(f"{name}.conv5", h, channels, 1)
    return b.relu(f"{name}.activ", b.add(f"{name}.add", O.Add(), h, shortcut))


def _pytorchcv_unit(b, spec, name, x, channels, stride, first, block):
    """pytorchcv's SqnxtUnit: reduction 1 at stride 2, 4 when channels shrink, else 2."""
    cin = b.channels(x)
    if stride == 2:
        r, resize = 1, True
    elif cin > channels:
        r, resize = 4, True
    else:
        r, resize = 2, False
    shortcut = b.conv_bn_act(f"{name}.identity_conv", x, channels, 1, stride, bias=True) if resize else x
    h = b.conv_bn_act(f"{name}.conv1", x, cin // r, 1, stride, bias=True)
    h = b.conv_bn_act(f"{name}.conv2", h, cin // (2 * r), 1, bias=True)
    h = b.conv_bn_act(f"{name}.conv3", h, cin // r, (1, 3), 1, (0, 1), bias=True)
    h = b.conv_bn_act(f"{name}.conv4", h, cin // r, (3, 1), 1, (1, 0), bias=True)
    h = b.conv_bn_act(f"{name}.conv5", h, channels, 1, bias=True)
    return b.relu(f"{name}.activ", b.add(f"{name}.add", O.Add(), h, shortcut))


# ---- names -------------------------------------------------------------------------------

_PAPER_NAME = re.compile(r"^(?P<w>\d+(?:\.\d+)?)-(?P<g>G-)?(?P<s>Shift-)?SqNxt-(?P<d>23|34|44)(?P<v>v[1-5])?$", re.I)
_PYTORCHCV_NAME = re.compile(r"^sqnxt(?P<d>23|23v5)_w(?P<w>1|3d2|2)$", re.I)
_PYTORCHCV_WIDTH = {"1": 1.0, "3d2": 1.5, "2": 2.0}


def spec_from_name(name: str) -> SqueezeNextSpec | None:
    """The spec a SqueezeNext name denotes ('1.0-SqNxt-23v5', '1.0-G-SqNxt-23', 'sqnxt23v5_w1'),
    or None if the name is not a SqueezeNext name."""
    m = _PYTORCHCV_NAME.match(name)
    if m:
        depths = DEPTHS[m["d"].lower()]
        return SqueezeNextSpec(width=_PYTORCHCV_WIDTH[m["w"].lower()], depths=depths,
                               family="pytorchcv", input_size=224)
    m = _PAPER_NAME.match(name)
    if not m:
        return None
    version = (m["v"] or "v1").lower()
    if version != "v1" and m["d"] != "23":
        raise UserError(f"{name}: versions v2-v5 exist only for depth 23")
    depth_key = m["d"] + ("" if version == "v1" else version)
    spec = SqueezeNextSpec(width=float(m["w"]), depths=DEPTHS[depth_key],
                           stem_kernel=7 if version == "v1" else 5,
                           wiring="parallel" if version == "v1" else "projection",
                           groups=2 if m["g"] else 1, spatial="shift" if m["s"] else "separable")
    return spec


def paper_names() -> list[str]:
    names = []
    for w in ("1.0", "1.5", "2.0"):
        names += [f"{w}-SqNxt-23"] + [f"{w}-SqNxt-23v{v}" for v in range(2, 6)]
        names += [f"{w}-SqNxt-34", f"{w}-SqNxt-44"]
    return names + ["1.0-G-SqNxt-23", "1.0-Shift-SqNxt-23v5"]


def pytorchcv_names() -> list[str]:
    return [f"sqnxt{d}_w{w}" for d in ("23", "23v5") for w in ("1", "3d2", "2")]


def with_options(spec: SqueezeNextSpec, **overrides) -> SqueezeNextSpec:
    """A spec with some fields replaced (e.g. small_input=True, num_classes=10, in_channels=1).
    Options come from users and weight files: a name that is no field, or a value of another
    kind than the field's default, is a UserError."""
    known = {f.name: getattr(spec, f.name) for f in fields(spec)}
    for key, value in overrides.items():
        if key not in known:
            raise UserError(f"unknown SqueezeNext option {key!r:.60} (known: {', '.join(known)})")
        overrides[key] = _option_value(key, value, known[key])
    return replace(spec, **overrides)


def _option_value(key: str, value, default):
    is_int = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, tuple):
        ok = isinstance(value, (list, tuple)) and all(is_int(v) and v > 0 for v in value)
        value = tuple(value) if ok else value
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e6
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:  # ints (stem_stride may also be None)
        ok = (is_int(value) and value > 0) or (value is None and key == "stem_stride")
    if not ok:
        raise UserError(f"SqueezeNext option {key}: {value!r:.60} is not like its default {default!r}")
    return value
