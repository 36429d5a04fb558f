"""Quantized files that cannot lie (issue 26): every kind of inconsistency a hostile file can hold
is refused in one line by the one validation (quant/schema.py) before any work, on the command
line with exit 2; the quantizer never writes such a file (denormal weights, a bias beyond the
accumulator); and the integer datapath's newer steps (shift, lookup-table activations, the SE
multiply, nearest resize, slice) track the float network."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_quant import quantized, small_net

from sqnxt_engine.cli.infer import main as infer_main
from sqnxt_engine.errors import UserError
from sqnxt_engine.graph import ops as O
from sqnxt_engine.graph.graph import GraphBuilder
from sqnxt_engine.graph.serialize import graph_to_dict
from sqnxt_engine.io.model import save_model
from sqnxt_engine.io.weights import save_weights
from sqnxt_engine.quant import QuantizedModel, quantize_network
from sqnxt_engine.quant.model import META_KEY, save_quantized
from sqnxt_engine.runtime import Runner, random_weights


def _model():
    g, w = small_net()
    model, _ = quantized(g, w, 8, "shift-scaler", meta={"graph": graph_to_dict(g)})
    return g, model


def _set(key, value):
    def change(arrays, info):
        arrays[key] = np.asarray(value)
    return change


def _info(path, value):
    def change(arrays, info):
        d = info
        for p in path[:-1]:
            d = d[p]
        d[path[-1]] = value
    return change


# (what is wrong, the change, a pattern of the one-line refusal)
CASES = [
    ("add shift out of range", _set("sum.shift", 70), r"sum\.shift holds 70, outside \[1, 62\]"),
    ("pool shift out of range", _set("ap.shift", 0), r"ap\.shift holds 0"),
    ("mac shift out of range", lambda a, i: a.__setitem__("c1.shift", np.full(8, 63)), r"c1\.shift holds 63"),
    ("multiplier overflowing int64", lambda a, i: a.__setitem__("c1.multiplier", np.full(8, 2**40)),
     r"c1\.multiplier holds 1099511627776"),
    ("pool multiplier overflowing", lambda a, i: a.__setitem__("gap.multiplier", np.full((1, 1), 2**62)),
     r"gap\.multiplier holds"),
    ("zero scale", _info(["tensors", "c1.act", "scale"], 0.0), r"tensor c1\.act: scale 0\.0"),
    ("negative scale", _info(["tensors", "input", "scale"], -1.0), r"tensor input: scale -1\.0"),
    ("NaN scale", _info(["tensors", "sum.act", "scale"], float("nan")), r"scale nan"),
    ("tensor lo > hi", _info(["tensors", "e.act", "lo"], 300), r"tensor e\.act: codes \[300, 255\]"),
    ("lo > hi within range", lambda a, i: (a.__setitem__("c1.lo", np.full(8, 100)),
                                            a.__setitem__("c1.hi", np.full(8, 50))), r"c1\.lo exceeds c1\.hi"),
    ("bits that lie", _info(["bits"], 16), r"tensor input: codes \[-127, 127\] are not a 16-bit code range"),
    ("bits not 8 or 16", _info(["bits"], 12), r"bits is 12"),
    ("weight codes out of range", lambda a, i: a.__setitem__("e.weight", np.full(a["e.weight"].shape, 300, np.int16)),
     r"e\.weight holds 300, outside \[-127, 127\]"),
    ("bias beyond the accumulator", lambda a, i: a.__setitem__("pw.bias", np.full(8, -2**63)), r"pw\.bias holds"),
    ("tensor range not a code range", _info(["tensors", "c1.act", "hi"], 1000), r"tensor c1\.act: codes \[0, 1000\]"),
    ("step inputs rewired", _info(["steps", 1, "inputs"], ["input"]), r"step e\.act: inputs \['input'\]"),
    ("steps reordered", lambda a, i: i["steps"].insert(0, i["steps"].pop(2)), r"step .*: starts at"),
    ("a step dropped", lambda a, i: i["steps"].pop(), r"fc.*no step|belongs to no step"),
    ("unknown step kind", _info(["steps", 0, "kind"], "magic"), r"unknown step kind 'magic'"),
    ("wrong shape", lambda a, i: a.__setitem__("c1.bias", np.zeros(3, np.int32)), r"c1\.bias has shape \(3,\)"),
    ("weight shift out of range", lambda a, i: a.__setitem__("c1.weight_shift", np.full(8, 99, np.uint8)),
     r"c1\.weight_shift holds 99"),
    ("pass-through scale changed", _info(["tensors", "mp", "scale"], 123.0), r"tensor mp: a maxpool step keeps"),
    ("accumulator too wide", _info(["accumulator", "bits"], 64), r"accumulator"),
    ("malformed tensors", _info(["tensors", "c1.act"], "x"), r"malformed quantization metadata"),
]


@pytest.mark.parametrize("what, change, pattern", CASES, ids=[c[0] for c in CASES])
def test_every_inconsistency_is_one_line(what, change, pattern):
    g, model = _model()
    arrays, meta = model.to_arrays()
    meta = json.loads(json.dumps(meta))
    change(arrays, meta[META_KEY])
    with pytest.raises(UserError, match=pattern) as e:
        QuantizedModel.from_arrays(g, arrays, meta, source="q.npz")
    assert "\n" not in str(e.value) and str(e.value).startswith("q.npz: ")


def test_the_command_line_refuses_a_lying_file_with_exit_2(tmp_path, capsys):
    g, model = _model()
    arrays, meta = model.to_arrays()
    arrays["sum.shift"] = np.asarray(70)
    path = save_weights(tmp_path / "bad.npz", g.name, arrays, meta)
    image = tmp_path / "x.npy"
    np.save(image, np.zeros(g.input_shape, np.float32))
    assert infer_main(["--weights", str(path), str(image)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sum.shift holds 70" in err


def test_denormal_weights_are_flushed_and_the_file_is_sound(tmp_path):
    """A float file with denormal weights once gave 21 of 22 biases of -2**63 and exit 0."""
    g, w = small_net()
    w = {k: (v * np.float32(1e-42)).astype(np.float32) if k.endswith(".weight") else v for k, v in w.items()}
    model, _ = quantized(g, w, 8, "per-channel")
    path = save_quantized(tmp_path / "q.npz", model)
    for s in model.steps:
        if s.kind == "mac":
            assert not np.any(s.arrays["weight"]) and np.abs(s.arrays["bias"]).max() < 2**31
    x = np.random.default_rng(0).normal(0, 1, (2,) + g.input_shape).astype(np.float32)
    want = Runner(g, {k: (np.where(np.abs(v) < 1e-37, 0, v) if k.endswith(".weight") else v)
                      for k, v in w.items()}, np.float64)(x)
    got = QuantizedModel.from_arrays(g, *model.to_arrays())(x)
    assert np.abs(got - want).max() <= 0.02 * max(np.abs(want).max(), 1e-6)
    assert path.exists()


def test_a_bias_beyond_its_scale_gets_room_in_the_accumulator():
    b = GraphBuilder("tinyw", (1, 4, 4))
    b.add("fc", O.Linear(2), b.add("flat", O.Flatten(), b.conv("c", b.input, 2, 1, bias=True)))
    g = b.build()
    w = random_weights(g, 0)
    w["c.weight"] = np.full_like(w["c.weight"], 1e-30)
    w["c.bias"] = np.array([1e3, -1e3], np.float32)
    x = np.random.default_rng(0).normal(0, 1, (4,) + g.input_shape).astype(np.float32)
    want = Runner(g, w, np.float64)(x)
    for method in ("layer", "shift-scaler", "per-channel"):
        # the weights' scale grows until the bias fits: the bias is what the layer computes
        model, _ = quantize_network(g, w, [x], 4, 8, method, "max")
        assert np.abs(model(x) - want).max() <= 0.02 * np.abs(want).max()
        assert np.abs(model.steps[0].arrays["bias"]).max() < 2 ** 29


def _mobile_net():
    """A shift, a conv with hard-swish, an SE block (gap, 1x1 convs, hard-sigmoid gate, mul), a
    nearest resize, a slice, a sigmoid and an fc."""
    b = GraphBuilder("mob", (4, 8, 8))
    x = b.add("sh", O.Shift(3), b.input)
    x = b.conv_bn_act("c1", x, 8, 1, act=O.HardSwish())
    s = b.add("sq", O.GlobalAvgPool(), x)
    s = b.conv_bn_act("se1", s, 4, 1)
    s = b.conv_bn_act("se2", s, 8, 1, act=O.HardSigmoid(1 / 6, 0.5))
    x = b.add("scale", O.Mul(), x, s)
    x = b.add("up", O.Resize((16, 16)), x)
    x = b.add("half", O.Slice(0, 6), x)
    x = b.add("sig", O.Sigmoid(), b.conv("c2", x, 6, 3, padding=1, bias=True))
    x = b.add("flat", O.Flatten(), b.add("gap", O.GlobalAvgPool(), x))
    b.add("fc", O.Linear(3), x)
    g = b.build()
    return g, random_weights(g, 3)


@pytest.mark.parametrize("bits", [8, 16])
def test_shift_lookup_tables_se_multiply_and_resize_run_in_integers(bits, tmp_path):
    g, w = _mobile_net()
    model, _ = quantized(g, w, bits, "per-channel", n=16, meta={"graph": graph_to_dict(g)})
    kinds = {s.kind for s in model.steps}
    assert {"shift", "lut", "mul", "resize", "slice"} <= kinds
    back = QuantizedModel.from_arrays(g, *model.to_arrays())  # the schema accepts its own file
    x = np.random.default_rng(1).normal(0, 1, (16,) + g.input_shape).astype(np.float32)
    want = Runner(g, w, np.float64)(x)
    got = back(x)
    tol = 0.05 if bits == 8 else 2e-3
    assert np.abs(got - want).max() <= tol * np.abs(want).max()
    lut = next(s for s in model.steps if s.kind == "lut")
    t = model.tensors[lut.inputs[0]]
    assert len(lut.arrays["lut"]) == t.hi - t.lo + 1
    save_model(tmp_path / "f.npz", g, w, {}, in_zoo=False)  # a float file of the net is valid too
