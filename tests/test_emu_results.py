"""Results a paper can use: latency, fps, EDP and area in every trace output and sweep record;
every hardware parameter in force in each record and the export; accuracies stated in sweep
files; derived hardware values recomputed for each point; Pareto fronts over any two metrics."""
import csv
import io
import json
from contextlib import redirect_stdout

import pytest

from sqnxt_engine.emu import pareto as P
from sqnxt_engine.emu import sweep as SW
from sqnxt_engine.emu.area import area, mac_um2
from sqnxt_engine.emu.cli import main
from sqnxt_engine.emu.hardware import load_hardware, parameters

NET = ('[[network]]\nmodel = "1.0-SqNxt-23"\noptions = { input_size = 28, small_input = true, '
       'stem_stride = 2, num_classes = 10, depths = [1, 1, 1, 1] }\n')
ZOO = ["--zoo-options", '{"input_size": 28, "small_input": true, "stem_stride": 2, "num_classes": 10, '
       '"depths": [1, 1, 1, 1]}']


def run(*argv) -> str:
    out = io.StringIO()
    with redirect_stdout(out):
        assert main([str(a) for a in argv]) == 0
    return out.getvalue()


def test_trace_prints_latency_fps_edp_and_area_in_every_format():
    t = json.loads(run("trace", *ZOO, "--hw", "8x8", "--json"))
    hw = load_hardware("8x8")
    perf, total = t["performance"], t["total"]
    ms = perf["latency_ms"]
    assert total["cycles"] == pytest.approx(ms * hw.clock_mhz * 1e3, abs=0.5)
    assert perf["fps"] == pytest.approx(1e3 / ms) and total["fps"] == pytest.approx(perf["fps"])
    assert perf["edp"] == pytest.approx(total["energy"] * ms / 1e3)
    assert perf["edp_unit"] == f"{t['energy_unit']} x s"
    assert sum(r["latency_ms"] for r in t["layers"]) == pytest.approx(ms)
    assert all(r["fps"] is None for r in t["layers"])   # a rate of the whole network only
    assert perf["area_mm2"] == pytest.approx(area(hw).total) and "45 nm" in perf["area_unit"]
    rows = list(csv.DictReader(io.StringIO(run("trace", *ZOO, "--hw", "8x8", "--csv"))))
    assert float(rows[-1]["fps"]) == pytest.approx(perf["fps"])
    assert float(rows[-1]["edp"]) == pytest.approx(perf["edp"]) and rows[-1]["edp_unit"] == perf["edp_unit"]
    table = run("trace", *ZOO, "--hw", "8x8")
    assert f"({perf['fps']:.4g} frames/s)" in table and "EDP" in table and "mm^2" in table


def test_area_follows_the_hardware():
    small, big = area(load_hardware("8x8")), area(load_hardware("16x16"))
    assert big.mac == pytest.approx(4 * small.mac) and big.rf == pytest.approx(4 * small.rf)
    assert big.gb == pytest.approx(4 * small.gb)   # 128 KB against 32 KB
    assert mac_um2(8, 32) == pytest.approx(282 + 137)   # the source's anchors, reproduced
    assert mac_um2(8, 32) < mac_um2(16, 32) < mac_um2(32, 32) == pytest.approx(3495 + 137)
    assert small.total == pytest.approx(sum(small.levels().values()))


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    d = tmp_path_factory.mktemp("results")
    path = d / "s.toml"
    path.write_text(NET + 'accuracy = { top1 = 71.5, source = "measured by us, test split" }\n'
                    '[hardware]\nbase = "8x8"\n[hardware.grid]\n'
                    'pe = [{ rows = 4, cols = 4 }, { rows = 8, cols = 8 }]\narith.word_bits = [8, 16]\n')
    db = d / "s.sqlite"
    out = json.loads(run("sweep", path, "--db", db, "--jobs", "1", "--json", "--export", d / "s.csv"))
    return d, db, out["records"]


def test_sweep_records_hold_the_figures_and_every_hardware_parameter(swept):
    d, _, records = swept
    for r in records:
        hw = SW.load_sweep(d / "s.toml").points[0].hardware   # any point: same keys
        assert {f"hw.{k}" for k in parameters(hw)} <= set(r)   # from the schema, every field
        assert r["hw.buffer.words_per_cycle"] > 0   # derived values included
        assert r["latency_ms"] == pytest.approx(r["latency_s"] * 1e3)
        assert r["fps"] == pytest.approx(1 / r["latency_s"])
        assert r["edp"] == pytest.approx(r["energy"] * r["latency_s"])
        assert r["area_mm2"] == pytest.approx(r["area_mac_mm2"] + r["area_rf_mm2"] + r["area_gb_mm2"])
        assert r["label"] == f"{r['pe_rows']}x{r['pe_cols']}, 32 KB" + (", 8-bit" if r["word_bits"] == 8 else "")
        # the accuracy the sweep file states, with its source
        assert r["accuracy"] == 71.5 and "measured by us" in r["accuracy_source"]
    rows = list(csv.DictReader(open(d / "s.csv")))
    assert len(rows) == 4 and {"hw.pe.rows", "hw.clock.mhz", "hw.buffer.words_per_cycle", "fps",
                               "edp", "area_mm2", "label"} <= set(rows[0])
    assert {r["hw.arith.word_bits"] for r in rows} == {"8", "16"}


def test_pareto_over_any_two_metrics_without_accuracy(tmp_path, swept):
    _, db, records = swept
    fronts = json.loads(run("pareto", db, "--x", "area", "--y", "latency", "--json"))
    front = fronts["latency-vs-area"]
    assert [f["label"] for f in front] == [P.point_label(r) for r in P.pareto_front(records, "area", "latency")]
    for r in records:   # nothing beats a front point on both
        assert not any(r["area_mm2"] <= f["area"] and r["latency_ms"] <= f["latency"]
                       and (r["area_mm2"], r["latency_ms"]) != (f["area"], f["latency"]) for f in front)
    out = run("pareto", db, "--x", "edp", "--y", "dram", "--size", "energy", "--out", tmp_path / "p.pdf")
    assert "Pareto front, dram against edp" in out
    assert (tmp_path / "p.pdf").read_bytes()[:4] == b"%PDF"


@pytest.mark.parametrize("argv, message", [
    (["--x", "speed", "--y", "energy"], "--x 'speed': not a metric"),
    (["--x", "energy"], "--x and --y go together"),
    (["--x", "energy", "--y", "energy"], "a front needs two metrics"),
    (["--x", "energy", "--y", "latency", "--size", "colour"], "--size 'colour'"),
])
def test_pareto_option_errors_are_one_line(swept, capsys, argv, message):
    assert main(["pareto", str(swept[1]), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.parametrize("accuracy, message", [
    ("{ top1 = 71.5 }", "needs exactly top1 (%) and source"),
    ('{ top1 = 171.5, source = "x" }', "must be a percentage in [0, 100]"),
    ('{ top1 = 71.5, source = "" }', "source must be a non-empty string"),
])
def test_a_stated_accuracy_needs_a_percentage_and_a_source(tmp_path, capsys, accuracy, message):
    path = tmp_path / "a.toml"
    path.write_text(NET + f"accuracy = {accuracy}\n")
    assert main(["sweep", str(path), "--db", str(tmp_path / "a.sqlite")]) == 2
    assert message in capsys.readouterr().err


def test_derived_values_follow_each_point(tmp_path):
    """A base that only writes its derived buffer bandwidth down is derived again for a point
    with another array; a base that chooses another value keeps it, and the sweep says where."""
    derived = load_hardware("16x16").gb_words_per_cycle
    (tmp_path / "big.toml").write_text('[pe]\nrows = 32\ncols = 32\n[buffer]\nbytes = 131072\n')
    big_derived = load_hardware(tmp_path / "big.toml").gb_words_per_cycle
    assert big_derived != derived
    for stated, kept in ((derived, False), (48, True)):
        (tmp_path / "base.toml").write_text(f'name = "b"\n[pe]\nrows = 16\ncols = 16\n[buffer]\n'
                                            f'bytes = 131072\nwords_per_cycle = {stated}\n')
        (tmp_path / "s.toml").write_text(NET + '[hardware]\nbase = "base.toml"\n'
                                         'points = [{ pe = { rows = 32, cols = 32 } }, {}]\n')
        sweep = SW.load_sweep(tmp_path / "s.toml")
        big, base = (p.hardware for p in sweep.points)
        assert base.gb_words_per_cycle == stated
        assert big.gb_words_per_cycle == (48 if kept else big_derived)
        assert bool(sweep.notes) == kept
        if kept:
            assert "buffer.words_per_cycle = 48" in sweep.notes[0]
            assert f"e.g. {big_derived:g} with pe.rows=32" in sweep.notes[0]


# ---- figures fit for a paper -------------------------------------------------------------------

def font_types(pdf: bytes) -> set[bytes]:
    """The font subtypes a PDF declares (matplotlib writes font dictionaries uncompressed)."""
    import re
    return set(re.findall(rb"/Subtype\s*/(Type3|Type0|TrueType|Type1|CIDFontType[02])", pdf))


def test_figures_embed_truetype_fonts_never_type3(tmp_path, swept):
    """IEEE's and ACM's PDF checks refuse Type 3 fonts (matplotlib's default)."""
    run("trace", *ZOO, "--hw", "8x8", "--plot", tmp_path / "t.pdf", "--roofline", tmp_path / "r.pdf")
    run("pareto", swept[1], "--out", tmp_path / "p.pdf")
    for name in ("t.pdf", "r.pdf", "p.pdf"):
        types = font_types((tmp_path / name).read_bytes())
        assert types and b"Type3" not in types, (name, types)
        assert b"FontFile2" in (tmp_path / name).read_bytes()   # TrueType outlines embedded


@pytest.fixture(scope="module")
def onnx_net(tmp_path_factory):
    """A small MobileNet-like ONNX export: a stem, two identical blocks, a head and an fc, whose
    module paths end alike ('/features/features.0/Conv', '/head/head.0/Conv'); a 40x40 input."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    nn = torch.nn

    def block():
        return nn.Sequential(nn.Conv2d(8, 16, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1, groups=16),
                             nn.ReLU(), nn.Conv2d(16, 8, 1))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU()), block(), block())
            self.head = nn.Sequential(nn.Conv2d(8, 8, 3, 1, 1), nn.ReLU())
            self.fc = nn.Linear(8, 4)

        def forward(self, x):
            return self.fc(self.head(self.features(x)).mean((2, 3)))
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("onnx") / "mbnet.onnx"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Net().eval(), (torch.randn(1, 3, 40, 40),), str(path), dynamo=False,
                          opset_version=13)
    return path


def test_onnx_layers_get_readable_names_and_figure6_never_merges_them(onnx_net, tmp_path):
    from sqnxt_engine.emu.figures import layer_labels
    from sqnxt_engine.emu.hardware import load_hardware
    from sqnxt_engine.emu.network import emulate
    from sqnxt_engine.io.network_spec import NetworkSpec
    graph, weights, _, _ = NetworkSpec.of(file=str(onnx_net)).load()
    res = emulate(graph, weights, load_hardware("8x8"), "best", 0.4)
    labels = [label for label, _ in layer_labels(res.steps)]
    assert labels == ["1 conv", "2 conv", "3 dwconv", "4 conv", "5 conv", "6 dwconv", "7 conv",
                      "8 conv", "9 fc"]
    # the zoo's stage names are kept
    zoo = [label for label, _ in layer_labels(emulate(*NetworkSpec.of(
        "1.0-SqNxt-23", json.loads(ZOO[1])).load()[:2], load_hardware("8x8"), "best", 0.4).steps)]
    assert zoo[:2] == ["stem", "unit1.identity"]
    # figure6: the two identical blocks are two items each, named by place and op
    rows = json.loads(run("figure6", "--models", onnx_net, "--hw", "8x8", "--jobs", "1", "--json",
                          "--out", tmp_path, "--figure-format", "pdf"))
    assert [r["label"] for r in rows] == labels and all(r["layers"] == 1 for r in rows)
    assert b"Type3" not in font_types((tmp_path / "figure6.pdf").read_bytes())


def test_trace_image_on_onnx_uses_the_files_input_size(onnx_net, tmp_path):
    from PIL import Image
    Image.new("RGB", (90, 70), (120, 30, 200)).save(tmp_path / "x.png")
    t = json.loads(run("trace", "--weights", onnx_net, "--hw", "8x8", "--image", tmp_path / "x.png", "--json"))
    assert t["layers"][0]["shape"].startswith("3x40x40")


def test_results_as_rows_a_dataframe_takes(swept):
    from sqnxt_engine.emu.results import sweep_rows, trace_rows
    rows = trace_rows("1.0-SqNxt-23", hw="8x8", zoo_options=json.loads(ZOO[1]))
    t = json.loads(run("trace", *ZOO, "--hw", "8x8", "--json"))
    assert [r["layer"] for r in rows] == [r["layer"] for r in t["layers"]] + ["total"]
    assert rows[-1]["cycles"] == t["total"]["cycles"] and rows[-1]["fps"] == pytest.approx(t["performance"]["fps"])
    assert rows[-1]["count_macs"] == t["total"]["counts"]["macs"]
    points = sweep_rows(swept[1])
    assert len(points) == 4 and all("hw.pe.rows" in p and p["fps"] > 0 for p in points)
    for table in (rows, points):   # flat: one column per key, scalar cells, the same keys in every row
        assert all(set(r) == set(table[0]) for r in table)
        assert all(v is None or isinstance(v, (str, int, float, bool)) for r in table for v in r.values())
    try:
        import pandas
    except ImportError:   # pyarrow takes the same rows
        pa = pytest.importorskip("pyarrow")
        assert pa.Table.from_pylist(rows).num_rows == len(rows)
    else:
        frame = pandas.DataFrame(points)
        assert frame.shape == (4, len(points[0])) and sorted(frame["hw.pe.rows"]) == [4, 4, 8, 8]


# ---- export to the peers' formats --------------------------------------------------------------

def exported(tmp_path, fmt, *network):
    path = tmp_path / f"{fmt}.out"
    assert "conv and fc layers" in run("export", "--format", fmt, "--out", path, *network)
    return path


def sqnxt_layers():
    from sqnxt_engine import zoo
    from sqnxt_engine.emu.export import conv_layers
    return conv_layers(zoo.build("1.0-SqNxt-23"))


def test_scalesim_reads_our_squeezenext_topology(tmp_path):
    """SCALE-Sim's own topology parser (scalesim 3.0.0) reads the file: every layer, with the
    network's output sizes and MAC counts."""
    topology_utils = pytest.importorskip("scalesim.topology_utils")
    path = exported(tmp_path, "scalesim", "--model", "1.0-SqNxt-23")
    topo = topology_utils.topologies()
    topo.load_arrays(str(path))
    layers = sqnxt_layers()
    assert topo.get_num_layers() == len(layers)
    for i, (name, s) in enumerate(layers):
        assert topo.get_layer_name(i) == name
        assert list(topo.get_layer_ofmap_dims(i)) == [s.Ho, s.Wo]
        assert topo.get_layer_mac_ops(i) == s.macs


def test_scalesim_topology_of_a_depthwise_network(onnx_net, tmp_path):
    """A depthwise layer is SCALE-Sim's "DP" layer (one per channel); the MACs add up."""
    from sqnxt_engine.emu.export import conv_layers, scalesim_topology
    from sqnxt_engine.io.network_spec import NetworkSpec
    layers = conv_layers(NetworkSpec.of(file=str(onnx_net)).load()[0])
    rows = [line.split(", ") for line in scalesim_topology(layers).splitlines()[1:]]
    for (name, s), row in zip(layers, rows, strict=True):
        h, w, r, c, ch, k, stride = (int(x.rstrip(",")) for x in row[1:])
        macs = ((h - r) // stride + 1) * ((w - c) // stride + 1) * r * c * ch * k
        assert macs == s.macs, name   # a DP row: C channels of one filter each
    assert sum(row[0].endswith("_DP") for row in rows) == 2
    topology_utils = pytest.importorskip("scalesim.topology_utils")
    topo = topology_utils.topologies()
    (tmp_path / "dw.csv").write_text(scalesim_topology(layers))
    topo.load_arrays(str(tmp_path / "dw.csv"))
    assert sum(topo.get_layer_mac_ops(i) for i in range(topo.get_num_layers())) == sum(s.macs for _, s in layers)


@pytest.mark.parametrize("fmt", ["timeloop", "zigzag"])
def test_timeloop_and_zigzag_workloads_hold_every_layer(tmp_path, onnx_net, fmt):
    yaml = pytest.importorskip("yaml")
    from math import prod

    from sqnxt_engine.emu.export import conv_layers
    from sqnxt_engine.io.network_spec import NetworkSpec
    for network, layers in ((["--model", "1.0-SqNxt-23"], sqnxt_layers()),
                            (["--weights", onnx_net], conv_layers(NetworkSpec.of(file=str(onnx_net)).load()[0]))):
        text = exported(tmp_path, fmt, *network, "--force").read_text()
        if fmt == "timeloop":
            docs = [d["problem"]["instance"] for d in yaml.safe_load_all(text)]
            macs = [prod(d[k] for k in "GCMRSNPQ") for d in docs]
        else:
            docs = yaml.safe_load(text)
            assert [d["name"] for d in docs] == [n for n, _ in layers]
            assert all(d["operand_source"] == {"I": d["id"]} for d in docs)
            macs = [prod(d["loop_sizes"]) for d in docs]
        assert macs == [s.macs for _, s in layers]


def test_export_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "x.csv").write_text("taken")
    for argv, message in ((["--format", "scalesim", "-o", str(tmp_path / "x.csv")], "exists"),
                          (["--format", "excel"], "invalid choice")):
        assert main(["export", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


# ---- sweeps on a real cluster ------------------------------------------------------------------

def test_dask_workers_in_another_folder_get_the_network_as_bytes(onnx_net, tmp_path, monkeypatch):
    """Worker processes started in a folder of their own, the network named by a path relative
    to the client's folder (which the workers cannot see): the file travels as bytes under its
    hash, and the records are the ones computed locally."""
    distributed = pytest.importorskip("distributed")
    import shutil
    from dataclasses import replace
    client_dir, worker_dir = tmp_path / "client", tmp_path / "worker"
    client_dir.mkdir()
    worker_dir.mkdir()
    shutil.copy(onnx_net, client_dir / "net.onnx")
    (client_dir / "s.toml").write_text('[[network]]\nweights = "net.onnx"\n[hardware]\nbase = "8x8"\n'
                                       '[hardware.grid]\nbuffer.bytes = [16384, 32768]\n')
    monkeypatch.chdir(client_dir)
    sweep = SW.load_sweep("s.toml")
    relative = [replace(p, network=replace(p.network, file="net.onnx")) for p in sweep.points]
    assert [p.key for p in relative] == [p.key for p in sweep.points]   # the key names content
    local = SW.ResultsDB(tmp_path / "local.sqlite")
    SW.run_sweep(SW.Sweep("s", tuple(relative)), local)
    monkeypatch.chdir(worker_dir)   # the workers' processes start here
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        monkeypatch.chdir(client_dir)
        assert client.run(lambda: __import__("os").getcwd()).popitem()[1] == str(worker_dir)
        db = SW.ResultsDB(tmp_path / "dask.sqlite")
        assert SW.run_sweep(SW.Sweep("s", tuple(relative)), db, scheduler=client).computed == 2
    assert db.records() == local.records()
    assert {r["file"] for r in db.records()} == {"net.onnx"}
    db.close()
    local.close()


def test_pareto_refuses_a_tampered_figure_in_one_line(swept, tmp_path, capsys):
    import shutil
    import sqlite3
    db = tmp_path / "t.sqlite"
    shutil.copy(swept[1], db)
    with sqlite3.connect(db) as conn:
        key, record = conn.execute("SELECT key, record FROM points").fetchone()
        record = {**json.loads(record), "area_mm2": "small", "hw.pe.rows": "many"}
        conn.execute("UPDATE points SET record = ? WHERE key = ?", (json.dumps(record), key))
    assert main(["pareto", str(db), "--x", "area", "--y", "latency"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "area_mm2 is 'small'" in err[0], err
    assert main(["pareto", str(db), "--x", "energy", "--y", "latency", "--json"]) == 0   # the rest reads


def test_the_figure_tells_designs_apart(swept):
    """One network: a marker per array, a colour per combination of the other varying
    parameters; parts common to every point (the clock) are said once, in the title."""
    records = swept[2]
    marker_of, colour_of, markers, colours, what, common, marker_what = P.encoding(records)
    assert marker_what == "array"
    assert [v for v, _ in markers] == ["4x4", "8x8"] and len({m for _, m in markers}) == 2
    assert colours == ["8-bit", "16-bit"] and what == "precision"
    assert "buffer" in common and "clock" in common
    designs = {(marker_of(r), colour_of(r)) for r in records}
    assert len(designs) == len(records)   # no two designs drawn alike


def test_zigzag_reads_our_workload(tmp_path, onnx_net):
    """ZigZag's own validator and workload factory (zigzag-dse 3.9.1, where installed) take the
    export: every layer, the network's MACs."""
    pytest.importorskip("zigzag")
    from zigzag.parser.mapping_validator import MappingValidator
    from zigzag.parser.workload_factory import WorkloadFactory
    from zigzag.parser.workload_validator import WorkloadValidator
    from zigzag.utils import open_yaml

    from sqnxt_engine.emu.export import conv_layers
    from sqnxt_engine.io.network_spec import NetworkSpec
    mapping = MappingValidator([{"name": "default", "spatial_mapping": {"D1": ["K, 16"], "D2": ["C, 16"]},
                                 "memory_operand_links": {"O": "O", "W": "I2", "I": "I1"}}])
    assert mapping.validate()
    for network, layers in ((["--model", "1.0-SqNxt-23"], sqnxt_layers()),
                            (["--weights", onnx_net], conv_layers(NetworkSpec.of(file=str(onnx_net)).load()[0]))):
        validator = WorkloadValidator(open_yaml(str(exported(tmp_path, "zigzag", *network, "--force"))))
        data = validator.normalized_data
        assert validator.validate()
        nodes = list(WorkloadFactory(data, mapping.normalized_data).create().nodes)
        assert sorted(n.total_mac_count for n in nodes) == sorted(s.macs for _, s in layers)


def test_more_designs_than_markers_are_told_apart_by_array():
    """Two networks on 2 arrays x 10 arithmetics (a precision sweep's 20 designs): a marker per
    design would repeat (15 markers), so the marker follows the array; the front's labels name
    the rest."""
    records = [{"network": net, "pe_rows": a, "pe_cols": a, "gb_bytes": 32768, "hw.arith.word_bits": w,
                "hw.arith.acc_bits": acc, "hw.arith.overflow": mode}
               for net in ("n int8", "n w4a8") for a in (8, 16)
               for w, acc in ((16, 32), (16, 48), (8, 24), (8, 32), (8, 48)) for mode in ("wrap", "saturate")]
    marker_of, colour_of, markers, colours, what, common, marker_what = P.encoding(records)
    assert marker_what == "array" and [v for v, _ in markers] == ["8x8", "16x16"]
    assert colours == ["n int8", "n w4a8"] and what == "network"
    few = [r for r in records if r["hw.arith.overflow"] == "wrap" and r["pe_rows"] == 8]
    assert P.encoding(few)[-1] == "design"   # 5 designs: one marker each
