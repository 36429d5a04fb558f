"""Property tests of the loop-nest kernels (sqnxt_engine.kernels): outputs of every dataflow
and loop order against a NumPy int64 reference, count-only == execute-and-count, invariants
of the counters, and clear ValueErrors for bad arguments."""
import contextlib
import warnings
from functools import partial

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqnxt_engine.kernels import (
    COUNTER_FIELDS,
    DATAFLOWS,
    ORDERS,
    AccumulatorOverflowWarning,
    ConvShape,
    Counters,
    Dataflow,
    Mapping,
    ZeroProfile,
    count,
    count_array,
    count_many,
    execute,
)
from sqnxt_engine.kernels import api as kernels_api

from strategies import KERNELS, conv_shapes, mappings


def reference(shape: ConvShape, x, w, acc=np.int64):
    """Direct Algorithm 1 in NumPy: O[k][y][x] = sum_c,j,i I[c][y*sy+j][x*sx+i] W[k][c][j][i]."""
    pt, pb, pl, pr = shape.padding
    sy, sx = shape.stride
    xp = np.pad(x.astype(acc), ((0, 0), (pt, pb), (pl, pr)))
    out = np.zeros((shape.K, shape.Ho, shape.Wo), acc)
    kg, cg = shape.K // shape.groups, shape.Cg
    for k in range(shape.K):
        g = k // kg
        for c in range(cg):
            for j in range(shape.R):
                for i in range(shape.S):
                    win = xp[g * cg + c, j:j + sy * (shape.Ho - 1) + 1:sy,
                             i:i + sx * (shape.Wo - 1) + 1:sx]
                    out[k] += acc(w[k, c, j, i]) * win
    return out


@contextlib.contextmanager
def layout(kinner: bool):
    """Force execute()'s arithmetic layout: k-innermost (kinner) or pixels-innermost."""
    old = kernels_api.KINNER_BELOW_PIXELS, kernels_api.KINNER_BELOW_PIXELS_SOCMOP
    v = 10 ** 9 if kinner else 0
    kernels_api.KINNER_BELOW_PIXELS = kernels_api.KINNER_BELOW_PIXELS_SOCMOP = v
    try:
        yield
    finally:
        kernels_api.KINNER_BELOW_PIXELS, kernels_api.KINNER_BELOW_PIXELS_SOCMOP = old


# the layers of these tests: every kernel shape of the shared generator but the 2x3
layers = partial(conv_shapes, kernels=KERNELS[:6], max_channels=4)


def int16_data(draw, shape_, zeros=0.3):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    def make(shp):
        a = rng.integers(-32768, 32768, size=shp, dtype=np.int64)
        small = rng.integers(-3, 4, size=shp)
        a = np.where(rng.random(shp) < 0.5, small, a)  # small values and extremes
        a[rng.random(shp) < zeros] = 0
        return a.astype(np.int16)
    return make(shape_)


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@SETTINGS
@given(st.data())
def test_every_dataflow_and_order_is_bit_identical_to_reference(data):
    shape = data.draw(layers())
    x = int16_data(data.draw, (shape.C, shape.H, shape.W))
    w = int16_data(data.draw, (shape.K, shape.Cg, shape.R, shape.S))
    ref = reference(shape, x, w)
    for df in DATAFLOWS:
        m0 = data.draw(mappings(shape, df))
        for order in ORDERS:  # every loop order with the same tiles and array
            m = Mapping(df, m0.pe_rows, m0.pe_cols, order, m0.tiles, m0.psums_per_pe)
            counts = []
            for kinner in (False, True):  # both arithmetic layouts of execute()
                with layout(kinner):
                    y, c = execute(shape, m, x, w)
                assert y.dtype == np.int64
                np.testing.assert_array_equal(y, ref, err_msg=f"{m}")
                assert c.macs + c.skipped_macs == shape.macs
                counts.append(c)
            assert counts[0] == counts[1]


@SETTINGS
@given(st.data())
def test_bias_adds_into_the_accumulator(data):
    shape = data.draw(layers())
    m = data.draw(mappings(shape))
    x = int16_data(data.draw, (shape.C, shape.H, shape.W))
    w = int16_data(data.draw, (shape.K, shape.Cg, shape.R, shape.S))
    b = np.arange(shape.K, dtype=np.int64) * 1000 - 7
    for kinner in (False, True):
        with layout(kinner):
            y, _ = execute(shape, m, x, w, bias=b)
        np.testing.assert_array_equal(y, reference(shape, x, w) + b[:, None, None])


@SETTINGS
@given(st.data(), st.sampled_from([np.float32, np.float64]))
def test_float_mode_agrees_to_rounding(data, dtype):
    shape = data.draw(layers())
    rng = np.random.default_rng(data.draw(st.integers(0, 2 ** 32 - 1)))
    x = rng.standard_normal((shape.C, shape.H, shape.W)).astype(dtype)
    w = rng.standard_normal((shape.K, shape.Cg, shape.R, shape.S)).astype(dtype)
    w[rng.random(w.shape) < 0.3] = 0
    ref = reference(shape, x.astype(np.float64), w.astype(np.float64), acc=np.float64)
    terms = shape.Cg * shape.R * shape.S
    tol = (1e-5 if dtype == np.float32 else 1e-13) * terms
    outs = []
    for df in DATAFLOWS:
        m = data.draw(mappings(shape, df))
        with layout(data.draw(st.booleans())):
            y, c = execute(shape, m, x, w)
        assert y.dtype == dtype
        np.testing.assert_allclose(y, ref, rtol=tol, atol=tol * 4)
        outs.append(y)
        # float and integer modes count alike: counts depend on shapes and the zero pattern
        assert c == count(shape, m, w)
        # the loop order and the arithmetic layout never change a float result: each output
        # accumulates its c-tiles in order, and within a tile in the dataflow's order
        other = Mapping(df, m.pe_rows, m.pe_cols, data.draw(st.sampled_from(ORDERS)), m.tiles)
        with layout(data.draw(st.booleans())):
            y2, _ = execute(shape, other, x, w)
        np.testing.assert_array_equal(y2, y)


@SETTINGS
@given(st.data())
def test_count_only_equals_execute_and_count(data):
    shape = data.draw(layers())
    m = data.draw(mappings(shape))
    x = int16_data(data.draw, (shape.C, shape.H, shape.W))
    w = int16_data(data.draw, (shape.K, shape.Cg, shape.R, shape.S), zeros=0.5)
    _, c = execute(shape, m, x, w)          # tallies from the tile walk (visit per tile)
    assert count(shape, m, w) == c          # tallies in closed form
    assert count(shape, m, w, walk=True) == c
    assert count(shape, m, w == 0) == c                  # a boolean zero mask
    assert count(shape, m, ZeroProfile.of(shape, w)) == c


@SETTINGS
@given(st.data())
def test_counter_invariants(data):
    shape = data.draw(layers())
    m = data.draw(mappings(shape))
    w = int16_data(data.draw, (shape.K, shape.Cg, shape.R, shape.S), zeros=0.4)
    c = count(shape, m, w)
    P = m.pe_rows * m.pe_cols
    assert c.macs + c.skipped_macs == shape.macs
    if m.dataflow != Dataflow.OS_SOCMOP:
        assert c.skipped_macs == 0
    else:
        zeros = int((w == 0).sum())
        assert c.skipped_macs == zeros * shape.Ho * shape.Wo
    assert c.pe_slots == c.cycles * P
    assert c.macs <= c.pe_slots and 0 <= c.utilisation <= 1
    # every operand fetched at least once; the outputs written at least once
    assert c.input_dram_reads >= shape.input_used
    assert c.weight_dram_reads >= shape.weight_size
    assert c.psum_dram_writes >= shape.output_size
    assert c.input_dram_writes == c.weight_dram_writes == 0
    # per performed MAC: one RF read of each operand, one psum RF write
    assert c.input_rf_reads == c.weight_rf_reads == c.macs
    assert c.psum_rf_reads >= c.macs and c.psum_rf_writes >= c.macs
    # one tile = the whole layer: exactly one fetch of each operand, no psum spill
    one = Mapping.untiled(shape, m.dataflow, m.pe_rows, m.pe_cols, m.order)
    u = count(shape, one, w)
    assert u.input_dram_reads == shape.input_used
    assert u.weight_dram_reads == shape.weight_size
    assert u.psum_dram_writes == shape.output_size and u.psum_dram_reads == 0
    # the c loop tiled innermost (or untiled): partial sums never spill
    inner = Mapping(m.dataflow, m.pe_rows, m.pe_cols, ("k", "y", "x", "c"), m.tiles,
                    m.psums_per_pe)
    ci = count(shape, inner, w)
    assert ci.psum_dram_reads == 0 and ci.psum_dram_writes == shape.output_size
    # the loop order moves DRAM/GB traffic only: the array-level work is the same
    for f in ("macs", "skipped_macs", "cycles", "input_rf_reads", "weight_rf_writes",
              "psum_pe_transfers", "input_gb_reads", "weight_gb_reads", "passes"):
        assert getattr(ci, f) == getattr(c, f), f
    # transfers: at least one per operand; a spill read back for each psum tile re-entered
    assert min(c.input_transfers, c.weight_transfers, c.psum_write_transfers) >= 1
    assert ci.psum_read_transfers == 0 and u.psum_write_transfers == 1
    assert (c.psum_read_transfers > 0) == (c.psum_dram_reads > 0)


@SETTINGS
@given(st.data())
def test_counts_depend_on_data_only_through_skipped_zero_weights(data):
    shape = data.draw(layers())
    m = data.draw(mappings(shape))
    w1 = int16_data(data.draw, (shape.K, shape.Cg, shape.R, shape.S), zeros=0.4)
    w2 = int16_data(data.draw, (shape.K, shape.Cg, shape.R, shape.S), zeros=0.4)
    x1 = int16_data(data.draw, (shape.C, shape.H, shape.W))
    x2 = int16_data(data.draw, (shape.C, shape.H, shape.W))
    w2_same_zeros = np.where(w1 == 0, 0, np.where(w2 == 0, 5, w2)).astype(np.int16)
    _, a = execute(shape, m, x1, w1)
    _, b = execute(shape, m, x2, w2_same_zeros)
    assert a == b  # same zero pattern: same counts whatever the values
    _, d = execute(shape, m, x2, w2)
    if m.dataflow != Dataflow.OS_SOCMOP:
        assert a == d  # no zero skipping: counts do not depend on the data at all
    dense = count(shape, m, np.ones_like(w1))
    assert dense.skipped_macs == 0 and dense.macs == shape.macs


def test_zero_profile_table():
    s = ConvShape(C=6, H=3, W=3, K=4, R=1, S=2, groups=2)
    rng = np.random.default_rng(3)
    w = rng.integers(-1, 2, (4, 3, 1, 2)).astype(np.int16)
    zp = ZeroProfile.of(s, w)
    per = (w == 0).reshape(4, 3, -1).sum(2)
    want = np.zeros((5, 4), np.int64)
    want[1:, 1:] = per.cumsum(0).cumsum(1)
    np.testing.assert_array_equal(zp.table.reshape(5, 4), want)
    assert zp.zeros == int((w == 0).sum())
    assert ZeroProfile.of(s, w == 0).zeros == zp.zeros


def test_os_socmop_really_skips_zero_weights():
    shape = ConvShape(C=4, H=6, W=6, K=3, R=3, S=3, padding=1)
    rng = np.random.default_rng(0)
    x = rng.integers(-100, 100, (4, 6, 6)).astype(np.int16)
    w = rng.integers(1, 5, (3, 4, 3, 3)).astype(np.int16)
    w[0] = 0
    w[1, 2] = 0
    m = Mapping.untiled(shape, Dataflow.OS_SOCMOP, 2, 3)
    y, c = execute(shape, m, x, w)
    zeros = 36 + 9
    blocks = 3 * 2  # ceil(6/2) * ceil(6/3) pixel blocks of the 2 x 3 array
    assert c.skipped_macs == zeros * 36
    assert c.cycles == (3 * 4 * 9 - zeros) * blocks
    np.testing.assert_array_equal(y, reference(shape, x, w))
    ws = count(shape, Mapping.untiled(shape, Dataflow.WS, 2, 3), w)
    assert ws.skipped_macs == 0 and ws.macs == shape.macs


def test_depthwise_ws_underuses_rows():
    shape = ConvShape(C=16, H=8, W=8, K=16, R=3, S=3, padding=1, groups=16)
    w = np.ones((16, 1, 3, 3), np.int16)
    c = count(shape, Mapping.untiled(shape, Dataflow.WS, 4, 4), w)
    assert c.utilisation == pytest.approx(1 / 4)   # one input channel per group: 1 row of 4
    d = count(shape, Mapping.untiled(shape, Dataflow.OS_SOCMOP, 4, 4), w)
    assert d.utilisation == 1.0


def test_fully_connected_as_1x1():
    s = ConvShape.fc(10, 7)
    assert (s.C, s.H, s.W, s.K, s.R, s.S, s.Ho, s.Wo, s.macs) == (10, 1, 1, 7, 1, 1, 1, 1, 70)
    rng = np.random.default_rng(1)
    x = rng.integers(-9, 9, (10, 1, 1)).astype(np.int16)
    w = rng.integers(-9, 9, (7, 10, 1, 1)).astype(np.int16)
    for df in DATAFLOWS:
        y, c = execute(s, Mapping(df, 2, 3, "kcyx", (7, 5, 1, 1)), x, w)
        np.testing.assert_array_equal(y[:, 0, 0], w[:, :, 0, 0].astype(np.int64) @ x[:, 0, 0])


def test_accumulator_overflow_is_reported():
    s = ConvShape(C=8, H=2, W=2, K=1)
    x = np.full((8, 2, 2), 32767, np.int16)
    w = np.full((1, 8, 1, 1), 32767, np.int16)
    m = Mapping.untiled(s, Dataflow.WS, 2, 2)
    with layout(False), pytest.warns(AccumulatorOverflowWarning):  # pixels innermost
        execute(s, m, x, w, acc_bits=32)
    with pytest.warns(AccumulatorOverflowWarning) as rec:
        y, _ = execute(s, m, x, w, acc_bits=32)
    assert rec[0].message.peak == 8 * 32767 ** 2 and rec[0].message.bits_needed == 34
    assert int(y[0, 0, 0]) == 8 * 32767 ** 2          # the int64 result is still exact
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        execute(s, m, x, w, acc_bits=34)               # wide enough: silent
    # an intermediate partial sum can overflow even if the result fits
    x2 = np.full((2, 1, 1), 32767, np.int16)
    w2 = np.array([1, -1], np.int16).reshape(1, 2, 1, 1) * 32767
    s2 = ConvShape(C=2, H=1, W=1, K=1)
    for kinner in (False, True):
        with layout(kinner), pytest.warns(AccumulatorOverflowWarning):
            y2, _ = execute(s2, Mapping.untiled(s2, Dataflow.OS_MOCSOP, 1, 1), x2, w2,
                            bias=[2 ** 30], acc_bits=31)
        assert int(y2[0, 0, 0]) == 2 ** 30


@SETTINGS
@given(st.data(), st.sampled_from([np.int16, np.float32]), st.booleans())
def test_a_batch_equals_its_images_one_by_one(data, dtype, kinner):
    """execute() on a batch (N, C, H, W): each image's outputs bit for bit those of executing it
    alone, the counters one image's (they never depend on the input)."""
    shape = data.draw(layers())
    m = data.draw(mappings(shape))
    n = data.draw(st.integers(1, 3))
    x = int16_data(data.draw, (n, shape.C, shape.H, shape.W)).astype(dtype)
    w = int16_data(data.draw, (shape.K, shape.Cg, shape.R, shape.S)).astype(dtype)
    b = np.arange(shape.K, dtype=np.int64 if dtype == np.int16 else dtype) * 3 - 5
    with layout(kinner):
        y, c = execute(shape, m, x, w, bias=b)
        assert y.shape == (n, shape.K, shape.Ho, shape.Wo) and y.dtype == (np.int64 if dtype == np.int16 else dtype)
        for i in range(n):
            yi, ci = execute(shape, m, x[i], w, bias=b)
            np.testing.assert_array_equal(y[i], yi)
            assert ci == c


def test_overflow_in_any_image_of_a_batch_is_reported():
    s = ConvShape(C=2, H=1, W=1, K=1)
    w = np.full((1, 2, 1, 1), 32767, np.int16)
    m = Mapping.untiled(s, Dataflow.WS, 1, 1)
    # the bound |x| * sum |w| says a 31-bit accumulator may overflow, the sums do not: no warning
    quiet = np.array([[[[32767]], [[0]]], [[[0]], [[-32767]]]], np.int16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y, _ = execute(s, m, quiet, w, acc_bits=31)
    assert [int(v) for v in y.reshape(-1)] == [32767 ** 2, -(32767 ** 2)]
    loud = np.concatenate([quiet, np.full((1, 2, 1, 1), 32767, np.int16)])  # the third image overflows
    with pytest.warns(AccumulatorOverflowWarning) as rec:
        y, _ = execute(s, m, loud, w, acc_bits=31)
    assert rec[0].message.peak == 2 * 32767 ** 2 and int(y[2, 0, 0, 0]) == 2 * 32767 ** 2
    with pytest.raises(ValueError, match="batch of at least one"):
        execute(s, m, loud[:0], w)
    # -32768 squared is 2**30, one past a 31-bit accumulator: its magnitude must count in full
    s1 = ConvShape(C=1, H=1, W=1, K=1)
    lowest = np.full((1, 1, 1, 1), -32768, np.int16)
    with pytest.warns(AccumulatorOverflowWarning) as rec:
        y, _ = execute(s1, Mapping.untiled(s1, Dataflow.WS, 1, 1), lowest, lowest.reshape(1, 1, 1, 1), acc_bits=31)
    assert rec[0].message.peak == 2 ** 30 and int(y[0, 0, 0, 0]) == 2 ** 30


def test_counters_add_and_compare():
    s = ConvShape(C=4, H=4, W=4, K=4, R=3, S=3, padding=1)
    w = np.ones((4, 4, 3, 3), np.int16)
    a = count(s, Mapping.untiled(s, Dataflow.WS, 2, 2), w)
    b = count(s, Mapping.untiled(s, Dataflow.OS_SOCMOP, 2, 2), w)
    t = a + b
    assert t.macs == a.macs + b.macs and t.cycles == a.cycles + b.cycles
    assert sum([a, b]) == t and a != b
    assert t.to_dict()["utilisation"] == pytest.approx(t.macs / t.pe_slots)
    assert "rf_reads" in Counters.__doc__ and "pe_slots" in Counters.__doc__
    assert a != tuple(a) and a + Counters() == a
    with pytest.raises(TypeError):
        a + (1, 2)


def test_footprint_and_legal_tiles():
    s = ConvShape(C=8, H=6, W=6, K=4, R=3, S=3, padding=1)
    assert s.legal_tiles() == {"k": range(1, 5), "c": range(1, 9), "y": range(1, 7),
                               "x": range(1, 7)}
    f = Mapping(Dataflow.WS, 2, 2, "kcyx", (2, 4, 3, 6)).footprint(s)
    assert f == {"input": 4 * 5 * 8, "weight": 2 * 4 * 9, "psum": 2 * 3 * 6}
    g = ConvShape(C=8, H=4, W=4, K=8, groups=4)  # a k-tile of 4 spans 2 groups of 2 channels
    assert Mapping(Dataflow.WS, 2, 2, "kcyx", (4, 1, 4, 4)).footprint(g)["input"] == 2 * 16


@pytest.mark.parametrize("make, msg", [
    (lambda: ConvShape(C=3, H=4, W=4, K=4, groups=2), "groups"),
    (lambda: ConvShape(C=0, H=4, W=4, K=4), "C must be >= 1"),
    (lambda: ConvShape(C=2, H=2, W=2, K=4, R=3, S=3), "larger than the padded input"),
    (lambda: ConvShape(C=2, H=4, W=4, K=4, padding=(1, 2, 3)), "padding"),
    (lambda: ConvShape(C=2, H=4, W=4, K=4, stride=0), "stride"),
    (lambda: ConvShape(C=2.5, H=4, W=4, K=4), "integer"),
    (lambda: Mapping("xs", 2, 2), "dataflow"),
    (lambda: Mapping(Dataflow.WS, 0, 2), "pe_rows"),
    (lambda: Mapping(Dataflow.WS, 2, 2, ("k", "k", "y", "x")), "permutation"),
    (lambda: Mapping(Dataflow.WS, 2, 2, "kcyx", (1, 1, 1)), "tiles"),
    (lambda: Mapping(Dataflow.WS, 2, 2, "kcyx", (1, 0, 1, 1)), "tile tc"),
])
def test_bad_descriptions_raise_value_error(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_bad_calls_raise_value_error():
    s = ConvShape(C=4, H=6, W=6, K=4, R=3, S=3)
    x = np.zeros((4, 6, 6), np.int16)
    w = np.zeros((4, 4, 3, 3), np.int16)
    ok = Mapping(Dataflow.WS, 2, 2, "kcyx", (2, 2, 2, 2))
    cases = [
        ((s, Mapping(Dataflow.WS, 2, 2, "kcyx", (8, 2, 2, 2)), x, w), "exceeds"),
        ((s, ok, x[:3], w), "input must have shape"),
        ((s, ok, x, w[:, :2]), "weights must have shape"),
        ((s, ok, x.astype(np.int32), w.astype(np.int32)), "dtype"),
        ((s, ok, x.astype(np.float16), w.astype(np.float16)), "dtype"),
        ((s, ok, x, w.astype(np.float32)), "same dtype"),
        (("layer", ok, x, w), "ConvShape"),
    ]
    for args, msg in cases:
        with pytest.raises(ValueError, match=msg):
            execute(*args)
    with pytest.raises(ValueError, match="bias"):
        execute(s, ok, x, w, bias=np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="integer bias"):
        execute(s, ok, x, w, bias=np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="acc_bits"):
        execute(s, ok, x.astype(np.float32), w.astype(np.float32), acc_bits=32)
    with pytest.raises(ValueError, match="needs the weights"):
        count(s, Mapping(Dataflow.OS_SOCMOP, 2, 2, "kcyx", (2, 2, 2, 2)))
    with pytest.raises(ValueError, match="shape"):
        count(s, Mapping(Dataflow.OS_SOCMOP, 2, 2, "kcyx", (2, 2, 2, 2)), w[:2])
    with pytest.raises(ValueError, match="another layer"):
        count(s, Mapping(Dataflow.OS_SOCMOP, 2, 2, "kcyx", (2, 2, 2, 2)),
              ZeroProfile.of(ConvShape(C=4, H=5, W=5, K=4, R=3, S=3), w))
    with pytest.raises(ValueError, match="exceeds"):
        count(s, Mapping(Dataflow.WS, 2, 2, "kcyx", (2, 5, 2, 2)), w)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_closed_form_tallies_equal_the_tile_walk(data):
    """Many more cases of the closed form against the walk (count-only is cheap)."""
    shape = data.draw(layers(max_hw=12))
    m = data.draw(mappings(shape))
    w = int16_data(data.draw, (shape.K, shape.Cg, shape.R, shape.S), zeros=0.5)
    assert count(shape, m, w) == count(shape, m, w, walk=True)


@SETTINGS
@given(st.data())
def test_batch_counting_equals_count(data):
    shape = data.draw(layers())
    maps = [data.draw(mappings(shape)) for _ in range(5)]
    w = int16_data(data.draw, (shape.K, shape.Cg, shape.R, shape.S), zeros=0.5)
    one = [count(shape, m, w) for m in maps]
    assert count_many(shape, maps, w) == one
    arr = count_array(shape, np.array([m._tup for m in maps]), ZeroProfile.of(shape, w))
    assert [dict(zip(COUNTER_FIELDS, r)) for r in arr.tolist()] == \
        [{f: getattr(c, f) for f in COUNTER_FIELDS} for c in one]


def test_batch_counting_validates():
    s = ConvShape(C=4, H=6, W=6, K=4, R=3, S=3)
    with pytest.raises(ValueError, match="exceeds"):
        count_array(s, [[0, 2, 2, 0, 5, 1, 1, 1, 1]])
    with pytest.raises(ValueError, match=r"\(n, 9\)"):
        count_array(s, [[0, 2, 2, 0]])
    with pytest.raises(ValueError, match="DATAFLOWS"):
        count_array(s, [[7, 2, 2, 0, 1, 1, 1, 1, 1]])
    with pytest.raises(ValueError, match="ORDERS"):
        count_array(s, [[0, 2, 2, 24, 1, 1, 1, 1, 1]])
    with pytest.raises(ValueError, match="needs the weights"):
        count_array(s, [[1, 2, 2, 0, 1, 1, 1, 1, 1]])
    with pytest.raises(ValueError, match="not a Mapping"):
        count_many(s, ["ws"])


@SETTINGS
@given(st.data())
def test_row_stationary_executes_and_counts_alike_on_every_kernel(data):
    # RS on every kernel shape of the generator (5x5 and 2x3 too), arrays from 1x1 (its filter
    # rows folded) to 6x6 (several channels' PE sets stacked, output rows in strips): the
    # outputs are exact, the tile walk, the closed form and execute count alike, and in float
    # each output accumulates in the OS order (c, j, i): RS's float result is bit-identical to
    # an output-stationary dataflow's
    shape = data.draw(conv_shapes(kernels=KERNELS, max_channels=4))
    m = data.draw(mappings(shape, Dataflow.RS, max_pe=6, max_psums=5))
    x = int16_data(data.draw, (shape.C, shape.H, shape.W))
    w = int16_data(data.draw, (shape.K, shape.Cg, shape.R, shape.S))
    y, c = execute(shape, m, x, w)
    np.testing.assert_array_equal(y, reference(shape, x, w))
    assert c == count(shape, m, None) == count(shape, m, w, walk=True)
    assert c.macs == shape.macs and c.skipped_macs == 0
    assert count_array(shape, np.array([m._tup]))[0].tolist() == list(c)
    xf, wf = x.astype(np.float64) / 7, w.astype(np.float64) / 3
    mo = Mapping(Dataflow.OS_MOCSOP, m.pe_rows, m.pe_cols, m.order, m.tiles)
    np.testing.assert_array_equal(execute(shape, m, xf, wf)[0], execute(shape, mo, xf, wf)[0])
    # the array's work: every PE slot is a row's MAC or idle; more filters interleaved in a
    # PE never read more input nor take more cycles
    assert c.macs <= c.pe_slots
    more = Mapping(Dataflow.RS, m.pe_rows, m.pe_cols, m.order, m.tiles, m.psums_per_pe + 1)
    cm = count(shape, more, None)
    assert cm.cycles == c.cycles and cm.input_gb_reads <= c.input_gb_reads


def test_k_last_layout_copied_by_blocks_equals_the_transpose():
    """execute's k-innermost weights, copied 128 x 128 blocks at a time, are the transpose."""
    from sqnxt_engine.kernels.api import _k_last
    rng = np.random.default_rng(1)
    for shape in [(1, 1, 1, 1), (300, 7, 3, 3), (129, 257, 1, 1), (5, 1000, 1, 1)]:
        w = rng.integers(-99, 99, shape).astype(np.int16)
        got = _k_last(w)
        assert got.flags.c_contiguous
        np.testing.assert_array_equal(got, w.transpose(1, 2, 3, 0))
