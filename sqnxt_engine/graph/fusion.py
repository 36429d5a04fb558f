"""Which nodes of a graph run as one step, with their parameters bound: a batch norm that is the
only consumer of a conv or fc is folded into its weights and bias (in float64), and an activation
that is the only consumer of a conv, fc, batch norm or add is fused into its producer.

The float runner compiles these steps (runtime.Runner) and the quantizer reads them (quant.plan),
so batch-norm folding and fusion have one implementation.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from ..functional import bn_scale_shift
from . import ops as O
from .graph import Graph

FOLDS_BN = (O.Conv2d, O.Linear)
FUSES_ACT = (O.Conv2d, O.Linear, O.BatchNorm, O.Add)


@dataclass
class FusedStep:
    name: str  # the name of the last node the step computes (its output's name)
    op: O.Op  # the first node's op (a conv or fc whose folded batch norm became its bias: with bias)
    inputs: tuple[str, ...]
    params: dict  # the first node's parameters by short name ('weight', ...); folded ones in float64
    activation: O.Op | None
    covers: tuple[str, ...]  # every node the step computes (the op's, a folded BN's, the act's)


def fused_steps(graph: Graph, weights: Mapping, fuse: bool = True) -> list[FusedStep]:
    """The graph's steps in order, with `weights` ({'<node>.<param>': array}, checked against the
    graph by the caller) bound; fuse=False keeps every node its own step."""
    by_node = node_params(weights)
    consumers = graph.consumers()
    sole = {n: c[0] for n, c in consumers.items() if len(c) == 1 and n not in graph.outputs}
    absorbed: set[str] = set()  # nodes computed by an earlier step
    steps: list[FusedStep] = []
    for node in graph.nodes:
        if node.name in absorbed:
            continue
        params = dict(by_node.get(node.name, {}))
        covers = [node.name]
        nxt = sole.get(node.name)
        if fuse and isinstance(node.op, FOLDS_BN) and nxt and isinstance(graph[nxt].op, O.BatchNorm):
            params = fold_bn(params, graph[nxt].op, by_node.get(nxt, {}))
            covers.append(nxt)
            nxt = sole.get(nxt)
        act = None
        if fuse and isinstance(node.op, FUSES_ACT) and nxt and isinstance(graph[nxt].op, O.ACTIVATIONS):
            act = graph[nxt].op
            covers.append(nxt)
        op = node.op
        if isinstance(op, FOLDS_BN) and "bias" in params and not op.bias:
            op = replace(op, bias=True)  # a folded batch norm became its bias
        absorbed.update(covers[1:])
        steps.append(FusedStep(covers[-1], op, node.inputs, params, act, tuple(covers)))
    return steps


def node_params(weights: Mapping) -> dict[str, dict]:
    """{node: {param: array}} from {'<node>.<param>': array} (a node's name may hold dots, a
    parameter's may not)."""
    out: dict[str, dict] = {}
    for key, value in weights.items():
        node, dot, param = key.rpartition(".")
        if dot:
            out.setdefault(node, {})[param] = value
    return out


def fold_bn(params: Mapping, bn: O.BatchNorm, bn_params: Mapping) -> dict:
    """A conv's or fc's weight and bias with the batch norm after it folded in, in float64."""
    scale, shift = bn_scale_shift(bn_params["gamma"], bn_params["beta"], bn_params["mean"],
                                  bn_params["var"], bn.eps)
    w = np.asarray(params["weight"], np.float64)
    w = w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    b = np.asarray(params.get("bias", 0.0), np.float64) * scale + shift
    return {"weight": w, "bias": b}
