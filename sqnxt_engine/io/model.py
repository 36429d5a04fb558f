"""A runnable model from a weight file: the graph (from the zoo, or carried in the file) and its
checked arrays. The one place where weight files and the zoo meet."""
from __future__ import annotations

from pathlib import Path

from .. import zoo
from ..errors import UserError
from ..graph.graph import Graph
from ..graph.serialize import graph_from_dict, graph_to_dict
from .weights import check_weights, load_weights, save_weights

QUANTIZED_KEY = "quantization"  # the metadata entry that makes a file quantized (quant/model.py)


def graph_for(meta: dict) -> Graph:
    """The network a weight file's metadata describes: its own graph if it carries one, else the
    zoo's model named `architecture`, built with the file's `zoo_options`."""
    if "graph" in meta:
        return graph_from_dict(meta["graph"], meta)
    arch = meta.get("architecture")
    if not arch:
        raise UserError("weight file names no architecture")
    return zoo.build(arch, **meta.get("zoo_options", {}))


def load_model(weights: str | Path, quantized: bool | None = False) -> tuple[Graph, dict, dict]:
    """(graph, arrays, meta) from a .npz path, the name of a shipped file (e.g.
    '1.0-SqNxt-23v5-fmnist', checked against its manifest's sha256), or a name the fetcher knows
    (e.g. 'efficientnet-lite0', converted into the per-user cache on first use).

    quantized: False takes float weights only, True quantized files only (sqnxt-quant's output,
    whose arrays the quant package checks), None either; the other kind is refused."""
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
    graph = graph_for(meta)
    is_quantized = QUANTIZED_KEY in meta
    if quantized is not None and quantized != is_quantized:
        raise UserError(f"{path}: is a quantized weight file; this needs float weights" if is_quantized
                        else f"{path}: holds float weights; this needs a quantized file (make one "
                             "with sqnxt-quant)")
    if is_quantized:
        return graph, arrays, meta
    try:
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
