"""Read an ONNX file into the graph IR: `read_onnx(path) -> (Graph, weights)`.

The `onnx` package (optional dependency, `pip install 'sqnxt-engine[onnx]'`) parses the file and
evaluates constant sub-graphs (shape arithmetic exporters emit, e.g. for padding amounts).
Every ONNX node becomes one IR node named after it (its ONNX name when that is unique and
non-empty, else `<OpType>_<index>`), except where ONNX spells one IR operator with several nodes:

  - Identity and Dropout are aliases: their output is their input's node;
  - a Pad with constant 0 folds into the padding of the Conv (or non-ceil AveragePool) reading it;
  - an Add of a constant to a bias-less Conv, Gemm or MatMul becomes that node's bias;
  - nodes whose inputs are all constants are evaluated at import and produce constants;
  - a depthwise Conv with one-hot kernels is a Shift (shift_of_conv);
  - Shape is a constant: the per-sample shape, after the file's static batch size or else 0, which
    a Reshape target reads as "keep the batch" (the (N, -1) flatten of dynamic-batch exports).

Weights are keyed `<IR node>.<param>` (conv/fc: weight, bias; batch norm: gamma, beta, mean, var).
Anything that does not map exactly raises UserError naming the ONNX node and its op type.

A model may come from someone else (docs/security.md): the file is read as bytes within the
max_file_bytes limit, tensors stored outside it ("external data", any path on this machine) are
refused, every initializer's declared size is checked before it becomes an array, and constant
folding runs only the operators in `_FOLDABLE`, each after the size of its result is worked out
from its inputs (a ConstantOfShape of 10^12 elements or a Loop of 10^15 steps never runs); the
whole import may fold at most max_fold_elements elements. Folded weights must be finite.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from math import prod
from pathlib import Path

import numpy as np

from .. import functional as F
from .. import limits
from ..errors import GraphError, UserError
from ..graph import ops as O
from ..graph.graph import INPUT, Graph, GraphBuilder, Node
from .files import read_regular

NEED_ONNX = "reading ONNX files needs the onnx package: pip install 'sqnxt-engine[onnx]'"
_RANDOM_OPS = ("RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                       "Bernoulli", "Multinomial")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise UserError(NEED_ONNX) from None
    return onnx


def _first_line(e: Exception) -> str:
    lines = str(e).strip().splitlines()
    return (lines[0] if lines else type(e).__name__)[:200]


def read_onnx(path, input_shape=None, name: str | None = None) -> tuple[Graph, dict[str, np.ndarray]]:
    """Import the ONNX model at `path`.

    input_shape: the per-sample input shape (C, H, W), needed when the file leaves a dimension
    other than the batch dynamic; it must agree with the file's static dimensions.
    name: the graph's name (default: the file name without its extension).
    Returns the graph and its weights, {'<node>.<param>': float array}.
    """
    onnx = _onnx()
    path = Path(path)
    data = read_regular(path)  # a regular file within max_file_bytes, or a UserError naming it
    try:
        model = onnx.load_model_from_string(data)  # never opens the external data files it names
    except Exception as e:  # protobuf DecodeError, nesting beyond protobuf's recursion limit, ...
        raise UserError(f"{path}: not a readable ONNX model ({_first_line(e)})") from None
    try:
        if not model.graph.node:
            raise UserError("not an ONNX model (it has no graph nodes)")
        limits.check("node count", len(model.graph.node), "max_graph_nodes")
        _check_tensors(onnx, model.graph)
        try:
            onnx.checker.check_model(model)
        except Exception as e:
            raise UserError(f"not a valid ONNX model ({_first_line(e)})") from None
        graph, weights = _Importer(onnx, model, name or path.stem, input_shape).run()
        limits.check_graph(graph)
        for key, w in weights.items():
            if not np.isfinite(w).all():
                raise UserError(f"weight {key!r:.80} holds NaN or infinite values")
    except UserError as e:
        raise UserError(f"{path}: {e}") from None
    return graph, weights


def _check_tensors(onnx, graph) -> None:
    """Initializers and Constant values: stored in the file, of a size within the limits."""
    tensors = list(graph.initializer)
    for node in graph.node:
        for a in node.attribute:
            if a.type == onnx.AttributeProto.TENSOR:
                tensors.append(a.t)
            elif a.type == onnx.AttributeProto.SPARSE_TENSOR:  # densified when folded
                limits.check(f"node {node.name!r:.60}: sparse constant elements", _numel(a.sparse_tensor.dims),
                             "max_tensor_elements")
    for t in tensors:
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise UserError(f"tensor {t.name!r:.60} is stored outside the file (external data is not read)")
        limits.check(f"tensor {t.name!r:.60} elements", _numel(t.dims), "max_tensor_elements")


def _numel(dims) -> int:
    dims = list(dims)
    if min(dims, default=0) < 0:
        raise UserError(f"a tensor has a negative dimension in {dims[:8]}")
    return prod(dims)


class _Importer:
    def __init__(self, onnx, model, name: str, input_shape):
        self.onnx = onnx
        self.graph = model.graph
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        try:
            self.consts: dict[str, np.ndarray] = {
                t.name: onnx.numpy_helper.to_array(t) for t in self.graph.initializer}
        except Exception as e:  # data that does not fill the declared shape, unknown types
            raise UserError(f"an initializer cannot be read ({_first_line(e)})") from None
        self.folded = 0  # elements constant folding has read and written so far
        self.values: dict[str, str] = {}  # ONNX value -> IR node (or INPUT)
        self.pads: dict[str, tuple[str, tuple[int, int, int, int], str]] = {}  # value -> (src, pads, Pad node)
        self.weights: dict[str, np.ndarray] = {}
        self.uses = Counter(v for n in self.graph.node for v in n.input if v)
        self.uses.update(o.name for o in self.graph.output)
        shape, self.batch = self._input_shape(input_shape)
        meta = {"source": "onnx", "producer": f"{model.producer_name} {model.producer_version}".strip(),
                "opset": self.opset}
        self.b = GraphBuilder(name, shape, meta)
        self.names = _node_names(self.graph.node)

    # --- the graph input -------------------------------------------------------------------
    def _input_shape(self, given):
        inputs = [i for i in self.graph.input if i.name not in self.consts]
        if len(inputs) != 1:
            raise UserError(f"the ONNX graph has {len(inputs)} inputs {[i.name for i in inputs]}; "
                            "only single-input graphs can be imported")
        inp = inputs[0]
        self.values[inp.name] = INPUT
        tt = inp.type.tensor_type
        dims = ([d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
                if tt.HasField("shape") else None)
        shown = "unknown" if dims is None else "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"
        if dims is not None:
            limits.check(f"the ONNX input {inp.name!r:.60}: declared elements",
                         _numel(d or 1 for d in dims), "max_tensor_elements")
        if given is not None:
            given = tuple(int(d) for d in given)
            if dims is not None and (len(dims) != len(given) + 1 or any(
                    d is not None and d != g for d, g in zip(dims[1:], given))):
                raise UserError(f"input_shape {given} does not match the ONNX input {inp.name!r} "
                                f"of shape {shown} (the batch axis comes first in the file, not in input_shape)")
            return given, (dims[0] if dims else None)
        if dims is None or len(dims) < 2 or None in dims[1:]:
            raise UserError(f"the ONNX input {inp.name!r} has shape {shown}, with a dynamic or unknown "
                            "dimension besides the batch: pass input_shape=(C, H, W)")
        return tuple(dims[1:]), dims[0]

    # --- the walk ----------------------------------------------------------------------------
    def run(self):
        unsupported = [f"{self.names[idx]!r} ({_op_name(node)})" for idx, node in enumerate(self.graph.node)
                       if not _known(node)]
        if unsupported:
            raise UserError(f"{len(unsupported)} ONNX node(s) with an operator this importer does not "
                            f"support: {', '.join(unsupported)}")
        for idx, node in enumerate(self.graph.node):
            name = self.names[idx]
            ins = [v for v in node.input if v]
            if node.op_type == "Constant" or (ins and all(v in self.consts for v in ins)
                                              and node.op_type not in _RANDOM_OPS):
                self._fold(node, name)
                continue
            handler = HANDLERS.get(node.op_type)
            if handler is None:
                raise UserError(f"ONNX node {name!r}: operator {node.op_type} is not supported")
            for extra in node.output[1:] if node.op_type not in _MULTI_OUTPUT else ():
                if extra and self.uses[extra]:
                    raise UserError(f"ONNX node {name!r} ({node.op_type}): only its first output can "
                                    f"be used, but {extra!r} is")
            handler(self, node, name)
        outputs = []
        for o in self.graph.output:
            src = self.values.get(o.name)
            if src is None or src == INPUT:
                what = "a constant" if o.name in self.consts else ("the input" if src else "not computed")
                raise UserError(f"ONNX graph output {o.name!r} is {what}; it must be a computed tensor")
            if src not in outputs:
                outputs.append(src)
        return self.b.build(outputs), self.weights

    def _fold(self, node, name):
        where = f"ONNX node {name!r} ({node.op_type})"
        if node.op_type not in _FOLDABLE:
            raise UserError(f"{where}: constant folding of {node.op_type} is not supported")
        feeds = {v: self.consts[v] for v in node.input if v}
        try:
            size = _FOLDABLE[node.op_type](node, [np.asarray(self.consts[v]) for v in node.input if v],
                                           self.attrs(node))
        except UserError:
            raise
        except Exception as e:
            raise UserError(f"{where}: malformed constant inputs ({_first_line(e)})") from None
        limits.check(f"{where}: elements of the folded constant", size, "max_tensor_elements")
        self.folded += size + sum(np.asarray(v).size for v in feeds.values())
        limits.check(f"{where}: constant folding work in all (elements)", self.folded, "max_fold_elements")
        try:
            from onnx.reference import ReferenceEvaluator
            results = ReferenceEvaluator(node, opsets={"": self.opset}).run(None, feeds)
        except Exception as e:
            raise UserError(f"{where}: cannot evaluate its constant inputs ({_first_line(e)})") from None
        for out, val in zip(node.output, results):
            if out:
                self.consts[out] = np.asarray(val)

    # --- inputs and attributes ---------------------------------------------------------------
    def src(self, node, name, i=0):
        """The IR node behind input i."""
        return self.src_padded(node, name, i, fold_pad=False)[0]

    def src_padded(self, node, name, i=0, fold_pad=True):
        """The IR node behind input i, and the (t, b, l, r) zero padding of a Pad folded before it."""
        v = node.input[i]
        if v in self.pads:
            source, pads, pad_node = self.pads[v]
            if not fold_pad:
                raise UserError(f"ONNX node {pad_node!r} (Pad): zero padding folds only into a following "
                                f"Conv or AveragePool without ceil_mode, not into {node.op_type} node {name!r}")
            return source, pads
        if v in self.consts:
            raise UserError(f"ONNX node {name!r} ({node.op_type}): input {i} ({v!r}) is a constant, "
                            "which this importer supports only for weights")
        if v not in self.values:
            raise UserError(f"ONNX node {name!r} ({node.op_type}): input {v!r} is not computed "
                            "before the node (ONNX nodes must be in topological order)")
        return self.values[v], (0, 0, 0, 0)

    def const(self, node, name, i, what, required=True):
        v = node.input[i] if i < len(node.input) else ""
        if not v:
            if required:
                raise UserError(f"ONNX node {name!r} ({node.op_type}): missing {what}")
            return None
        if v not in self.consts:
            raise UserError(f"ONNX node {name!r} ({node.op_type}): {what} ({v!r}) must be a constant")
        return self.consts[v]

    def attrs(self, node) -> dict:
        out = {}
        for a in node.attribute:
            val = self.onnx.helper.get_attribute_value(a)
            out[a.name] = val.decode() if isinstance(val, bytes) else val
        return out

    def shape(self, ir_name):
        return self.b.shapes[ir_name]

    def add(self, name, op, inputs, params=None, onnx_node=None):
        try:
            self.b.add(name, op, *inputs)
        except GraphError as e:
            raise UserError(f"ONNX {onnx_node.op_type} {e}") from None
        expected = op.param_shapes([self.shape(i) for i in inputs])
        for pname, arr in (params or {}).items():
            if arr is None:
                continue
            arr = np.asarray(arr)
            if tuple(arr.shape) != tuple(expected[pname]):
                raise UserError(f"ONNX node {name!r} ({onnx_node.op_type}): {pname} has shape "
                                f"{tuple(arr.shape)}, expected {tuple(expected[pname])}")
            self.weights[f"{name}.{pname}"] = _float(arr)
        self.values[onnx_node.output[0]] = name
        return name

    def unary(self, node, name, op):
        return self.add(name, op, [self.src(node, name)], onnx_node=node)

    def spatial_pads(self, node, name, a, in_hw, kernel, strides, dilations):
        """ONNX pads [t, l, b, r] or auto_pad, as the IR's (top, bottom, left, right)."""
        auto = a.get("auto_pad", "NOTSET")
        if auto in ("NOTSET", ""):
            p = list(a.get("pads", [0, 0, 0, 0]))
            if len(p) != 4 or min(p) < 0:
                raise UserError(f"ONNX node {name!r} ({node.op_type}): pads {p} are not 2-D non-negative pads")
            return (p[0], p[2], p[1], p[3])
        if auto == "VALID":
            return (0, 0, 0, 0)
        if auto not in ("SAME_UPPER", "SAME_LOWER"):
            raise UserError(f"ONNX node {name!r} ({node.op_type}): auto_pad {auto!r} is not supported")
        out = []
        for size, k, s, d in zip(in_hw, kernel, strides, dilations):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small = total // 2
            out += [small, total - small] if auto == "SAME_UPPER" else [total - small, small]
        return tuple(out)

    def window(self, node, name, a, kernel, ins):
        """(strides, dilations, pads) of a 2-D window op whose input has shape `ins`."""
        if len(ins) != 3 or len(kernel) != 2:
            raise UserError(f"ONNX node {name!r} ({node.op_type}): only 2-D windows on (N, C, H, W) "
                            f"tensors are supported (input {ins}, kernel {tuple(kernel)})")
        strides = tuple(a.get("strides", (1, 1)))
        dilations = tuple(a.get("dilations", (1, 1)))
        return strides, dilations, self.spatial_pads(node, name, a, ins[1:], kernel, strides, dilations)


def _op_name(node) -> str:
    return node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"


def _known(node) -> bool:
    """Whether the importer maps (or folds, when its inputs are constants) this node's operator."""
    return node.domain in ("", "ai.onnx") and (
        node.op_type in HANDLERS or node.op_type in _FOLDABLE)


def _float(arr: np.ndarray) -> np.ndarray:
    return np.array(arr, dtype=np.float64 if arr.dtype == np.float64 else np.float32)


def _node_names(nodes) -> list[str]:
    """ONNX node names where unique and non-empty, else `<OpType>_<index>` (made unique)."""
    counts = Counter(n.name for n in nodes)
    taken = {n.name for n in nodes} | {INPUT}
    names = []
    for idx, n in enumerate(nodes):
        if n.name and counts[n.name] == 1 and n.name != INPUT:
            names.append(n.name)
            continue
        cand = f"{n.op_type}_{idx}"
        while cand in taken:
            cand += "_"
        taken.add(cand)
        names.append(cand)
    return names


def _add_pads(a, b):
    return tuple(x + y for x, y in zip(a, b))


# --- operator handlers: (importer, ONNX node, IR name) -------------------------------------------

def _conv(im: _Importer, node, name):
    x, extra = im.src_padded(node, name)
    w = im.const(node, name, 1, "weight")
    bias = im.const(node, name, 2, "bias", required=False)
    a = im.attrs(node)
    if w.ndim != 4:
        raise UserError(f"ONNX node {name!r} (Conv): only 2-D convolutions are supported (weight {w.shape})")
    kernel = tuple(a.get("kernel_shape", w.shape[2:]))
    strides, dilations, pads = im.window(node, name, a, kernel, im.shape(x))
    op = O.Conv2d(w.shape[0], kernel, strides, _add_pads(pads, extra), dilations,
                  int(a.get("group", 1)), bias is not None)
    shift = shift_of_conv(op, w, bias, im.shape(x)[0])
    if shift is not None:
        return im.add(name, shift, [x], onnx_node=node)
    im.add(name, op, [x], {"weight": w, "bias": bias}, node)


def shift_of_conv(op: O.Conv2d, w: np.ndarray, bias, in_channels: int) -> O.Shift | None:
    """The Shift a convolution computes, or None. ONNX has no shift operator: exporters write it as
    a depthwise convolution whose every kernel is one-hot (a single 1), stride 1, padded to keep
    the size, no bias (or a zero one). That is a shift when the taps' offsets are exactly those of
    a Shift of some assignment (channels past floor(C/k^2) k^2 on the centre tap)."""
    c, k = w.shape[0], w.shape[2]
    d = op.dilation[0]
    if not (op.groups == c == in_channels and w.shape[1] == 1 and w.shape[2] == w.shape[3]
            and k % 2 == 1 and k >= 3 and op.dilation == (d, d) and op.stride == (1, 1)
            and op.padding == (d * (k // 2),) * 4 and (bias is None or not np.any(bias))):
        return None
    taps = w.reshape(c, k * k)
    hot = taps.argmax(axis=1)
    if not (np.all(taps[np.arange(c), hot] == 1) and np.count_nonzero(taps) == c):
        return None
    offsets = d * (np.stack([hot // k, hot % k], axis=1) - k // 2)
    for assignment in F.SHIFT_ASSIGNMENTS:
        candidate = O.Shift(int(k), int(d), assignment)
        if np.array_equal(candidate.offsets(c), offsets):
            return candidate
    return None


def _batch_norm(im, node, name):
    a = im.attrs(node)
    if a.get("training_mode", 0):
        raise UserError(f"ONNX node {name!r} (BatchNormalization): training mode is not supported")
    params = {p: im.const(node, name, i + 1, p) for i, p in enumerate(("gamma", "beta", "mean", "var"))}
    im.add(name, O.BatchNorm(float(a.get("epsilon", 1e-5))), [im.src(node, name)], params, node)


def _clip(im, node, name):
    a = im.attrs(node)
    if im.opset >= 11:
        lo, hi = (im.const(node, name, i, what, required=False) for i, what in ((1, "min"), (2, "max")))
        for v, what in ((lo, "min"), (hi, "max")):
            if v is not None and np.size(v) != 1:
                raise UserError(f"ONNX node {name!r} (Clip): {what} must be a scalar, got shape "
                                f"{np.shape(v)}")
        lo, hi = (None if v is None else float(np.reshape(v, ())) for v in (lo, hi))
    else:
        lo, hi = a.get("min"), a.get("max")
    if lo == 0 and hi == 6:
        op = O.ReLU6()
    elif lo == 0 and (hi is None or hi == np.inf):
        op = O.ReLU()
    else:
        raise UserError(f"ONNX node {name!r} (Clip): only Clip(0, 6) (ReLU6) and Clip(0, inf) (ReLU) "
                        f"are supported, got Clip({lo}, {hi})")
    im.unary(node, name, op)


def _add(im, node, name):
    ins = [v for v in node.input if v]
    if len(ins) == 1:  # a Sum of one tensor
        return _identity(im, node, name)
    if any(v in im.consts for v in ins):
        return _add_bias(im, node, name, ins)
    im.add(name, O.Add(), [im.src(node, name, i) for i in range(len(ins))], onnx_node=node)


def _add_bias(im, node, name, ins):
    """x + constant: only as the bias of the bias-less Conv or Linear that produced x alone."""
    consts = [v for v in ins if v in im.consts]
    others = [v for v in ins if v not in im.consts]
    ok = len(ins) == 2 and len(others) == 1 and others[0] in im.values and im.uses[others[0]] == 1
    if ok:
        src = im.values[others[0]]
        idx = next((k for k, n in enumerate(im.b.nodes) if n.name == src), None)
        prod_node = im.b.nodes[idx] if idx is not None else None
        ok = prod_node is not None and isinstance(prod_node.op, (O.Conv2d, O.Linear)) and not prod_node.op.bias
    if ok:
        out = im.shape(src)
        c = np.asarray(im.consts[consts[0]])
        dims = list(c.shape)
        while dims and dims[0] == 1 and len(dims) > len(out):
            dims.pop(0)
        ok = tuple(dims) == (out[0],) + (1,) * (len(out) - 1)
    if not ok:
        raise UserError(f"ONNX node {name!r} (Add): adding a constant is supported only as the bias of "
                        "a bias-less Conv, Gemm or MatMul whose output nothing else reads")
    im.b.nodes[idx] = Node(prod_node.name, replace(prod_node.op, bias=True), prod_node.inputs)
    im.weights[f"{src}.bias"] = _float(c.reshape(-1))
    im.values[node.output[0]] = src


def _concat(im, node, name):
    xs = [im.src(node, name, i) for i in range(len(node.input))]
    rank = len(im.shape(xs[0])) + 1
    axis = int(im.attrs(node).get("axis", 1))
    if axis % rank != 1:
        raise UserError(f"ONNX node {name!r} (Concat): only concatenation along channels (axis 1) "
                        f"is supported, got axis {axis}")
    im.add(name, O.Concat(), xs, onnx_node=node)


def _pool(im, node, name):
    a = im.attrs(node)
    is_avg = node.op_type == "AveragePool"
    ceil = bool(a.get("ceil_mode", 0))
    x, extra = im.src_padded(node, name, fold_pad=is_avg and not ceil)
    kernel = tuple(a.get("kernel_shape", ()))
    strides, dilations, pads = im.window(node, name, a, kernel, im.shape(x))
    if dilations != (1, 1):
        raise UserError(f"ONNX node {name!r} ({node.op_type}): dilated pooling is not supported")
    if not is_avg:
        return im.add(name, O.MaxPool(kernel, strides, pads, ceil), [x], onnx_node=node)
    include = bool(a.get("count_include_pad", 0))
    if any(extra):
        if any(pads) and not include:
            raise UserError(f"ONNX node {name!r} (AveragePool): a Pad before a pool that excludes its own "
                            "padding from the average cannot be folded")
        include = True  # the Pad's zeros are data: they count
    im.add(name, O.AvgPool(kernel, strides, _add_pads(pads, extra), ceil, include), [x], onnx_node=node)


def _flatten_like(im, node, name, ok: bool, what: str):
    if not ok:
        raise UserError(f"ONNX node {name!r} ({node.op_type}): {what}; only flattening to "
                        "(N, features) is supported")
    im.unary(node, name, O.Flatten())


def _flatten(im, node, name):
    x = im.src(node, name)
    axis = int(im.attrs(node).get("axis", 1))
    _flatten_like(im, node, name, axis % (len(im.shape(x)) + 1) == 1, f"axis {axis}")


def _reshape(im, node, name):
    ins = im.shape(im.src(node, name))
    t = [int(d) for d in np.asarray(im.const(node, name, 1, "target shape")).reshape(-1)]
    batch_ok = t[:1] == [0] or (t[:1] == [-1] and t[1:] != [-1]) or (im.batch is not None and t[:1] == [im.batch])
    ok = len(t) == 2 and t[1] in (-1, prod(ins)) and batch_ok
    _flatten_like(im, node, name, ok, f"target shape {t} for input (N, {', '.join(map(str, ins))})")


def _squeeze(im, node, name):
    ins = im.shape(im.src(node, name))
    axes = im.attrs(node).get("axes") if im.opset < 13 else im.const(node, name, 1, "axes", required=False)
    rank = len(ins) + 1
    axes = sorted(int(d) % rank for d in axes) if axes is not None else [
        k + 1 for k, d in enumerate(ins) if d == 1]
    ok = len(ins) == 3 and ins[1:] == (1, 1) and axes == [2, 3]
    _flatten_like(im, node, name, ok, f"squeezing axes {axes} of (N, {', '.join(map(str, ins))})")


def _linear(im, node, name, x, weight, bias):
    im.add(name, O.Linear(weight.shape[0], bias is not None), [x], {"weight": weight, "bias": bias}, node)


def _gemm(im, node, name):
    a = im.attrs(node)
    if a.get("transA", 0):
        raise UserError(f"ONNX node {name!r} (Gemm): transA=1 is not supported")
    x = im.src(node, name)
    b = np.asarray(im.const(node, name, 1, "B"))
    w = _scaled(b if a.get("transB", 0) else b.T, a.get("alpha", 1.0))
    c = im.const(node, name, 2, "C", required=False)
    if c is not None:
        c = _scaled(np.asarray(c), a.get("beta", 1.0))
        try:
            c = np.broadcast_to(c.reshape(c.shape[1:]) if c.ndim == 2 and c.shape[0] == 1 else c, (w.shape[0],))
        except ValueError:
            raise UserError(f"ONNX node {name!r} (Gemm): C of shape {c.shape} is not a per-output bias") from None
    _linear(im, node, name, x, w, c)


def _scaled(arr, factor):
    """arr * factor in arr's own precision (float64 for the product, then back)."""
    return arr if factor == 1 else (arr.astype(np.float64) * factor).astype(_float(arr).dtype)


def _matmul(im, node, name):
    x = im.src(node, name)
    b = np.asarray(im.const(node, name, 1, "B"))
    if b.ndim != 2:
        raise UserError(f"ONNX node {name!r} (MatMul): only a 2-D constant right operand is supported")
    _linear(im, node, name, x, b.T, None)


def _identity(im, node, name):
    v = node.input[0]
    if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
        if bool(np.asarray(im.const(node, name, 2, "training_mode")).item()):
            raise UserError(f"ONNX node {name!r} (Dropout): training mode is not supported")
    if v in im.pads:
        im.pads[node.output[0]] = im.pads[v]
    else:
        im.values[node.output[0]] = im.src(node, name)


def _shape(im, node, name):
    a = im.attrs(node)
    full = np.array([im.batch or 0, *im.shape(im.src(node, name))], np.int64)
    im.consts[node.output[0]] = full[a.get("start", 0):a.get("end", len(full))]


def _pad(im, node, name):
    a = im.attrs(node)
    if a.get("mode", "constant") != "constant":
        raise UserError(f"ONNX node {name!r} (Pad): only constant padding is supported, not {a['mode']!r}")
    x = im.src(node, name)
    rank = len(im.shape(x)) + 1
    if im.opset < 11:
        pads, value, axes = list(a.get("pads", [])), float(a.get("value", 0.0)), None
    else:
        pads = [int(p) for p in np.asarray(im.const(node, name, 1, "pads")).reshape(-1)]
        value = im.const(node, name, 2, "constant_value", required=False)
        value = 0.0 if value is None else float(np.asarray(value).reshape(-1)[0])
        axes = im.const(node, name, 3, "axes", required=False)
    if axes is not None:
        full = [0] * (2 * rank)
        axes = [int(d) % rank for d in np.asarray(axes).reshape(-1)]
        for k, ax in enumerate(axes):
            full[ax], full[rank + ax] = pads[k], pads[len(axes) + k]
        pads = full
    if value != 0 or rank != 4 or len(pads) != 8 or any(pads[k] for k in (0, 1, 4, 5)) or min(pads) < 0:
        raise UserError(f"ONNX node {name!r} (Pad): only non-negative zero padding of H and W of an "
                        f"(N, C, H, W) tensor is supported (pads {pads}, value {value})")
    im.pads[node.output[0]] = (x, (pads[2], pads[6], pads[3], pads[7]), name)


def _gap(im, node, name):
    im.unary(node, name, O.GlobalAvgPool())


def _relu(im, node, name):
    im.unary(node, name, O.ReLU())


def _leaky(im, node, name):
    im.unary(node, name, O.LeakyReLU(float(im.attrs(node).get("alpha", 0.01))))


def _lrn(im, node, name):
    a = im.attrs(node)
    im.unary(node, name, O.LRN(int(a["size"]), float(a.get("alpha", 1e-4)), float(a.get("beta", 0.75)),
                               float(a.get("bias", 1.0))))


def _sigmoid(im, node, name):
    im.unary(node, name, O.Sigmoid())


def _hard_sigmoid(im, node, name):
    a = im.attrs(node)
    im.unary(node, name, O.HardSigmoid(float(a.get("alpha", 0.2)), float(a.get("beta", 0.5))))


def _hard_swish(im, node, name):
    im.unary(node, name, O.HardSwish())


def _swish(im, node, name):
    alpha = float(im.attrs(node).get("alpha", 1.0))
    if alpha != 1.0:
        raise UserError(f"ONNX node {name!r} (Swish): only alpha 1 (SiLU) is supported, got {alpha}")
    im.unary(node, name, O.SiLU())


def _mul(im, node, name):
    """x * y of two computed tensors: one shape, or a map and its per-channel scale (SE)."""
    if any(v in im.consts for v in node.input):
        raise UserError(f"ONNX node {name!r} (Mul): multiplying by a constant is not supported, only "
                        "two computed tensors (e.g. squeeze-and-excitation's channel scaling)")
    im.add(name, O.Mul(), [im.src(node, name, 0), im.src(node, name, 1)], onnx_node=node)


def _reduce_mean(im, node, name):
    """A mean over H and W: a global average pool (then a flatten when the axes are dropped)."""
    a = im.attrs(node)
    x = im.src(node, name)
    axes = (a.get("axes") if im.opset < 18
            else im.const(node, name, 1, "axes", required=False))
    rank = len(im.shape(x)) + 1
    axes = None if axes is None else sorted(int(d) % rank for d in np.asarray(axes).reshape(-1))
    if axes != [2, 3] or rank != 4:
        raise UserError(f"ONNX node {name!r} (ReduceMean): only a mean over H and W of an (N, C, H, W) "
                        f"tensor is supported, got axes {axes}")
    if a.get("keepdims", 1):
        return im.add(name, O.GlobalAvgPool(), [x], onnx_node=node)
    pooled = im.add(f"{name}.pool", O.GlobalAvgPool(), [x], onnx_node=node)
    im.add(name, O.Flatten(), [pooled], onnx_node=node)


def _resize(im, node, name):
    """Resize of H and W, nearest or linear, to the sizes given or to the input times the scales
    (which must give whole sizes exactly: the output positions are worked out from the sizes)."""
    a = im.attrs(node)
    where = f"ONNX node {name!r} ({node.op_type})"
    x = im.src(node, name)
    c, h, w = im.shape(x)
    mode = a.get("mode", "nearest")
    first = 1 if node.op_type == "Upsample" or im.opset < 11 else 2  # opset 11+: roi comes first
    # Upsample and opset 10's Resize have no coordinate modes: their positions are asymmetric's
    coordinates = a.get("coordinate_transformation_mode", "half_pixel" if first == 2 else "asymmetric")
    if mode not in F.RESIZE_MODES or coordinates not in F.RESIZE_COORDINATES or a.get("antialias", 0) \
            or "axes" in a:
        raise UserError(f"{where}: only nearest and linear modes with coordinate transformation "
                        f"{', '.join(F.RESIZE_COORDINATES)} are supported (got {mode}, {coordinates})")
    scales = im.const(node, name, first, "scales", required=False)
    sizes = im.const(node, name, first + 1, "sizes", required=False) if first == 2 else None
    if sizes is not None and np.asarray(sizes).size:
        n, ch, ho, wo = (int(d) for d in np.asarray(sizes).reshape(-1))
    elif scales is not None and np.asarray(scales).size == 4:
        sn, sc, sh, sw = (float(v) for v in np.asarray(scales).reshape(-1))
        ch, ho, wo = c, int(h * sh), int(w * sw)
        if (sn, sc) != (1, 1) or ho != h * sh or wo != w * sw:
            raise UserError(f"{where}: scales {[sn, sc, sh, sw]} must be 1 on N and C and give whole "
                            f"sizes of the {h}x{w} input")
    else:
        raise UserError(f"{where}: needs four scales or four sizes")
    if ch != c or min(ho, wo) < 1:
        raise UserError(f"{where}: only H and W may change, to positive sizes (got C {ch}, {ho}x{wo})")
    nearest = a.get("nearest_mode", "round_prefer_floor")
    if nearest not in F.NEAREST_ROUNDING:
        raise UserError(f"{where}: nearest_mode {nearest!r} is not one of {', '.join(F.NEAREST_ROUNDING)}")
    im.add(name, O.Resize((ho, wo), mode, coordinates, nearest), [x], onnx_node=node)


def _channel_axis(im, node, name, axis, rank):
    if axis % rank != 1:
        raise UserError(f"ONNX node {name!r} ({node.op_type}): only the channel axis (1) can be "
                        f"sliced or split, got axis {axis}")


def _slice(im, node, name):
    x = im.src(node, name)
    shape = im.shape(x)
    rank = len(shape) + 1
    if im.opset < 10:
        a = im.attrs(node)
        starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
    else:
        starts, ends = (im.const(node, name, i, what) for i, what in ((1, "starts"), (2, "ends")))
        axes = im.const(node, name, 3, "axes", required=False)
        steps = im.const(node, name, 4, "steps", required=False)
    starts, ends = ([int(v) for v in np.asarray(t).reshape(-1)] for t in (starts, ends))
    axes = list(range(len(starts))) if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
    steps = [1] * len(starts) if steps is None else [int(v) for v in np.asarray(steps).reshape(-1)]
    full = {ax % rank: (s, e, st) for ax, s, e, st in zip(axes, starts, ends, steps)}
    for ax, (s, e, st) in full.items():  # a slice of all of another axis (exporters write them)
        whole = (im.batch or 1) if ax == 0 else shape[ax - 1]
        if ax != 1 and not (st == 1 and s == 0 and e >= whole):
            _channel_axis(im, node, name, ax, rank)
    s, e, st = full.get(1, (0, shape[0], 1))
    if st != 1:
        raise UserError(f"ONNX node {name!r} (Slice): only step 1 is supported, got {st}")
    n = shape[0]
    s, e = (min(max(v + n if v < 0 else v, 0), n) for v in (s, e))
    im.add(name, O.Slice(s, e), [x], onnx_node=node)


def _split(im, node, name):
    """A channel Split: one Slice per output (the first named after the node, the others
    `<node>.<k>`)."""
    a = im.attrs(node)
    x = im.src(node, name)
    shape = im.shape(x)
    _channel_axis(im, node, name, int(a.get("axis", 0)), len(shape) + 1)
    parts = a.get("split") if im.opset < 13 else im.const(node, name, 1, "split", required=False)
    outs = len(node.output)
    if parts is None:
        if shape[0] % outs:
            raise UserError(f"ONNX node {name!r} (Split): {shape[0]} channels do not split into {outs} "
                            "equal parts")
        parts = [shape[0] // outs] * outs
    parts = [int(p) for p in np.asarray(parts).reshape(-1)]
    if sum(parts) != shape[0] or len(parts) != outs or min(parts) < 1:
        raise UserError(f"ONNX node {name!r} (Split): parts {parts} do not split {shape[0]} channels "
                        f"into {outs} outputs")
    start = 0
    for k, (out, size) in enumerate(zip(node.output, parts)):
        part = name if k == 0 else f"{name}.{k}"
        im.b.add(part, O.Slice(start, start + size), x)
        im.values[out] = part
        start += size


HANDLERS: dict[str, Callable] = {
    "Conv": _conv, "BatchNormalization": _batch_norm, "Relu": _relu, "Clip": _clip, "LeakyRelu": _leaky,
    "Add": _add, "Sum": _add, "Concat": _concat, "MaxPool": _pool, "AveragePool": _pool,
    "GlobalAveragePool": _gap, "Flatten": _flatten, "Reshape": _reshape, "Squeeze": _squeeze,
    "Gemm": _gemm, "MatMul": _matmul, "Dropout": _identity, "Identity": _identity, "Pad": _pad,
    "LRN": _lrn, "Shape": _shape, "Sigmoid": _sigmoid, "HardSigmoid": _hard_sigmoid,
    "HardSwish": _hard_swish, "Swish": _swish, "Mul": _mul, "ReduceMean": _reduce_mean,
    "Resize": _resize, "Upsample": _resize, "Slice": _slice, "Split": _split,
}
_MULTI_OUTPUT = ("Split",)  # every output of these is mapped
# --- constant folding: which operators may run, and the size of their result -------------------
# Each estimate sees the node, its constant inputs and its attributes, and returns the number
# of elements the node will produce, from sizes and values alone (nothing is computed).

def _broadcast(node, xs, a) -> int:
    return prod(np.broadcast_shapes(*(x.shape for x in xs))) if xs else 1


def _same_total(node, xs, a) -> int:  # reshaping, slicing, reordering, joining: no new elements
    return sum(x.size for x in xs)


def _constant_size(node, xs, a) -> int:
    v = next(iter(a.values()), None)
    if hasattr(v, "dims"):  # a TensorProto, or a SparseTensorProto (densified)
        return prod(v.dims)
    return len(v) if isinstance(v, (list, tuple)) else 1


def _constant_of_shape(node, xs, a) -> int:
    dims = [int(d) for d in xs[0].reshape(-1)] if xs else []
    return prod(max(d, 0) for d in dims)


def _range(node, xs, a) -> int:
    start, limit, delta = (float(np.asarray(x).reshape(-1)[0]) for x in xs)
    if delta == 0 or not np.isfinite([start, limit, delta]).all():
        raise UserError(f"ONNX node {node.name!r:.60} (Range): delta {delta} over [{start}, {limit})")
    return max(int(np.ceil((limit - start) / delta)), 0)


def _expand(node, xs, a) -> int:
    return prod(np.broadcast_shapes(xs[0].shape, tuple(int(d) for d in xs[1].reshape(-1))))


def _tile(node, xs, a) -> int:
    reps = [int(r) for r in xs[1].reshape(-1)]
    return xs[0].size * prod(max(r, 0) for r in reps)


def _gather(node, xs, a) -> int:
    return xs[0].size * max(xs[1].size, 1)


_ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Neg", "Abs", "Sqrt", "Reciprocal", "Cast", "Floor",
                "Ceil", "Pow", "Min", "Max", "Equal", "Less", "Greater", "Not", "And", "Or", "Where",
                "Exp", "Log", "Relu", "Sigmoid", "Clip", "Sign", "Mod")
_RESHAPING = ("Reshape", "Unsqueeze", "Squeeze", "Flatten", "Transpose", "Concat", "Slice",
              "Identity", "Shape", "Size", "Dropout")
_FOLDABLE: dict[str, Callable] = {
    **{op: _broadcast for op in _ELEMENTWISE}, **{op: _same_total for op in _RESHAPING},
    "Constant": _constant_size, "ConstantOfShape": _constant_of_shape, "Range": _range,
    "Expand": _expand, "Tile": _tile, "Gather": _gather,
}
