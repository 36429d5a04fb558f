"""The emulator runs quantized networks in integers: for any layer, dataflow, loop order and tile
size, the kernels' sums through the model's output stage give exactly the NumPy integer
runner's codes, and whole networks (a small one with every step kind, and the shipped
Fashion-MNIST model on a real image) come out bit-exact."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sqnxt_engine.emu
from sqnxt_engine.emu.cli import main as emu_main
from sqnxt_engine.emu.hardware import load_hardware
from sqnxt_engine.emu.integer import compare, emulate_codes, emulate_dataset, mac_on_array
from sqnxt_engine.emu.quant_cli import hardware_target
from sqnxt_engine.graph import ops as O
from sqnxt_engine.graph.graph import GraphBuilder
from sqnxt_engine.graph.serialize import graph_to_dict
from sqnxt_engine.io.images import batch_from_arrays
from sqnxt_engine.quant import Accumulator, quantize_network
from sqnxt_engine.quant.accfit import observe, worst
from sqnxt_engine.quant.model import IntegerStep, save_quantized
from sqnxt_engine.runtime import random_weights

from strategies import conv_geometries, mappings

HW = load_hardware("8x8")


@st.composite
def integer_layers(draw):
    """A conv step with random codes and output stage, its input codes, and a mapping."""
    g = draw(conv_geometries())
    shape = g.conv_shape()
    bits = draw(st.sampled_from([8, 16]))
    seed = draw(st.integers(0, 2 ** 31))
    rng = np.random.default_rng(seed)
    top = (1 << (bits - 1)) - 1
    k = shape.K
    op = O.Conv2d(k, g.kernel, g.stride, g.pad, (1, 1), g.groups, True)
    w = rng.integers(-top, top + 1, (k, g.cg) + g.kernel).astype(np.int8 if bits == 8 else np.int16)
    arrays = {"weight": w, "bias": rng.integers(-(1 << 20), 1 << 20, k),
              "multiplier": rng.integers(1 << 29, 1 << 31, k), "shift": rng.integers(20, 45, k),
              "lo": np.full(k, -top), "hi": np.full(k, top)}
    step = IntegerStep("c", "mac", op, ("input",), ("c",), arrays)
    x = rng.integers(-top, top + 1, (shape.C, shape.H, shape.W))
    return step, x, shape, draw(mappings(shape, max_pe=3))


@settings(max_examples=40, deadline=None)
@given(integer_layers(), st.sampled_from(["wrap", "saturate"]), st.sampled_from([16, 24, 32]))
def test_every_mapping_gives_the_numpy_integer_codes(layer, overflow, acc_bits):
    step, x, shape, mapping = layer
    acc = Accumulator(acc_bits, overflow)
    hw = replace(HW, acc_bits=acc_bits, overflow=overflow)  # the hardware's accumulator is applied
    sums, _ = mac_on_array(step, x, hw, mapping.dataflow, {}, mapping=mapping)
    emulated = step.finish(sums[None], acc)
    numpy = step.run([x[None].astype(np.int64)], acc, {})
    np.testing.assert_array_equal(emulated, numpy)


def small_net():
    b = GraphBuilder("tiny", (2, 9, 9))
    x = b.conv_bn_act("c1", b.input, 6, 3, padding=1, act=O.ReLU6())
    y = b.conv_bn_act("dw", x, 6, 3, padding=1, groups=6)
    y = b.conv_bn_act("pw", y, 6, (1, 3), padding=(0, 1), act=None)
    x = b.relu("sum.act", b.add("sum", O.Add(), x, y))
    p = b.add("mp", O.MaxPool(3, 2, 0, ceil_mode=True), x)
    a = b.add("ap", O.AvgPool(3, 2, 0, ceil_mode=True), x)
    x = b.conv_bn_act("c2", b.add("cat", O.Concat(), p, a), 8, 1, stride=2)
    x = b.add("flat", O.Flatten(), b.add("gap", O.GlobalAvgPool(), x))
    b.add("fc", O.Linear(4), x)
    g = b.build()
    return g, random_weights(g, 1)


@pytest.mark.parametrize("dataflow", ["ws", "os", "best"])
@pytest.mark.parametrize("bits,method", [(8, "shift-scaler"), (16, "per-channel"), (8, "equalize")])
def test_whole_network_is_bit_exact(dataflow, bits, method):
    g, w = small_net()
    x = np.random.default_rng(0).normal(0, 1, (4,) + g.input_shape).astype(np.float32)
    model, _ = quantize_network(g, w, [x], 4, bits, method)
    run = emulate_codes(model, model.quantize_input(x[:1])[0], HW, dataflow)
    ref = model.with_accumulator(run.accumulator).run_codes(model.quantize_input(x[:1]), capture=True)
    result = compare(run, ref, g.outputs[0])
    assert result == {"max_abs_diff": 0, "bit_exact": True, "differing_layers": []}
    assert len(run.steps) == 5 and run.cycles > 0


def test_other_hardware_is_refused_or_its_differences_stated(tmp_path, capsys):
    """A 16-bit file made for a 48-bit accumulator on a 32-bit one: one line and exit 2 (on 8-bit
    words its codes cannot run at all, override or not); an 8-bit file on a 16-bit accumulator
    with --any-hardware: compared with the file's own path, not bit-exact, said on stderr, and
    exit 3 with --require-exact."""
    g, w = small_net()
    x = np.random.default_rng(0).normal(0, 1, (4,) + g.input_shape).astype(np.float32)
    model, _ = quantize_network(g, w, [x], 4, 16, "layer", meta={"graph": graph_to_dict(g)})
    q = save_quantized(tmp_path / "q16.npz", model)
    narrow = tmp_path / "narrow.toml"
    text = (Path(sqnxt_engine.emu.__file__).parent / "presets" / "8x8.toml").read_text()
    narrow.write_text(text.replace('name = "8x8"', 'name = "narrow"'))
    base = ["trace", "--weights", str(q), "--hw", str(narrow)]
    assert emu_main(base) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "narrow has a 32-bit wrap accumulator, the file 48-bit wrap" in err
    bytewide = tmp_path / "w8.toml"
    bytewide.write_text(text.replace('name = "8x8"', 'name = "w8"').replace("word_bits = 16", "word_bits = 8"))
    assert emu_main(["trace", "--weights", str(q), "--hw", str(bytewide), "--any-hardware"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "16-bit codes are wider than w8's 8-bit datapath" in err
    # an 8-bit file (32-bit accumulator) on 8-bit words with a 16-bit accumulator: its sums wrap
    m8, _ = quantize_network(g, w, [x], 4, 8, "layer", meta={"graph": graph_to_dict(g)})
    q8 = save_quantized(tmp_path / "q8.npz", m8)
    acc16 = tmp_path / "acc16.toml"
    acc16.write_text(text.replace('name = "8x8"', 'name = "acc16"').replace(
        "word_bits = 16", "word_bits = 8\nacc_bits = 16"))
    assert emu_main(["trace", "--weights", str(q8), "--hw", str(acc16), "--any-hardware",
                     "--require-exact", "--json"]) == 3
    out, err = capsys.readouterr()
    trace = json.loads(out)
    assert trace["bit_exact"] is False and trace["acc_overflow_layers"]
    assert trace["file_accumulator"] == {"bits": m8.accumulator.bits, "overflow": "wrap"}
    assert "the hardware changes this file's results" in err
    # the same file on a hardware with its 48-bit accumulator is bit-exact
    hw = tmp_path / "wide.toml"
    hw.write_text(text.replace("word_bits = 16", "word_bits = 16\nacc_bits = 48"))
    assert emu_main(["trace", "--weights", str(q), "--hw", str(hw), "--require-exact", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bit_exact"] is True


def test_narrow_hardware_accumulator_wraps_like_the_numpy_path():
    g, w = small_net()
    x = np.random.default_rng(0).normal(0, 1, (4,) + g.input_shape).astype(np.float32)
    model, _ = quantize_network(g, w, [x], 4, 16, "layer")
    hw16 = replace(load_hardware("8x8"), acc_bits=24)
    run = emulate_codes(model, model.quantize_input(x[:1])[0], hw16, "best")
    assert run.accumulator.bits == 24 and run.overflow_layers
    ref = model.with_accumulator(run.accumulator).run_codes(model.quantize_input(x[:1]), capture=True)
    assert compare(run, ref, g.outputs[0])["bit_exact"]


@pytest.fixture(scope="module")
def shipped_shift8(fmnist_shipped):
    """The shipped model at int8 with the shift scaler (calibrated on 64 train images), and the
    first test image as input codes."""
    g, w, meta, pre, train, test, _ = fmnist_shipped
    model, _ = quantize_network(g, w, [batch_from_arrays(train[:64], pre)], 64, 8, "shift-scaler", meta=meta)
    return model, model.quantize_input(batch_from_arrays(test[:1], pre))


def test_shipped_model_on_a_real_image_is_bit_exact(shipped_shift8):
    model, xq = shipped_shift8
    run = emulate_codes(model, xq[0], load_hardware("16x16"), "best")
    ref = model.with_accumulator(run.accumulator).run_codes(xq, capture=True)
    assert compare(run, ref, model.graph.outputs[0])["bit_exact"]


def test_emu_commands_on_a_quantized_file(shipped_shift8, tmp_path, capsys):
    q = save_quantized(tmp_path / "q.npz", shipped_shift8[0])
    assert emu_main(["trace", "--weights", str(q), "--hw", "8x8", "--json"]) == 0
    trace = json.loads(capsys.readouterr().out)
    assert trace["max_abs_diff"] == 0 and trace["bit_exact"] is True and trace["total"]["cycles"] > 0
    assert emu_main(["eval", "--weights", str(q), "--limit", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 3 and result["bit_exact_images"] == 3
    assert result["correct"] == result["numpy_correct"] and result["cycles_per_image"] > 0
    assert emu_main(["eval", "--weights", "1.0-SqNxt-23v5-fmnist", "--limit", "1"]) == 2
    assert "holds float weights" in capsys.readouterr().err


def test_a_batch_through_the_kernels_equals_its_images_one_by_one():
    """emulate_codes on a batch: every step's codes bit for bit those of each image run alone,
    the records one image's; emulate_dataset gives the same counts whatever its batch size."""
    g, w = small_net()
    x = np.random.default_rng(2).normal(0, 1, (5,) + g.input_shape).astype(np.float32)
    model, _ = quantize_network(g, w, [x], 5, 8, "shift-scaler")
    xq = model.quantize_input(x)
    cache: dict = {}
    batch = emulate_codes(model, xq, HW, "best", cache)
    for i in range(len(xq)):
        one = emulate_codes(model, xq[i], HW, "best", cache)
        for name, codes in one.codes.items():
            np.testing.assert_array_equal(batch.codes[name][i], codes[0], err_msg=name)
        assert [(r.name, r.counters, r.cycles, r.energy.total) for r in one.steps] == \
            [(r.name, r.counters, r.cycles, r.energy.total) for r in batch.steps]
    labels = np.arange(5) % 4
    by_one = emulate_dataset(model, x, labels, HW, "best", batch_size=1)
    assert emulate_dataset(model, x, labels, HW, "best", batch_size=3) == by_one
    assert by_one["bit_exact_images"] == 5


@pytest.mark.parametrize("acc_rule", ["observed", "worst"])
def test_quantized_for_a_hardware_fits_its_accumulator_and_runs_bit_exact(acc_rule):
    """A 16-bit file for 8x8's 32-bit accumulator: no layer's sums leave it on the calibration
    images (worst: on any input), the file records the hardware, and the emulator on that
    hardware computes the file's own integer path."""
    g, w = small_net()
    x = np.random.default_rng(0).normal(0, 1, (8,) + g.input_shape).astype(np.float32)
    hw = load_hardware("8x8")
    target = hardware_target("8x8")
    model, _ = quantize_network(g, w, [x], 8, 16, "per-channel", target=target, acc_rule=acc_rule,
                                batches_again=lambda: [x])
    assert model.info["hardware"] == {"name": "8x8", "acc_bits": 32, "overflow": "wrap", "word_bits": 16}
    assert model.accumulator == Accumulator(32, "wrap")
    lim = 1 << 31
    bound = worst(model) if acc_rule == "worst" else {k: 2 * v for k, v in observe(model, [x]).items()}
    assert max(bound.values()) < lim
    narrowed = model.info["accumulator_fit"]
    assert narrowed and all(r["weight_bits"] <= 16 for r in narrowed.values())
    # without the fit the same file overflows the 32-bit accumulator
    plain, _ = quantize_network(g, w, [x], 8, 16, "per-channel", accumulator=Accumulator(32, "wrap"))
    assert max(observe(plain, [x]).values()) >= lim
    for image in model.quantize_input(x[:2]):
        run = emulate_codes(model, image, hw, "best")
        assert not run.overflow_layers
        assert compare(run, model.run_codes(image[None], capture=True), g.outputs[0])["bit_exact"]


def test_sqnxt_quant_hw_refusals(tmp_path, capsys):
    from sqnxt_engine.emu.quant_cli import main as quant_main
    base = ["--weights", "ResNet-20-fmnist", "--calib", "fashion-mnist", "--calib-count", "2",
            "-o", str(tmp_path / "q.npz")]
    assert quant_main(base + ["--bits", "16", "--hw", "8x8", "--acc-bits", "48"]) == 2
    assert "--hw sets the accumulator" in capsys.readouterr().err
    text = (Path(sqnxt_engine.emu.__file__).parent / "presets" / "8x8.toml").read_text()
    narrow = tmp_path / "n.toml"
    narrow.write_text(text.replace("word_bits = 16", "word_bits = 8"))
    assert quant_main(base + ["--bits", "16", "--hw", str(narrow)]) == 2
    assert "16-bit codes do not fit the 8-bit words of 8x8" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ShiftResNet-20-e3-fmnist", "1.0-Shift-SqNxt-23v5-fmnist"])
@pytest.mark.parametrize("bits", [8, 16])
def test_shift_networks_quantize_for_16x16_and_run_bit_exact(name, bits, fmnist_shipped):
    """The shift is a step of the integer datapath (codes moved, zeros in): the shipped shift
    networks quantize for 16x16 and the emulator computes the file's own integer path."""
    from sqnxt_engine.io.model import load_model
    train, test = fmnist_shipped[4], fmnist_shipped[5]
    g, w, meta = load_model(name, quantized=False)
    pre = fmnist_shipped[3]
    x = batch_from_arrays(train[:32], pre)
    model, _ = quantize_network(g, w, [x], 32, bits, "shift-scaler", meta=meta,
                                target=hardware_target("16x16"), batches_again=lambda: [x])
    assert "shift" in {s.kind for s in model.steps}
    xq = model.quantize_input(batch_from_arrays(test[:2], pre))
    for image in xq:
        run = emulate_codes(model, image, load_hardware("16x16"), "best")
        assert not run.overflow_layers
        assert compare(run, model.run_codes(image[None], capture=True), g.outputs[0])["bit_exact"]
