"""The graph: named nodes in topological order, each an operator applied to earlier nodes.

A graph is immutable once built and validated: every input names an earlier node (or the graph
input), there are no cycles, and every node's shape can be inferred. Errors name the node.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import GraphError, UserError
from . import ops as O

INPUT = "input"


@dataclass(frozen=True)
class Node:
    name: str
    op: O.Op
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class Layer:
    """One row of a layer table: a node with its inferred shapes and counts."""
    name: str
    op: O.Op
    inputs: tuple[str, ...]
    in_shapes: tuple[O.Shape, ...]
    out_shape: O.Shape
    params: int
    macs: int


class Graph:
    """A validated network. Nodes are kept in a topological order (the order they run in)."""

    def __init__(self, name: str, input_shape: O.Shape, nodes: Iterable[Node],
                 outputs: Iterable[str] | None = None, meta: Mapping | None = None):
        self.name = name
        self.input_shape = tuple(int(s) for s in input_shape)
        nodes = list(nodes)
        if not nodes:
            raise GraphError(f"graph {name!r} has no nodes")
        self.outputs = tuple(outputs) if outputs else (nodes[-1].name,)
        self.meta = MappingProxyType(dict(meta or {}))
        self.nodes = tuple(_topological(nodes))
        self._by_name = {n.name: n for n in self.nodes}
        for out in self.outputs:
            if out not in self._by_name:
                raise GraphError(f"graph {name!r}: output {out!r} is not a node")
        self.shapes = MappingProxyType(self._infer_shapes())
        self.layers = tuple(self._layers())

    def __getitem__(self, name: str) -> Node:
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def __repr__(self):
        return f"Graph({self.name!r}, {len(self.nodes)} nodes, input {self.input_shape})"

    def _infer_shapes(self) -> dict[str, O.Shape]:
        shapes = {INPUT: self.input_shape}
        for n in self.nodes:
            try:
                shapes[n.name] = tuple(n.op.output_shape([shapes[i] for i in n.inputs]))
            except GraphError as e:
                raise GraphError(f"node {n.name!r}: {e}") from None
        return shapes

    def consumers(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {INPUT: []}
        for n in self.nodes:
            out.setdefault(n.name, [])
            for i in n.inputs:
                out[i].append(n.name)
        return out

    def _layers(self):
        for n in self.nodes:
            in_shapes = tuple(self.shapes[i] for i in n.inputs)
            out = self.shapes[n.name]
            macs = n.op.macs(list(in_shapes), out)
            if isinstance(n.op, O.BatchNorm) and self._follows_biased(n):
                macs = 0  # folds into the producer's bias: no extra work at inference
            yield Layer(n.name, n.op, n.inputs, in_shapes, out, n.op.params(list(in_shapes)), macs)

    def _follows_biased(self, n: Node) -> bool:
        src = self._by_name.get(n.inputs[0])
        return src is not None and isinstance(src.op, (O.Conv2d, O.Linear)) and src.op.bias

    def param_shapes(self) -> dict[str, O.Shape]:
        """Every parameter array the graph owns, named `<node>.<param>` (the weight-file names)."""
        out = {}
        for layer in self.layers:
            for pname, shape in layer.op.param_shapes(list(layer.in_shapes)).items():
                out[f"{layer.name}.{pname}"] = tuple(shape)
        return out

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def output_shape(self, name: str | None = None) -> O.Shape:
        return self.shapes[name or self.outputs[0]]


def _topological(nodes: list[Node]) -> list[Node]:
    """Order nodes so every input comes first; keeps the given order where it is already valid.
    Raises GraphError naming a node with a dangling input, a duplicate name or a cycle."""
    by_name: dict[str, Node] = {}
    for n in nodes:
        if not isinstance(n.op, O.Op):
            raise GraphError(f"node {n.name!r}: {n.op!r} is not an operator")
        if n.name == INPUT or n.name in by_name:
            raise GraphError(f"node {n.name!r}: name used twice")
        by_name[n.name] = n
    for n in nodes:
        if n.op.arity is not None and len(n.inputs) != n.op.arity:
            raise GraphError(f"node {n.name!r}: {n.op.kind} takes {n.op.arity} input(s), got {len(n.inputs)}")
        if not n.inputs:
            raise GraphError(f"node {n.name!r}: has no inputs")
        for i in n.inputs:
            if i != INPUT and i not in by_name:
                raise GraphError(f"node {n.name!r}: input {i!r} does not exist")
    done: set[str] = {INPUT}
    order: list[Node] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: placed

    for root in nodes:
        stack = [(root, 0)]
        while stack:
            node, k = stack.pop()
            if node.name in done:
                continue
            if k == 0:
                if state.get(node.name) == 1:
                    raise GraphError(f"node {node.name!r}: is part of a cycle")
                state[node.name] = 1
            if k < len(node.inputs):
                stack.append((node, k + 1))
                dep = node.inputs[k]
                if dep not in done:
                    if state.get(dep) == 1:
                        raise GraphError(f"node {dep!r}: is part of a cycle")
                    stack.append((by_name[dep], 0))
            else:
                state[node.name] = 2
                done.add(node.name)
                order.append(node)
    return order


@dataclass
class GraphBuilder:
    """Builds a graph one node at a time; each method returns the new node's name.

    The zoo, the importers and users write networks with it, e.g.
        b = GraphBuilder("tiny", (3, 32, 32)); x = b.conv("c1", b.input, 16, 3, padding=1)
    """
    name: str
    input_shape: O.Shape
    meta: dict = field(default_factory=dict)
    nodes: list[Node] = field(default_factory=list)
    shapes: dict = field(default_factory=dict)

    input: str = INPUT

    def __post_init__(self):
        self.shapes[INPUT] = tuple(self.input_shape)

    def add(self, name: str, op: O.Op, *inputs: str) -> str:
        if name in self.shapes:
            raise GraphError(f"node {name!r}: name used twice")
        for i in inputs:
            if i not in self.shapes:
                raise GraphError(f"node {name!r}: input {i!r} does not exist")
        try:
            self.shapes[name] = tuple(op.output_shape([self.shapes[i] for i in inputs]))
        except GraphError as e:
            raise GraphError(f"node {name!r}: {e}") from None
        self.nodes.append(Node(name, op, tuple(inputs)))
        return name

    def conv(self, name, x, out_channels, kernel, stride=1, padding=0, groups=1, bias=False, dilation=1):
        return self.add(name, O.Conv2d(out_channels, kernel, stride, padding, dilation, groups, bias), x)

    def bn(self, name, x, eps=1e-5):
        return self.add(name, O.BatchNorm(eps), x)

    def relu(self, name, x):
        return self.add(name, O.ReLU(), x)

    def conv_bn_act(self, name, x, out_channels, kernel, stride=1, padding=0, groups=1, bias=False,
                    act: O.Op | None = O.ReLU(), eps=1e-5):  # noqa: B008 (ops are immutable values)
        """conv, then batch norm `<name>.bn`, then the activation `<name>.act` (None for none)."""
        y = self.bn(f"{name}.bn", self.conv(name, x, out_channels, kernel, stride, padding, groups, bias), eps)
        return self.add(f"{name}.act", act, y) if act is not None else y

    def build(self, outputs=None) -> Graph:
        return Graph(self.name, self.input_shape, self.nodes, outputs, self.meta)

    def channels(self, name: str) -> int:
        return self.shapes[name][0]


def layer_table(graph: Graph) -> list[dict]:
    """Rows for printing: name, op, output shape, params, MACs."""
    return [{"name": l.name, "op": l.op.describe(), "output": "x".join(map(str, l.out_shape)),
             "params": l.params, "macs": l.macs} for l in graph.layers]


def check_weights(graph: Graph, arrays: Mapping[str, Any]) -> None:
    """Raise UserError naming the first mismatch between the graph's parameters and the
    arrays: walking the graph in order, a missing array or a wrong shape; then an array the
    graph has no parameter for."""
    wanted = graph.param_shapes()
    for name, shape in wanted.items():
        if name not in arrays:
            raise UserError(f"weights for {graph.name!r} lack {name} (shape {_fmt(shape)})")
        got = tuple(np.shape(arrays[name]))
        if got != tuple(shape):
            raise UserError(f"{name} has shape {_fmt(got)}, {graph.name!r} needs {_fmt(shape)}")
    for name in arrays:
        if name not in wanted:
            raise UserError(f"{name} is not a parameter of {graph.name!r}")


def _fmt(shape) -> str:
    return "x".join(map(str, shape)) or "scalar"
