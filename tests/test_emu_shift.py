"""The shift on the emulator (emu/shift.py): the loop-nest kernels' shifted fetch (address remap)
against NumPy's shift then 1x1 convolution and against the cycle-by-cycle simulator of
test_kernels_sim, its counts in both modes, the copy's counts, and whole networks in both forms."""
import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_kernels_sim import simulate

from sqnxt_engine import functional as F
from sqnxt_engine import zoo
from sqnxt_engine.emu.hardware import HardwareError, hardware_from_dict, load_hardware
from sqnxt_engine.emu.network import emulate
from sqnxt_engine.emu.shift import copy_record, moved_words
from sqnxt_engine.graph import ops as O
from sqnxt_engine.graph.graph import GraphBuilder
from sqnxt_engine.kernels import DATAFLOWS, ORDERS, ConvShape, Counters, Mapping, count, execute
from sqnxt_engine.runtime import random_weights

from strategies import mappings

KSIZES = (1, 3, 5)


@st.composite
def shifted_layers(draw, max_c=12, max_hw=7):
    """A 1x1 layer (stride 1-2) after a shift of any kernel size, dilation and assignment."""
    c = draw(st.integers(1, max_c))
    h, w = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    shape = ConvShape(C=c, H=h, W=w, K=draw(st.integers(1, 6)), stride=draw(st.integers(1, 2)))
    op = O.Shift(draw(st.sampled_from(KSIZES)), draw(st.integers(1, 3)),
                 draw(st.sampled_from(F.SHIFT_ASSIGNMENTS)))
    return shape, op


def operands(seed, shape, zeros=0.3):
    rng = np.random.default_rng(seed)
    x = rng.integers(-300, 300, (shape.C, shape.H, shape.W)).astype(np.int16)
    w = rng.integers(-7, 8, (shape.K, shape.C, 1, 1)).astype(np.int16)
    w[rng.random(w.shape) < zeros] = 0
    return x, w


def shift_then_conv(x, w, op, stride):
    """The reference: NumPy's shift (functional.shift), then the 1x1 convolution."""
    xs = F.shift(x[None].astype(np.int64), op.kernel, op.dilation, op.assignment)[0]
    return np.einsum("kc,chw->khw", w[:, :, 0, 0].astype(np.int64), xs[:, ::stride, ::stride])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_shifted_fetch_equals_shift_then_conv_and_counts_agree(data):
    shape, op = data.draw(shifted_layers())
    m = data.draw(mappings(shape, max_pe=3, max_psums=3))
    x, w = operands(data.draw(st.integers(0, 2 ** 32 - 1)), shape)
    off = op.offsets(shape.C)
    y, got = execute(shape, m, x, w, shift=off)
    assert np.array_equal(y, shift_then_conv(x, w, op, shape.stride[0]))
    yf, got_f = execute(shape, m, x.astype(np.float64), w.astype(np.float64), shift=off)
    assert np.array_equal(yf, y) and got_f == got
    # count-only mode, closed form and walked, and the vectorised batch: the same counts
    assert count(shape, m, w, shift=off) == got
    assert count(shape, m, w, shift=off, walk=True) == got
    # the independent cycle-by-cycle simulator, extended to the shifted fetch
    want = simulate(shape, m, w, offsets=off)
    diff = {f: (getattr(got, f), getattr(want, f)) for f in Counters._fields
            if getattr(got, f) != getattr(want, f)}
    assert not diff, f"{shape} {m} {op}: kernel vs simulation {diff}"
    # the array does the plain layer's work; only input fetches drop, by the border's share
    plain = count(shape, m, w)
    for f in Counters._fields:
        if f in ("input_gb_reads", "input_gb_writes", "input_dram_reads"):
            assert getattr(got, f) <= getattr(plain, f)
        else:
            assert getattr(got, f) == getattr(plain, f), f


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.data())
def test_shifted_fetch_on_tiles_of_many_pixels(data):
    """Tiles of 64 or more output pixels take the pixel-innermost arithmetic (with a staging
    copy at stride 2), which the small layers above (k-innermost) do not reach."""
    shape, op = data.draw(shifted_layers(max_c=10, max_hw=16).filter(
        lambda so: so[0].Ho * so[0].Wo >= 64))
    ty = data.draw(st.integers(-(-64 // shape.Wo), shape.Ho))
    m = Mapping(data.draw(st.sampled_from(DATAFLOWS)), 4, 4, data.draw(st.sampled_from(ORDERS)),
                (data.draw(st.integers(1, shape.K)), data.draw(st.integers(1, shape.C)), ty,
                 shape.Wo), data.draw(st.integers(1, 3)))
    x, w = operands(data.draw(st.integers(0, 2 ** 32 - 1)), shape)
    off = op.offsets(shape.C)
    y, got = execute(shape, m, x, w, shift=off, acc_bits=48)   # acc_bits: the tracking loops
    assert np.array_equal(y, shift_then_conv(x, w, op, shape.stride[0]))
    yf, got_f = execute(shape, m, x.astype(np.float32), w.astype(np.float32), shift=off)
    assert np.array_equal(yf, y) and got_f == got
    assert count(shape, m, w, shift=off) == got == count(shape, m, w, shift=off, walk=True)


def test_border_reads_nothing():
    """A shift by (0, +1) of every channel of a 1-row image: the last column is border."""
    shape = ConvShape(C=2, H=1, W=4, K=1)
    m = Mapping.untiled(shape, "ws", 2, 1)
    x = np.arange(8, dtype=np.int16).reshape(2, 1, 4) + 1
    w = np.ones((1, 2, 1, 1), np.int16)
    y, c = execute(shape, m, x, w, shift=np.array([[0, 1], [0, 1]]))
    assert y.tolist() == [[[2 + 6, 3 + 7, 4 + 8, 0]]]
    assert c.input_dram_reads == 6 and c.input_gb_reads == 6     # 8 words, 2 never fetched
    assert c.macs == execute(shape, m, x, w)[1].macs == 8


def test_shifted_fetch_refuses_what_it_cannot_remap():
    x, w = np.zeros((2, 3, 3), np.int16), np.zeros((1, 2, 3, 3), np.int16)
    shape = ConvShape(C=2, H=3, W=3, K=1, R=3, S=3, padding=1)
    with pytest.raises(ValueError, match="1x1 layer"):
        execute(shape, Mapping.untiled(shape, "ws", 2, 2), x, w, shift=np.zeros((2, 2), int))
    flat = ConvShape(C=2, H=3, W=3, K=1)
    with pytest.raises(ValueError, match=r"\(2, 2\) integer array"):
        count(flat, Mapping.untiled(flat, "ws", 2, 2), shift=np.zeros((3, 2), int))


@pytest.mark.parametrize("op", [O.Shift(3, 1, "interleaved"), O.Shift(5, 2, "grouped"),
                                O.Shift(3, 3, "grouped")])
def test_copy_counts_the_words_it_moves(op):
    shape = (29, 6, 5)   # 29 channels: 2 (k = 5) or 3 (k = 3) stay unshifted by the rule
    read, written = moved_words(op, shape)
    ones = np.ones((1,) + shape)
    moved = np.array([np.any(o != 0) for o in op.offsets(shape[0])])
    # literally: the ones that land inside the image, and every word of a moving channel
    assert read == int(F.shift(ones, op.kernel, op.dilation, op.assignment)[0][moved].sum())
    assert written == int(moved.sum()) * shape[1] * shape[2]
    hw = load_hardware("8x8")
    rec = copy_record("s", op, shape, hw)
    c = rec.counters
    assert (c.input_dram_reads, c.input_gb_writes, c.input_gb_reads) == (read,) * 3
    assert (c.psum_gb_writes, c.psum_gb_reads, c.psum_dram_writes) == (written,) * 3
    assert c.macs == 0 and rec.energy.mac == 0
    # each word: into and out of the buffer, and once to or from DRAM
    assert rec.energy.total == pytest.approx((read + written) * (2 * hw.energy.gb + hw.energy.dram))
    assert rec.cycles > 0 and rec.row()["mapping"] == "copy" and rec.row()["kind"] == "shift"
    assert sum(rec.timing.parts.values()) == rec.cycles   # exactly: the parts are the cycles


@pytest.mark.parametrize("hw_name", ["8x8", "16x16"])
def test_remap_reads_fewer_buffer_words_than_copy_and_conv(hw_name):
    hw = load_hardware(hw_name)
    op = O.Shift(3, 1, "interleaved")
    shape = ConvShape(C=48, H=14, W=14, K=32)
    m = Mapping.untiled(shape, "ws", hw.pe_rows, hw.pe_cols)
    remap = count(shape, m, shift=op.offsets(shape.C))
    plain = count(shape, m)
    copied = copy_record("s", op, (shape.C, shape.H, shape.W), hw).counters + plain

    def gb(c):
        return sum(getattr(c, f"{o}_gb_{k}") for o in ("input", "weight", "psum")
                   for k in ("reads", "writes"))
    assert gb(remap) < gb(plain) < gb(copied)
    assert remap.input_gb_reads < plain.input_gb_reads
    assert remap.input_dram_reads < plain.input_dram_reads < copied.input_dram_reads


def test_hardware_names_the_shift_form(tmp_path):
    assert load_hardware("8x8").shift == "remap"
    base = {"pe": {"rows": 8, "cols": 8}, "buffer": {"bytes": 32768}}
    assert hardware_from_dict(dict(base, layers={"shift": "copy"})).shift == "copy"
    with pytest.raises(HardwareError, match='layers.shift must be "remap" or "copy"'):
        hardware_from_dict(dict(base, layers={"shift": "move"}))


@pytest.fixture(scope="module")
def shift_resnet():
    g = zoo.build("ShiftResNet-20-e3", input_size=28, in_channels=1)   # the Fashion-MNIST form
    return g, random_weights(g, 3)


@pytest.mark.parametrize("hw_name", ["8x8", "16x16"])
def test_shift_resnet_traces_in_both_forms(shift_resnet, hw_name):
    g, w = shift_resnet
    x = np.random.default_rng(1).standard_normal((1,) + g.input_shape).astype(np.float32)
    hw = load_hardware(hw_name)
    shifts = [n.name for n in g.nodes if isinstance(n.op, O.Shift)]
    assert len(shifts) == 9
    res = {f: emulate(g, w, dataclasses.replace(hw, shift=f), "best", 0.4, x=x)
           for f in ("remap", "copy")}
    for r in res.values():
        assert r.top1_match and r.max_abs_diff <= 0.02 * r.max_abs_ref
    remap, copy = res["remap"], res["copy"]
    # the same arithmetic either way (the shift is exact on fixed-point values)
    assert remap.max_abs_diff == copy.max_abs_diff
    assert remap.macs == copy.macs == sum(r.dense_macs for r in remap.steps)
    # remap: no shift rows; the nine consumers say whose shift their fetch performs
    marked = [r.row()["shift"] for r in remap.steps if "shift" in r.row()]
    assert marked == [f"{s} (remap)" for s in shifts]
    assert all(s not in [r.name for r in remap.steps] for s in shifts)
    # copy: one row per shift, before its consumer
    names = [r.name for r in copy.steps]
    assert [n for n in names if n in shifts] == shifts
    assert all(names[names.index(s) + 1].endswith("conv2") for s in shifts)
    assert copy.cycles > remap.cycles and copy.energy.total > remap.energy.total


def test_shift_without_a_1x1_consumer_falls_back_to_copy():
    b = GraphBuilder("shift-then-3x3", (9, 6, 6))
    x = b.conv("c1", b.input, 9, 1)
    x = b.add("s", O.Shift(), x)
    x = b.conv("c2", x, 4, 3, padding=1)
    x = b.add("gap", O.GlobalAvgPool(), x)
    g = b.build()
    w = random_weights(g, 0)
    res = emulate(g, w, load_hardware("8x8"), "best", 0.0)
    rows = {r.name: r.row() for r in res.steps}
    assert rows["s"]["mapping"].startswith("copy (no 1x1 convolution")
    assert "shift" not in rows["c2"] and res.top1_match


def test_a_shared_pass_on_codes_gives_what_each_emulation_gives(shift_resnet):
    """table3's sharing on a network with shifts: one float pass, its weights' codes kept, each
    layer's operands executed once across the hardware (remapped fetches and copies: their
    operands differ) gives what emulate() gives on each hardware alone."""
    from sqnxt_engine.emu.network import emulate_reference, reference
    g, w = shift_resnet
    x = np.random.default_rng(1).standard_normal((1,) + g.input_shape).astype(np.float32)
    ref = reference(g, {k: v.copy() for k, v in w.items()}, 0.4, x=x, in_place=True)
    ref.keep_codes((16,))
    for hw_name, form in (("8x8", "remap"), ("16x16", "remap"), ("16x16", "copy")):
        hw = dataclasses.replace(load_hardware(hw_name), shift=form)
        shared, alone = emulate_reference(ref, hw, "best"), emulate(g, w, hw, "best", 0.4, x=x)
        assert [r.row() for r in shared.steps] == [r.row() for r in alone.steps]
        assert shared.max_abs_diff == alone.max_abs_diff
    assert ref.sums
