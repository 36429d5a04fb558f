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
    """The graph a dict from graph_to_dict describes; the dict may come from an untrusted file,
    so its structure is checked here and every operator's arguments by the operator itself
    (graph/ops.py). Errors are GraphErrors naming the node."""
    if not isinstance(d, dict) or not isinstance(d.get("nodes"), list):
        raise GraphError("malformed graph description: not an object with a list of nodes")
    _check(isinstance(d.get("name"), str), "graph name", d.get("name"))
    shape = d.get("input_shape")
    _check(isinstance(shape, list) and len(shape) in (1, 3) and all(
        isinstance(s, int) and not isinstance(s, bool) and 0 < s <= MAX_DIM for s in shape),
        "input_shape (1 or 3 positive ints)", shape)
    outputs = d.get("outputs")
    _check(outputs is None or (isinstance(outputs, list) and all(isinstance(o, str) for o in outputs)),
           "outputs (a list of node names)", outputs)
    nodes = []
    for nd in d["nodes"]:
        _check(isinstance(nd, dict) and isinstance(nd.get("name"), str), "node (an object with a name)", nd)
        where = f"node {nd['name']!r:.60}"
        inputs, args = nd.get("inputs"), nd.get("args", {})
        _check(isinstance(inputs, list) and all(isinstance(i, str) for i in inputs),
               f"{where}: inputs (a list of names)", inputs)
        cls = OPS.get(nd.get("op")) if isinstance(nd.get("op"), str) else None
        if cls is None:
            raise GraphError(f"{where}: unknown operator {nd.get('op')!r:.60}")
        _check(isinstance(args, dict), f"{where}: args (an object)", args)
        unknown = sorted(set(args) - {f.name for f in fields(cls)})
        if unknown:
            raise GraphError(f"{where}: {cls.kind} takes no argument {unknown[0]!r:.60}")
        try:
            op = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in args.items()})
        except GraphError as e:
            raise GraphError(f"{where}: {e}") from None
        except TypeError as e:  # a required argument missing
            raise GraphError(f"{where}: {e}") from None
        nodes.append(Node(nd["name"], op, tuple(inputs)))
    return Graph(d["name"], tuple(shape), nodes, outputs, meta)


MAX_DIM = 1 << 31  # no tensor dimension is larger; bigger numbers only make arithmetic slow


def _check(ok: bool, what: str, value) -> None:
    if not ok:
        raise GraphError(f"malformed graph description: bad {what}: {value!r:.80}")


def _plain(v):
    return list(v) if isinstance(v, tuple) else v
