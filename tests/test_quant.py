"""Post-training integer quantization (sqnxt_engine.quant): the fixed-point primitives against
exact rational arithmetic, the weight methods' defining properties, cross-layer equalization's
invariance, the integer runner against the float runner, quantized files, and sqnxt-quant."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqnxt_engine.errors import UserError
from sqnxt_engine.functional import avg_pool2d
from sqnxt_engine.graph import ops as O
from sqnxt_engine.graph.graph import INPUT, GraphBuilder
from sqnxt_engine.graph.serialize import graph_to_dict
from sqnxt_engine.io.model import save_model
from sqnxt_engine.quant import Accumulator, QuantizedModel, quantize_network
from sqnxt_engine.quant.equalize import equalizable_pairs, equalize
from sqnxt_engine.quant.fixedpoint import quantize_multiplier, requantize
from sqnxt_engine.quant.model import load_quantized, save_quantized, window_counts, window_sums
from sqnxt_engine.quant.plan import FloatPlan
from sqnxt_engine.quant.weights import SHIFT_BITS, channel_ranges, quantize_weight, shift_scaler
from sqnxt_engine.runtime import Runner, random_weights

from tolerance import assert_close

# --- fixed point -----------------------------------------------------------------------------

@given(st.lists(st.integers(-(1 << 31), (1 << 31) - 1), min_size=1, max_size=20),  # a 32-bit acc
       st.integers(0, (1 << 31) - 1), st.integers(1, 62))
def test_requantize_is_round_half_up_of_the_exact_quotient(accs, m, r):
    got = requantize(np.array(accs, np.int64), m, r, -(1 << 62), 1 << 62)
    for a, g in zip(accs, got):
        q = Fraction(a * m, 1 << r)
        assert g == (q + Fraction(1, 2)).__floor__()


@given(st.floats(1e-12, 0.99), st.sampled_from([15, 23, 31]))
def test_quantize_multiplier_keeps_its_bits_of_precision(real, bits):
    m, r = quantize_multiplier(real, bits)
    if m:
        assert (1 << (bits - 1)) <= m < (1 << bits)
        assert abs(m / 2.0 ** r - real) <= real * 2.0 ** -bits


@given(st.lists(st.integers(-(1 << 34), 1 << 34), min_size=1, max_size=30), st.sampled_from([16, 24, 32]))
def test_wrapping_partial_sums_equals_wrapping_the_total(terms, bits):
    """Why every loop order of the emulator wraps to the same integers."""
    acc = Accumulator(bits, "wrap")
    running = 0
    for t in terms:
        running = int(acc.apply(np.array([running + t], np.int64))[0])
    assert running == int(acc.apply(np.array([sum(terms)], np.int64))[0])
    lim = 1 << (bits - 1)
    assert -lim <= running < lim


def test_saturate_clamps_and_bad_accumulators_are_refused():
    acc = Accumulator(16, "saturate")
    assert acc.apply(np.array([40000, -40000, 5], np.int64)).tolist() == [32767, -32768, 5]
    assert Accumulator(16, "wrap").apply(np.array([32768], np.int64)).tolist() == [-32768]
    for bad in ((8, "wrap"), (65, "wrap"), (32, "clip")):
        with pytest.raises(UserError):
            Accumulator(*bad)
    assert Accumulator(64).apply(np.array([2**62], np.int64)).tolist() == [2**62]  # int64: as it is


# --- weights ---------------------------------------------------------------------------------

weights_arrays = st.builds(
    lambda k, n, spread, seed: np.random.default_rng(seed).normal(0, 1, (k, n))
    * np.exp2(np.random.default_rng(seed + 1).uniform(-spread, 0, (k, 1))),
    st.integers(1, 12), st.integers(1, 9), st.floats(0, 24), st.integers(0, 1000))


@given(weights_arrays, st.sampled_from([8, 16]))
def test_shift_scaler_puts_every_channel_in_the_top_octave(w, bits):
    s = shift_scaler(w)
    r = channel_ranges(w)
    top = r.max()
    assert s.min() >= 0 and s.max() <= (1 << SHIFT_BITS) - 1
    scaled = r * np.exp2(s.astype(float))
    ok = s < (1 << SHIFT_BITS) - 1  # a channel that hit the 4-bit limit may stay below
    assert np.all(scaled[ok] <= top * (1 + 1e-12)) and np.all(scaled[ok] > top / 2)
    q = quantize_weight(w, bits, "shift-scaler")
    err = np.abs(q.codes * q.scale[:, None] - w)
    assert np.all(err <= q.scale[:, None] / 2 * (1 + 1e-9))
    assert np.abs(q.codes).max() <= (1 << (bits - 1)) - 1


@given(weights_arrays)
def test_per_channel_beats_shift_scaler_beats_layer_wise_on_spread_channels(w):
    err = {m: np.abs(quantize_weight(w, 8, m).codes * quantize_weight(w, 8, m).scale[:, None] - w).max(axis=1)
           for m in ("layer", "shift-scaler", "per-channel")}
    r = channel_ranges(w)
    live = r > 0
    # worst-case error bounds: half a step of each method's scale for the channel
    assert np.all(err["per-channel"][live] <= r[live] / 127 / 2 * (1 + 1e-9))
    assert np.all(err["shift-scaler"][live] <= np.maximum(r[live], r.max() / 2 ** 15) / 127 * (1 + 1e-9))


# --- a small network with every step kind ------------------------------------------------------

def small_net(seed=0):
    b = GraphBuilder("tiny", (3, 12, 12))
    x = b.conv_bn_act("c1", b.input, 8, 3, padding=1, act=O.ReLU6())
    y = b.conv_bn_act("e", x, 16, 1, act=O.ReLU6())
    y = b.conv_bn_act("dw", y, 16, 3, padding=1, groups=16)
    y = b.conv_bn_act("pw", y, 8, 1, act=None)
    x = b.add("sum", O.Add(), x, y)
    x = b.relu("sum.act", x)
    p = b.add("mp", O.MaxPool(3, 2, 1, ceil_mode=True), x)
    a = b.add("ap", O.AvgPool(3, 2, 1, ceil_mode=True, count_include_pad=False), x)
    x = b.add("cat", O.Concat(), p, a)
    x = b.conv_bn_act("c2", x, 12, (1, 3), padding=(0, 1))
    x = b.add("gap", O.GlobalAvgPool(), x)
    x = b.add("flat", O.Flatten(), x)
    x = b.add("drop", O.Dropout(), x)
    b.add("fc", O.Linear(5), x)
    g = b.build()
    return g, random_weights(g, seed)


def quantized(g, w, bits, method, calib_seed=1, n=16, rule="max", meta=None):
    x = np.random.default_rng(calib_seed).normal(0, 1, (n,) + g.input_shape).astype(np.float32)
    return quantize_network(g, w, [x[:8], x[8:]], n, bits, method, rule, meta=meta)


def test_avg_pool_window_counts_match_the_float_operator():
    rng = np.random.default_rng(0)
    for include in (True, False):
        for ceil in (True, False):
            op = O.AvgPool(3, 2, (1, 0, 1, 1), ceil_mode=ceil, count_include_pad=include)
            x = rng.integers(-50, 50, (2, 3, 7, 8))
            want = avg_pool2d(x.astype(np.float64), op.kernel, op.stride, op.padding, ceil, include)
            got = window_sums(op, x) / window_counts(op, 7, 8)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_equalization_keeps_the_function_and_equalizes_ranges():
    g, w = small_net()
    plan = FloatPlan.from_weights(g, w)
    x = np.random.default_rng(3).normal(0, 1, (4,) + g.input_shape)
    before = plan.executor(np.float64)(x)
    pairs = equalize(plan, tol=1e-12)
    assert pairs == len(equalizable_pairs(plan)) >= 2  # e -> dw (through ReLU6), dw -> pw
    after = plan.executor(np.float64)(x)
    assert_close(after["fc"], before["fc"], 1e-9)
    for a, b in equalizable_pairs(plan):
        r1 = np.abs(a.weight).reshape(len(a.weight), -1).max(axis=1)
        per_input = np.abs(b.weight).max(axis=(0, 2, 3)) if b.op.groups == 1 else None
        r2 = per_input if per_input is not None else np.abs(b.weight).reshape(len(b.weight), -1).max(axis=1)
        np.testing.assert_allclose(r1, r2, rtol=1e-6)


@pytest.mark.parametrize("method", ["layer", "shift-scaler", "per-channel", "equalize"])
def test_int16_tracks_the_float_network(method):
    g, w = small_net()
    model, _ = quantized(g, w, 16, method, calib_seed=7)
    # the calibration images themselves: no value is clipped by a range it never saw
    x = np.random.default_rng(7).normal(0, 1, (16,) + g.input_shape).astype(np.float32)
    want = Runner(g, w, np.float64)(x)
    got = model(x)
    assert np.abs(got - want).max() < 2e-3 * np.abs(want).max()


def test_the_runner_is_integer_and_wrap_is_what_overflow_gives():
    g, w = small_net()
    model, _ = quantized(g, w, 8, "shift-scaler")
    x = model.quantize_input(np.random.default_rng(5).normal(0, 1, (3,) + g.input_shape))
    env = model.run_codes(x, capture=True)
    for name, codes in env.items():
        t = model.tensors[name]
        assert codes.dtype == np.int64 and codes.min() >= t.lo and codes.max() <= t.hi, name
    narrow = model.with_accumulator(Accumulator(16, "wrap")).run_codes(x, capture=True)
    sat = model.with_accumulator(Accumulator(16, "saturate")).run_codes(x, capture=True)
    c1 = model.steps[0]
    sums = c1.mac_sums(x) + c1.bias_view(4)
    assert Accumulator(16).overflows(sums) > 0  # so the two modes below must differ
    np.testing.assert_array_equal(narrow["c1.act"], c1.finish(sums, Accumulator(16, "wrap")))
    assert not np.array_equal(narrow["c1.act"], sat["c1.act"])


def test_shift_scaler_shares_one_multiplier_and_moves_the_shift():
    g, w = small_net()
    model, _ = quantized(g, w, 8, "shift-scaler")
    for s in model.steps:
        if s.kind == "mac":
            m = s.arrays["multiplier"]
            live = m > 0
            assert len(set(m[live].tolist())) == 1
            r = s.arrays["shift"][live] - s.weight_shift[live].astype(np.int64)
            assert len(set(r.tolist())) == 1


def test_percentile_rule_narrows_ranges_and_bad_rules_are_refused():
    g, w = small_net()
    wide, _ = quantized(g, w, 8, "layer", rule="max")
    narrow, _ = quantized(g, w, 8, "layer", rule="percentile:99")
    assert narrow.tensors["c1.act"].scale < wide.tensors["c1.act"].scale
    assert quantized(g, w, 16, "layer", rule="auto")[0].info["activations"] == "max"
    assert quantized(g, w, 8, "layer", rule="auto")[0].info["activations"] == "percentile:99.99"
    for bad in ("percentile:100", "median", "percentile:x"):
        with pytest.raises(UserError):
            quantized(g, w, 8, "layer", rule=bad)


def test_file_round_trip_and_refusals(tmp_path):
    g, w = small_net()
    model, _ = quantized(g, w, 8, "per-channel", meta={"graph": graph_to_dict(g)})
    float_path = save_model(tmp_path / "f.npz", g, w, {}, in_zoo=False)
    path = save_quantized(tmp_path / "q.npz", model)
    back = load_quantized(path)
    x = np.random.default_rng(2).normal(0, 1, (2,) + g.input_shape).astype(np.float32)
    np.testing.assert_array_equal(back(x), model(x))
    assert np.load(path, allow_pickle=False)["c1.weight"].dtype == np.int8
    with pytest.raises(UserError, match="holds float weights"):
        load_quantized(float_path)
    arrays, meta = model.to_arrays()
    del arrays["pw.multiplier"]
    with pytest.raises(UserError, match="lack pw.multiplier"):
        QuantizedModel.from_arrays(g, arrays, meta)
    arrays, meta = model.to_arrays()
    arrays["c1.bias"] = arrays["c1.bias"].astype(np.float32)
    with pytest.raises(UserError, match="integers"):
        QuantizedModel.from_arrays(g, arrays, meta)


def test_every_unsupported_operator_is_named_at_once():
    b = GraphBuilder("odd", (2, 4, 4))
    x = b.add("lrn", O.LRN(3), b.conv("c", b.input, 2, 1))
    x = b.add("up", O.Resize((8, 8), mode="linear"), x)
    b.add("bn", O.BatchNorm(), b.add("pool", O.MaxPool(2, 2), x))
    g = b.build()
    with pytest.raises(UserError, match=r"3 node\(s\): lrn \(lrn\), up \(resize linear to 8x8\), bn \(bn\)"):
        FloatPlan.from_weights(g, random_weights(g))


def test_input_codes_are_clamped_to_the_calibrated_range():
    g, w = small_net()
    model, _ = quantized(g, w, 8, "layer")
    t = model.tensors[INPUT]
    q = model.quantize_input(np.full((1,) + g.input_shape, 1e6))
    assert q.max() == t.hi


def test_bias_correction_removes_the_mean_error_of_quantized_weights():
    g, w = small_net()
    x = np.random.default_rng(1).normal(0, 1, (16,) + g.input_shape).astype(np.float32)
    plain, plan = quantize_network(g, w, [x], 16, 8, "layer", "max")
    fixed, _ = quantize_network(g, w, [x], 16, 8, "layer", "max", bias_correction=True,
                                batches_again=lambda: [x])
    assert fixed.info["bias_correction"] is True

    def mean_error(model, layer):  # the channel means of float minus integer, on the calibration set
        f = plan.executor(np.float64)(x)[layer]
        q = model.dequantize(layer, model.run_codes(model.quantize_input(x), capture=True)[layer])
        return np.abs((f - q).mean(axis=(0, 2, 3))).mean()
    assert mean_error(fixed, "pw.bn") < mean_error(plain, "pw.bn")


def test_equalization_before_the_shift_scaler():
    g, w = small_net()
    model, plan = quantized(g, w, 8, "equalize-shift-scaler")
    assert model.info["method"] == "equalize-shift-scaler" and any(s.weight_shift is not None for s in model.steps)
    x = np.random.default_rng(1).normal(0, 1, (16,) + g.input_shape).astype(np.float32)
    want = Runner(g, w, np.float64)(x)
    assert np.abs(model(x) - want).max() < 0.1 * np.abs(want).max()
