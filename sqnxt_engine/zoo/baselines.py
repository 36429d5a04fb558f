"""The baselines of the paper's Table 3 (MODELS.md): AlexNet, SqueezeNet v1.0 / v1.1, Tiny Darknet,
MobileNet v1 1.0-224. Node names follow the published Caffe / TensorFlow layer names."""
from __future__ import annotations

from ..graph import ops as O
from ..graph.graph import Graph, GraphBuilder
from .squeezenext import IMAGENET_CAFFE, IMAGENET_TORCH


def _meta(name, size, norm):
    return dict(norm, architecture=name, family="baseline", input_size=size)


def alexnet(name="AlexNet") -> Graph:
    b = GraphBuilder(name, (3, 227, 227), _meta(name, 227, IMAGENET_CAFFE))
    pool = O.MaxPool(3, 2, 0, ceil_mode=True)  # Caffe pools in ceil mode
    lrn = O.LRN(5, 1e-4, 0.75, 1.0)
    x = b.input
    for i, (ch, k, s, p, g, norm) in enumerate([(96, 11, 4, 0, 1, True), (256, 5, 1, 2, 2, True),
                                                 (384, 3, 1, 1, 1, False), (384, 3, 1, 1, 2, False),
                                                 (256, 3, 1, 1, 2, False)], start=1):
        x = b.relu(f"relu{i}", b.conv(f"conv{i}", x, ch, k, s, p, groups=g, bias=True))
        if norm:
            x = b.add(f"norm{i}", lrn, x)
        if i in (1, 2, 5):
            x = b.add(f"pool{i}", pool, x)
    x = b.add("flatten", O.Flatten(), x)
    for i in (6, 7):
        x = b.relu(f"relu{i}", b.add(f"fc{i}", O.Linear(4096), x))
        x = b.add(f"drop{i}", O.Dropout(0.5), x)
    b.add("fc8", O.Linear(1000), x)
    return b.build()


FIRES = [(16, 64), (16, 64), (32, 128), (32, 128), (48, 192), (48, 192), (64, 256), (64, 256)]


def _fire(b: GraphBuilder, name: str, x: str, squeeze: int, expand: int) -> str:
    s = b.relu(f"{name}/relu_squeeze1x1", b.conv(f"{name}/squeeze1x1", x, squeeze, 1, bias=True))
    e1 = b.relu(f"{name}/relu_expand1x1", b.conv(f"{name}/expand1x1", s, expand, 1, bias=True))
    e3 = b.relu(f"{name}/relu_expand3x3", b.conv(f"{name}/expand3x3", s, expand, 3, 1, 1, bias=True))
    return b.add(f"{name}/concat", O.Concat(), e1, e3)


def squeezenet(version: str = "1.0", name: str | None = None) -> Graph:
    """SqueezeNet v1.0 (227, conv1 96 7x7) or v1.1 (counted at 224, conv1 64 3x3). conv10 has
    pad 0, as the paper's MAC count assumes (the published v1.0 file says pad 1)."""
    name = name or f"SqueezeNet-v{version}"
    size = 227 if version == "1.0" else 224
    b = GraphBuilder(name, (3, size, size), _meta(name, size, IMAGENET_CAFFE))
    pool = O.MaxPool(3, 2, 0, ceil_mode=True)
    if version == "1.0":
        x = b.relu("relu_conv1", b.conv("conv1", b.input, 96, 7, 2, bias=True))
        pools_after = {"conv1": "pool1", "fire4": "pool4", "fire8": "pool8"}
    else:
        x = b.relu("relu_conv1", b.conv("conv1", b.input, 64, 3, 2, bias=True))
        pools_after = {"conv1": "pool1", "fire3": "pool3", "fire5": "pool5"}
    x = b.add(pools_after["conv1"], pool, x)
    for i, (sq, ex) in enumerate(FIRES, start=2):
        x = _fire(b, f"fire{i}", x, sq, ex)
        if f"fire{i}" in pools_after:
            x = b.add(pools_after[f"fire{i}"], pool, x)
    x = b.add("drop9", O.Dropout(0.5), x)
    x = b.relu("relu_conv10", b.conv("conv10", x, 1000, 1, bias=True))
    x = b.add("pool10", O.GlobalAvgPool(), x)
    b.add("flatten", O.Flatten(), x)
    return b.build()


def tiny_darknet(name="TinyDarknet") -> Graph:
    b = GraphBuilder(name, (3, 224, 224), _meta(name, 224, IMAGENET_TORCH))
    plan = [16, "M", 32, "M", (16, 1), 128, (16, 1), 128, "M", (32, 1), 256, (32, 1), 256, "M",
            (64, 1), 512, (64, 1), 512, (128, 1)]
    x, i = b.input, 0
    for item in plan:
        if item == "M":
            x = b.add(f"pool{i}", O.MaxPool(2, 2), x)
            continue
        i += 1
        ch, k = item if isinstance(item, tuple) else (item, 3)
        x = b.conv_bn_act(f"conv{i}", x, ch, k, 1, k // 2, act=O.LeakyReLU(0.1))
    x = b.conv(f"conv{i + 1}", x, 1000, 1, bias=True)  # linear classifier conv
    x = b.add("avgpool", O.GlobalAvgPool(), x)
    b.add("flatten", O.Flatten(), x)
    return b.build()


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after): the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def mobilenet_v1(name="MobileNet-v1", width: float = 1.0, size: int = 224) -> Graph:
    b = GraphBuilder(name, (3, size, size), _meta(name, size, IMAGENET_TORCH))

    def conv(nm, x, ch, k, s, groups=1):
        h = b.shapes[x][1]
        (t, bo), (l, r) = tf_same_padding(h, k, s), tf_same_padding(b.shapes[x][2], k, s)
        g = b.channels(x) if groups == "dw" else 1
        return b.conv_bn_act(nm, x, ch, k, s, (t, bo, l, r), groups=g)

    x = conv("conv0", b.input, int(32 * width), 3, 2)
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for i, (ch, s) in enumerate(plan, start=1):
        x = conv(f"conv{i}_dw", x, b.channels(x), 3, s, groups="dw")
        x = conv(f"conv{i}_pw", x, int(ch * width), 1, 1)
    x = b.add("avgpool", O.GlobalAvgPool(), x)
    x = b.add("flatten", O.Flatten(), x)
    b.add("fc", O.Linear(1000), x)
    return b.build()
