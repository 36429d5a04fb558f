"""Graph validation names the offending node; operators infer shapes and counts."""
import numpy as np
import pytest

from sqnxt_engine import GraphError
from sqnxt_engine.functional import avg_pool2d, max_pool2d
from sqnxt_engine.graph import (
    INPUT,
    LRN,
    Add,
    AvgPool,
    Concat,
    Conv2d,
    Graph,
    GraphBuilder,
    Linear,
    MaxPool,
    Node,
    ReLU,
)


def test_dangling_input_names_the_node():
    with pytest.raises(GraphError, match="'b'.*'nowhere' does not exist"):
        Graph("g", (3, 8, 8), [Node("a", ReLU(), (INPUT,)), Node("b", ReLU(), ("nowhere",))])


def test_cycle_is_detected():
    nodes = [Node("a", Add(), (INPUT, "c")), Node("b", ReLU(), ("a",)), Node("c", ReLU(), ("b",))]
    with pytest.raises(GraphError, match="cycle"):
        Graph("g", (3, 8, 8), nodes)


def test_duplicate_name_is_refused():
    with pytest.raises(GraphError, match="'a'.*twice"):
        Graph("g", (3, 8, 8), [Node("a", ReLU(), (INPUT,)), Node("a", ReLU(), ("a",))])


def test_shape_mismatch_names_the_node():
    b = GraphBuilder("g", (3, 8, 8))
    x = b.conv("c1", b.input, 4, 3, padding=1)
    y = b.conv("c2", b.input, 4, 3)
    with pytest.raises(GraphError, match="'sum'.*shapes differ"):
        b.add("sum", Add(), x, y)
    with pytest.raises(GraphError, match="'late'"):
        Graph("g", (3, 8, 8), [Node("c1", Conv2d(4, 3, padding=1), (INPUT,)),
                               Node("c2", Conv2d(4, 3), (INPUT,)), Node("late", Add(), ("c1", "c2"))])


def test_nodes_are_sorted_topologically():
    g = Graph("g", (3, 8, 8), [Node("b", ReLU(), ("a",)), Node("a", ReLU(), (INPUT,))], outputs=["b"])
    assert [n.name for n in g.nodes] == ["a", "b"]


def test_linear_requires_flat_input_and_groups_must_divide():
    with pytest.raises(GraphError, match="flatten"):
        Graph("g", (3, 8, 8), [Node("fc", Linear(10), (INPUT,))])
    with pytest.raises(GraphError, match="groups"):
        Graph("g", (3, 8, 8), [Node("c", Conv2d(4, 1, groups=2), (INPUT,))])


def test_conv_counts_and_asymmetric_padding():
    g = Graph("g", (4, 10, 10), [Node("c", Conv2d(6, (1, 3), 2, (0, 1, 1, 0), groups=2, bias=True), (INPUT,))])
    (layer,) = g.layers
    assert layer.out_shape == (6, 6, 5)
    assert layer.params == 6 * 2 * 3 + 6
    assert layer.macs == 6 * 6 * 5 * 2 * 3 + 6 * 6 * 5


def test_batch_norm_after_biased_conv_adds_no_macs():
    b = GraphBuilder("g", (3, 8, 8))
    b.conv_bn_act("c", b.input, 4, 1, bias=True)
    g = b.build()
    assert g.macs == 4 * 64 * 3 + 4 * 64  # the BN folds into the bias


def test_concat_and_pool_shapes():
    b = GraphBuilder("g", (3, 7, 7))
    x = b.add("m", MaxPool(3, 2, 0, ceil_mode=True), b.input)
    y = b.add("a", AvgPool(3, 2, 0, ceil_mode=False), b.input)
    assert b.shapes[x] == (3, 3, 3) and b.shapes[y] == (3, 3, 3)
    b.add("cat", Concat(), x, y)
    assert b.build().output_shape() == (6, 3, 3)


def naive_pool(x, k, s, pad, ceil, kind):
    n, c, h, w = x.shape
    t, bo, l, r = pad
    from sqnxt_engine.functional import out_size
    ho, wo = out_size(h, k, s, t, bo, 1, ceil), out_size(w, k, s, l, r, 1, ceil)
    out = np.zeros((n, c, ho, wo))
    for yy in range(ho):
        for xx in range(wo):
            y0, x0 = yy * s - t, xx * s - l
            y1, x1 = min(y0 + k, h + bo), min(x0 + k, w + r)  # the window, clipped to the padded map
            win = x[:, :, max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
            if kind == "max":
                out[:, :, yy, xx] = win.max(axis=(2, 3))
            else:
                out[:, :, yy, xx] = win.sum(axis=(2, 3)) / ((y1 - y0) * (x1 - x0))
    return out


@pytest.mark.parametrize("h,k,s,pad,ceil", [(7, 3, 2, (0, 0, 0, 0), True), (8, 3, 2, (0, 0, 0, 0), True),
                                            (6, 2, 2, (0, 0, 0, 0), False), (7, 3, 2, (1, 1, 1, 1), True),
                                            (111, 3, 2, (0, 0, 0, 0), True), (5, 3, 1, (1, 1, 1, 1), False)])
def test_pools_match_naive(h, k, s, pad, ceil):
    x = np.random.default_rng(h).normal(size=(2, 3, h, h))
    np.testing.assert_allclose(max_pool2d(x, (k, k), (s, s), pad, ceil), naive_pool(x, k, s, pad, ceil, "max"))
    np.testing.assert_allclose(avg_pool2d(x, (k, k), (s, s), pad, ceil), naive_pool(x, k, s, pad, ceil, "avg"))


def test_lrn_matches_formula():
    x = np.random.default_rng(0).normal(size=(1, 7, 2, 2))
    got = LRN(5, 1e-2, 0.75, 2.0).forward([x], {})
    for c in range(7):
        s = (x[:, max(0, c - 2):c + 3] ** 2).sum(axis=1)
        np.testing.assert_allclose(got[:, c], x[:, c] / (2.0 + 1e-2 / 5 * s) ** 0.75)


def test_seeded_weights_drawn_in_blocks_equal_one_draw_per_array(monkeypatch):
    """random_weights draws each array a block at a time: the same values as one draw of the
    whole array from the same generator, cast once."""
    from sqnxt_engine import zoo
    from sqnxt_engine.graph import seeded_weights as SW
    graph = zoo.build("1.0-SqNxt-23")
    monkeypatch.setattr(SW, "_BLOCK", 1000)   # many blocks per weight, partial last ones
    got = SW.random_weights(graph, 4)
    rng = np.random.default_rng(4)
    for layer in graph.layers:
        for pname, shape in layer.op.param_shapes(list(layer.in_shapes)).items():
            if pname == "weight":
                want = rng.normal(0.0, np.sqrt(2.0 / int(np.prod(shape[1:]))), shape)
            elif pname in ("gamma", "var"):
                want = rng.uniform(0.5, 1.5, shape)
            else:
                want = rng.normal(0.0, {"bias": 0.05}.get(pname, 0.1), shape)
            a = got[f"{layer.name}.{pname}"]
            assert a.dtype == np.float32 and np.array_equal(a, want.astype(np.float32))
