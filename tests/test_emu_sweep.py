"""sqnxt-emu sweep and pareto: sweep files, records, resuming, executors, export, the Pareto view."""
import json
import sqlite3
import subprocess
import sys
import time

import pytest

from sqnxt_engine.emu import pareto as P
from sqnxt_engine.emu import sweep as SW
from sqnxt_engine.emu.cli import main
from sqnxt_engine.emu.hardware import load_hardware

# a small SqueezeNext (28x28, one block per stage): a point takes a fraction of a second
TINY = '''
[[network]]
model = "1.0-SqNxt-23"
options = {{ input_size = 28, small_input = true, stem_stride = 2, num_classes = 10, depths = [1, 1, 1, 1] }}
[[network]]
model = "1.0-SqNxt-23v5"
options = {{ input_size = 28, small_input = true, stem_stride = 2, num_classes = 10, depths = [1, 1, 1, 1] }}
[hardware]
base = "8x8"
[hardware.grid]
buffer.bytes = [16384, 32768]
{extra}
'''


def write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def tiny(tmp_path):
    return write(tmp_path, TINY.format(extra=""))


def stored(db_path):
    with sqlite3.connect(db_path) as conn:
        return {k: json.loads(r) for k, r in conn.execute("SELECT key, record FROM points")}


def test_points_keys_and_overrides(tiny, tmp_path):
    sweep = SW.load_sweep(tiny)
    assert len(sweep.points) == 4  # 2 networks x 2 buffers
    assert len({p.key for p in sweep.points}) == 4
    assert {p.hardware.gb_bytes for p in sweep.points} == {16384, 32768}
    assert all(p.hardware.pe_rows == 8 for p in sweep.points)  # the rest is the base's
    assert SW.load_sweep(tiny).points == sweep.points  # keys are stable
    assert [p.key for p in SW.load_sweep(tiny).points] == [p.key for p in sweep.points]
    # a point's key depends on what is emulated, not on how the file spells it
    respelled = write(tmp_path, TINY.format(extra="").replace('"1.0-SqNxt-23"', '"1.0-sqnxt-23"')
                      .replace("buffer.bytes = [16384, 32768]", "buffer = { bytes = [16384, 32768] }"),
                      "t.toml")
    assert {p.key for p in SW.load_sweep(respelled).points} == {p.key for p in sweep.points}
    # coupled values as a list of points, crossed with the grid
    coupled = write(tmp_path, TINY.format(extra="").replace(
        "[hardware.grid]", "points = [{ pe = { rows = 4, cols = 4 } }, { pe = { rows = 8, cols = 16 } }]\n"
        "[hardware.grid]") + '[emulation]\ndataflow = ["ws", "best"]\n', "c.toml")
    points = SW.load_sweep(coupled).points
    assert len(points) == 2 * 2 * 2 * 2
    assert {(p.hardware.pe_rows, p.hardware.pe_cols) for p in points} == {(4, 4), (8, 16)}
    assert {p.dataflow for p in points} == {"ws", "best"}


def test_local_and_dask_records_are_identical(tiny, tmp_path):
    distributed = pytest.importorskip("distributed")
    sweep = SW.load_sweep(tiny)
    runs = {}
    for name, kw in (("serial", {"jobs": 1}), ("processes", {"jobs": 2})):
        db = SW.ResultsDB(tmp_path / f"{name}.sqlite")
        assert SW.run_sweep(sweep, db, **kw).computed == 4
        db.close()
        runs[name] = stored(tmp_path / f"{name}.sqlite")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        db = SW.ResultsDB(tmp_path / "dask.sqlite")
        assert SW.run_sweep(sweep, db, scheduler=client).computed == 4
        db.close()
    runs["dask"] = stored(tmp_path / "dask.sqlite")
    assert runs["serial"] == runs["processes"] == runs["dask"]
    records = list(runs["serial"].values())
    assert {r["key"] for r in records} == {p.key for p in sweep.points}
    for r in records:
        assert r["cycles"] > 0 and r["energy"] > 0 and r["dram_bytes"] > 0 and 0 < r["utilisation"] <= 1
        assert r["energy"] == pytest.approx(sum(r[f"energy_{lv}"] for lv in ("mac", "rf", "pe", "gb", "dram")))
        hz = r["clock_mhz"] * 1e6  # cycles are rounded to whole cycles, the latency is not
        assert r["latency_s"] == pytest.approx(r["cycles"] / hz, abs=0.5 / hz)
        assert r["energy_unit"] == load_hardware("8x8").energy.unit
        # a zoo network changed by options has no published accuracy
        assert r["accuracy"] is None and r["accuracy_source"] is None
    # the run's when and where are kept beside the record, not in it
    with sqlite3.connect(tmp_path / "dask.sqlite") as conn:
        assert all(w for (w,) in conn.execute("SELECT worker FROM points"))


def test_sweep_command_on_a_scheduler_address(tiny, tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster:
        assert main(["sweep", str(tiny), "--db", str(tmp_path / "d.sqlite"), "--scheduler",
                     cluster.scheduler_address, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["computed"], len(out["records"])) == (4, 4)


def test_an_interrupted_sweep_resumes_without_recomputing(tiny, tmp_path, monkeypatch):
    sweep = SW.load_sweep(tiny)
    computed = []
    real = SW.compute_record
    monkeypatch.setattr(SW, "compute_record", lambda p: computed.append(p.key) or real(p))

    class Stop(Exception):
        pass

    def stop_after_two(record):
        if len(computed) == 2:
            raise Stop
    db = SW.ResultsDB(tmp_path / "r.sqlite")
    with pytest.raises(Stop):
        SW.run_sweep(sweep, db, on_record=stop_after_two)
    assert len(db.keys()) == 2
    first = list(computed)
    computed.clear()
    run = SW.run_sweep(sweep, db)
    assert (run.computed, run.skipped) == (2, 2)
    assert len(computed) == 2 and not set(computed) & set(first)
    assert db.keys() == {p.key for p in sweep.points}
    computed.clear()
    assert SW.run_sweep(sweep, db).computed == 0 and not computed
    db.close()


def test_a_killed_sweep_command_resumes(tmp_path):
    """The command killed (SIGKILL) after its first point: the points stored survive, and the
    next run computes only the others."""
    db = tmp_path / "k.sqlite"
    sweep = write(tmp_path, TINY.format(extra="[emulation]\nseed = [0, 1, 2, 3]"))  # 16 points
    cmd = [sys.executable, "-m", "sqnxt_engine.emu.cli", "sweep", str(sweep), "--db", str(db),
           "--jobs", "1", "--json"]
    # cwd: not the source tree, whose sqnxt_engine/ folder would shadow the installed package
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if db.exists() and _count(db) >= 1:
            proc.kill()
            break
        time.sleep(0.05)
    proc.wait()
    done = _count(db)
    assert 1 <= done < 16
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=tmp_path)
    result = json.loads(out.stdout)
    assert (result["computed"], result["skipped"]) == (16 - done, done)
    assert len(result["records"]) == 16


def _count(db):
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM points").fetchone()[0]
    except sqlite3.OperationalError:  # the table is not made yet
        return 0


def test_sweep_command_json_export_and_pareto(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    # shipped Fashion-MNIST weights: a measured accuracy, named with its source
    sweep = write(tmp_path, '''
[[network]]
weights = "1.0-SqNxt-23-fmnist"
[[network]]
weights = "1.0-SqNxt-23v5-fmnist"
[hardware]
base = "8x8"
[hardware.grid]
pe = [{ rows = 8, cols = 8 }, { rows = 16, cols = 16 }]
[emulation]
sparsity = 0.0
''')
    db = tmp_path / "f.sqlite"
    assert main(["sweep", str(sweep), "--db", str(db), "--jobs", "1", "--json",
                 "--export", str(tmp_path / "out.csv")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["points"], out["computed"]) == (4, 4)
    manifest = {r["network"]: r for r in out["records"]}
    from sqnxt_engine.io.shipped import manifest as shipped_manifest
    measured = shipped_manifest()["1.0-SqNxt-23-fmnist"]["engine_top1"]  # weights/MANIFEST.json
    assert manifest["1.0-SqNxt-23-fmnist"]["accuracy"] == measured
    assert "MANIFEST.json" in manifest["1.0-SqNxt-23-fmnist"]["accuracy_source"]
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert len(lines) == 5 and lines[0].startswith("key,network,")
    # export from the database again, as Parquet
    assert main(["sweep", str(sweep), "--db", str(db), "--export", str(tmp_path / "out.parquet")]) == 0
    assert "0 computed" in capsys.readouterr().out
    import pyarrow.parquet as pq
    assert pq.read_table(tmp_path / "out.parquet").num_rows == 4
    # the Pareto view
    assert main(["pareto", str(db), "--json", "--out", str(tmp_path / "p.png")]) == 0
    fronts = json.loads(capsys.readouterr().out)
    assert set(fronts) == {"accuracy-vs-energy", "accuracy-vs-latency"}
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    records = [r for r in out["records"]]
    for (cost, _), (name, front) in zip(P.default_views(records), P.fronts(records).items()):
        assert [r["network"] for r in front] == [f["network"] for f in fronts[name]]
        for r in records:  # nothing off the front beats a front point on both counts
            assert not any(P.value(r, cost) < P.value(f, cost) and r["accuracy"] >= f["accuracy"]
                           for f in front) \
                or r in front


def test_an_onnx_network_in_a_sweep(tmp_path):
    """A network file beside the sweep file (its path relative to it); named by the file; no
    accuracy; an edited file is a new network (a new key)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean((2, 3)))

    def export(seed):
        torch.manual_seed(seed)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(Tiny().eval(), (torch.randn(1, 3, 12, 12),), str(tmp_path / "tiny-net.onnx"),
                              dynamo=False, opset_version=13)
    export(0)
    sweep = write(tmp_path, '[[network]]\nweights = "tiny-net.onnx"\n[hardware]\nbase = "8x8"\n'
                  '[hardware.grid]\npe = [{ rows = 4, cols = 4 }, { rows = 8, cols = 8 }]\n')
    db = SW.ResultsDB(tmp_path / "o.sqlite")
    assert SW.run_sweep(SW.load_sweep(sweep), db).computed == 2
    records = db.records()
    assert [r["network"] for r in records] == ["tiny-net", "tiny-net"]
    assert all(r["accuracy"] is None and r["macs"] > 0 for r in records)
    export(1)  # other weights in the same file: other points
    assert SW.run_sweep(SW.load_sweep(sweep), db).computed == 2
    db.close()


def test_pareto_front():
    rs = [{"energy": 1, "accuracy": 50}, {"energy": 2, "accuracy": 60}, {"energy": 3, "accuracy": 55},
          {"energy": 2, "accuracy": 40}, {"energy": 4, "accuracy": 70}]
    assert P.pareto_front(rs, "energy") == [rs[0], rs[1], rs[4]]
    # two costs (both less is better), and a metric where more is better on x
    rs = [{"latency_ms": 1, "area_mm2": 5}, {"latency_ms": 2, "area_mm2": 3}, {"latency_ms": 2, "area_mm2": 4},
          {"latency_ms": 3, "area_mm2": 3}, {"latency_ms": 4, "area_mm2": 1}]
    assert P.pareto_front(rs, "latency", "area") == [rs[0], rs[1], rs[4]]
    for r in rs:
        r["fps"] = 1e3 / r["latency_ms"]
    assert P.pareto_front(rs, "fps", "area") == [rs[0], rs[1], rs[4]]
    assert P.pareto_front([{"energy": 1, "accuracy": None}], "energy") == []


def test_paper_accuracy_only_for_the_papers_network():
    top1 = SW.paper_top1()
    assert top1["1.0-SqNxt-23v5"][0] == 59.24  # paper_table3.csv
    assert "paper_table3.csv" in top1["1.0-SqNxt-23v5"][1]
    assert top1["1.5-SqNxt-23"][0] == 63.52    # paper_table2.csv
    assert "sqnxt23_w1" not in top1            # pytorchcv's networks: no published figure here


NET = '[[network]]\nmodel = "1.0-SqNxt-23"\n'


@pytest.mark.parametrize("text, message", [
    ("", "network is missing"),
    ('[[network]]\nmodel = "NoNet"\n', "unknown model 'NoNet'"),
    (NET + 'options = { depth = 3 }\n', "unknown SqueezeNext option 'depth'"),
    ('[[network]]\nmodel = "1.0-SqNxt-23"\nweights = "x.npz"\n', "needs model or weights"),
    ('[[network]]\nweights = "missing.npz"\n', "network[0].weights: missing.npz"),
    (NET + 'colour = 1\n', "unknown key network[0].colour"),
    (NET + '[hardware]\nbase = "4x4"\n', "hardware.base: 4x4"),
    (NET + '[hardware.grid]\nbuffer.bytes = 3\n', "hardware.grid.buffer.bytes must be a list"),
    (NET + '[hardware.grid]\nbuffer.bytes = [32768, -1]\n', "buffer.bytes must be a positive integer, got -1"),
    (NET + '[hardware.grid]\npe.size = [8]\n', "unknown field 'pe.size'"),
    (NET + '[emulation]\nsparsity = [0.4, 1.5]\n', "emulation.sparsity must be in [0, 1)"),
    (NET + '[emulation]\ndataflow = "fast"\n', "emulation.dataflow must be"),
    (NET + '[emulation]\nseed = -1\n', "emulation.seed must be a non-negative integer"),
    (NET + '[emulation]\nseed = [0, 1, 0]\n', "emulation.seed lists a value twice"),
    ('[[network]]\nmodel = "1.0-SqNxt-23"\n[[network]]\nmodel = "1.0-sqnxt-23"\n', "listed twice"),
    ("network = [", "not valid TOML"),
])
def test_bad_sweep_files_are_one_line_exit_2(tmp_path, capsys, text, message):
    path = write(tmp_path, text)
    assert main(["sweep", str(path), "--db", str(tmp_path / "x.sqlite")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_command_errors_are_one_line_exit_2(tiny, tmp_path, capsys):
    not_db = write(tmp_path, "hello, I am not a database " * 20, "n.sqlite")
    for argv, message in ((["sweep", str(tmp_path / "none.toml")], "no such file"),
                          (["sweep", str(tiny), "--db", str(not_db)], "not a sweep database"),
                          (["sweep", str(tiny), "--export", str(tmp_path / "o.xlsx")], "--export writes"),
                          (["sweep", str(tiny), "--jobs", "0"], "--jobs must be a positive integer"),
                          (["pareto", str(tmp_path / "none.sqlite")], "no such sweep database"),
                          (["pareto", str(not_db), "--out", str(tmp_path / "p.bmp")],
                           "unknown figure format")):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)


def test_an_accuracy_front_needs_accuracies(tiny, tmp_path, capsys):
    db = SW.ResultsDB(tmp_path / "t.sqlite")
    sweep = SW.load_sweep(tiny)
    SW.run_sweep(SW.Sweep(sweep.name, sweep.points[:1]), db)
    db.close()
    db = str(tmp_path / "t.sqlite")
    assert main(["pareto", db, "--x", "energy", "--y", "accuracy", "--out", str(tmp_path / "p.png")]) == 2
    assert "no record has both energy and accuracy" in capsys.readouterr().err
