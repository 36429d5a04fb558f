"""Energy models: counts x per-access energy under both; horowitz-45nm reproduces its source's
anchors, grows with size (at the source's exponents) and width; the buffer-size trade-off it
brings on 1.0-SqNxt-23v5; units in every output; bad [energy] sections are one-line errors."""
import json
import math
from dataclasses import replace

import pytest

from sqnxt_engine import zoo
from sqnxt_engine.emu import energy_models as EM
from sqnxt_engine.emu.cli import main
from sqnxt_engine.emu.energy import MEMORY_LEVELS, access_energy, accesses, energy
from sqnxt_engine.emu.hardware import (
    OPERANDS,
    EnergyTable,
    HardwareError,
    hardware_from_dict,
    load_hardware,
)
from sqnxt_engine.emu.network import emulate
from sqnxt_engine.emu.timing import timing
from sqnxt_engine.kernels import ConvShape, Dataflow, Mapping, count
from sqnxt_engine.runtime import random_weights

HOROWITZ = EnergyTable(model="horowitz-45nm")
KB = 1024


def test_presets_keep_the_papers_table_and_the_45nm_preset_uses_the_model():
    for name in ("8x8", "16x16"):
        e = access_energy(load_hardware(name))
        assert e.unit == "normalised (MAC = 1)" and e.mac == 1
        assert [e.of(lv, "input") for lv in MEMORY_LEVELS] == [1, 2, 6, 200]
    hw = load_hardware("16x16-45nm")
    assert hw.energy == HOROWITZ and hw.gb_bytes == 128 * KB
    assert hw == replace(load_hardware("16x16"), name="16x16-45nm", energy=HOROWITZ)
    assert access_energy(hw).unit == "pJ (45 nm)"


SHAPE = ConvShape(C=6, H=7, W=7, K=5, R=3, S=3, padding=1)
UNTILED = Mapping.untiled(SHAPE, Dataflow.WS, 2, 3)
SPILLING = Mapping(Dataflow.WS, 2, 3, ("c", "y", "k", "x"), (5, 2, 2, 7))  # psums to DRAM and back


@pytest.mark.parametrize("mapping", [UNTILED, SPILLING])
@pytest.mark.parametrize("table", [EnergyTable(), HOROWITZ,
                                   EnergyTable(mac=1.5, rf=1.25, pe=2.5, gb=6.5, dram=201.0)])
def test_energy_is_counts_times_per_access_energy(table, mapping):
    shape = SHAPE
    c = count(shape, mapping)
    assert (c.psum_dram_reads > 0) == (mapping is SPILLING)
    hw = replace(load_hardware("8x8"), energy=table)
    per, e = access_energy(hw), energy(c, hw, shape.output_size)
    assert e.mac == c.macs * per.mac
    for lv in MEMORY_LEVELS:
        assert sum(accesses(c, lv, op) for op in OPERANDS) > 0
        for op in OPERANDS:
            if (lv, op) == ("dram", "psum"):  # final outputs at word width, spills at acc width
                spilled = accesses(c, lv, op) - shape.output_size
                assert e.operand(lv, op) == (shape.output_size * per.output_write
                                             + spilled * per.of(lv, op))
            else:
                assert e.operand(lv, op) == accesses(c, lv, op) * per.of(lv, op)
        assert getattr(e, lv) == sum(e.operand(lv, op) for op in OPERANDS)
    if table.model == "horowitz-45nm":  # DRAM energy: per bit of the bytes timing.py moves
        nbytes = timing(shape, mapping, c, hw).dram_bytes
        assert e.dram == pytest.approx(nbytes * 8 * EM.DRAM_PJ_PER_BIT)


def test_horowitz_per_access_energies_written_out():
    hw = replace(load_hardware("16x16"), energy=HOROWITZ)  # 128 KB buffer, 16 x 16-bit RF
    per = access_energy(hw)
    alpha = math.log(100 / 20) / math.log(1024 / 32)  # the 32 KB - 1 MB segment
    assert per.of("gb", "input") == pytest.approx(20 * 4 ** alpha * 16 / 64)
    assert per.of("gb", "psum") == pytest.approx(20 * 4 ** alpha * 32 / 64)  # 32-bit partial sums
    rf16 = 10 * (32 / (8 * KB)) ** 0.5 * 16 / 64  # 32 bytes: the 8-32 KB law extended down
    assert per.of("rf", "weight") == pytest.approx(rf16) and per.of("pe", "input") == per.of("rf", "input")
    assert per.of("dram", "weight") == pytest.approx(16 * 1950 / 64)
    mult16 = 0.2 * 2 ** (math.log(3.1 / 0.2) / math.log(4))
    assert per.mac == pytest.approx(mult16 + 0.1)  # 16-bit multiply, 32-bit add
    cheap = replace(hw, energy=EnergyTable(model="horowitz-45nm", dram_pj_per_bit=1300 / 64))
    assert access_energy(cheap).of("dram", "input") == pytest.approx(16 * 1300 / 64)


def test_anchor_points_are_reproduced():
    for size, pj in ((8 * KB, 10), (32 * KB, 20), (1024 * KB, 100)):
        assert EM.sram_pj(size, 64) == pytest.approx(pj)
    for bits, add, mult in ((8, 0.03, 0.2), (32, 0.1, 3.1)):
        assert EM.power_law(EM.INT_ADD, bits) == pytest.approx(add)
        assert EM.power_law(EM.INT_MULT, bits) == pytest.approx(mult)
        assert EM.int_mac_pj(bits, bits) == pytest.approx(add + mult)
    assert 64 * EM.DRAM_PJ_PER_BIT == pytest.approx((1300 + 2600) / 2)


@pytest.mark.parametrize("size", [32, 512, 4 * KB, 16 * KB, 64 * KB, 200 * KB, 512 * KB, 2048 * KB])
def test_sram_energy_grows_with_size_at_the_sources_exponent_and_with_width(size):
    alpha = EM.exponent(EM.SRAM_ANCHORS, size)
    assert alpha == pytest.approx(0.5 if size <= 32 * KB else math.log(5) / math.log(32))
    step = 1.25  # within one segment of the law
    assert EM.sram_pj(size * step, 16) / EM.sram_pj(size, 16) == pytest.approx(step ** alpha)
    assert EM.sram_pj(size * step, 16) > EM.sram_pj(size, 16)
    assert EM.sram_pj(size, 32) == pytest.approx(2 * EM.sram_pj(size, 16))


def _sqnxt_v5_by_buffer(table: EnergyTable, kbs, objective: str, sparsity: float = 0.4) -> dict:
    graph = zoo.build("1.0-SqNxt-23v5", small_input=True, input_size=32)
    w = random_weights(graph, 0)
    base = replace(load_hardware("16x16"), energy=table, objective=objective)
    return {kb: emulate(graph, w, replace(base, gb_bytes=kb * KB), sparsity=sparsity) for kb in kbs}


def test_buffer_size_trade_off_of_squeezenext_v5():
    """Eyeriss-normalised, the search minimising energy: a larger buffer never costs energy (its
    mappings include the smaller buffer's, the per-access costs do not change, the search is
    exact: without pruning, for the real weights; with it, a layer is searched on its zeros
    spread evenly, search.spread_zeros, and executed on the real ones). horowitz-45nm, the
    search pricing DRAM words with cycles: every buffer access costs
    more at 512 KB than at 128 KB (4^0.464 = 1.90x); once the network's DRAM traffic stops
    falling, the larger buffer costs more in total."""
    kbs = (32, 128, 512)
    flat = _sqnxt_v5_by_buffer(EnergyTable(), kbs, "energy", sparsity=0.0)
    sized = _sqnxt_v5_by_buffer(HOROWITZ, kbs, "weighted")
    dram = {kb: sum(r.timing.dram_bytes for r in res.mac_steps) for kb, res in sized.items()}
    for kb, res in sized.items():  # DRAM energy: per bit of the bytes timing.py moves
        assert res.energy.dram == pytest.approx(dram[kb] * 8 * EM.DRAM_PJ_PER_BIT)
    assert dram[32] > dram[128] == dram[512]  # the traffic saturates by 128 KB at 32x32 input
    assert flat[32].energy.total > flat[128].energy.total >= flat[512].energy.total
    assert sized[32].energy.dram > sized[128].energy.dram  # DRAM savings from 32 to 128 KB
    gb_ratio = sized[512].energy.gb / sized[128].energy.gb
    assert gb_ratio == pytest.approx(4 ** EM.exponent(EM.SRAM_ANCHORS, 512 * KB), rel=0.02)
    assert sized[512].energy.total > sized[128].energy.total


def test_units_in_json_csv_and_table(tmp_path, capsys):
    args = ["trace", "--model", "1.0-SqNxt-23v5", "--zoo-options", '{"input_size": 64}', "--dataflow", "ws",
            "--hw", "16x16-45nm"]  # 64x64: the units are checked, not the numbers
    assert main(args + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["energy_unit"] == "pJ (45 nm)" and out["total"]["energy"] > 0
    assert main(args + ["--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(",energy_unit") and lines[-1].endswith(",pJ (45 nm)")
    assert main(args[:-1] + ["16x16"]) == 0
    table = capsys.readouterr().out
    assert "energy in normalised (MAC = 1)" in table.splitlines()[1]


@pytest.mark.parametrize("section, message", [
    ("model = 'cacti'", 'energy.model must be "eyeriss-normalised" or "horowitz-45nm"'),
    ("model = 'horowitz-45nm'\ngb = 6", "energy.gb applies to energy.model 'eyeriss-normalised', "
                                        "not 'horowitz-45nm'"),
    ("dram_pj_per_bit = 20", "energy.dram_pj_per_bit applies to energy.model 'horowitz-45nm', "
                             "not 'eyeriss-normalised'"),
    ("model = 'horowitz-45nm'\ndram_pj_per_bit = 0", "energy.dram_pj_per_bit must be a positive number"),
    ("sram_alpha = 0.5", "unknown field 'energy.sram_alpha'"),
])
def test_bad_energy_section_is_one_line_exit_2(tmp_path, capsys, section, message):
    hw = tmp_path / "hw.toml"
    hw.write_text(f"[pe]\nrows = 4\ncols = 4\n[buffer]\nbytes = 4096\n[energy]\n{section}\n")
    with pytest.raises(HardwareError, match=message):
        load_hardware(hw)
    assert main(["trace", "--hw", str(hw)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_energy_models_are_chosen_in_the_file():
    doc = {"pe": {"rows": 4, "cols": 4}, "buffer": {"bytes": 4096},
           "energy": {"model": "horowitz-45nm", "dram_pj_per_bit": 20}}
    hw = hardware_from_dict(doc, "hw.toml")
    assert hw.energy == EnergyTable(model="horowitz-45nm", dram_pj_per_bit=20.0)


def test_table3_gives_no_energy_ratio_across_units():
    from sqnxt_engine.emu import reports as R
    model = "1.0-SqNxt-23v5"
    paper = {(model, cfg): (1.0, 3.0e9) for cfg in ("16x16", "16x16-45nm")}
    rows = R.table3([model], ["16x16", "16x16-45nm"], R.Runs(), paper)
    flat, sized = rows
    assert flat["energy_unit"] == "normalised (MAC = 1)" and flat["energy_ratio"] == flat["energy"] / 3.0e9
    assert sized["energy_unit"] == "pJ (45 nm)" and sized["paper_energy"] is None
    assert sized["energy_ratio"] is None and sized["time_ratio"] is not None
