"""Hardware files: presets load, every field is validated, errors name the file and the field."""

import pytest

from sqnxt_engine.emu.hardware import (
    PAPER_PRESETS,
    EnergyTable,
    Hardware,
    HardwareError,
    hardware_from_dict,
    load_hardware,
)

MINIMAL = "[pe]\nrows = 4\ncols = 4\n[buffer]\nbytes = 4096\n"


def test_presets_are_the_papers_two_configurations():
    a, b = load_hardware("8x8"), load_hardware("16x16")
    assert (a.pe_rows, a.pe_cols, a.gb_bytes) == (8, 8, 32 * 1024)
    assert (b.pe_rows, b.pe_cols, b.gb_bytes) == (16, 16, 128 * 1024)
    for hw in (a, b):
        assert hw.dram_latency_cycles == 100 and hw.dram_bandwidth_gbps == 16
        assert hw.energy == EnergyTable(mac=1, rf=1, pe=2, gb=6, dram=200)
        assert hw.word_bits == 16 and hw.zero_skip_os


def test_presets_agree_with_the_documented_defaults():
    # a preset states the paper's values, which are also the defaults: it may not differ from them
    for name in PAPER_PRESETS:
        hw = load_hardware(name)
        d = Hardware(name, hw.pe_rows, hw.pe_cols, hw.gb_bytes, energy=EnergyTable(model=hw.energy.model))
        assert hw == d


def test_eyeriss_presets_state_the_papers_values():
    # JSSC 2017 (the chip) and ISCA 2016 (the model): the values the papers give; every other
    # value is the documented default, RS the only dataflow
    chip, model = load_hardware("eyeriss"), load_hardware("eyeriss-isca16")
    assert (chip.pe_rows, chip.pe_cols, chip.gb_bytes, chip.clock_mhz) == (12, 14, 108 * 1024, 200)
    assert (chip.spad_filter_words, chip.spad_ifmap_words, chip.spad_psum_words) == (224, 12, 24)
    assert (model.pe_rows, model.pe_cols, model.gb_bytes) == (16, 16, 128 * 1024)
    assert model.rf_words * model.word_bits == 512 * 8
    assert model.spad_filter_words + model.spad_ifmap_words + model.spad_psum_words == 256
    for hw in (chip, model):
        assert hw.dataflows == ("rs",) and hw.word_bits == 16
        # partial sums in the chip's 16-bit words: one table entry an access, whatever the width
        assert hw.energy == EnergyTable(mac=1, rf=1, pe=2, gb=6, dram=200, per_bit=False)
        assert (hw.dram_latency_cycles, hw.dram_bandwidth_gbps, hw.fill_drain) == (100, 16, "tile")
    assert (chip.objective, model.objective) == ("cycles", "energy")


def test_minimal_file_gets_defaults(tmp_path):
    f = tmp_path / "tiny.toml"
    f.write_text(MINIMAL)
    hw = load_hardware(f)
    assert hw.name == "tiny" and hw.pes == 16 and hw.clock_mhz == 500 and hw.double_buffering
    assert hw.dram_bytes_per_cycle == 32.0


@pytest.mark.parametrize("text, message", [
    ("[pe]\nrows = 0\ncols = 4\n[buffer]\nbytes = 4096\n", "hw.toml: pe.rows must be a positive integer, got 0"),
    ("[pe]\nrows = 4\ncols = 4.5\n[buffer]\nbytes = 4096\n", "hw.toml: pe.cols must be a positive integer, got 4.5"),
    ("[pe]\nrows = 4\n[buffer]\nbytes = 4096\n", "hw.toml: pe.cols is missing"),
    (MINIMAL + "[clock]\nmhz = -1\n", "hw.toml: clock.mhz must be a positive number, got -1"),
    (MINIMAL + "[energy]\ndram = 'a lot'\n", "hw.toml: energy.dram must be a number"),
    (MINIMAL + "[energy]\nsram = 3\n", "hw.toml: unknown field 'energy.sram'"),
    (MINIMAL + "[pe2]\nx = 1\n", "hw.toml: unknown field 'pe2'"),
    (MINIMAL.replace("bytes = 4096", "bytes = 4096\ndouble_buffering = 1"),
     "buffer.double_buffering must be true or false"),
    (MINIMAL.replace("bytes = 4096", "bytes = 4096\nsplit = {input = 0.5, weight = 0.5, psum = 0.5}"),
     "buffer.split fractions sum to 1.5"),
    (MINIMAL.replace("bytes = 4096", "bytes = 4096\nsplit = {input = 0.5, weight = 0.5}"),
     "buffer.split.psum is missing"),
    (MINIMAL.replace("bytes = 4096", "bytes = 7"), "hw.toml: buffer.bytes (7) is smaller than one tile"),
    (MINIMAL + "[arith]\nacc_bits = 24\n", "arith.acc_bits (24) must hold a product"),
    (MINIMAL + "[pe]\n", "not valid TOML"),
    (MINIMAL + "[pipeline]\nfill_drain = 'sometimes'\n", 'pipeline.fill_drain must be "pass" or "tile" or "layer"'),
    (MINIMAL + "[dram]\nengines = 0\n", "dram.engines must be a positive integer"),
    (MINIMAL.replace("bytes = 4096", "bytes = 4096\nwords_per_cycle = 0"),
     "buffer.words_per_cycle must be a positive number"),
    ("[pe\n", "hw.toml: not valid TOML"),
])
def test_bad_files_name_the_field(tmp_path, text, message):
    f = tmp_path / "hw.toml"
    f.write_text(text)
    with pytest.raises(HardwareError) as e:
        load_hardware(f)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file_and_unknown_preset():
    with pytest.raises(HardwareError, match="no such hardware file"):
        load_hardware("32x32")


def test_split_budget_and_double_buffering():
    hw = hardware_from_dict({"pe": {"rows": 2, "cols": 2},
                             "buffer": {"bytes": 1000, "split": {"input": 0.5, "weight": 0.25, "psum": 0.25}}})
    assert hw.buffer_budget() == {"input": 250.0, "weight": 125.0, "psum": 125.0}
    assert hw.fits({"input": 125, "weight": 62, "psum": 31})      # bytes 250, 124, 124
    assert not hw.fits({"input": 126, "weight": 1, "psum": 1})
    single = hardware_from_dict({"pe": {"rows": 2, "cols": 2},
                                 "buffer": {"bytes": 1000, "double_buffering": False}})
    assert single.buffer_budget() == 1000
    assert single.fits({"input": 200, "weight": 200, "psum": 50})  # 400 + 400 + 200 bytes
    assert not single.fits({"input": 200, "weight": 200, "psum": 51})


def test_frozen():
    hw = load_hardware("8x8")
    with pytest.raises(AttributeError):
        hw.pe_rows = 4


def test_schema_is_the_dataclass_fields():
    """Each TOML key is declared once, on its Hardware field."""
    from dataclasses import fields

    from sqnxt_engine.emu.hardware import _SCHEMA
    declared = {f.metadata["toml"]: f.name for f in fields(Hardware) if "toml" in f.metadata}
    assert {k: v[0] for k, v in _SCHEMA.items()} == declared
    assert [k for k, v in _SCHEMA.items() if v[2]] == ["pe.rows", "pe.cols", "buffer.bytes"]


def test_modelling_parameters_and_their_defaults(tmp_path):
    f = tmp_path / "tiny.toml"
    f.write_text(MINIMAL + "[dataflow]\nos_input_reuse = false\n")
    hw = load_hardware(f)
    assert (hw.fill_drain, hw.dma_engines, hw.non_mac_cycles) == ("tile", 1, False)
    # WS at full rate (4 operands, 2 x 4 partial sums of 32 bits in 16-bit words) + the DMA
    assert hw.gb_words_per_cycle == 4 + 2 * 4 * 2 + 16
    assert hw.os_psums_per_pe == 1
    # the register file in bits, spent once: 16 x 16 bits less the input and the weight in flight,
    # in 32-bit accumulators, twice over when it holds the next stationary block
    assert load_hardware("16x16").os_psums_per_pe == (256 - 32) // (32 * 2) == 3
    assert load_hardware("16x16").gb_words_per_cycle == 96
    assert load_hardware("8x8").gb_words_per_cycle == 56


def test_buffer_bandwidth_follows_the_array_unless_stated(tmp_path):
    """A preset copied and edited to another array gets that array's buffer bandwidth, not the
    preset's: words_per_cycle is derived unless the file states it."""
    from importlib import resources
    preset = resources.files("sqnxt_engine.emu").joinpath("presets", "16x16.toml").read_text()
    f = tmp_path / "32x32.toml"
    f.write_text(preset.replace('name = "16x16"', 'name = "32x32"').replace("rows = 16", "rows = 32")
                 .replace("cols = 16", "cols = 32"))
    hw = load_hardware(f)
    assert (hw.pe_rows, hw.gb_words_per_cycle) == (32, 32 + 2 * 32 * 2 + 16)
    assert "buffer 176 words/cycle" in hw.describe()
    f.write_text(f.read_text().replace("[buffer]", "[buffer]\nwords_per_cycle = 64"))
    assert load_hardware(f).gb_words_per_cycle == 64


def test_hardware_command_shows_every_parameter_and_its_origin(tmp_path, capsys):
    import json

    from sqnxt_engine.emu.cli import main
    from sqnxt_engine.emu.hardware import _SCHEMA
    f = tmp_path / "hw.toml"
    f.write_text(MINIMAL + "[clock]\nmhz = 250\n")
    assert main(["hardware", str(f), "--json"]) == 0
    rows = {r["key"]: (r["value"], r["origin"]) for r in json.loads(capsys.readouterr().out)["parameters"]}
    assert set(_SCHEMA) <= set(rows)
    assert rows["clock.mhz"] == (250, "file") and rows["pe.rf_words"] == (16, "default")
    # 64 bytes per cycle at 250 MHz; partial sums of two words each
    assert rows["buffer.words_per_cycle"] == (4 + 2 * 4 * 2 + 32, "derived")
    assert rows["arith.input_bits"] == (16, "derived")
    assert main(["hardware", "16x16"]) == 0
    assert "derived (pe.rows + 2 pe.cols" in capsys.readouterr().out
    assert main(["hardware", str(tmp_path / "missing.toml")]) == 2


def test_module_doc_states_the_defaults_the_fields_have(tmp_path):
    """hardware.py's module docstring explains each default; the values it writes are the
    fields' (a default changed in one place only fails here)."""
    import re
    from dataclasses import fields

    from sqnxt_engine.emu import hardware as H
    f = tmp_path / "tiny.toml"
    f.write_text(MINIMAL)
    values = {k: v for k, v, _ in H.resolved(f)[1]}
    values.update({f"energy.{e.name}": e.default for e in fields(EnergyTable)})  # every model's
    section, checked = None, 0
    for line in H.__doc__.splitlines():
        if m := re.match(r"^\[(\w+)\]", line):
            section = m.group(1)
        for key, text in re.findall(r"(?:^  |, )(\w+) = (\"[^\"]*\"|[\w.]+)", line):
            want = values[f"{section}.{key}"]
            got = text.strip('"')
            if isinstance(want, bool):
                assert got == str(want).lower(), key
            elif isinstance(want, (int, float)):
                assert float(got) == pytest.approx(want, rel=1e-3), key
            else:
                assert got == want, key
            checked += 1
    assert checked >= 15


def test_register_file_is_one_budget_in_bits(tmp_path):
    f = tmp_path / "rf.toml"

    def hw(extra):   # extra [pe] keys go into MINIMAL's [pe] table
        pe, _, rest = extra.partition("[pe]\n")
        keys, _, tail = rest.partition("[")
        f.write_text(MINIMAL.replace("[pe]\n", "[pe]\n" + keys) + pe + (("[" + tail) if tail else ""))
        return load_hardware(f)
    single = hw("[pe]\nrf_double_buffered = false\n[pipeline]\nfill_drain = \"pass\"\n")
    assert single.os_psums_per_pe == (256 - 32) // 32 == 7
    assert hw("[arith]\nword_bits = 8\nacc_bits = 24\n").os_psums_per_pe == (128 - 16) // 48 == 2
    with pytest.raises(HardwareError, match="fill_drain = 'tile' hides the skew between passes"):
        hw("[pe]\nrf_double_buffered = false\n")
    with pytest.raises(HardwareError, match=r"pe.rf_words \(4 x 16 bits\) cannot hold"):
        hw("[pe]\nrf_words = 4\n")   # 64 bits: two operands and two 32-bit accumulators do not fit
    assert hw("[pe]\nrf_words = 4\nrf_double_buffered = false\n[pipeline]\nfill_drain = \"pass\"\n"
              ).os_psums_per_pe == 1


def test_overrides_are_merged_as_a_file_would_state_them():
    from sqnxt_engine.emu.hardware import with_overrides
    hw = with_overrides("16x16", {"arith.acc_bits": 48, "energy.per_bit": False})
    assert hw.acc_bits == 48 and hw.energy.per_bit is False
    assert hw.gb_words_per_cycle == 16 + 2 * 16 * 48 / 16 + 16   # derived from the new width
    with pytest.raises(HardwareError, match="needs pe.rf_double_buffered"):
        with_overrides("8x8", {"pe.rf_double_buffered": False})
    assert with_overrides("8x8", {}) == load_hardware("8x8")
