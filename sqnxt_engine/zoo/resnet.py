"""CIFAR ResNets (He et al., arXiv 1512.03385) and ShiftResNets (Wu et al., arXiv 1711.08141), one
builder for both (MODELS.md, "Shift").

Skeleton, as the shift authors' CIFAR code has it: a 3x3 stem to 16 channels + BN + ReLU; three
stages of 16, 32 and 64 channels with n = 3, 9 or 18 blocks each (ResNet-20, -56, -110: 6n + 2
layers), the first block of stages 2 and 3 with stride 2; global average pool; linear with bias.
Blocks:
- basic (ResNet): 3x3 conv (carries the stride) + BN + ReLU, 3x3 conv + BN;
- CSC (ShiftResNet, expansion eps): 1x1 conv C_in -> eps C + BN + ReLU, shift (k = 3), 1x1 conv
  eps C -> C (carries the stride, so the shift runs at the input's resolution) + BN.
Both add the shortcut, identity or (when the shape changes) 1x1 conv with the stride + BN, and
end in ReLU. The ReLU after the add is the authors' ShiftResNet code (`models/shiftresnet.py`);
an earlier file of theirs put it before the add instead, which changes no count.
Convolutions have no bias. Names: `ResNet-20`, `ShiftResNet-56-e6` (eps = 6).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..errors import UserError
from ..functional import SHIFT_ASSIGNMENTS
from ..graph import ops as O
from ..graph.graph import Graph, GraphBuilder
from .preprocess import PRESETS

BLOCKS_PER_STAGE = {20: 3, 56: 9, 110: 18}
EXPANSIONS = (1, 3, 6, 9)  # the ShiftResNet table's expansion rates
STAGE_CHANNELS = (16, 32, 64)
CIFAR10 = {**PRESETS["cifar10"].meta(), "labels": "cifar10"}


@dataclass(frozen=True)
class CifarResNetSpec:
    """depth: 20, 56 or 110 (or any 6n + 2); expansion: None for basic blocks (ResNet), eps for CSC
    modules (ShiftResNet); shift_assignment: the shift's channel assignment (functional.shift_groups)."""
    depth: int = 20
    expansion: float | None = None
    input_size: int = 32
    in_channels: int = 3
    num_classes: int = 10
    shift_assignment: str = "interleaved"

    def __post_init__(self):
        def whole(v):
            return isinstance(v, int) and not isinstance(v, bool)
        for key in ("depth", "input_size", "in_channels", "num_classes"):  # options come from users
            v = getattr(self, key)
            if not whole(v) or not 0 < v <= 1 << 31:
                raise UserError(f"CIFAR ResNet option {key}: {v!r:.60} is not a positive integer")
        if self.expansion is not None and (isinstance(self.expansion, bool)
                                           or not isinstance(self.expansion, (int, float))
                                           or not 0 < self.expansion < 1e6):
            raise UserError(f"CIFAR ResNet option expansion: {self.expansion!r:.60} is not a positive number")
        if not isinstance(self.shift_assignment, str):
            raise UserError(f"CIFAR ResNet option shift_assignment: {self.shift_assignment!r:.60} is not a string")
        if self.depth < 8 or (self.depth - 2) % 6:
            raise UserError(f"a CIFAR ResNet has 6n + 2 layers (20, 56, 110, ...), not {self.depth}")
        if self.expansion is not None and self.expansion <= 0:
            raise UserError(f"expansion must be positive, got {self.expansion}")
        if self.shift_assignment not in SHIFT_ASSIGNMENTS:
            raise UserError(f"unknown shift assignment {self.shift_assignment!r} "
                            f"({', '.join(SHIFT_ASSIGNMENTS)})")


def build_cifar_resnet(spec: CifarResNetSpec, name: str) -> Graph:
    meta = dict(CIFAR10, architecture=name, family="cifar-resnet", input_size=spec.input_size,
                resize=spec.input_size)
    b = GraphBuilder(name, (spec.in_channels, spec.input_size, spec.input_size), meta)
    x = b.conv_bn_act("stem", b.input, STAGE_CHANNELS[0], 3, 1, 1)
    for s, channels in enumerate(STAGE_CHANNELS, start=1):
        for u in range(1, (spec.depth - 2) // 6 + 1):
            stride = 2 if (u == 1 and s > 1) else 1
            name_u = f"stage{s}.unit{u}"
            if spec.expansion is None:
                x = basic_block(b, name_u, x, channels, stride)
            else:
                x = csc_module(b, name_u, x, channels, stride, spec.expansion, spec.shift_assignment)
    x = b.add("flatten", O.Flatten(), b.add("pool", O.GlobalAvgPool(), x))
    b.add("fc", O.Linear(spec.num_classes, bias=True), x)
    return b.build()


def _residual(b: GraphBuilder, name: str, x: str, branch: str, channels: int, stride: int) -> str:
    """ReLU(branch + shortcut): identity, or 1x1 conv with the stride + BN when the shape changes."""
    shortcut = x
    if stride != 1 or b.channels(x) != channels:
        shortcut = b.conv_bn_act(f"{name}.shortcut", x, channels, 1, stride, act=None)
    return b.relu(f"{name}.activ", b.add(f"{name}.add", O.Add(), branch, shortcut))


def basic_block(b: GraphBuilder, name: str, x: str, channels: int, stride: int) -> str:
    h = b.conv_bn_act(f"{name}.conv1", x, channels, 3, stride, 1)
    h = b.conv_bn_act(f"{name}.conv2", h, channels, 3, 1, 1, act=None)
    return _residual(b, name, x, h, channels, stride)


def csc_module(b: GraphBuilder, name: str, x: str, channels: int, stride: int, expansion: float,
               assignment: str = "interleaved") -> str:
    """Conv-shift-conv: 1x1 to int(eps C) + BN + ReLU, shift 3x3, 1x1 to C with the stride + BN."""
    h = b.conv_bn_act(f"{name}.conv1", x, int(channels * expansion), 1)
    h = b.add(f"{name}.shift", O.Shift(3, 1, assignment), h)
    h = b.conv_bn_act(f"{name}.conv2", h, channels, 1, stride, act=None)
    return _residual(b, name, x, h, channels, stride)


# ---- names -------------------------------------------------------------------------------

_NAME = re.compile(r"^(?P<shift>Shift)?ResNet-(?P<depth>\d+)(?:-e(?P<eps>\d+(?:\.\d+)?))?$", re.I)


def spec_from_name(name: str) -> CifarResNetSpec | None:
    """'ResNet-56' or 'ShiftResNet-20-e3' as a spec; None for other names. Depths by name are the
    authors' 20, 56 and 110 only: 'ResNet-50' means the ImageNet bottleneck network to most
    readers, not the CIFAR one of 6 x 8 + 2 layers (any 6n + 2 is the `depth` option)."""
    m = _NAME.match(name)
    if not m or bool(m["shift"]) != (m["eps"] is not None) or int(m["depth"]) not in BLOCKS_PER_STAGE:
        return None
    eps = None if m["eps"] is None else float(m["eps"])
    return CifarResNetSpec(depth=int(m["depth"]), expansion=eps)


def names() -> list[str]:
    """The ResNet baselines and the twelve ShiftResNets of the authors' table."""
    return ([f"ResNet-{d}" for d in BLOCKS_PER_STAGE]
            + [f"ShiftResNet-{d}-e{e}" for d in BLOCKS_PER_STAGE for e in EXPANSIONS])


def build(name: str, **options) -> Graph:
    spec = spec_from_name(name)
    if spec is None:
        raise UserError(f"{name!r} is not a CIFAR ResNet name (ResNet-20, ShiftResNet-20-e3, ...)")
    try:
        spec = replace(spec, **options)
    except TypeError as e:
        raise UserError(f"{name}: {e}") from None
    return build_cifar_resnet(spec, name)
