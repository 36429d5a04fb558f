"""The power-of-two threshold search (quant/pow2.py, HPTQ's recipe): it picks the candidate of
least squared error (checked against the errors computed here, value by value), its files keep
the shift scaler's datapath (one multiplier per layer, a power of two), pass the schema and run
bit-exact on the emulator, and sqnxt-quant refuses what it cannot do in one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_quant import small_net

from sqnxt_engine.cli.quant import main as quant_main
from sqnxt_engine.emu.cli import main as emu_main
from sqnxt_engine.emu.hardware import load_hardware
from sqnxt_engine.emu.integer import compare, emulate_codes
from sqnxt_engine.errors import UserError
from sqnxt_engine.graph.graph import INPUT
from sqnxt_engine.graph.serialize import graph_to_dict
from sqnxt_engine.quant import quantize_network
from sqnxt_engine.quant.calibrate import resolve_rule
from sqnxt_engine.quant.model import load_quantized, save_quantized
from sqnxt_engine.quant.pow2 import CANDIDATES, best_exponents
from sqnxt_engine.quant.weights import quantize_weight

# many small values and one outlier: clipping it (threshold 2) beats covering it (4) at 4 bits
HAND = [0.11, -0.23, 0.37, -0.05, 0.52, -0.61, 0.29, 0.17, -0.44, 0.08, 0.33, -0.14,
        0.26, -0.39, 0.47, 0.02, -0.31, 0.21, 0.13, -0.58, 2.1]


def brute_errors(values, bits, first, count):
    """{M: sum of squared errors} of a symmetric signed quantizer with threshold 2**M (step
    2**M / 2**(bits-1), codes -(2**(bits-1) - 1)..2**(bits-1) - 1), value by value."""
    q = 2 ** (bits - 1) - 1
    out = {}
    for m in range(first, first - count - 1, -1):
        step = 2.0 ** m / 2 ** (bits - 1)
        out[m] = sum((v - max(-q, min(q, round(v / step))) * step) ** 2 for v in values)
    return out


def test_search_picks_the_power_of_two_of_least_squared_error():
    errs = brute_errors(HAND, 4, 2, CANDIDATES)  # 2**2 = 4 is the first power of two >= 2.1
    want = min(errs, key=errs.get)
    assert want < 2  # the outliers are clipped: the test would notice a search that takes the max
    assert best_exponents(np.array([HAND]), 7)[0] == want
    # per channel: a second channel without outliers has its own threshold, a power of two
    # apart; its codes are worth code * 2**M_o / 8
    rest = [v for v in HAND if abs(v) < 1]
    w = np.zeros((2, len(HAND)))
    w[0], w[1, :len(rest)] = HAND, rest
    errs1 = brute_errors(rest, 4, 0, CANDIDATES)  # max 0.61: first candidate 2**0
    want1 = min(errs1, key=errs1.get)
    qw = quantize_weight(w, 4, "shift-scaler", pow2=True)
    np.testing.assert_array_equal(qw.scale, [2.0 ** want / 8, 2.0 ** want1 / 8])
    assert list(qw.shifts) == [max(want, want1) - want, max(want, want1) - want1]
    assert qw.layer_scale == 2.0 ** max(want, want1) / 8
    assert np.abs(qw.codes).max() == 7 and qw.codes[0, -1] == 7  # the outlier clipped
    layer = quantize_weight(w, 4, "layer", pow2=True)  # one threshold for the layer
    assert layer.shifts.tolist() == [0, 0] and np.all(layer.scale == layer.scale[0])
    with pytest.raises(UserError, match="not per-channel"):
        quantize_weight(w, 4, "per-channel", pow2=True)


def test_activation_thresholds_are_searched_powers_of_two():
    g, w = small_net()
    x = np.random.default_rng(1).normal(0, 1, (16,) + g.input_shape).astype(np.float32)
    model, _ = quantize_network(g, w, [x[:8], x[8:]], 16, 8, "shift-scaler", "pow2",
                                batches_again=lambda: [x[:8], x[8:]], pow2_weights=True)
    assert model.info["activations"] == "pow2" and model.info["weight_thresholds"] == "pow2"
    first = int(np.ceil(np.log2(np.abs(x).max())))
    errs = brute_errors(x.astype(np.float64).ravel().tolist(), 8, first, CANDIDATES)
    t = model.tensors[INPUT]
    assert t.scale == 2.0 ** min(errs, key=errs.get) / 128 and (t.lo, t.hi) == (-127, 127)
    for name, t in model.tensors.items():  # every step a power of two: unsigned ones t / 256
        assert np.log2(t.scale) == np.round(np.log2(t.scale)), name
    for s in model.steps:  # each layer's rescaling is a power of two: one multiplier, a shift
        if s.kind == "mac":
            m = np.unique(s.arrays["multiplier"][s.arrays["multiplier"] > 0])
            assert len(m) == 1 and int(m[0]) & (int(m[0]) - 1) == 0, s.name
    assert resolve_rule("pow2", 16) == "pow2"


@pytest.mark.parametrize("method", ["shift-scaler", "equalize-shift-scaler", "layer"])
def test_pow2_files_pass_the_schema_and_run_bit_exact_on_the_emulator(method, tmp_path, capsys):
    g, w = small_net()
    x = np.random.default_rng(0).normal(0, 1, (8,) + g.input_shape).astype(np.float32)
    model, _ = quantize_network(g, w, [x], 8, 8, method, "pow2", meta={"graph": graph_to_dict(g)},
                                batches_again=lambda: [x], pow2_weights=True, bias_correction=True)
    path = save_quantized(tmp_path / "q.npz", model)
    back = load_quantized(path)  # read through the schema
    np.testing.assert_array_equal(back(x), model(x))
    for dataflow in ("ws", "os", "best"):
        run = emulate_codes(back, back.quantize_input(x[:1])[0], load_hardware("8x8"), dataflow)
        ref = back.with_accumulator(run.accumulator).run_codes(back.quantize_input(x[:1]), capture=True)
        assert compare(run, ref, g.outputs[0])["bit_exact"] is True
    capsys.readouterr()
    assert emu_main(["trace", "--weights", str(path), "--hw", "8x8", "--require-exact", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bit_exact"] is True


@pytest.mark.parametrize("extra,message", [
    (["--per-channel", "--pow2-search"], "--pow2-search goes with layer-wise weights or --shift-scaler"),
    (["--activations", "pow3"], "activation rule must be auto, max, pow2 or percentile:P"),
])
def test_cli_refusals_are_one_line_exit_2(extra, message, tmp_path, capsys):
    out = tmp_path / "q.npz"
    argv = ["--weights", "1.0-SqNxt-23v5-fmnist", "--calib", "fashion-mnist", "--bits", "8",
            "-o", str(out)] + extra
    assert quant_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err
    assert not out.exists()
