"""Precision as a cost (emu/hardware.py [arith]): each operand is stored and moved at its width,
so an int8 file moves about half an int16 file's DRAM bytes and costs less energy on the same
hardware; a file wider than the datapath is refused; split MACs divide the array's cycles."""
import io
import json
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path

import pytest

from sqnxt_engine.emu.cli import main
from sqnxt_engine.emu.hardware import HardwareError, hardware_from_dict, load_hardware
from sqnxt_engine.emu.network import emulate
from sqnxt_engine.emu.quant_cli import main as quant_main
from sqnxt_engine.io.network_spec import NetworkSpec

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("precision")
    out = {}
    for bits in (8, 16):   # each made for the 16x16 preset's accumulator
        out[bits] = d / f"q{bits}.npz"
        assert quant_main(["--weights", "ResNet-20-fmnist", "--calib",
                           *map(str, sorted(EXAMPLES.glob("*.png"))[:4]), "--bits", str(bits),
                           "--hw", "16x16", "-o", str(out[bits])]) == 0
    (d / "w8.toml").write_text('name = "w8"\n[pe]\nrows = 16\ncols = 16\n[buffer]\nbytes = 131072\n'
                               '[arith]\nword_bits = 8\n')
    out["w8"] = d / "w8.toml"
    return out


def trace(*argv) -> dict:
    buf = io.StringIO()
    with redirect_stdout(buf), redirect_stderr(io.StringIO()):
        assert main(["trace", *map(str, argv), "--json"]) == 0
    return json.loads(buf.getvalue())


def test_an_int8_file_moves_half_the_bytes_of_an_int16_one(files):
    t8, t16 = trace("--weights", files[8], "--hw", "16x16"), trace("--weights", files[16], "--hw", "16x16")
    d8, d16 = t8["total"]["dram_bytes"], t16["total"]["dram_bytes"]
    # half the bytes a word, and tiles of twice the words fit the buffer: at most about half
    assert 0.3 < d8 / d16 <= 0.55
    assert t8["total"]["energy"] < t16["total"]["energy"]
    assert t8["total"]["e_dram"] / t16["total"]["e_dram"] == pytest.approx(d8 / d16, rel=0.02)
    # each MAC layer's DRAM bytes: its words at the file's width, partial sums at 32 bits
    for t, bytes_per in ((t8, 1), (t16, 2)):
        for row in t["layers"]:
            if row["kind"] not in ("conv", "fc"):
                continue
            c = row["counts"]
            spills = c["psum_dram_writes"] - row["outputs"]
            expect = (c["input_dram_reads"] + c["weight_dram_reads"] + row["outputs"]) * bytes_per \
                + (c["psum_dram_reads"] + spills) * 4
            assert row["dram_bytes"] == round(expect)


def test_a_file_wider_than_the_datapath_is_refused_in_one_line(files, capsys):
    # named as one of the ways the hardware differs from the file's; with the override, refused
    assert main(["trace", "--weights", str(files[16]), "--hw", str(files["w8"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "8-bit words, the file 16-bit codes" in err[0]
    assert main(["trace", "--weights", str(files[16]), "--hw", str(files["w8"]), "--any-hardware"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "16-bit codes are wider than w8's 8-bit datapath" in err[0]
    assert main(["trace", "--weights", str(files[8]), "--hw", str(files["w8"]), "--json"]) == 0


def test_operand_widths_are_checked_and_derived():
    base = {"pe": {"rows": 4, "cols": 4}, "buffer": {"bytes": 4096}}
    hw = hardware_from_dict(base)
    assert (hw.input_bits, hw.weight_bits, hw.output_bits, hw.mac_lanes) == (16, 16, 16, 1)
    with pytest.raises(HardwareError, match="arith.weight_bits .20. is wider"):
        hardware_from_dict({**base, "arith": {"weight_bits": 20}})
    narrow = hardware_from_dict({**base, "arith": {"input_bits": 8, "weight_bits": 4,
                                                    "split_mac": True}})
    assert narrow.mac_lanes == 2 and narrow.operand_bits == {"input": 8, "weight": 4, "psum": 32}
    assert "operands in/weight/out 8/4/16 bits, 2 MACs per PE" in narrow.describe()


def test_split_macs_divide_the_array_cycles_and_narrow_operands_the_bytes():
    graph, weights, _, _ = NetworkSpec.of("1.0-SqNxt-23v5", {"input_size": 32}).load()
    hw = load_hardware("16x16")
    eight = replace(hw, input_bits=8, weight_bits=8, output_bits=8)
    split = replace(eight, split_mac=True)
    wide, narrow, fast = (emulate(graph, weights, h, sparsity=0) for h in (hw, eight, split))
    assert narrow.energy.dram < wide.energy.dram and narrow.energy.total < wide.energy.total
    for n, f in zip(narrow.mac_steps, fast.mac_steps):
        if n.mapping == f.mapping:   # the same loop nest: half its cycles, rounded up
            assert f.timing.array == -(-n.counters.cycles // 2)
    assert fast.cycles < narrow.cycles
    # the float file quantized to the hardware's 8-bit operands: further from the float output
    assert narrow.max_abs_diff > wide.max_abs_diff
