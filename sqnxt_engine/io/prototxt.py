"""Import a Caffe network definition (.prototxt) as a graph.

    g = read_prototxt("1.0-SqNxt-23.train_val.prototxt")        # a path or the text itself
    g = read_prototxt("SqueezeNet_v1.1.deploy.prototxt", input_shape=224)

What it reads:
- The inference net of a train_val file: layers are filtered by Caffe's include/exclude rules
  for the TEST phase (`phase="TRAIN"` for the other), so the TEST data layer defines the input.
- The input size, from the net's `input_shape` / `input_dim`, an Input layer's shape, or a data
  layer's `crop_size` (3 channels; `new_height/new_width` for ImageData, the declared shape for
  MemoryData / DummyData). `input_shape` overrides it: (C, H, W), or one int for H = W (the
  channels stay as the file says).
- Layers, new `layer {}` and legacy `layers {}` (V1 enum types): Convolution, BatchNorm, Scale,
  ReLU (LeakyReLU when negative_slope != 0), Pooling (MAX/AVE, global, Caffe's ceil rounding),
  Eltwise (SUM), Concat (channels), InnerProduct (a `<name>.flatten` node is inserted before it
  when its input is a feature map), LRN (across channels), Dropout, Flatten, Split (an alias).
- A BatchNorm followed by a Scale is one BatchNorm node (the Scale's gamma and beta are its own).
  `graph.meta["scale_layers"]` maps each such node to its Scale layer's name (where a weight
  reader finds gamma and beta); a BatchNorm with no Scale is listed in
  `graph.meta["batchnorm_without_scale"]`: its gamma is 1 and beta 0, although the IR counts them.
- Softmax, SoftmaxWithLoss, Accuracy and Silence layers are dropped: the graph's outputs are
  the blobs no kept layer consumes, i.e. the logits, not probabilities.

Nodes are named after the Caffe layers, so a layer table lines up with the file. In-place
layers (top == bottom) become nodes of their own, and a later reader of the blob reads the
latest of them. The graph input is the IR's `input` node; `graph.meta["input_blob"]` names
the Caffe blob it stands for. `graph.meta` also keeps the data layer's mean values, scale and
crop size when the file gives them (Caffe's images are BGR).

Anything else raises UserError naming the file position, the layer and the problem: an
unsupported layer type or option, a bottom no earlier layer produces, malformed text.
"""
from __future__ import annotations

import os
from math import ceil
from pathlib import Path

from .. import limits
from ..errors import GraphError, UserError
from ..graph import INPUT, Graph, GraphBuilder
from ..graph import ops as O
from .files import read_text
from .protobuf_text import Message, parse

# Legacy V1LayerParameter enum types, as the new string types.
_V1_TYPES = {
    "ABSVAL": "AbsVal", "ACCURACY": "Accuracy", "ARGMAX": "ArgMax", "BNLL": "BNLL",
    "CONCAT": "Concat", "CONTRASTIVE_LOSS": "ContrastiveLoss", "CONVOLUTION": "Convolution",
    "DATA": "Data", "DECONVOLUTION": "Deconvolution", "DROPOUT": "Dropout",
    "DUMMY_DATA": "DummyData", "ELTWISE": "Eltwise", "EUCLIDEAN_LOSS": "EuclideanLoss",
    "EXP": "Exp", "FLATTEN": "Flatten", "HDF5_DATA": "HDF5Data", "HDF5_OUTPUT": "HDF5Output",
    "HINGE_LOSS": "HingeLoss", "IM2COL": "Im2col", "IMAGE_DATA": "ImageData",
    "INFOGAIN_LOSS": "InfogainLoss", "INNER_PRODUCT": "InnerProduct", "LRN": "LRN",
    "MEMORY_DATA": "MemoryData", "MULTINOMIAL_LOGISTIC_LOSS": "MultinomialLogisticLoss",
    "MVN": "MVN", "POOLING": "Pooling", "POWER": "Power", "RELU": "ReLU", "SIGMOID": "Sigmoid",
    "SIGMOID_CROSS_ENTROPY_LOSS": "SigmoidCrossEntropyLoss", "SILENCE": "Silence",
    "SOFTMAX": "Softmax", "SOFTMAX_LOSS": "SoftmaxWithLoss", "SPLIT": "Split", "SLICE": "Slice",
    "TANH": "TanH", "WINDOW_DATA": "WindowData", "THRESHOLD": "Threshold",
}
_DATA_TYPES = {"Input", "Data", "ImageData", "WindowData", "MemoryData", "DummyData", "HDF5Data"}
_DROPPED_TYPES = {"Softmax", "SoftmaxWithLoss", "Accuracy", "Silence"}
_POOL_METHODS = {0: "MAX", 1: "AVE", 2: "STOCHASTIC"}
_SUFFIXES = (".train_val", "_train_val", ".deploy", "_deploy", ".trainval", "_trainval")


def read_prototxt(path_or_text, input_shape=None, *, name: str | None = None,
                  phase: str = "TEST") -> Graph:
    """A Caffe .prototxt (a path, or the text itself) as a Graph; see the module doc.

    input_shape: (C, H, W), or an int H = W, overriding the file's input size.
    name: the graph's name; by default the file name without `.prototxt` and a
    `.train_val` / `.deploy` suffix, or for text the net's `name:`.
    """
    text, source = _load(path_or_text)
    net = parse(text, source)
    if name is None and source != "<text>":
        name = _stem(source)
    graph = _Importer(net, source, phase).run(input_shape, name)
    limits.check_graph(graph, source)
    return graph


def _load(path_or_text) -> tuple[str, str]:
    if isinstance(path_or_text, str) and ("\n" in path_or_text or "{" in path_or_text) \
            and not os.path.exists(path_or_text):
        return path_or_text, "<text>"
    path = Path(path_or_text)
    return read_text(path), str(path)  # a regular file, size-bounded, UTF-8


def _stem(source: str) -> str:
    stem = Path(source).name
    stem = stem[: -len(".prototxt")] if stem.endswith(".prototxt") else Path(stem).stem
    for suffix in _SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)]
    return stem


def _pair(m: Message, prefix: str, name: str, default: int | None) -> tuple[int, int] | None:
    """A Caffe spatial option: `prefix_h`/`prefix_w`, else `name` (repeated: one value for both
    axes, or h and w), else default. ConvolutionParameter repeats kernel_size/stride/pad;
    PoolingParameter has them singular (the last one given wins there; same reading here)."""
    if m.has(f"{prefix}_h") or m.has(f"{prefix}_w"):
        return (m.int(f"{prefix}_h", default), m.int(f"{prefix}_w", default))
    values = m.ints(name)
    if not values:
        return None if default is None else (default, default)
    if len(values) == 1:
        return (values[0], values[0])
    if len(values) == 2:
        return (values[0], values[1])
    raise UserError(f"{m.where()}: {name}: {len(values)} values; only 2-D (one or two values) is supported")


def _meets(rule: Message, phase: str) -> bool:
    """Caffe's NetStateRule against the state (phase, level 0, no stages)."""
    return ((not rule.has("phase") or rule.enum("phase", numbers={0: "TRAIN", 1: "TEST"}) == phase)
            and rule.int("min_level", 0) <= 0 <= rule.int("max_level", 0)
            and not rule.has("stage"))


class _Importer:
    def __init__(self, net: Message, source: str, phase: str):
        if phase not in ("TEST", "TRAIN"):
            raise UserError(f"phase must be TEST or TRAIN, got {phase!r}")
        self.net, self.source, self.phase = net, source, phase
        self.blobs: dict[str, str] = {}  # blob -> node producing its latest value (or INPUT)
        self.gone: dict[str, str] = {}  # blob -> why no node holds it
        self.consumed: set[str] = set()  # nodes some kept layer reads
        self.scale_of: dict[str, str] = {}  # BatchNorm node -> its merged Scale layer
        self.unscaled: set[str] = set()  # BatchNorm nodes no Scale has merged into yet
        self.meta: dict = {"source": "caffe", "phase": phase}
        self.b: GraphBuilder | None = None
        self.layer: Message | None = None
        self.ltype = ""

    # -- the whole net -------------------------------------------------------------------

    def run(self, input_shape, name: str | None) -> Graph:
        layers = [(m, self._type(m)) for field, m in self.net.fields
                  if field in ("layer", "layers") and isinstance(m, Message)]
        layers = [(m, t) for m, t in layers if self._included(m)]
        if self.net.has("name"):
            self.meta["caffe_name"] = self.net.str("name")
        self.b = GraphBuilder(name or self.meta.get("caffe_name") or "caffe",
                              self._input_shape(layers, input_shape), self.meta)
        handlers = {
            "Convolution": self._conv, "BatchNorm": self._batchnorm, "Scale": self._scale,
            "ReLU": self._relu, "Pooling": self._pool, "Eltwise": self._eltwise,
            "Concat": self._concat, "InnerProduct": self._fc, "LRN": self._lrn,
            "Dropout": self._dropout, "Flatten": self._flatten, "Split": self._split,
        }
        for m, t in layers:
            self.layer, self.ltype = m, t
            if t in _DATA_TYPES:
                continue  # read by _input_shape
            if t in _DROPPED_TYPES:
                for top in self._tops():
                    self.gone[top] = f"the output of {t} layer {self._name()!r}, which the importer drops"
                continue
            if t not in handlers:
                raise self._error(f"layer type {t!r} is not supported")
            try:
                handlers[t]()
            except GraphError as e:  # from an operator or the builder: say which layer
                raise GraphError(f"{m.where()}: layer {self._name()!r} ({t}): {e}") from None
            except UserError as e:  # a bad field value: its position, and which layer
                if f"layer {self._name()!r} ({t})" in str(e):
                    raise
                raise UserError(f"{e} (in layer {self._name()!r}, {t})") from None
        self.layer = None
        outputs = [n.name for n in self.b.nodes if n.name not in self.consumed]
        if not outputs:
            raise UserError(f"{self.source}: the net has no layers the importer keeps")
        self.meta["scale_layers"] = dict(self.scale_of)
        self.meta["batchnorm_without_scale"] = [n.name for n in self.b.nodes if n.name in self.unscaled]
        return self.b.build(outputs)

    def _type(self, m: Message) -> str:
        if m.has("layer"):
            raise UserError(f"{m.where()}: a V0 layer definition; upgrade the file with Caffe's "
                            "upgrade_net_proto_text")
        if not m.has("type"):
            raise UserError(f"{m.where()}: layer {m.str('name', '')!r} has no type")
        t = m.all("type")[-1]
        if t.kind == "string":
            return t.text
        v1 = m.enum("type")
        return _V1_TYPES.get(v1, v1)

    def _included(self, m: Message) -> bool:
        include = m.msgs("include")
        if include:
            return any(_meets(r, self.phase) for r in include)
        return not any(_meets(r, self.phase) for r in m.msgs("exclude"))

    def _input_shape(self, layers, override) -> tuple[int, ...]:
        """The graph input's (C, H, W) and its blob; other data tops (labels) are marked gone."""
        shape, blob, loc = None, None, self.net
        inputs = self.net.strs("input")
        if inputs:
            blob = inputs[0]
            dims = self.net.ints("input_dim")[:4]
            if self.net.has("input_shape"):
                dims = self.net.msgs("input_shape")[0].ints("dim")
            shape = tuple(dims[1:]) if dims else None
            for other in inputs[1:]:
                self.gone[other] = "a second net input (a graph has one input)"
        for m, t in layers:
            if t not in _DATA_TYPES:
                continue
            self.layer, self.ltype = m, t
            tops = self._tops()
            if not tops:
                raise self._error("a data layer with no top")
            if blob is None:
                blob, loc = tops[0], m
                shape = self._data_shape(m, t)
                tops = tops[1:]
            for top in tops:
                if top != blob:
                    self.gone.setdefault(top, f"an output of data layer {self._name()!r} (labels are not read)")
        self.layer = None
        if blob is None:
            raise UserError(f"{self.source}: no input: the net has no input, input_shape or data layer")
        if override is not None:
            if isinstance(override, int):
                override = ((shape or (3,))[0], override, override)
            shape = tuple(int(s) for s in override)
        if not shape:
            raise UserError(f"{loc.where()}: cannot tell the input size of {blob!r} from the file; "
                            "pass input_shape")
        if any(s <= 0 for s in shape) or len(shape) not in (1, 3):
            raise UserError(f"{loc.where()}: input shape {shape} is not (C, H, W) of positive sizes")
        self.blobs[blob] = INPUT
        self.meta["input_blob"] = blob
        return shape

    def _data_shape(self, m: Message, t: str) -> tuple[int, ...] | None:
        tp = m.msg("transform_param") or Message(self.source, name="transform_param")
        if tp.has("mean_value"):
            self.meta["mean"] = tp.floats("mean_value")
        if tp.has("mean_file"):
            self.meta["mean_file"] = tp.str("mean_file")
        if tp.has("scale"):
            self.meta["scale"] = tp.float("scale")
        crop = tp.int("crop_size", 0)
        if crop:
            self.meta["crop_size"] = crop
        if t == "Input":
            p = m.msg("input_param")
            dims = p.msgs("shape")[0].ints("dim") if p is not None and p.has("shape") else []
            return tuple(dims[1:]) or None
        if t == "MemoryData" and m.msg("memory_data_param") is not None:
            p = m.msg("memory_data_param")
            c = p.int("channels", 3)
            return (c, crop, crop) if crop else (c, p.int("height", 0), p.int("width", 0))
        if t == "DummyData" and m.msg("dummy_data_param") is not None:
            p = m.msg("dummy_data_param")
            if p.has("shape"):
                return tuple(p.msgs("shape")[0].ints("dim")[1:]) or None
            dims = [p.ints(k)[:1] for k in ("channels", "height", "width")]
            return tuple(d[0] for d in dims) if all(dims) else None
        if crop:
            return (3, crop, crop)
        p = m.msg("image_data_param")
        if t == "ImageData" and p is not None and p.int("new_height", 0) and p.int("new_width", 0):
            return (3, p.int("new_height"), p.int("new_width"))
        return None

    # -- helpers for the current layer ---------------------------------------------------

    def _name(self) -> str:
        m = self.layer
        if m.has("name"):
            return m.str("name")
        tops = m.strs("top")
        return tops[0] if tops else f"{self.ltype}@{m.line}"

    def _error(self, msg: str) -> UserError:
        return UserError(f"{self.layer.where()}: layer {self._name()!r} ({self.ltype}): {msg}")

    def _tops(self) -> list[str]:
        return self.layer.strs("top")

    def _bottoms(self, n: int = 1, at_least: bool = False) -> list[str]:
        """The nodes producing the layer's bottoms, which must be n of them (or n or more)."""
        bottoms = self.layer.strs("bottom")
        if len(bottoms) < n or (len(bottoms) > n and not at_least):
            raise self._error(f"has {len(bottoms)} bottoms, expected {n}{' or more' if at_least else ''}")
        out = []
        for blob in bottoms:
            if blob in self.blobs:
                out.append(self.blobs[blob])
            elif blob in self.gone:
                raise self._error(f"reads blob {blob!r}, {self.gone[blob]}")
            else:
                raise self._error(f"bottom {blob!r} is not produced by any earlier layer")
        return out

    def _param(self, field: str) -> Message:
        return self.layer.msg(field) or Message(self.source, self.layer.line, self.layer.col, name=field)

    def _emit(self, op: O.Op, inputs: list[str], node: str | None = None) -> str:
        """Add a node (named after the layer) reading `inputs`; its top blob now names it."""
        tops = self._tops()
        if node is None and len(tops) != 1:
            raise self._error(f"has {len(tops)} tops, expected 1")
        node = node or self._name()
        if node == INPUT or node in self.b.shapes:
            raise self._error(f"node name {node!r} is used twice (or is the graph input's name)")
        self.b.add(node, op, *inputs)
        self.consumed.update(inputs)
        if node == self._name():
            self.blobs[tops[0]] = node
            self.gone.pop(tops[0], None)
        if isinstance(op, O.BatchNorm):
            self.unscaled.add(node)
        return node

    def _unsupported(self, what: str):
        raise self._error(f"{what} is not supported")

    # -- layers --------------------------------------------------------------------------

    def _conv(self):
        p = self._param("convolution_param")
        kernel = _pair(p, "kernel", "kernel_size", None)
        if kernel is None:
            raise self._error("convolution_param has no kernel_size")
        if p.int("axis", 1) != 1:
            self._unsupported("convolution along an axis other than 1")
        (x,) = self._bottoms()
        stride, pad = _pair(p, "stride", "stride", 1), _pair(p, "pad", "pad", 0)
        dilation = _pair(p, "dilation", "dilation", 1)
        self._emit(O.Conv2d(p.int("num_output"), kernel, stride, pad, dilation, p.int("group", 1),
                            p.bool("bias_term", True)), [x])

    def _batchnorm(self):
        eps = self._param("batch_norm_param").float("eps", 1e-5)
        self._emit(O.BatchNorm(eps), self._bottoms())

    def _scale(self):
        (x,) = self._bottoms()
        p = self._param("scale_param")
        mergeable = (x in self.unscaled and x not in self.consumed
                     and p.int("axis", 1) == 1 and p.int("num_axes", 1) == 1)
        if not mergeable:
            self._unsupported("a Scale layer that does not directly follow a BatchNorm")
        tops = self._tops()
        if len(tops) != 1:
            raise self._error(f"has {len(tops)} tops, expected 1")
        for blob in [b for b, producer in self.blobs.items() if producer == x and b != tops[0]]:
            del self.blobs[blob]  # the unscaled value exists no more
            self.gone[blob] = f"the BatchNorm output before Scale {self._name()!r} (merged into it)"
        self.blobs[tops[0]] = x
        self.gone.pop(tops[0], None)
        self.unscaled.discard(x)
        self.scale_of[x] = self._name()
        if not p.bool("bias_term", False):
            self.meta.setdefault("scale_without_bias", []).append(self._name())

    def _relu(self):
        slope = self._param("relu_param").float("negative_slope", 0.0)
        self._emit(O.LeakyReLU(slope) if slope else O.ReLU(), self._bottoms())

    def _pool(self):
        p = self._param("pooling_param")
        method = p.enum("pool", "MAX", _POOL_METHODS)
        if method not in ("MAX", "AVE"):
            self._unsupported(f"pooling method {method}")
        (x,) = self._bottoms()
        shape = self.b.shapes[x]
        if len(shape) != 3:
            raise self._error(f"pools a {shape} input; it needs (C, H, W)")
        ceil_mode = p.enum("round_mode", "CEIL", {0: "CEIL", 1: "FLOOR"}) == "CEIL"
        if p.bool("global_pooling", False):
            if method == "AVE":
                self._emit(O.GlobalAvgPool(), [x])
            else:
                self._emit(O.MaxPool(shape[1:], 1, 0), [x])
            return
        kernel = _pair(p, "kernel", "kernel_size", None)
        if kernel is None:
            raise self._error("pooling_param has no kernel_size and is not global")
        stride, pad = _pair(p, "stride", "stride", 1), _pair(p, "pad", "pad", 0)
        op = (O.MaxPool if method == "MAX" else O.AvgPool)(kernel, stride, pad, ceil_mode)
        node = self._emit(op, [x])
        want = tuple(_caffe_pool_size(n, k, s, q, ceil_mode)
                     for n, k, s, q in zip(shape[1:], kernel, stride, pad))
        if self.b.shapes[node][1:] != want:
            raise self._error(f"Caffe pools to {want}, the IR's rule to {self.b.shapes[node][1:]}: "
                              "this window geometry is not supported")

    def _eltwise(self):
        p = self._param("eltwise_param")
        op = p.enum("operation", "SUM", {0: "PROD", 1: "SUM", 2: "MAX"})
        if op != "SUM":
            self._unsupported(f"Eltwise operation {op}")
        if any(c != 1 for c in p.floats("coeff")):
            self._unsupported("Eltwise SUM with coefficients other than 1")
        self._emit(O.Add(), self._bottoms(2, at_least=True))

    def _concat(self):
        p = self._param("concat_param")
        axis = p.int("axis", 1) if p.has("axis") else p.int("concat_dim", 1)
        if axis not in (1, -3):
            self._unsupported(f"concatenation along axis {axis}")
        self._emit(O.Concat(), self._bottoms(1, at_least=True))

    def _fc(self):
        p = self._param("inner_product_param")
        if p.int("axis", 1) != 1 or p.bool("transpose", False):
            self._unsupported("InnerProduct with axis other than 1 or transpose")
        (x,) = self._bottoms()
        if len(self.b.shapes[x]) != 1:
            x = self._emit(O.Flatten(), [x], node=f"{self._name()}.flatten")
        self._emit(O.Linear(p.int("num_output"), p.bool("bias_term", True)), [x])

    def _lrn(self):
        p = self._param("lrn_param")
        if p.enum("norm_region", "ACROSS_CHANNELS", {0: "ACROSS_CHANNELS", 1: "WITHIN_CHANNEL"}) \
                != "ACROSS_CHANNELS":
            self._unsupported("LRN within channels")
        self._emit(O.LRN(p.int("local_size", 5), p.float("alpha", 1.0), p.float("beta", 0.75),
                         p.float("k", 1.0)), self._bottoms())

    def _dropout(self):
        self._emit(O.Dropout(self._param("dropout_param").float("dropout_ratio", 0.5)), self._bottoms())

    def _flatten(self):
        p = self._param("flatten_param")
        if p.int("axis", 1) != 1 or p.int("end_axis", -1) != -1:
            self._unsupported("Flatten of axes other than 1 to the end")
        self._emit(O.Flatten(), self._bottoms())

    def _split(self):
        (x,) = self._bottoms()
        for top in self._tops():
            self.blobs[top] = x
            self.gone.pop(top, None)


def _caffe_pool_size(size: int, kernel: int, stride: int, pad: int, ceil_mode: bool) -> int:
    """Caffe's pooled extent (pooling_layer.cpp): ceil rounding, then the last window must start
    inside the input or its leading padding; that clip applies only when there is padding."""
    span = size + 2 * pad - kernel
    n = (ceil(span / stride) if ceil_mode else span // stride) + 1
    if pad and (n - 1) * stride >= size + pad:
        n -= 1
    return n
