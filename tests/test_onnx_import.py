"""ONNX import: torch exports of pytorchcv SqueezeNexts and of a small model that covers the other
operators run like torch and onnxruntime; hand-made graphs check folding rules and errors."""
import sys
import warnings

import numpy as np
import pytest

from sqnxt_engine import UserError
from sqnxt_engine.graph import ops as O
from sqnxt_engine.io.onnx_import import read_onnx
from sqnxt_engine.runtime import Runner

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:
    onnx = None


@pytest.fixture(autouse=True)
def _needs_onnx(request):
    # every test but the one about the missing package builds or reads ONNX files
    if onnx is None and request.node.name != "test_missing_onnx_package_is_user_error":
        pytest.skip("needs the onnx package")


def _close(y, ref, top5=True):
    """Max abs diff under 1e-4 of the reference's range, and (for logits) the same top 5."""
    assert y.shape == ref.shape
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-4 * np.ptp(ref))
    if top5:
        np.testing.assert_array_equal(np.argsort(-y, 1)[:, :5], np.argsort(-ref, 1)[:, :5])


def _ort(path, x):
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


# --- torch exports ---------------------------------------------------------------------------------

def _torch():
    return pytest.importorskip("torch")


def _export(model, x, path, keep_bn=False):
    torch = _torch()
    mode = torch.onnx.TrainingMode.PRESERVE if keep_bn else torch.onnx.TrainingMode.EVAL
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=13, training=mode)
    return path


def _randomize_bn(model, seed):
    """Non-trivial running statistics and affine terms, so that batch-norm folding matters."""
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            c = m.num_features
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.2)
    return model.eval()


@pytest.mark.parametrize("arch, keep_bn", [("sqnxt23_w1", False), ("sqnxt23v5_w1", True)])
def test_pytorchcv_squeezenext_matches_torch(arch, keep_bn, tmp_path):
    torch = _torch()
    sqnxt = pytest.importorskip("pytorchcv.models.squeezenext")
    torch.manual_seed(0)
    model = _randomize_bn(getattr(sqnxt, arch)(pretrained=False), 1)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref = model(x).numpy()
    g, w = read_onnx(_export(model, x, tmp_path / f"{arch}.onnx", keep_bn))
    assert g.input_shape == (3, 224, 224) and g.output_shape() == (1000,)
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert sum(isinstance(n.op, O.Conv2d) for n in g.nodes) == convs
    # torch folds batch norms into the convs on an EVAL export; PRESERVE keeps them as nodes
    assert sum(isinstance(n.op, O.BatchNorm) for n in g.nodes) == (convs if keep_bn else 0)
    _close(Runner(g, w)(x.numpy()), ref)


def _small_model():
    nn = _torch().nn

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.pad = nn.ZeroPad2d((0, 1, 0, 1))
            self.c1 = nn.Conv2d(3, 8, 3, stride=2, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.r6 = nn.ReLU6()
            self.mp = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4)
            self.leaky = nn.LeakyReLU(0.2)
            self.dwpad = nn.ZeroPad2d((2, 0, 1, 1))  # left, right, top, bottom
            self.dw = nn.Conv2d(8, 8, 3, groups=8)
            self.ap = nn.AvgPool2d(3, 2, padding=1)
            self.ap2 = nn.AvgPool2d(2, 2, padding=1, count_include_pad=False, ceil_mode=True)
            self.drop = nn.Dropout(0.3)
            self.fc = nn.Linear(16 * 3 * 3, 10)

        def forward(self, x):
            x = self.mp(self.r6(self.bn1(self.c1(self.pad(x)))))
            y = _torch().cat([self.leaky(self.grouped(x)), self.dw(self.dwpad(x))], 1)
            y = self.ap2(self.ap(y))
            return self.fc(self.drop(_torch().flatten(y, 1)))

    return Small()


def test_small_model_matches_torch_and_onnxruntime(tmp_path):
    torch = _torch()
    torch.manual_seed(0)
    model = _randomize_bn(_small_model(), 3)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = model(x).numpy()
    path = _export(model, x, tmp_path / "small.onnx", keep_bn=True)
    g, w = read_onnx(path)
    kinds = [n.op.kind for n in g.nodes]
    assert kinds == ["conv", "bn", "relu6", "maxpool", "conv", "leaky_relu", "conv", "concat",
                     "avgpool", "avgpool", "flatten", "fc"]
    convs = [n.op for n in g.nodes if isinstance(n.op, O.Conv2d)]
    assert convs[0].padding == (0, 1, 0, 1)  # ZeroPad2d (l, r, t, b) folded as (t, b, l, r)
    assert convs[2].padding == (1, 1, 2, 0) and convs[2].groups == 8
    assert convs[1].groups == 4
    assert g[g.nodes[5].name].op.slope == pytest.approx(0.2)
    pools = [n.op for n in g.nodes if isinstance(n.op, O.AvgPool)]
    assert pools[0].count_include_pad and not pools[1].count_include_pad and pools[1].ceil_mode
    y = Runner(g, w)(x.numpy())
    _close(y, ref)
    _close(y, _ort(path, x.numpy()))


# --- hand-made graphs --------------------------------------------------------------------------------

def _model(nodes, in_shape, out_rank, inits=(), opset=13, path=None, in_name="x"):
    graph = helper.make_graph(
        nodes, "hand", [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [f"d{k}" for k in range(out_rank)])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(inits).items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def _rng_inits(seed, **shapes):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s).astype(np.float32) for k, s in shapes.items()}


def _run_both(path, shape=(2, 3, 9, 9)):
    x = np.random.default_rng(5).normal(size=shape).astype(np.float32)
    g, w = read_onnx(path)
    y = Runner(g, w)(x)
    _close(y, _ort(path, x), top5=False)
    return g, w


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
def test_conv_and_pool_auto_pad(auto_pad, tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], "conv", kernel_shape=[4, 3], strides=[2, 2],
                              auto_pad=auto_pad),
             helper.make_node("MaxPool", ["c"], ["y"], "pool", kernel_shape=[2, 2], auto_pad=auto_pad)]
    path = _model(nodes, [2, 3, 9, 9], 4, _rng_inits(0, w=(4, 3, 4, 3)), path=tmp_path / "m.onnx")
    g, _ = _run_both(path)
    if auto_pad == "SAME_UPPER":
        assert g["conv"].op.padding == (1, 2, 1, 1)
    if auto_pad == "SAME_LOWER":
        assert g["conv"].op.padding == (2, 1, 1, 1)


def test_pad_before_average_pool_folds_and_counts(tmp_path):
    nodes = [helper.make_node("Pad", ["x", "pads"], ["p"], "pad"),
             helper.make_node("AveragePool", ["p"], ["y"], "pool", kernel_shape=[3, 3], strides=[2, 2])]
    pads = np.array([0, 0, 1, 2, 0, 0, 0, 1], np.int64)  # begins (N, C, H, W), then ends
    path = _model(nodes, [2, 3, 9, 9], 4, {"pads": pads}, path=tmp_path / "m.onnx")
    g, _ = _run_both(path)
    assert [n.name for n in g.nodes] == ["pool"]
    assert g["pool"].op.padding == (1, 0, 2, 1) and g["pool"].op.count_include_pad


def test_matmul_add_becomes_linear_with_bias_and_reshape_flattens(tmp_path):
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"], "gap"),
             helper.make_node("Identity", ["g"], ["i"], "same"),
             helper.make_node("Reshape", ["i", "shape"], ["f"], "flat"),
             helper.make_node("Dropout", ["f"], ["d"], "drop"),
             helper.make_node("MatMul", ["d", "w"], ["m"], "fc"),
             helper.make_node("Add", ["m", "b"], ["y"], "bias")]
    inits = dict(_rng_inits(1, w=(3, 5), b=(5,)), shape=np.array([0, -1], np.int64))
    path = _model(nodes, [2, 3, 9, 9], 2, inits, path=tmp_path / "m.onnx")
    g, w = _run_both(path)
    assert [n.op.kind for n in g.nodes] == ["gap", "flatten", "fc"] and g["fc"].op.bias
    np.testing.assert_array_equal(w["fc.weight"], inits["w"].T)
    np.testing.assert_array_equal(w["fc.bias"], inits["b"])


def test_dynamic_batch_flatten_through_shape_arithmetic(tmp_path):
    """What torch exports for x.view(x.size(0), -1) with a dynamic batch."""
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["g"], "gap"),
             helper.make_node("Shape", ["g"], ["s"], "shape"),
             helper.make_node("Gather", ["s", "zero"], ["n"], "batch"),
             helper.make_node("Unsqueeze", ["n", "zero_axis"], ["n1"], "n1"),
             helper.make_node("Concat", ["n1", "minus1"], ["t"], "target", axis=0),
             helper.make_node("Reshape", ["g", "t"], ["y"], "flat")]
    inits = {"zero": np.array(0, np.int64), "zero_axis": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64)}
    path = _model(nodes, ["N", 3, 9, 9], 2, inits, path=tmp_path / "m.onnx")
    g, _ = _run_both(path)
    assert [n.op.kind for n in g.nodes] == ["gap", "flatten"]


def test_conv_bias_add_squeeze_and_scaled_gemm(tmp_path):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], "conv", pads=[1, 0, 0, 1]),
             helper.make_node("Add", ["cb", "c"], ["a"], "conv_bias"),
             helper.make_node("GlobalAveragePool", ["a"], ["g"], "gap"),
             helper.make_node("Squeeze", ["g", "axes"], ["s"], "squeeze"),
             helper.make_node("Gemm", ["s", "fw", "fb"], ["y"], "fc", alpha=0.5, beta=2.0)]
    inits = dict(_rng_inits(2, w=(4, 3, 2, 2), cb=(1, 4, 1, 1), fw=(4, 6), fb=(1, 6)),
                 axes=np.array([-1, 2], np.int64))
    path = _model(nodes, [2, 3, 9, 9], 2, inits, path=tmp_path / "m.onnx")
    g, w = _run_both(path)
    assert [n.op.kind for n in g.nodes] == ["conv", "gap", "flatten", "fc"]
    assert g["conv"].op.bias and g["conv"].op.padding == (1, 0, 0, 1)
    np.testing.assert_allclose(w["fc.weight"], 0.5 * inits["fw"].T)
    assert all(v.dtype == np.float32 for v in w.values())


def test_clip_attributes_lrn_and_generated_names(tmp_path):
    nodes = [helper.make_node("Clip", ["x"], ["c"], min=0.0, max=6.0),  # opset 10: attributes
             helper.make_node("LRN", ["c"], ["l"], "input", size=3, alpha=1e-2, beta=0.7, bias=2.0),
             helper.make_node("Relu", ["l"], ["y"], "r")]
    path = _model(nodes, [2, 3, 9, 9], 4, opset=10, path=tmp_path / "m.onnx")
    g, _ = _run_both(path)
    # unnamed and reserved ('input') names are generated from the op type and position
    assert [(n.name, n.op.kind) for n in g.nodes] == [("Clip_0", "relu6"), ("LRN_1", "lrn"), ("r", "relu")]


def test_duplicate_node_names_are_replaced_deterministically(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"], "dup"), helper.make_node("Relu", ["a"], ["b"], "dup"),
             helper.make_node("Relu", ["b"], ["y"], "Relu_0")]
    path = _model(nodes, [1, 3, 9, 9], 4, path=tmp_path / "m.onnx")
    assert [n.name for n in read_onnx(path)[0].nodes] == ["Relu_0_", "Relu_1", "Relu_0"]


def test_dynamic_spatial_dims_need_input_shape(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], "r")]
    path = _model(nodes, ["N", 3, "H", "W"], 4, path=tmp_path / "m.onnx")
    with pytest.raises(UserError, match=r"dynamic .*input_shape"):
        read_onnx(path)
    g, _ = read_onnx(path, input_shape=(3, 16, 8))
    assert g.input_shape == (3, 16, 8)
    with pytest.raises(UserError, match="does not match"):
        read_onnx(path, input_shape=(4, 16, 8))


# --- errors ------------------------------------------------------------------------------------------

def test_unsupported_op_names_node_and_type(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"], "r"),
             helper.make_node("Softplus", ["r"], ["y"], "gate")]
    path = _model(nodes, [1, 3, 9, 9], 4, path=tmp_path / "m.onnx")
    with pytest.raises(UserError, match=r"1 ONNX node\(s\) with an operator this importer does not "
                                        r"support: 'gate' \(Softplus\)"):
        read_onnx(path)


@pytest.mark.parametrize("case, match", [
    ("clip", r"'clip' \(Clip\): only Clip\(0, 6\)"),
    ("pad_maxpool", r"'pad' \(Pad\): zero padding folds only .* MaxPool node 'pool'"),
    ("pad_value", r"'pad' \(Pad\): only non-negative zero padding"),
    ("concat_axis", r"'cat' \(Concat\): only concatenation along channels"),
    ("add_const", r"'add' \(Add\): adding a constant is supported only as the bias"),
    ("reshape", r"'view' \(Reshape\): target shape \[0, 3, -1\]"),
])
def test_unmappable_nodes_are_user_errors(case, match, tmp_path):
    consts = {"lo": np.float32(0), "hi": np.float32(5), "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1]),
              "one": np.float32(1), "shape": np.array([0, 3, -1])}
    nodes = {
        "clip": [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], "clip")],
        "pad_maxpool": [helper.make_node("Pad", ["x", "pads"], ["p"], "pad"),
                        helper.make_node("MaxPool", ["p"], ["y"], "pool", kernel_shape=[2, 2])],
        "pad_value": [helper.make_node("Pad", ["x", "pads", "one"], ["p"], "pad"),
                      helper.make_node("Relu", ["p"], ["y"], "r")],
        "concat_axis": [helper.make_node("Concat", ["x", "x"], ["y"], "cat", axis=2)],
        "add_const": [helper.make_node("Add", ["x", "one"], ["y"], "add")],
        "reshape": [helper.make_node("Reshape", ["x", "shape"], ["y"], "view")],
    }[case]
    path = _model(nodes, [1, 3, 9, 9], 4, consts, path=tmp_path / "m.onnx")
    with pytest.raises(UserError, match=match):
        read_onnx(path)


@pytest.mark.parametrize("content", [b"", b"\x08\x07garbage\xff\xff\xff\xff", b"not an onnx file at all"])
def test_malformed_file_is_user_error(content, tmp_path):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(UserError, match="bad.onnx"):
        read_onnx(path)
    with pytest.raises(UserError, match="missing.onnx: no such file"):
        read_onnx(tmp_path / "missing.onnx")


def test_missing_onnx_package_is_user_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(UserError, match=r"needs the onnx package: pip install 'sqnxt-engine\[onnx\]'"):
        read_onnx(tmp_path / "m.onnx")
