"""A network's conv and fc layers in the workload formats of the public accelerator simulators,
so that a result can be cross-checked with them: `sqnxt-emu export --format FORMAT`.

- scalesim: SCALE-Sim's topology CSV ("Layer name, IFMAP Height, IFMAP Width, Filter Height,
  Filter Width, Channels, Num Filter, Strides,"). SCALE-Sim has no padding field: the IFMAP
  extent written is the one that gives the network's output size without padding,
  (Ho - 1) x stride + R, so its output sizes and MAC counts are the network's. A depthwise
  layer is named "..._DP" with Num Filter 1 (SCALE-Sim runs such a layer channel by channel);
  another grouped layer is written with its channels per group (C / groups), which gives its
  MAC count (the filters' reuse of the input is then SCALE-Sim's, not the layer's). One stride
  per layer: a layer with different vertical and horizontal strides is refused. An fc layer is
  a 1x1 convolution of a 1x1 map.
- timeloop: one Timeloop problem per layer, as YAML documents separated by "---": a grouped
  convolution's shape (dimensions G, C, M, R, S, N, P, Q; R, P and Wstride across the width,
  S, Q and Hstride down the height, as Timeloop's CNN-Layer) and the layer's instance
  (C and M per group). Timeloop has no padding: P and Q are the network's output sizes.
- zigzag: ZigZag's workload YAML (3.x), a list of layers: operator_type Conv, its equation,
  dimension relations, loop dimensions and sizes, padding, and the operands' precision from
  the hardware (arith.word_bits for W and I, acc_bits for partial sums). Each layer reads its
  input from memory (operand_source I is the layer itself), as benchmarks/emu_peers.py runs
  them one by one: the branches of a network are not ZigZag's to schedule here.

Every value is written as YAML's flow style (JSON), so any YAML reader reads it.
"""
from __future__ import annotations

import json

from ..errors import UserError
from ..graph import ops as O
from ..kernels import ConvShape
from .hardware import Hardware
from .network import conv_shape

FORMATS = ("scalesim", "timeloop", "zigzag")
SUFFIX = {"scalesim": ".csv", "timeloop": ".yaml", "zigzag": ".yaml"}
SCALESIM_HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                   "Num Filter, Strides,")


def conv_layers(graph) -> list[tuple[str, ConvShape]]:
    """(name, ConvShape) of every conv and fc layer of a graph, in run order."""
    return [(layer.name, conv_shape(layer.op, layer.in_shapes[0])) for layer in graph.layers
            if isinstance(layer.op, (O.Conv2d, O.Linear))]


def depthwise(s: ConvShape) -> bool:
    return s.groups > 1 and s.groups == s.C == s.K


def scalesim_topology(layers: list[tuple[str, ConvShape]]) -> str:
    """SCALE-Sim's topology CSV of the layers (module doc)."""
    lines = [SCALESIM_HEADER]
    for name, s in layers:
        if s.stride[0] != s.stride[1]:
            raise UserError(f"layer {name!r}: stride {s.stride[0]}x{s.stride[1]}; SCALE-Sim's "
                            "topology takes one stride per layer")
        h = (s.Ho - 1) * s.stride[0] + s.R
        w = (s.Wo - 1) * s.stride[1] + s.S
        shown = name.replace(",", ";").replace("DP", "Dp")   # "DP" means depthwise to SCALE-Sim
        if depthwise(s):
            shown, channels, filters = shown + "_DP", s.C, 1
        else:
            channels, filters = s.C // s.groups, s.K
        lines.append(f"{shown}, {h}, {w}, {s.R}, {s.S}, {channels}, {filters}, {s.stride[0]},")
    return "\n".join(lines) + "\n"


TIMELOOP_SHAPE = {
    "name": "grouped-CNN-Layer",
    "dimensions": ["G", "C", "M", "R", "S", "N", "P", "Q"],
    "coefficients": [{"name": n, "default": 1} for n in ("Wstride", "Hstride", "Wdilation", "Hdilation")],
    "data-spaces": [
        {"name": "Weights", "projection": [[["G"]], [["C"]], [["M"]], [["R"]], [["S"]]]},
        {"name": "Inputs", "projection": [[["N"]], [["G"]], [["C"]], [["R", "Wdilation"], ["P", "Wstride"]],
                                          [["S", "Hdilation"], ["Q", "Hstride"]]]},
        {"name": "Outputs", "projection": [[["N"]], [["G"]], [["M"]], [["Q"]], [["P"]]],
         "read-write": True},
    ],
}


def timeloop_problems(layers: list[tuple[str, ConvShape]]) -> str:
    """One Timeloop problem per layer (module doc), YAML documents separated by '---'."""
    docs = []
    for name, s in layers:
        instance = {"G": s.groups, "C": s.C // s.groups, "M": s.K // s.groups, "R": s.S, "S": s.R,
                    "N": 1, "P": s.Wo, "Q": s.Ho, "Wstride": s.stride[1], "Hstride": s.stride[0],
                    "Wdilation": 1, "Hdilation": 1}
        docs.append(f"# {name}\n" + _yaml({"problem": {"shape": TIMELOOP_SHAPE, "instance": instance}}))
    return "---\n".join(docs)


def zigzag_layers(layers: list[tuple[str, ConvShape]], hw: Hardware) -> list[dict]:
    """ZigZag's workload layers (module doc)."""
    out = []
    for i, (name, s) in enumerate(layers):
        if depthwise(s):
            equation = "O[b][g][oy][ox]+=W[g][fy][fx]*I[b][g][iy][ix]"
            dims, sizes = ["B", "G"], [1, s.groups]
        elif s.groups > 1:
            equation = "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]"
            dims, sizes = ["B", "G", "K", "C"], [1, s.groups, s.K // s.groups, s.C // s.groups]
        else:
            equation = "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]"
            dims, sizes = ["B", "K", "C"], [1, s.K, s.C]
        sy, sx = s.stride
        top, bottom, left, right = s.padding
        out.append({"id": i, "name": name, "operator_type": "Conv", "equation": equation,
                    "dimension_relations": [f"ix={sx}*ox+1*fx", f"iy={sy}*oy+1*fy"],
                    "loop_dims": dims + ["OY", "OX", "FY", "FX"],
                    "loop_sizes": sizes + [s.Ho, s.Wo, s.R, s.S],
                    "operand_precision": {"W": hw.word_bits, "I": hw.word_bits, "O": hw.acc_bits,
                                          "O_final": hw.word_bits},
                    "operand_source": {"I": i},
                    "pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [s.W, s.H],
                    "padding": [[left, right], [top, bottom]]})
    return out


def zigzag_workload(layers: list[tuple[str, ConvShape]], hw: Hardware) -> str:
    return "".join(f"- {_yaml(layer, 2)[2:]}" for layer in zigzag_layers(layers, hw))


def export_text(graph, fmt: str, hw: Hardware) -> str:
    """The graph's conv and fc layers in format `fmt` (FORMATS)."""
    layers = conv_layers(graph)
    if not layers:
        raise UserError(f"{graph.name} has no conv or fc layer to export")
    if fmt == "scalesim":
        return scalesim_topology(layers)
    if fmt == "timeloop":
        return timeloop_problems(layers)
    return zigzag_workload(layers, hw)


def _yaml(doc: dict, indent: int = 0) -> str:
    """A mapping as block-style YAML, its values (scalars, lists, small mappings) in flow style
    (JSON, which YAML reads); nested mappings of mappings as blocks."""
    pad = " " * indent
    lines = []
    for k, v in doc.items():
        if isinstance(v, dict) and any(isinstance(x, (dict, list)) for x in v.values()):
            lines.append(f"{pad}{k}:\n{_yaml(v, indent + 2)}")
        else:
            lines.append(f"{pad}{k}: {json.dumps(v)}\n")
    return "".join(lines)
