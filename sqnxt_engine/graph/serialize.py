"""Graphs as plain JSON-able dicts, so that a weight file can carry a network that is not in
the zoo (one imported from ONNX or a prototxt). Operators are written as their kind and fields."""
from __future__ import annotations

from dataclasses import fields

from ..errors import GraphError
from .graph import Graph, Node
from .ops import OPS


def graph_to_dict(graph: Graph) -> dict:
    return {
        "name": graph.name,
        "input_shape": list(graph.input_shape),
        "outputs": list(graph.outputs),
        "nodes": [{"name": n.name, "inputs": list(n.inputs), "op": n.op.kind,
                   "args": {f.name: _plain(getattr(n.op, f.name)) for f in fields(n.op)}}
                  for n in graph.nodes],
    }


def graph_from_dict(d: dict, meta: dict | None = None) -> Graph:
    try:
        nodes = []
        for nd in d["nodes"]:
            cls = OPS.get(nd["op"])
            if cls is None:
                raise GraphError(f"node {nd['name']!r}: unknown operator {nd['op']!r}")
            args = {k: tuple(v) if isinstance(v, list) else v for k, v in nd.get("args", {}).items()}
            nodes.append(Node(nd["name"], cls(**args), tuple(nd["inputs"])))
        return Graph(d["name"], tuple(d["input_shape"]), nodes, d.get("outputs"), meta)
    except (KeyError, TypeError) as e:
        raise GraphError(f"malformed graph description ({type(e).__name__}: {e})") from None


def _plain(v):
    return list(v) if isinstance(v, tuple) else v
