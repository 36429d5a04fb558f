"""The shift operator (Wu et al., arXiv 1711.08141): equal to a depthwise convolution with one-hot
kernels and to a PyTorch reference built from torch.roll and masking, for every kernel size,
dilation, assignment and channel count; serialisation, the torch module, ONNX recognition."""
import json
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqnxt_engine import GraphError
from sqnxt_engine import functional as F
from sqnxt_engine.graph import ops as O
from sqnxt_engine.graph.graph import GraphBuilder
from sqnxt_engine.graph.serialize import graph_from_dict, graph_to_dict
from sqnxt_engine.runtime import Runner, random_weights

from tolerance import assert_close

ASSIGNMENTS = ("interleaved", "grouped")


def spec_offset(c: int, channels: int, k: int, d: int, assignment: str) -> tuple[int, int]:
    """Channel c's (dy, dx), written from the definition (MODELS.md), independently of the engine:
    the first floor(C/k^2) k^2 channels move, interleaved (group c mod k^2) or in contiguous groups
    of floor(C/k^2) channels; group g moves by d((g div k) - k//2) rows, d((g mod k) - k//2) columns."""
    per = channels // (k * k)
    if c >= per * k * k:
        return 0, 0
    g = c % (k * k) if assignment == "interleaved" else c // per
    return d * (g // k - k // 2), d * (g % k - k // 2)


def one_hot_kernels(channels, k, d, assignment) -> np.ndarray:
    """Depthwise weights (C, 1, k, k): channel c's single 1 at the tap its offset reads."""
    w = np.zeros((channels, 1, k, k))
    for c in range(channels):
        dy, dx = spec_offset(c, channels, k, d, assignment)
        w[c, 0, dy // d + k // 2, dx // d + k // 2] = 1.0
    return w


shift_cases = st.tuples(st.sampled_from([1, 3, 5, 7]), st.integers(1, 3), st.sampled_from(ASSIGNMENTS),
                        st.integers(1, 60), st.integers(1, 9), st.integers(1, 9), st.integers(1, 2))


@given(shift_cases)
def test_shift_equals_depthwise_conv_with_one_hot_kernels(case):
    k, d, assignment, c, h, w, n = case
    x = np.random.default_rng(c * 100 + h * 10 + w).standard_normal((n, c, h, w))
    op = O.Shift(k, d, assignment)
    pad = d * (k // 2)
    want = F.conv2d(x, one_hot_kernels(c, k, d, assignment), None, (1, 1), (pad,) * 4, (d, d), c)
    got = op.forward([x], {})
    np.testing.assert_array_equal(got, want)
    assert got.dtype == x.dtype and not np.shares_memory(got, x)


def torch_reference(x, k, d, assignment):
    """The shift from torch.roll and a mask, channel by channel: roll brings in[y + dy] to y, the
    mask zeroes the rows and columns that wrapped around."""
    torch = pytest.importorskip("torch")
    n, c, h, w = x.shape
    out = torch.empty_like(x)
    ys, xs = torch.arange(h)[:, None], torch.arange(w)[None, :]
    for ch in range(c):
        dy, dx = spec_offset(ch, c, k, d, assignment)
        rolled = torch.roll(x[:, ch], shifts=(-dy, -dx), dims=(1, 2))
        inside = (ys + dy >= 0) & (ys + dy < h) & (xs + dx >= 0) & (xs + dx < w)
        out[:, ch] = rolled * inside
    return out


@pytest.mark.parametrize("k, d", [(3, 1), (3, 2), (5, 1), (7, 3), (1, 1)])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
@pytest.mark.parametrize("channels", [5, 9, 20, 50])
def test_shift_equals_torch_roll_reference_in_numpy_and_torch(k, d, assignment, channels):
    torch = pytest.importorskip("torch")
    from sqnxt_engine.train.torch_graph import GraphModule
    x = np.random.default_rng(channels).standard_normal((2, channels, 8, 7))
    want = torch_reference(torch.from_numpy(x), k, d, assignment).numpy()
    np.testing.assert_array_equal(F.shift(x, k, d, assignment), want)
    b = GraphBuilder("s", (channels, 8, 7))
    b.add("shift", O.Shift(k, d, assignment), b.input)
    xt = torch.from_numpy(x).requires_grad_()
    got = GraphModule(b.build())(xt)
    np.testing.assert_array_equal(got.detach().numpy(), want)
    # the gradient (written out as the opposite shift) equals autograd's through the reference
    g = torch.from_numpy(np.random.default_rng(1).standard_normal(want.shape))
    got.backward(g)
    xr = torch.from_numpy(x).requires_grad_()
    torch_reference(xr, k, d, assignment).backward(g)
    np.testing.assert_array_equal(xt.grad.numpy(), xr.grad.numpy())
    # float32 channels-last, how sqnxt-train keeps activations on the CPU: train._shift's path
    last = torch.channels_last
    xl = torch.from_numpy(x.astype(np.float32)).contiguous(memory_format=last).requires_grad_()
    got = GraphModule(b.build())(xl)
    assert got.is_contiguous(memory_format=last)
    np.testing.assert_array_equal(got.detach().numpy(), want.astype(np.float32))
    got.backward(g.float().contiguous(memory_format=last))
    np.testing.assert_array_equal(xl.grad.numpy(), xr.grad.numpy().astype(np.float32))


@given(shift_cases)
def test_channels_last_kernel_equals_the_shift(case):
    from sqnxt_engine.train._shift import shift_nhwc
    k, d, assignment, c, h, w, n = case
    x = np.random.default_rng(c * 100 + h * 10 + w).standard_normal((n, c, h, w)).astype(np.float32)
    offsets = F.shift_offsets(c, k, d, assignment)
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    out = np.full_like(nhwc, np.nan)  # every element must be written, zeros included
    shift_nhwc(nhwc, offsets, out)
    np.testing.assert_array_equal(out.transpose(0, 3, 1, 2), F.shift(x, k, d, assignment))
    shift_nhwc(nhwc, -offsets, out)  # the opposite shift: the gradient
    np.testing.assert_array_equal(out.transpose(0, 3, 1, 2), F.shift_into(np.zeros_like(x), x, k, d, assignment,
                                                                          reverse=True))


def test_channels_last_kernel_refuses_mismatched_arguments():
    from sqnxt_engine.train._shift import shift_nhwc
    x = np.zeros((1, 4, 4, 9), np.float32)
    with pytest.raises(ValueError, match="out has shape"):
        shift_nhwc(x, F.shift_offsets(9, 3, 1, "interleaved"), np.zeros((1, 4, 4, 8), np.float32))
    with pytest.raises(ValueError, match=r"offsets must have shape \(9, 2\)"):
        shift_nhwc(x, np.zeros((8, 2), np.int64), np.zeros_like(x))


def test_channels_past_the_last_full_group_stay():
    x = np.random.default_rng(0).standard_normal((1, 22, 5, 5)).astype(np.float32)
    y = F.shift(x, 3, 1, "interleaved")
    np.testing.assert_array_equal(y[:, 18:], x[:, 18:])  # 22 = 2 * 9 + 4: channels 18-21 stay
    np.testing.assert_array_equal(y[:, 4], x[:, 4])  # group 4 is the centre (0, 0)
    np.testing.assert_array_equal(y[:, 0, 1:, 1:], x[:, 0, :-1, :-1])  # group 0 reads (-1, -1)
    assert not y[:, 0, 0, :].any() and not y[:, 0, :, 0].any()  # ... and zeros enter


def test_forward_allocates_only_its_output():
    x = np.random.default_rng(0).standard_normal((4, 64, 32, 32)).astype(np.float32)
    tracemalloc.start()
    y = O.Shift(3).forward([x], {})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < y.nbytes + 64 * 1024  # the output, and no temporary as large as a channel group


def test_shift_op_counts_shapes_and_validation():
    b = GraphBuilder("g", (18, 6, 6))
    y = b.add("shift", O.Shift(3, 2, "grouped"), b.conv("c", b.input, 20, 1))
    b.conv("c2", y, 8, 1)
    g = b.build()
    layer = next(layer for layer in g.layers if layer.name == "shift")
    assert (layer.params, layer.macs, layer.out_shape) == (0, 0, (20, 6, 6))
    assert layer.op.describe() == "shift 3x3 d2 grouped"
    for bad in ({"kernel": 2}, {"kernel": 0}, {"dilation": 0}, {"assignment": "diagonal"}):
        with pytest.raises(GraphError, match="shift"):
            O.Shift(**bad)
    with pytest.raises(GraphError, match="needs a \\(C, H, W\\) input"):
        O.Shift().output_shape([(10,)])


def test_shift_graph_round_trips_through_serialisation():
    b = GraphBuilder("g", (10, 5, 5))
    b.add("s2", O.Shift(5, 1, "grouped"), b.add("s1", O.Shift(3, 2), b.input))
    g = b.build()
    back = graph_from_dict(json.loads(json.dumps(graph_to_dict(g))))
    assert [n.op for n in back.nodes] == [O.Shift(3, 2, "interleaved"), O.Shift(5, 1, "grouped")]
    x = np.random.default_rng(0).standard_normal((1, 10, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(Runner(back, {})(x), Runner(g, {})(x))


# --- ONNX: a depthwise convolution with one-hot kernels arrives as a shift ---------------------

def _export_depthwise(tmp_path, weight, pad, dilation, bias=None):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    c = weight.shape[0]
    conv = torch.nn.Conv2d(c, c, weight.shape[2], 1, pad, dilation, groups=c, bias=bias is not None)
    seq = torch.nn.Sequential(torch.nn.Conv2d(c, c, 1), conv, torch.nn.Conv2d(c, 4, 1)).eval()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weight))
        if bias is not None:
            conv.bias.copy_(torch.from_numpy(bias))
    x = torch.randn(1, c, 9, 9, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "dw.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(seq, (x,), str(path), dynamo=False, opset_version=13)
    with torch.no_grad():
        return path, x.numpy(), seq(x).numpy()


@pytest.mark.parametrize("k, d, assignment, c", [(3, 1, "interleaved", 22), (3, 2, "grouped", 27),
                                                 (5, 1, "grouped", 50), (5, 2, "interleaved", 25)])
def test_onnx_one_hot_depthwise_conv_imports_as_shift(tmp_path, k, d, assignment, c):
    from sqnxt_engine.io.onnx_import import read_onnx
    weight = one_hot_kernels(c, k, d, assignment).astype(np.float32)
    path, x, want = _export_depthwise(tmp_path, weight, d * (k // 2), d)
    g, w = read_onnx(path)
    shifts = [n.op for n in g.nodes if isinstance(n.op, O.Shift)]
    assert shifts == [O.Shift(k, d, assignment)]
    assert g.params == sum(a.size for name, a in w.items() if name.endswith(("weight", "bias")))
    np.testing.assert_allclose(Runner(g, w)(x), want, rtol=1e-5, atol=1e-5)


def test_onnx_depthwise_conv_that_is_not_a_shift_stays_a_conv(tmp_path):
    from sqnxt_engine.io.onnx_import import read_onnx
    weight = one_hot_kernels(18, 3, 1, "interleaved").astype(np.float32)
    scaled, swapped, biased = weight.copy(), weight.copy(), weight
    scaled[3] *= 2  # not a one
    swapped[[0, 1]] = swapped[[1, 0]]  # one-hot, but no assignment puts these taps there
    for case, bias in ((scaled, None), (swapped, None), (biased, np.full(18, 0.5, np.float32))):
        path, x, want = _export_depthwise(tmp_path, case, 1, 1, bias)
        g, w = read_onnx(path)
        assert not any(isinstance(n.op, O.Shift) for n in g.nodes)
        np.testing.assert_allclose(Runner(g, w)(x), want, rtol=1e-5, atol=1e-5)


def test_runner_on_a_zoo_style_csc_block_matches_torch_module():
    torch = pytest.importorskip("torch")
    from sqnxt_engine.train.torch_graph import GraphModule
    b = GraphBuilder("csc", (8, 7, 7))
    h = b.conv_bn_act("c1", b.input, 24, 1)
    h = b.add("shift", O.Shift(3), h)
    h = b.conv_bn_act("c2", h, 8, 1, act=None)
    b.relu("out", b.add("add", O.Add(), h, b.input))
    g = b.build()
    w = random_weights(g, 1, np.float64)
    m = GraphModule(g).double().eval()
    m.load_arrays(w)
    x = np.random.default_rng(2).standard_normal((2, 8, 7, 7))
    with torch.no_grad():
        assert_close(m(torch.from_numpy(x)).numpy(), Runner(g, w, np.float64)(x), 1e-10)
