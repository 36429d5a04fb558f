"""A runnable model from a weight file: the graph (from the zoo, or carried in the file) and its
checked arrays. The one place where weight files and the zoo meet."""
from __future__ import annotations

from pathlib import Path

from .. import limits, zoo
from ..errors import UserError, unknown_name
from ..graph.graph import Graph, check_weights
from ..graph.serialize import graph_from_dict, graph_to_dict
from .files import require_regular
from .weights import load_weights, save_weights

QUANTIZED_KEY = "quantization"  # the metadata entry that makes a file quantized (quant/model.py)


def is_quantized(meta: dict) -> bool:
    """Whether a weight file's metadata is a quantized file's (sqnxt-quant's output)."""
    return QUANTIZED_KEY in meta


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


def load_model(weights: str | Path, quantized: bool | None = False) -> tuple[Graph, dict, dict]:
    """(graph, arrays, meta) from a .npz path, the name of a shipped file (e.g.
    '1.0-SqNxt-23v5-fmnist', checked against its manifest's sha256), or a name the fetcher knows
    (e.g. 'efficientnet-lite0', converted into the per-user cache on first use).

    quantized: False takes float weights only, True quantized files only (sqnxt-quant's output,
    whose arrays the quant package checks), None either; the other kind is refused."""
    path = _weight_file(weights)
    arrays, meta = load_weights(path)
    try:
        graph = graph_for(meta)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    integer = is_quantized(meta)
    if quantized is not None and quantized != integer:
        raise UserError(f"{path}: is a quantized weight file; this needs float weights" if integer
                        else f"{path}: holds float weights; this needs a quantized file (make one "
                             "with sqnxt-quant)")
    if integer:
        return graph, arrays, meta
    try:
        check_weights(graph, arrays)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return graph, arrays, meta


def load_graph(source: str | Path, input_size: int | None = None) -> Graph:
    """A zoo model by name, or the network a .prototxt, .onnx or .npz file describes (the first
    two at `input_size` when given)."""
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in (".prototxt", ".onnx", ".npz"):
        return zoo.build(str(source))
    require_regular(path)
    if suffix == ".prototxt":
        from .prototxt import read_prototxt
        return read_prototxt(path, input_shape=input_size)
    if suffix == ".onnx":
        from .onnx_import import read_onnx
        shape = None if input_size is None else (3, input_size, input_size)
        return read_onnx(path, input_shape=shape)[0]
    return load_model(path)[0]


def _weight_file(weights: str | Path) -> Path:
    """The file that `weights` names: a path, a shipped name, or a name the fetcher knows."""
    path = Path(weights)
    if path.exists():
        return path
    from .shipped import manifest, shipped_weights
    shipped = shipped_weights(str(weights))
    if shipped is not None:
        return shipped
    if path.suffix.lower() == ".npz" or len(path.parts) > 1:  # a file, not a name
        raise UserError(missing_file_advice(path))
    from .fetch import SOURCES, source, weights_by_name  # only when a name is asked for
    try:
        source(str(weights))
    except UserError:
        raise unknown_name("weights", str(weights), [*manifest(), *SOURCES],
                           "give an .npz file, a shipped name or a name to fetch") from None
    return weights_by_name(str(weights))


def missing_file_advice(path: Path) -> str:
    """One line for a weight file that does not exist: the shipped weights of the architecture
    its name starts with (all of them when the name says none), and how to make the file."""
    from .shipped import manifest
    shipped = manifest()
    arch = zoo.model_named_in(path.stem)
    same = [n for n, entry in shipped.items() if arch and entry.get("architecture") == arch]
    if same:
        have = f"shipped {arch} weights: {', '.join(same)}"
    else:
        have = f"shipped weights: {', '.join(shipped)}" if shipped else "no weights are shipped"
    return (f"{path}: no such file; {have}; to make it from a PyTorch checkpoint: "
            f"sqnxt-convert CHECKPOINT.pth -o {path}")


def save_model(path, graph: Graph, arrays: dict, meta: dict, force=False, float16=False,
               in_zoo: bool = True) -> Path:
    """Write a weight file; a graph that is not the zoo's goes into the metadata."""
    meta = dict(meta)
    if not in_zoo:
        meta["graph"] = graph_to_dict(graph)
    return save_weights(path, graph, arrays, meta, force=force, float16=float16)
