"""Precision as a sweep axis (emu/precision.py): 4-bit weights in a quantized file, the sweep
file's precision and [accuracy] keys refused in one line when wrong, and a precision sweep of
the shipped Fashion-MNIST model whose accuracies are recomputed here through the quantizer and
the integer runner directly, whose shared measurements equal measuring each point alone, and
whose costs follow the file's widths."""
from __future__ import annotations

import numpy as np
import pytest

from sqnxt_engine.emu import sweep as SW
from sqnxt_engine.emu.cli import main
from sqnxt_engine.emu.hardware import load_hardware
from sqnxt_engine.emu.integer import hardware_for
from sqnxt_engine.emu.precision import PRECISIONS, AccuracySettings, measure, quantize_for
from sqnxt_engine.errors import UserError
from sqnxt_engine.quant import quantize_network
from sqnxt_engine.quant.fixedpoint import qmax
from sqnxt_engine.quant.model import QuantizedModel
from sqnxt_engine.runtime import Runner

MODEL = "1.0-SqNxt-23v5-fmnist"


def one_line_error(capsys, code) -> str:
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "internal error" not in err
    return err


# --- 4-bit weights in a quantized file ------------------------------------------------------

@pytest.fixture(scope="module")
def w4(fmnist_shipped):
    from sqnxt_engine.io.images import batch_from_arrays
    graph, arrays, meta, pre, train, _, _ = fmnist_shipped
    calib = batch_from_arrays(train[:64], pre)
    return quantize_network(graph, arrays, [calib], len(calib), 8, "shift-scaler", "auto", meta=meta,
                            weight_bits=4)[0]


def test_weight_bits_hold_every_weight_code_and_the_hardware_moves_them_at_that_width(w4):
    macs = [s for s in w4.steps if s.kind == "mac"]
    assert w4.info["weight_bits"] == 4 and w4.weight_bits == 4 and w4.bits == 8
    assert max(int(np.abs(s.arrays["weight"]).max()) for s in macs) == qmax(4)   # 7 is reached
    hw = hardware_for(w4, load_hardware("16x16"))
    assert (hw.input_bits, hw.weight_bits, hw.output_bits) == (8, 4, 8)


def test_a_file_whose_weights_exceed_its_weight_bits_is_refused(w4):
    arrays, meta = w4.to_arrays()
    mac = next(s for s in w4.steps if s.kind == "mac")
    bad = dict(arrays)
    bad[f"{mac.covers[0]}.weight"] = np.full_like(arrays[f"{mac.covers[0]}.weight"], qmax(4) + 1)
    with pytest.raises(UserError, match=r"weight holds 8, outside \[-7, 7\]"):
        QuantizedModel.from_arrays(w4.graph, bad, meta)
    for lie in (9, 1, True, "4"):
        meta2 = {**meta, "quantization": {**meta["quantization"], "weight_bits": lie}}
        with pytest.raises(UserError, match="weight_bits is"):
            QuantizedModel.from_arrays(w4.graph, arrays, meta2)


def test_quantizer_refuses_weight_bits_outside_the_codes(fmnist_shipped):
    graph, arrays, meta, *_ = fmnist_shipped
    for w in (1, 9):
        with pytest.raises(UserError, match="weight bits must be 2 to the 8 bits"):
            quantize_network(graph, arrays, [], 1, 8, "shift-scaler", "auto", meta=meta, weight_bits=w)


# --- the sweep file -----------------------------------------------------------------------

BASE = '''
[[network]]
{network}
[hardware]
base = "16x16"
[emulation]
sparsity = {sparsity}
{extra}
'''


@pytest.mark.parametrize("network, sparsity, extra, message", [
    ('weights = "1.0-SqNxt-23v5-fmnist"\nprecision = ["int7"]', 0, "", "unknown precision 'int7'"),
    ('weights = "1.0-SqNxt-23v5-fmnist"\nprecision = ["int8", "int8"]', 0, "", "lists a value twice"),
    ('weights = "1.0-SqNxt-23v5-fmnist"\nprecision = []', 0, "", "non-empty list of names"),
    ('model = "1.0-SqNxt-23"\nprecision = ["int8"]', 0, "", "needs trained weights"),
    ('weights = "1.0-SqNxt-23v5-fmnist"\nprecision = ["int8"]\naccuracy = { top1 = 90, source = "x" }',
     0, "", "states an accuracy and a precision axis"),
    ('weights = "1.0-SqNxt-23v5-fmnist"\nprecision = ["int8"]', 0.4, "", "set emulation.sparsity = 0"),
    ('weights = "1.0-SqNxt-23v5-fmnist"', 0, "[accuracy]\nimages = 10", "none has one"),
    ('weights = "1.0-SqNxt-23v5-fmnist"\nprecision = ["int8"]', 0, "[accuracy]\nimages = 0",
     "accuracy.images must be a whole number"),
    ('weights = "1.0-SqNxt-23v5-fmnist"\nprecision = ["int8"]', 0, "[accuracy]\ndata = \"imagenet-samples\"",
     "train and test splits"),
    ('weights = "1.0-SqNxt-23v5-fmnist"\nprecision = ["int8"]', 0, "[accuracy]\nshots = 3",
     "unknown key accuracy.shots"),
])
def test_a_wrong_precision_sweep_is_one_line(tmp_path, capsys, network, sparsity, extra, message):
    path = tmp_path / "p.toml"
    path.write_text(BASE.format(network=network, sparsity=sparsity, extra=extra))
    err = one_line_error(capsys, main(["sweep", str(path), "--db", str(tmp_path / "p.sqlite")]))
    assert message in err
    assert not (tmp_path / "p.sqlite").exists()


def test_precisions_multiply_the_points_and_key_them(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(BASE.format(network=f'weights = "{MODEL}"\nprecision = ["float", "int8"]',
                                sparsity=0, extra="[accuracy]\nimages = 30"))
    sweep = SW.load_sweep(path)
    assert [p.precision for p in sweep.points] == ["float", "int8"]
    assert sweep.points[0].measure == AccuracySettings(images=30)
    assert len({p.key for p in sweep.points}) == 2 and sweep.points[1].label == f"{MODEL} int8"
    path.write_text(BASE.format(network=f'weights = "{MODEL}"\nprecision = ["float", "int8"]',
                                sparsity=0, extra="[accuracy]\nimages = 31"))
    assert SW.load_sweep(path).points[1].key != sweep.points[1].key   # the settings are in the key


# --- a precision sweep, measured ------------------------------------------------------------

SMALL = f'''
[[network]]
weights = "{MODEL}"
precision = ["int8"]
[accuracy]
images = 12
calib_images = 16
[hardware]
base = "16x16"
[hardware.grid]
arith.overflow = ["saturate", "wrap"]
[emulation]
sparsity = 0
'''


def test_a_small_precision_sweep_measures_once_and_shares_it(fmnist_shipped, tmp_path):
    """The default suite's end-to-end case (the module's larger sweep is a slow test): int8 on
    one accelerator with either overflow mode, measured once (wrap first), the other point's
    record saying why it shares the measurement, and the top-1 the quantized file's own."""
    from sqnxt_engine.io.images import batch_from_arrays
    (tmp_path / "s.toml").write_text(SMALL)
    sweep = SW.load_sweep(tmp_path / "s.toml")
    db = SW.ResultsDB(tmp_path / "s.sqlite")
    SW.run_sweep(sweep, db)
    records = {r["hw.arith.overflow"]: r for r in db.rows()}
    assert "no sum left it" not in records["wrap"]["accuracy_source"]
    assert "measured with a 32-bit wrap accumulator: no sum left it" in records["saturate"]["accuracy_source"]
    point = sweep.points[0]
    model = quantize_for(point.network.file, PRECISIONS["int8"], point.hardware, point.measure)
    _, _, _, pre, _, test, labels = fmnist_shipped
    want = (model(batch_from_arrays(test[:12], pre)).argmax(1) == labels[:12]).mean() * 100
    assert records["wrap"]["accuracy"] == records["saturate"]["accuracy"] == pytest.approx(want)
    assert records["wrap"]["precision_bit_exact_images"] == 12


IMAGES, CALIB = 40, 48
SWEEP = f'''
[[network]]
weights = "{MODEL}"
precision = ["float", "int16", "int8", "w4a8"]
[accuracy]
images = {IMAGES}
calib_images = {CALIB}
[hardware]
base = "16x16"
[hardware.grid]
arith = [{{ word_bits = 16, acc_bits = 32, overflow = "wrap" }},
         {{ word_bits = 16, acc_bits = 32, overflow = "saturate" }},
         {{ word_bits = 8, acc_bits = 24, overflow = "wrap" }}]
[emulation]
sparsity = 0
'''


@pytest.fixture(scope="module")
def swept(fmnist_shipped, tmp_path_factory):
    folder = tmp_path_factory.mktemp("precision")
    (folder / "p.toml").write_text(SWEEP)
    sweep = SW.load_sweep(folder / "p.toml")
    db = SW.ResultsDB(folder / "p.sqlite")
    SW.run_sweep(sweep, db)
    return sweep, db, {(r["precision"], r["word_bits"], r["hw.arith.overflow"]): r for r in db.rows()}


@pytest.mark.slow   # the module's sweep: about 20 s on a quiet machine
def test_each_accuracy_is_the_quantized_files_own_top1(swept, fmnist_shipped):
    """Recomputed here: the file sqnxt-quant --hw makes, run by the NumPy integer runner (the
    emulated datapath is bit-exact with it, which the record also states), and the float
    runner for the reference."""
    from sqnxt_engine.io.images import batch_from_arrays
    from sqnxt_engine.io.shipped import shipped_weights
    graph, arrays, _, pre, _, test, labels = fmnist_shipped
    x, y = batch_from_arrays(test[:IMAGES], pre), labels[:IMAGES]
    _, _, rows = swept
    settings = AccuracySettings(images=IMAGES, calib_images=CALIB)
    base = load_hardware("16x16")
    for (name, words, mode), r in rows.items():
        if r["accuracy"] is None:
            continue
        if name == "float":
            want = (Runner(graph, arrays)(x).argmax(1) == y).mean() * 100
        else:
            import dataclasses
            hw = dataclasses.replace(base, word_bits=words, acc_bits=r["hw.arith.acc_bits"], overflow=mode)
            model = quantize_for(str(shipped_weights(MODEL)), PRECISIONS[name], hw, settings)
            want = (model(x).argmax(1) == y).mean() * 100
            assert r["precision_bit_exact_images"] == IMAGES
        assert r["accuracy"] == pytest.approx(want), (name, words, mode)


@pytest.mark.slow   # the module's sweep: about 20 s on a quiet machine
def test_a_shared_measurement_equals_measuring_the_point_alone(swept):
    """The saturate point took the wrap point's measurement (no sum overflowed): measured on its
    own it gives the same top-1 and overflows nowhere."""
    sweep, _, rows = swept
    r = rows[("int8", 16, "saturate")]
    assert "no sum left it" in r["accuracy_source"]
    point = next(p for p in sweep.points if p.precision == "int8" and p.hardware.overflow == "saturate")
    alone = measure(point.network.file, PRECISIONS["int8"], point.hardware, point.dataflow, point.measure)
    assert alone.top1 == r["accuracy"] and not alone.overflowed


@pytest.mark.slow   # the module's sweep: about 20 s on a quiet machine
def test_what_a_hardware_cannot_run_is_stored_with_why_and_left_out_of_the_fronts(swept):
    _, db, rows = swept
    for key in (("int16", 8, "wrap"), ("float", 8, "wrap")):
        r = rows[key]
        assert r["cycles"] is None and r["accuracy"] is None and "not run" in r["accuracy_source"]
    costed = {(r["network"], r["hardware"]) for r in db.records()}
    assert len(costed) == len(rows) - 2


@pytest.mark.slow   # the module's sweep: about 20 s on a quiet machine
def test_narrower_files_move_fewer_bytes(swept):
    _, _, rows = swept
    dram = {k: r["dram_bytes"] for k, r in rows.items() if r["dram_bytes"] is not None}
    assert dram[("int16", 16, "wrap")] > dram[("int8", 16, "wrap")] > dram[("w4a8", 16, "wrap")]
    assert dram[("float", 16, "wrap")] == dram[("int16", 16, "wrap")]   # both 16-bit words
