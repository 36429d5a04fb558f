"""Reading results: where the cycles go (timing parts), the counts a trace's JSON carries, and
sqnxt-emu diff of two traces."""
import contextlib
import csv
import io
import json

import pytest
from by_hand import energy_by_level

from sqnxt_engine.emu import compare as C
from sqnxt_engine.emu.cli import main
from sqnxt_engine.emu.energy import LEVELS
from sqnxt_engine.emu.hardware import load_hardware
from sqnxt_engine.emu.network import emulate
from sqnxt_engine.emu.timing import CYCLE_PARTS
from sqnxt_engine.graph import GraphBuilder
from sqnxt_engine.graph import ops as O
from sqnxt_engine.runtime import random_weights

MODEL = "1.0-SqNxt-23v5"


def small_graph():
    b = GraphBuilder("small", (3, 20, 20))
    x = b.conv("c1", b.input, 16, 3, padding=1, stride=2)
    x = b.relu("c1.act", x)
    y = b.conv("c2", x, 16, (3, 1), padding=(1, 0))
    x = b.add("sum", O.Add(), x, y)
    x = b.conv("c3", x, 48, 1)
    x = b.add("gap", O.GlobalAvgPool(), x)
    x = b.add("flat", O.Flatten(), x)
    b.add("fc", O.Linear(10), x)
    return b.build()


ARRAY = "[pe]\nrows = 8\ncols = 8\n"
HW_VARIANTS = {  # hardware files that bring out each part of the cycles
    "preset buffer": ARRAY + "[buffer]\nbytes = 32768\n",
    "single-buffered, skew per pass": ARRAY + "[buffer]\nbytes = 32768\ndouble_buffering = false\n"
                                      "[pipeline]\nfill_drain = \"pass\"\n",
    "tiny buffer, slow buffer port": ARRAY + "[buffer]\nbytes = 1024\nwords_per_cycle = 3\n"
                                     "[layers]\nnon_mac_cycles = true\n",
}


@pytest.mark.parametrize("variant", list(HW_VARIANTS))
def test_cycle_parts_sum_exactly_to_each_layer(variant, tmp_path):
    f = tmp_path / "hw.toml"
    f.write_text(HW_VARIANTS[variant])
    hw = load_hardware(f)
    g = small_graph()
    res = emulate(g, random_weights(g, 3), hw, "best")
    seen = set()
    for rec in res.steps:
        parts = rec.timing.parts
        assert tuple(parts) == CYCLE_PARTS
        assert sum(parts.values()) == rec.cycles      # exactly, not approximately
        assert all(v >= 0 for v in parts.values())
        assert parts["array"] == rec.counters.cycles
        assert parts["dram_edges"] + parts["dram_stall"] == pytest.approx(rec.timing.exposed_dram)
        seen |= {p for p, v in parts.items() if v > 0}
        if not hw.double_buffering:
            assert parts["dram_edges"] == 0 and parts["dram_stall"] == rec.timing.dram
    net = res.cycle_parts()
    assert sum(net.values()) == pytest.approx(res.cycles, rel=1e-12)
    assert any(not r.has_macs for r in res.steps) == hw.non_mac_cycles
    if "slow buffer" in variant:
        assert "buffer_stall" in seen      # the buffer port is the bound somewhere
    assert {"array", "fill_drain"} <= seen


@pytest.fixture(scope="module")
def traces(tmp_path_factory):
    """trace --json of one network on 8x8 with WS only and with OS only."""
    d = tmp_path_factory.mktemp("traces")
    out = {}
    for flow in ("ws", "os"):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["trace", "--model", MODEL, "--hw", "8x8", "--dataflow", flow, "--json"]) == 0
        out[flow] = d / f"{flow}.json"
        out[flow].write_text(buf.getvalue())
    return out


def test_trace_json_carries_parts_and_every_count(traces):
    t = json.loads(traces["ws"].read_text())
    cost = t["energy_per_access"]
    assert set(cost) == set(LEVELS) | {"unit", "dram_output_write", "streamed_psum"}
    # the Eyeriss table per bit: a 16-bit output written half a 32-bit partial sum's price
    assert cost["dram_output_write"] == cost["dram"]["psum"] / 2 == cost["dram"]["input"]
    for row in t["layers"] + [t["total"]]:
        parts = [row[f"cycles_{p}"] for p in CYCLE_PARTS]
        assert sum(parts) == pytest.approx(row["cycles"], abs=0.5 if row is not t["total"] else 1)
        # the energy recomputed by hand from the raw counts and the costs per access
        by_level = energy_by_level(row, cost)
        for level, e in by_level.items():
            assert e == pytest.approx(row[f"e_{level}"], rel=1e-12)
        assert sum(by_level.values()) == pytest.approx(row["energy"], rel=1e-12)
    assert all(row["kind"] in ("conv", "fc") for row in t["layers"])  # the 8x8 preset charges no other step


def test_trace_breakdown_table(capsys):
    assert main(["trace", "--model", MODEL, "--hw", "8x8", "--breakdown"]) == 0
    out = capsys.readouterr().out.splitlines()
    head = next(line for line in out if line.startswith("layer "))
    assert head.split() == ["layer", "dataflow", "cycles"] + [f"cycles_{p}" for p in CYCLE_PARTS] \
        + ["dram_share"]
    total = next(line for line in out if line.startswith("total "))
    cells = [int(v.replace(",", "")) for v in total.split()[1:-1]]
    assert abs(sum(cells[1:]) - cells[0]) <= len(CYCLE_PARTS)   # rounded parts
    summary = next(line for line in out if line.startswith("cycles: array "))
    assert summary.endswith(f"of {cells[0]:,}")


def test_diff_of_a_trace_with_itself_is_all_zeros(traces, capsys):
    assert main(["diff", str(traces["ws"]), str(traces["ws"]), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["only_in_a"] == d["only_in_b"] == []
    assert len(d["layers"]) == len(json.loads(traces["ws"].read_text())["layers"])
    for row in d["layers"] + [d["total"]]:
        for m in C.METRICS:
            assert row[f"{m}_delta"] == 0 and row[f"{m}_rel"] in (0, None)


def test_diff_orders_layers_by_the_size_of_their_delta(traces, capsys):
    a, b = (json.loads(traces[f].read_text()) for f in ("ws", "os"))
    for sort in C.METRICS:
        d = C.diff(a, b, sort)
        sizes = [abs(r[f"{sort}_delta"]) for r in d["layers"]]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] > 0
    d = C.diff(a, b)
    by_a = {r["layer"]: r for r in a["layers"]}
    by_b = {r["layer"]: r for r in b["layers"]}
    for r in d["layers"]:
        assert r["cycles_delta"] == by_b[r["layer"]]["cycles"] - by_a[r["layer"]]["cycles"]
        assert r["dataflow_a"] == "ws" and r["dataflow_b"].startswith("os")
    assert d["total"]["energy_delta"] == pytest.approx(b["total"]["energy"] - a["total"]["energy"])
    assert d["total"]["cycles_rel"] == pytest.approx(b["total"]["cycles"] / a["total"]["cycles"] - 1)
    # the table: the largest change first, then the total, then what was left out
    assert main(["diff", str(traces["ws"]), str(traces["os"]), "--top", "3"]) == 0
    out = capsys.readouterr().out.splitlines()
    body = out[out.index(next(line for line in out if line.startswith("---"))) + 1:]
    assert body[0].split()[0] == d["layers"][0]["layer"]
    assert body[3].startswith("total ")
    assert body[4].startswith(f"{len(d['layers']) - 3} more layer(s)")


def test_diff_reports_layers_in_one_trace_only(traces, tmp_path, capsys):
    t = json.loads(traces["ws"].read_text())
    t2 = dict(t, layers=t["layers"][1:] + [dict(t["layers"][0], layer="extra")])
    p = tmp_path / "b.json"
    p.write_text(json.dumps(t2))
    assert main(["diff", str(traces["ws"]), str(p)]) == 0
    out = capsys.readouterr().out
    assert f"only in A: {t['layers'][0]['layer']}" in out and "only in B: extra" in out


def test_diff_user_errors_are_one_line(traces, tmp_path, capsys):
    t = json.loads(traces["ws"].read_text())
    cases = {
        "missing.json": None,
        "not-json.json": "{",
        "a-list.json": "[1, 2]",
        "not-a-trace.json": json.dumps({"model": "x"}),
        "no-cycles.json": json.dumps(dict(t, layers=[{"layer": "c1", "energy": 1}])),
        "other-net.json": json.dumps(dict(t, model="other", layers=[dict(r, layer="x." + r["layer"])
                                                                    for r in t["layers"]])),
    }
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        assert main(["diff", str(traces["ws"]), str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), (name, err)
    assert main(["diff", str(traces["ws"]), str(tmp_path / "other-net.json")]) == 2
    assert "no layer in common" in capsys.readouterr().err
    assert main(["diff", str(traces["ws"]), str(traces["ws"]), "--sort", "speed"]) == 2
    assert main(["diff", str(traces["ws"]), str(traces["ws"]), "--top", "-1"]) == 2


def test_trace_breakdown_csv_has_the_exact_parts(capsys):
    assert main(["trace", "--model", MODEL, "--hw", "8x8", "--breakdown", "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == ["layer", "dataflow", "cycles"] + [f"cycles_{p}" for p in CYCLE_PARTS]
    for r in rows:
        assert sum(float(r[f"cycles_{p}"]) for p in CYCLE_PARTS) == pytest.approx(
            float(r["cycles"]), abs=0.5 if r["layer"] != "total" else 2)
