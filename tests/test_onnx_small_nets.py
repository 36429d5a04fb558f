"""The operators small networks use, exported by PyTorch: squeeze-and-excitation (global average
pool as ReduceMean, 1x1 convs, Sigmoid / HardSigmoid, Mul), HardSwish, SiLU (Sigmoid and Mul),
Resize (nearest, linear), channel Split and Slice. Imported, they compute what PyTorch and
onnxruntime compute; the emulator runs their convs and fc on its kernels; unsupported nodes
are all named in one line."""
import json
import warnings

import numpy as np
import pytest

from sqnxt_engine import UserError
from sqnxt_engine.emu.cli import main as emu_main
from sqnxt_engine.emu.hardware import load_hardware
from sqnxt_engine.emu.network import emulate
from sqnxt_engine.io.onnx_import import read_onnx
from sqnxt_engine.runtime import Runner

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
nn = torch.nn
Fn = torch.nn.functional


class SmallNet(nn.Module):
    """conv + act, an SE block, a channel split (one half through a conv + SiLU), a channel
    slice, a nearest and a bilinear resize, a global mean and an fc."""

    def __init__(self, act: str, gate: str, resize: str):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.act = nn.Hardswish() if act == "hardswish" else nn.ReLU()
        self.squeeze = nn.Conv2d(16, 4, 1)
        self.excite = nn.Conv2d(4, 16, 1)
        self.gate = nn.Hardsigmoid() if gate == "hardsigmoid" else nn.Sigmoid()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(12, 5)
        self.resize = resize

    def forward(self, x):
        y = self.act(self.conv(x))
        s = y.mean((2, 3), keepdim=True)
        y = y * self.gate(self.excite(torch.relu(self.squeeze(s))))
        a, b = torch.split(y, 8, dim=1)
        a = Fn.silu(self.conv2(a))
        y = torch.cat([a, b[:, 2:6]], 1)
        if self.resize == "nearest":
            y = Fn.interpolate(y, scale_factor=2, mode="nearest")
        else:
            y = Fn.interpolate(y, size=(13, 7), mode="bilinear", align_corners=self.resize == "corners")
        return self.fc(y.mean((2, 3)))


def _export(model, path, opset):
    x = torch.randn(1, 3, 10, 9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset)
    return path


@pytest.mark.parametrize("act, gate, resize, opset", [
    ("relu", "sigmoid", "nearest", 13),
    ("hardswish", "hardsigmoid", "linear", 14),
    ("hardswish", "sigmoid", "corners", 18),
])
def test_small_net_imports_and_runs_like_torch(act, gate, resize, opset, tmp_path):
    torch.manual_seed(0)
    model = SmallNet(act, gate, resize).eval()
    path = _export(model, tmp_path / "small.onnx", opset)
    graph, weights = read_onnx(path)
    kinds = {n.op.kind for n in graph.nodes}
    assert {"mul", "slice", "resize", "gap"} <= kinds
    assert ("hard_sigmoid" in kinds) == (gate == "hardsigmoid") and ("hard_swish" in kinds) == (act == "hardswish")
    x = np.random.default_rng(1).standard_normal((2, 3, 10, 9)).astype(np.float32)
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    y = Runner(graph, weights, np.float64)(x.astype(np.float64))
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5 * np.ptp(ref))
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x[:1]})[0]
    np.testing.assert_allclose(y[:1], got, rtol=0, atol=1e-5 * np.ptp(got))


def test_emulator_runs_the_mac_layers_and_counts_the_rest_as_non_mac_steps(tmp_path):
    torch.manual_seed(0)
    graph, weights = read_onnx(_export(SmallNet("hardswish", "hardsigmoid", "nearest").eval(),
                                       tmp_path / "small.onnx", 14))
    from dataclasses import replace
    hw = replace(load_hardware("8x8"), non_mac_cycles=True)
    res = emulate(graph, weights, hw, sparsity=0.0)
    assert len(res.mac_steps) == 5 and res.top1_match  # conv, squeeze, excite, conv2, fc
    assert res.max_abs_diff < 1e-2 * res.max_abs_ref
    non_mac = {r.kind for r in res.steps if not r.has_macs}
    assert {"mul", "resize", "gap"} <= non_mac and "slice" not in non_mac  # a slice moves nothing


def test_split_into_unequal_parts_and_a_slice_with_negative_ends(tmp_path):
    class Parts(nn.Module):
        def forward(self, x):
            a, b = torch.split(x, [2, 1], dim=1)
            return torch.cat([b, a * 2], 1)  # a * 2: a constant Mul, refused below
    path = _export(Parts(), tmp_path / "p.onnx", 13)
    with pytest.raises(UserError, match="multiplying by a constant"):
        read_onnx(path)

    class Parts2(nn.Module):
        def forward(self, x):
            a, b, c = torch.split(x, [1, 1, 1], dim=1)
            return torch.cat([c, a, x[:, -2:-1]], 1)
    path = _export(Parts2(), tmp_path / "p2.onnx", 13)
    graph, weights = read_onnx(path)
    x = np.random.default_rng(0).standard_normal((1, 3, 10, 9)).astype(np.float32)
    np.testing.assert_array_equal(Runner(graph, weights)(x), x[:, [2, 0, 1]])


def test_every_unsupported_node_is_named_in_one_line(tmp_path, capsys):
    from onnx import TensorProto, helper
    nodes = [helper.make_node("Softplus", ["x"], ["a"], "soft"),
             helper.make_node("Relu", ["a"], ["b"], "r"),
             helper.make_node("Erf", ["b"], ["c"], "erf"),
             helper.make_node("Softplus", ["c"], ["y"], "soft2")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path))
    with pytest.raises(UserError, match=r"3 ONNX node\(s\) .* 'soft' \(Softplus\), 'erf' \(Erf\), "
                                        r"'soft2' \(Softplus\)"):
        read_onnx(path)
    assert emu_main(["trace", "--weights", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'erf' (Erf)" in err and "'soft2'" in err


def test_trace_of_an_onnx_file_without_python(tmp_path, capsys):
    torch.manual_seed(0)
    path = _export(SmallNet("hardswish", "hardsigmoid", "linear").eval(), tmp_path / "se-net.onnx", 14)
    assert emu_main(["trace", "--weights", str(path), "--hw", "8x8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "se-net" and len(out["layers"]) == 5 and out["top1_match"]
    steps = out["non_mac_steps"]  # the 8x8 preset does not time them
    assert {s["op"] for s in steps} >= {"mul", "resize", "gap"} and all(s["cycles"] is None for s in steps)
    assert emu_main(["eval", "--weights", str(path)]) == 2
    assert "needs a quantized weight file" in capsys.readouterr().err
