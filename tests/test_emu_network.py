"""Whole-network emulation and the sqnxt-emu command."""
import json

import pytest

from sqnxt_engine.emu.cli import main
from sqnxt_engine.emu.energy import energy
from sqnxt_engine.emu.hardware import load_hardware, with_overrides
from sqnxt_engine.emu.network import emulate
from sqnxt_engine.graph import GraphBuilder
from sqnxt_engine.graph import ops as O
from sqnxt_engine.runtime import random_weights


def tiny_graph():
    b = GraphBuilder("tiny", (3, 12, 12))
    x = b.conv("c1", b.input, 8, 3, padding=1)
    x = b.bn("c1.bn", x)
    x = b.relu("c1.act", x)
    y = b.conv("c2", x, 8, (3, 1), padding=(1, 0))
    y = b.relu("c2.act", y)
    x = b.add("sum", O.Add(), x, y)
    x = b.conv("dw", x, 8, 3, padding=1, groups=8)
    x = b.add("gap", O.GlobalAvgPool(), x)
    x = b.add("flat", O.Flatten(), x)
    b.add("fc", O.Linear(5), x)
    return b.build()


@pytest.fixture(scope="module")
def graph():
    return tiny_graph()


@pytest.mark.parametrize("dataflow", ["ws", "os", "rs", "best"])
def test_emulation_matches_float_and_energy_is_counts_times_table(graph, dataflow):
    hw = load_hardware("8x8")
    w = random_weights(graph, 1)
    res = emulate(graph, w, hw, dataflow, sparsity=0.4)
    assert [r.name for r in res.mac_steps] == ["c1", "c2", "dw", "fc"]
    assert res.max_abs_diff <= 1e-3 * res.max_abs_ref and res.top1_match
    for r in res.mac_steps:
        assert r.energy == energy(r.counters, hw, r.conv.output_size)
        assert r.cycles >= r.counters.cycles
        skipped = r.counters.skipped_macs
        if r.mapping.dataflow == "os_socmop":
            assert skipped > 0 and r.counters.macs + skipped == r.dense_macs
        else:
            assert skipped == 0 and r.counters.macs == r.dense_macs
    if dataflow in ("ws", "rs"):
        assert {r.mapping.dataflow for r in res.mac_steps} == {dataflow}
    assert res.energy.total == pytest.approx(sum(r.energy.total for r in res.mac_steps))


def test_row_stationary_is_a_third_choice_on_the_papers_array(graph, tmp_path):
    # a hardware file may add RS to the paper's two (the presets keep WS and SOC-MOP): "best"
    # then picks among the three per layer, and never does worse than the two alone
    f = tmp_path / "three.toml"
    f.write_text('[pe]\nrows = 8\ncols = 8\n[buffer]\nbytes = 32768\n'
                 '[dataflow]\nsupported = ["ws", "os_socmop", "rs"]\n')
    three, two = load_hardware(f), load_hardware("8x8")
    assert two.dataflows == ("ws", "os_socmop") and three.dataflows == ("ws", "os_socmop", "rs")
    w = random_weights(graph, 1)
    a, b = emulate(graph, w, three, "best", sparsity=0.4), emulate(graph, w, two, "best", sparsity=0.4)
    for ra, rb in zip(a.mac_steps, b.mac_steps):
        assert ra.cycles <= rb.cycles
    assert a.top1_match


def test_zero_skipping_needs_zeros(graph):
    hw = load_hardware("8x8")
    w = random_weights(graph, 1)
    dense = emulate(graph, w, hw, "os", sparsity=0.0)
    sparse = emulate(graph, w, hw, "os", sparsity=0.4)
    assert sum(r.counters.skipped_macs for r in dense.mac_steps) == 0
    assert sparse.mac_steps[0].counters.macs < dense.mac_steps[0].counters.macs


def test_trace_json_default_model(capsys):
    assert main(["trace", "--dataflow", "os", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "1.0-SqNxt-23" and out["hardware"] == "16x16"
    assert len(out["layers"]) > 100
    assert {r["dataflow"] for r in out["layers"]} == {"os_socmop"}
    t = out["total"]
    assert t["cycles"] == pytest.approx(sum(r["cycles"] for r in out["layers"]), abs=len(out["layers"]))
    assert t["energy"] == pytest.approx(sum(t[f"e_{lv}"] for lv in ("mac", "rf", "pe", "gb", "dram")))
    assert out["top1_match"]


def test_trace_errors_are_one_line(tmp_path, capsys):
    hw = tmp_path / "hw.toml"
    hw.write_text("[pe]\nrows = 0\ncols = 4\n[buffer]\nbytes = 4096\n")
    assert main(["trace", "--hw", str(hw)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: hw.toml: pe.rows must be a positive integer, got 0"
    assert main(["trace", "--model", "NoSuchNet"]) == 2
    assert main(["trace", "--sparsity", "1.5"]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 2


def test_trace_plot_is_written_once(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "t.png"
    assert main(["trace", "--hw", "8x8", "--dataflow", "ws", "--csv", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv = capsys.readouterr().out.splitlines()
    assert csv[0].startswith("layer,shape,dataflow,mapping,macs,cycles") and csv[-1].startswith("total,")
    assert main(["trace", "--hw", "8x8", "--plot", str(out)]) == 2  # no overwrite without --force
    assert "exists" in capsys.readouterr().err


def test_no_zero_skipping_counts_every_mac(tmp_path):
    text = tmp_path / "hw.toml"
    preset = load_hardware("8x8")
    text.write_text("name = \"noskip\"\n[pe]\nrows = 8\ncols = 8\n[buffer]\nbytes = 32768\n"
                    "[dataflow]\nzero_skip_os = false\n")
    noskip = load_hardware(text)
    g = tiny_graph()
    w = random_weights(g, 1)
    skip = emulate(g, w, preset, "os", sparsity=0.4)
    full = emulate(g, w, noskip, "os", sparsity=0.4)
    assert full.max_abs_diff == skip.max_abs_diff  # the same arithmetic
    for a, b in zip(skip.mac_steps, full.mac_steps):
        assert b.counters.skipped_macs == 0 and b.counters.macs == b.dense_macs
        assert a.counters.skipped_macs > 0 and a.counters.macs < b.counters.macs
        assert b.cycles >= a.cycles
    assert full.energy.total > skip.energy.total


def test_dilated_convolution_is_refused_in_one_line(tmp_path, capsys):
    from sqnxt_engine.errors import UserError
    b = GraphBuilder("dilated", (3, 12, 12))
    b.add("c1", O.Conv2d(4, 3, padding=2, dilation=2), b.input)
    g = b.build()
    with pytest.raises(UserError, match="dilated"):
        emulate(g, random_weights(g, 0), load_hardware("8x8"), "os")


def test_non_mac_layers_are_charged_only_when_asked(tmp_path):
    text = tmp_path / "hw.toml"
    text.write_text("[pe]\nrows = 8\ncols = 8\n[buffer]\nbytes = 32768\n"
                    "[layers]\nnon_mac_cycles = true\n")
    g = tiny_graph()
    w = random_weights(g, 1)
    off = emulate(g, w, load_hardware("8x8"), "os")
    on = emulate(g, w, load_hardware(text), "os")
    assert all(r.has_macs for r in off.steps)
    extra = [r for r in on.steps if not r.has_macs]
    assert [r.name for r in extra] == ["sum", "gap"]   # flatten moves no data; in run order
    assert on.cycles == pytest.approx(off.cycles + sum(r.cycles for r in extra))
    assert on.energy.total == pytest.approx(off.energy.total + sum(r.energy.total for r in extra))
    for r in extra:   # their words cost what a MAC layer's cost at each level
        assert r.energy.mac == 0 and r.energy.dram > 0 and r.energy.gb > 0


def test_a_shared_float_pass_gives_each_hardware_what_its_own_emulation_gives(graph):
    """table3's sharing (reports._reference): one float pass, weights pruned in place, then
    every array's emulation on it, equals emulate() of each array on its own."""
    import numpy as np

    from sqnxt_engine.emu.network import emulate_reference, pruned_weights, reference
    w = random_weights(graph, 2)
    before = {k: v.copy() for k, v in w.items()}
    copied = pruned_weights(graph, w, 0.4)
    assert all(np.array_equal(w[k], before[k]) for k in w)   # the copy leaves them alone
    own = dict(w)
    ref = reference(graph, own, 0.4, in_place=True)
    assert all(np.array_equal(own[k], copied[k]) for k in w)
    assert any(not np.array_equal(own[k], before[k]) for k in w)   # pruned in place
    # the same pass with the float weights given up for their 16-bit codes (reports._reference)
    codes = reference(graph, {k: v.copy() for k, v in before.items()}, 0.4, in_place=True)
    codes.keep_codes((16,))
    assert all(s.params.get("weight") is None for s in codes.runner.steps
               if isinstance(s.op, (O.Conv2d, O.Linear)))
    cache: dict = {}
    for hw in (load_hardware("8x8"), load_hardware("16x16"), load_hardware("8x8")):
        alone = emulate(graph, before, hw, "best", sparsity=0.4)
        for shared in (emulate_reference(ref, hw, "best", cache=cache),
                       emulate_reference(codes, hw, "best", cache=cache)):
            assert [r.row() for r in shared.steps] == [r.row() for r in alone.steps]
            assert [r.acc_fit_bits for r in shared.steps] == [r.acc_fit_bits for r in alone.steps]
            assert (shared.max_abs_diff, shared.max_abs_ref, shared.top1_match) == \
                (alone.max_abs_diff, alone.max_abs_ref, alone.top1_match)
    with pytest.raises(RuntimeError, match="dropped"):   # a width whose codes were not kept
        emulate_reference(codes, with_overrides("8x8", {"arith.weight_bits": 8}), "best")
