"""Training side (torch optional): the torch module built from IR graphs, export -> sqnxt-convert
-> load round trip, magnitude pruning, and the Fashion-MNIST data loader."""
import gzip
import json

import numpy as np
import pytest

from sqnxt_engine import zoo
from sqnxt_engine.cli.convert import main as convert
from sqnxt_engine.errors import UserError
from sqnxt_engine.graph import ops as O
from sqnxt_engine.graph.graph import GraphBuilder
from sqnxt_engine.io import datasets
from sqnxt_engine.io.model import load_model
from sqnxt_engine.runtime import Runner, random_weights

from tolerance import assert_close

torch = pytest.importorskip("torch")
from sqnxt_engine.train.torch_graph import GraphModule  # noqa: E402
from sqnxt_engine.train.train import SMALL_INPUT, Recipe, magnitude_masks, sparsity_of, train  # noqa: E402

torch.set_num_threads(1)  # beside NumPy's BLAS on 2 cores (see conftest)


def odd_graph():
    """Every operator the torch module maps, with asymmetric padding and ceil-mode pools."""
    b = GraphBuilder("odd", (3, 13, 11))
    x = b.conv_bn_act("c1", b.input, 8, 3, 2, (0, 1, 1, 0), eps=1e-3)
    y = b.add("mp", O.MaxPool(3, 2, (1, 0, 0, 1), True), x)
    z = b.add("ap", O.AvgPool(3, 2, (1, 0, 0, 1), True), x)
    z = b.add("lrn", O.LRN(3, 1e-2, 0.75, 2.0), z)
    x = b.add("cat", O.Concat(), y, z)
    x = b.add("r6", O.ReLU6(), b.conv("c2", x, 16, (1, 3), 1, (0, 0, 1, 1), groups=2, bias=True))
    x = b.add("lk", O.LeakyReLU(0.2), b.add("sum", O.Add(), x, x))
    x = b.add("flat", O.Flatten(), b.add("gap", O.GlobalAvgPool(), x))
    b.add("fc", O.Linear(5), b.add("drop", O.Dropout(), x))
    return b.build()


@pytest.mark.parametrize("make", [odd_graph, lambda: zoo.build("1.0-SqNxt-23v5", **SMALL_INPUT),
                                  lambda: zoo.build("1.0-SqNxt-23", **SMALL_INPUT)],
                         ids=["every-op", "23v5-small", "23-small"])
def test_torch_module_equals_numpy_runner(make):
    g = make()
    w = random_weights(g, 3, np.float64)
    m = GraphModule(g).double().eval()
    m.load_arrays(w)
    x = np.random.default_rng(1).normal(size=(2,) + g.input_shape)
    with torch.no_grad():
        got = m(torch.from_numpy(x)).numpy()
    want = Runner(g, w, np.float64)(x)
    assert_close(got, want, 1e-9)


def test_export_convert_load_round_trip(tmp_path):
    g = zoo.build("1.0-SqNxt-23v5", **SMALL_INPUT)
    m = GraphModule(g)
    m.load_arrays(random_weights(g, 5))
    torch.save(m.export_state_dict(), tmp_path / "t.pth")
    out = tmp_path / "t.npz"
    assert convert([str(tmp_path / "t.pth"), "-o", str(out), "--arch", "1.0-sqnxt-23v5", "--zoo-options",
                    json.dumps(SMALL_INPUT), "--preprocess", "fashion-mnist", "--labels", "fashion-mnist"]) == 0
    graph, arrays, meta = load_model(out)
    assert graph.input_shape == (1, 28, 28) and graph.output_shape() == (10,)
    assert meta["zoo_options"] == SMALL_INPUT and meta["color"] == "L" and meta["labels"] == "fashion-mnist"
    want = m.export_arrays()
    assert arrays.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(arrays[k], want[k])


def test_convert_refuses_bad_zoo_options(tmp_path, capsys):
    (tmp_path / "t.pth").write_bytes(b"")
    assert convert([str(tmp_path / "t.pth"), "-o", str(tmp_path / "o.npz"), "--arch", "1.0-SqNxt-23",
                    "--zoo-options", "[1]"]) == 2
    assert "JSON object" in capsys.readouterr().err


def tiny_net():
    b = GraphBuilder("tiny", (1, 28, 28))
    x = b.conv_bn_act("c1", b.input, 8, 3, 2, 1)
    x = b.conv_bn_act("c2", x, 8, (1, 3), 1, (0, 1))
    x = b.add("flat", O.Flatten(), b.add("gap", O.GlobalAvgPool(), x))
    b.add("fc", O.Linear(10), x)
    return b.build()


def test_pruning_reaches_sparsity_and_fine_tuning_keeps_zeros():
    g = tiny_net()
    m = GraphModule(g)
    masks = magnitude_masks(m, 0.4)
    for name, w in [(n, p) for n, p in m.export_arrays().items() if n in masks]:
        assert (w == 0).sum() == round(0.4 * w.size), name
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    train(m, images, rng.integers(0, 10, 64), Recipe(epochs=1, batch_size=16, warmup_steps=1), masks,
          log=lambda _: None)
    arrays = m.export_arrays()
    for name, mask in masks.items():
        assert not arrays[name][~mask.numpy()].any(), f"{name}: pruned weights came back"
    zeros, total = sparsity_of(arrays, g)
    assert abs(zeros / total - 0.4) < 0.01
    assert arrays["c1.bn.beta"].any()  # batch norms are trained, never pruned
    with pytest.raises(UserError):
        magnitude_masks(m, 1.0)


def test_read_idx_round_trip_and_refusals(tmp_path):
    data = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + np.array([2, 3, 4], ">u4").tobytes()
    (tmp_path / "ok.gz").write_bytes(gzip.compress(header + data.tobytes()))
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "ok.gz"), data)
    (tmp_path / "short").write_bytes(header + data.tobytes()[:-1])
    with pytest.raises(UserError, match="bytes of data"):
        datasets.read_idx(tmp_path / "short")
    (tmp_path / "float").write_bytes(bytes([0, 0, 0x0D, 1]) + np.array([1], ">u4").tobytes() + b"\0" * 4)
    with pytest.raises(UserError, match="IDX"):
        datasets.read_idx(tmp_path / "float")


def test_dataset_without_apt_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("SQNXT_CACHE", str(tmp_path))
    monkeypatch.setattr(datasets.shutil, "which", lambda tool: None)
    with pytest.raises(UserError, match="apt-get"):
        datasets.load_dataset("fashion-mnist", "test")
    with pytest.raises(UserError, match="unknown data set"):
        datasets.load_dataset("imagenet")
