"""A runnable model from a weight file: the graph (from the zoo, or carried in the file) and its
checked arrays. The one place where weight files and the zoo meet."""
from __future__ import annotations

from pathlib import Path

from .. import zoo
from ..errors import UserError
from ..graph.graph import Graph
from ..graph.serialize import graph_from_dict, graph_to_dict
from . import limits
from .weights import check_weights, load_weights, save_weights


def graph_for(meta: dict) -> Graph:
    """The network a weight file's metadata describes: its own graph if it carries one, else the
    zoo's model named `architecture`, built with the file's `zoo_options`."""
    if "graph" in meta:
        graph = graph_from_dict(meta["graph"], meta)
    else:
        arch = meta.get("architecture")
        if not arch:
            raise UserError("weight file names no architecture")
        graph = zoo.build(arch, **meta.get("zoo_options", {}))
    limits.check_graph(graph)  # node count, tensor sizes, names, before anything runs
    return graph


def load_model(weights: str | Path) -> tuple[Graph, dict, dict]:
    """(graph, arrays, meta) from a .npz path, the name of a shipped file (e.g.
    '1.0-SqNxt-23v5-fmnist', checked against its manifest's sha256), or a name the fetcher knows
    (e.g. 'efficientnet-lite0', converted into the per-user cache on first use)."""
    path = Path(weights)
    if not path.exists():
        from .shipped import manifest, shipped_weights
        shipped = shipped_weights(str(weights))
        if shipped is not None:
            path = shipped
        elif path.suffix == "":
            from .fetch import source, weights_by_name  # only when a name is asked for
            try:
                source(str(weights))
            except UserError as e:
                raise UserError(f"{e}; shipped: {', '.join(manifest())}") from None
            path = weights_by_name(str(weights))
    arrays, meta = load_weights(path)
    try:
        graph = graph_for(meta)
        check_weights(graph, arrays)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return graph, arrays, meta


def save_model(path, graph: Graph, arrays: dict, meta: dict, force=False, float16=False,
               in_zoo: bool = True) -> Path:
    """Write a weight file; a graph that is not the zoo's goes into the metadata."""
    meta = dict(meta)
    if not in_zoo:
        meta["graph"] = graph_to_dict(graph)
    return save_weights(path, graph, arrays, meta, force=force, float16=float16)
