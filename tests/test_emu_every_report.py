"""Every sqnxt-emu report over networks with every kind of charged step (record.py): MAC layers,
shifts copied through the buffer, timed steps without MACs (adds, a pool), and a quantized file.
Each step's cycles are the sum of its parts and its energy the sum of its levels, equal to its
counts times the per-access energies; the reports agree with one another on the totals."""
import csv
import io
import json
import sqlite3
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from by_hand import energy_by_level

from sqnxt_engine.cli.quant import main as quant_main
from sqnxt_engine.emu.cli import main
from sqnxt_engine.emu.energy import LEVELS, energy
from sqnxt_engine.emu.hardware import load_hardware
from sqnxt_engine.emu.network import emulate
from sqnxt_engine.emu.timing import CYCLE_PARTS, stream_bits
from sqnxt_engine.io.network_spec import NetworkSpec
from sqnxt_engine.io.shipped import shipped_weights

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SHIFT_NET = "ShiftResNet-20-e3-fmnist"   # 9 shifts, 9 adds, a global pool
HW = """name = "8x8-every-step"
[pe]
rows = 8
cols = 8
[buffer]
bytes = 32768
[layers]
non_mac_cycles = true
shift = "copy"
"""


def run(*argv) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main([str(a) for a in argv]) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("every-report")
    (d / "hw.toml").write_text(HW)
    quantized = d / "q8.npz"
    assert quant_main(["--weights", "ResNet-20-fmnist", "--calib", *map(str, sorted(EXAMPLES.glob("*.png"))),
                       "--bits", "8", "-o", str(quantized)]) == 0
    return {"dir": d, "hw": d / "hw.toml", "quantized": quantized,
            "shift_net": shipped_weights(SHIFT_NET)}


def check_row(row: dict, cost: dict | None) -> None:
    """A report row's cycle parts and energy levels add up to it (cycles rounded to whole ones
    in the row), and (given the per-access energies) its energy is its counts times them: each
    operand at its width, the final outputs written to DRAM at the output's, a streamed step's
    outputs at the output's width everywhere."""
    assert sum(row[f"cycles_{p}"] for p in CYCLE_PARTS) == pytest.approx(row["cycles"], abs=0.5)
    assert all(row[f"cycles_{p}"] >= 0 for p in CYCLE_PARTS)
    assert sum(row[f"e_{lv}"] for lv in LEVELS) == pytest.approx(row["energy"], rel=1e-12)
    if cost is None:
        return
    by_level = energy_by_level(row, cost)
    for level in LEVELS:
        assert by_level[level] == pytest.approx(row[f"e_{level}"], rel=1e-12)


@pytest.fixture(scope="module")
def traces(files):
    """trace --json of the shift network and of the quantized file on the every-step hardware."""
    return {name: json.loads(run("trace", "--weights", files[name], "--hw", files["hw"], "--json"))
            for name in ("shift_net", "quantized")}


@pytest.mark.parametrize("name", ["shift_net", "quantized"])
def test_json_rows_cover_every_kind_of_step_and_add_up(traces, name):
    t = traces[name]
    assert t["objective"] == "cycles"   # the search's objective, named in every output
    kinds = {row["kind"] for row in t["layers"]}
    assert {"conv", "add", "gap", "fc"} <= kinds
    if name == "shift_net":
        assert "shift" in kinds
    for row in t["layers"]:
        check_row(row, t["energy_per_access"])
    total = t["total"]
    check_row(total, None)
    for key in ["energy", "dram_bytes", "macs"] + [f"e_{lv}" for lv in LEVELS]:
        assert sum(r[key] for r in t["layers"]) == pytest.approx(total[key], abs=len(t["layers"]))
    assert sum(r["cycles"] for r in t["layers"]) == pytest.approx(total["cycles"], abs=len(t["layers"]))


def test_every_record_adds_up_exactly(files):
    hw = load_hardware(files["hw"])
    graph, weights, _, _ = NetworkSpec.of(file=str(files["shift_net"])).load()
    res = emulate(graph, weights, hw)
    assert {r.kind for r in res.steps} >= {"conv", "shift", "add", "gap", "fc"}
    outputs = {r.name: r.conv.output_size if r.has_macs else r.counters.psum_dram_writes
               for r in res.steps}
    for r in res.steps:
        assert sum(r.timing.parts.values()) == r.cycles          # exactly
        assert sum(r.energy.levels().values()) == pytest.approx(r.energy.total, rel=1e-15)
        assert r.outputs == outputs[r.name] and r.streamed == (not r.has_macs)
        assert r.energy == energy(r.counters, hw, outputs[r.name],
                                  stream_bits(hw) if r.streamed else None)
    assert sum(res.cycle_parts().values()) == pytest.approx(res.cycles, rel=1e-12)
    assert sum(res.cycles_by_kind().values()) == pytest.approx(res.cycles, rel=1e-12)


@pytest.mark.parametrize("name", ["shift_net", "quantized"])
def test_table_csv_and_breakdown_show_every_step(files, traces, name):
    t = traces[name]
    table = run("trace", "--weights", files[name], "--hw", files["hw"])
    for row in t["layers"]:
        assert row["layer"] in table
    rows = list(csv.DictReader(io.StringIO(run("trace", "--weights", files[name], "--hw", files["hw"],
                                                "--csv"))))
    assert [r["layer"] for r in rows] == [r["layer"] for r in t["layers"]] + ["total"]
    parts = list(csv.DictReader(io.StringIO(run("trace", "--weights", files[name], "--hw", files["hw"],
                                                 "--csv", "--breakdown"))))
    for r in parts:
        assert sum(float(r[f"cycles_{p}"]) for p in CYCLE_PARTS) == pytest.approx(float(r["cycles"]), abs=0.5)
    broken = run("trace", "--weights", files[name], "--hw", files["hw"], "--breakdown")
    assert "cycles: array" in broken and "cycles by step: conv" in broken


def test_plots_draw_every_step(files, tmp_path):
    pytest.importorskip("matplotlib")
    plot, roof = tmp_path / "trace.png", tmp_path / "roof.png"
    run("trace", "--weights", files["shift_net"], "--hw", files["hw"], "--plot", plot, "--roofline", roof)
    assert plot.stat().st_size > 0 and roof.stat().st_size > 0


def test_figure6_sums_to_the_trace(files, traces, tmp_path):
    rows = json.loads(run("figure6", "--models", files["shift_net"], "--hw", files["hw"],
                          "--json", "-o", tmp_path / "f6"))
    rows = rows["rows"] if isinstance(rows, dict) else rows
    assert {r["objective"] for r in rows} == {"cycles"}
    t = traces["shift_net"]
    assert sum(r["layers"] for r in rows) == len(t["layers"])
    assert sum(r["cycles"] for r in rows) == pytest.approx(t["total"]["cycles"], abs=len(t["layers"]))
    assert any(r["layer_config"].endswith(": shift") and r["efficiency"] is None for r in rows)


def test_diff_compares_every_step(files, traces, tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(traces["shift_net"]))
    b.write_text(run("trace", "--weights", files["shift_net"], "--hw", "8x8", "--json"))
    d = json.loads(run("diff", a, b, "--json"))
    assert d["total"]["cycles_a"] == traces["shift_net"]["total"]["cycles"]
    # the 8x8 preset charges neither the shifts (remapped) nor the adds and the pool
    only_a = set(d["only_in_a"])
    assert {r["layer"] for r in traces["shift_net"]["layers"] if r["kind"] in ("shift", "add", "gap")} == only_a


def test_sweep_records_and_pareto_read_the_same_totals(files, traces, tmp_path):
    sweep = tmp_path / "sweep.toml"
    sweep.write_text(f'[[network]]\nweights = "{files["shift_net"]}"\n'
                     f'[hardware]\nbase = "{files["hw"]}"\n'
                     '[emulation]\ndataflow = "best"\nsparsity = 0.4\nseed = 0\n')
    db = tmp_path / "sweep.sqlite"
    run("sweep", sweep, "--db", db, "--json")
    with sqlite3.connect(db) as conn:
        (record,) = [json.loads(r) for (r,) in conn.execute("SELECT record FROM points")]
    t = traces["shift_net"]
    assert record["objective"] == t["objective"] == "cycles"
    assert record["cycles"] == t["total"]["cycles"]
    assert record["energy"] == pytest.approx(t["total"]["energy"], rel=1e-12)
    assert sum(record[f"energy_{lv}"] for lv in LEVELS) == pytest.approx(record["energy"], rel=1e-12)
    fronts = json.loads(run("pareto", db, "--json", "--x", "latency", "--y", "energy"))
    (point,) = fronts["energy-vs-latency"]   # the one point
    assert (point["energy"], point["latency"]) == (record["energy"], record["latency_ms"])
