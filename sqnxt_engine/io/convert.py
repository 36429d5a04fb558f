"""Published weights (a PyTorch .pth state dict, an ONNX model) into this project's .npz weight
files: what sqnxt-convert does, and what sqnxt-train calls to export."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .. import zoo
from ..errors import UserError
from ..graph.graph import Graph
from ..zoo.preprocess import PRESETS
from .files import check_out
from .model import save_model
from .weights import sha256_file


def convert_pth(src: Path, model: str | None, zoo_options: dict | None = None):
    """(graph, arrays, meta) from a state dict: pytorchcv's SqueezeNext and EfficientNet-Lite's
    keys are recognised; keys already in this project's naming (our training export) need the
    zoo model named, and the zoo options of the graph they were trained on (e.g. the small-input
    form) need `zoo_options`."""
    from ..zoo.efficientnet import efficientnet_lite0_weights, recognise_efficientnet_lite
    from .convert_pytorchcv import convert_pytorchcv, recognise_pytorchcv
    from .pth import read_pth

    state = read_pth(src)
    if recognise_efficientnet_lite(state):
        name, arrays = model or recognise_efficientnet_lite(state), efficientnet_lite0_weights(state)
    else:
        name = model or recognise_pytorchcv(state)
        arrays = convert_pytorchcv(state)  # keys already in this project's naming pass unchanged
    if name is None:
        raise UserError(f"{src}: cannot tell the architecture from its keys; name it with --model")
    options = dict(zoo_options or {})
    classifier = zoo.build(name, **options).param_shapes()
    fcs = [k for k in classifier if k.endswith(".weight") and len(classifier[k]) == 2]
    last_fc = fcs[-1] if fcs else None  # networks without a fully connected layer keep their classes
    if last_fc in arrays and arrays[last_fc].shape[0] != classifier[last_fc][0]:
        options["num_classes"] = int(arrays[last_fc].shape[0])  # fine-tuned to other classes
    graph = zoo.build(name, **options)
    meta = dict(graph.meta)
    if options:
        meta["zoo_options"] = options
    return graph, arrays, meta


def convert_onnx(src: Path, model: str | None, zoo_options: dict | None = None):
    """(graph, arrays, meta) from an ONNX file: the graph is the file's own."""
    if zoo_options:
        raise UserError(f"{src}: an ONNX model carries its own graph; --zoo-options does not apply")
    from .onnx_import import read_onnx

    graph, arrays = read_onnx(src)
    meta = {"architecture": model or graph.name, "input_size": _side(graph)}
    return graph, arrays, meta


def _side(graph: Graph) -> int | list[int]:
    """The input size as the preprocessing metadata records it: the side of a square input,
    else (C, H, W)."""
    shape = graph.input_shape
    return shape[-1] if len(shape) == 3 and shape[1] == shape[2] else list(shape)


def convert(src, out, model: str | None = None, zoo_options: dict | None = None,
            preprocess: str | None = None, labels: str | None = None, float16: bool = False,
            force: bool = False) -> tuple[Path, Graph, dict]:
    """Convert `src` (.pth / .pt state dict, or .onnx) into the weight file `out`; returns
    (out, graph, arrays). `model` names the zoo model when the keys do not say; `preprocess` (a
    preset of zoo.preprocess.PRESETS) and `labels` (a label set name) are recorded in the file for
    sources that do not say (an ONNX file's input size is its own: the preset's crop fraction is
    kept at that size); the source's name and sha256 are recorded too."""
    src, out = Path(src), Path(out)
    check_out(out, force)  # before the work; the readers check the source (a regular file...)
    if model:
        model = zoo.canonical(model)
    if preprocess is not None and preprocess not in PRESETS:
        raise UserError(f"unknown preprocessing {preprocess!r} (choose from {', '.join(sorted(PRESETS))})")
    is_onnx = src.suffix.lower() == ".onnx"
    graph, arrays, meta = (convert_onnx if is_onnx else convert_pth)(src, model, zoo_options)
    if preprocess:
        pre = PRESETS[preprocess]
        if is_onnx:  # the file's own input size wins, with the preset's crop fraction (224 of 256)
            side = graph.input_shape[-1]
            pre = replace(pre, crop=side, resize=pre.resize and round(side * pre.resize / pre.crop))
        meta.update(pre.meta())
    if labels:
        meta["labels"] = labels
    meta.update(source=src.name, sha256=sha256_file(src))
    out = save_model(out, graph, arrays, meta, force=force, float16=float16, in_zoo=not is_onnx)
    return out, graph, arrays
