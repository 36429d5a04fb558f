"""sqnxt-codesign: the search file, training jobs by successive halving in the sweep database,
the Pareto records that sqnxt-emu pareto draws, budgets, resuming after a kill, a Dask cluster."""
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sqnxt_engine.emu import codesign as CD
from sqnxt_engine.emu.cli import main as emu_main
from sqnxt_engine.errors import UserError
from sqnxt_engine.zoo import build

torch = pytest.importorskip("torch")

# 4 tiny candidates (width 0.25, one or two blocks in the first stage, a 3x3 or 5x5 stem) on 2
# hardware points; a rung-0 job trains 200 images for one epoch: about a second
TINY = '''
[network]
model = "1.0-SqNxt-23"
[network.axes]
width = [0.25]
depths = [[1, 1, 1, 1], [2, 1, 1, 1]]
small_stem_kernel = [3, 5]
[hardware]
base = "8x8"
[hardware.grid]
buffer.bytes = [16384, 32768]
[training]
rungs = [{ train_images = 200, epochs = 1 }, { train_images = 300, epochs = 2 }]
keep = 0.5
test_images = 100
recipe = { batch_size = 32, warmup_steps = 2 }
'''


def write(tmp_path, text, name="search.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def table(db_path, name):
    with sqlite3.connect(db_path) as conn:
        return {k: json.loads(r) for k, r in conn.execute(f"SELECT key, record FROM {name}")}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One uninterrupted run of the tiny search: (search file, database)."""
    folder = tmp_path_factory.mktemp("codesign")
    path = write(folder, TINY)
    db = CD.CodesignDB(folder / "full.sqlite")
    CD.run_codesign(CD.load_search(path), db)
    db.close()
    return path, folder / "full.sqlite"


def test_candidates_points_and_jobs(tmp_path):
    search = CD.load_search(write(tmp_path, TINY))
    assert len(search.candidates) == 4 and len(search.points) == 8
    assert len({c.label for c in search.candidates}) == 4
    assert len({p.key for p in search.points}) == 8
    for c in search.candidates:
        assert len(search.points_of(c)) == 2
        assert build(c.model, **c.zoo_options).input_shape == (1, 28, 28)
    jobs = CD.jobs_of(search, 0, search.candidates)
    assert len({j.key for j in jobs}) == 4 and all(j.epochs == 1 for j in jobs)
    # a job's key is the candidate and the recipe: another rung's schedule is another job
    assert not {j.key for j in jobs} & {j.key for j in CD.jobs_of(search, 1, search.candidates)}
    assert [j.key for j in CD.jobs_of(CD.load_search(write(tmp_path, TINY, "b.toml")), 0,
                                      search.candidates)] == [j.key for j in jobs]


def test_the_stem_kernel_is_an_option_of_the_small_input_form():
    three = build("1.0-SqNxt-23", small_input=True, stem_stride=2, input_size=28, in_channels=1, num_classes=10)
    five = build("1.0-SqNxt-23", small_input=True, stem_stride=2, input_size=28, in_channels=1, num_classes=10,
                 small_stem_kernel=5)
    assert three.layers[0].op.kernel in (3, (3, 3)) and five.layers[0].op.kernel in (5, (5, 5))
    assert three.output_shape() == five.output_shape()
    assert five.params - three.params == 64 * (25 - 9)
    with pytest.raises(UserError, match="odd"):
        build("1.0-SqNxt-23", small_input=True, small_stem_kernel=4)


def test_a_run_stores_trainings_halves_and_writes_pareto_records(tiny_run, capsys):
    path, db_path = tiny_run
    search = CD.load_search(path)
    trained = table(db_path, "training")
    assert len(trained) == 4 + 2  # rung 0: every candidate; rung 1: the best half
    rung0 = {r["network"]: r["accuracy"] for r in trained.values() if r["rung"] == 0}
    rung1 = {r["network"] for r in trained.values() if r["rung"] == 1}
    best = sorted(rung0, key=lambda n: (-rung0[n], n))[:2]
    assert rung1 == set(best)
    for r in trained.values():
        assert 0 <= r["accuracy"] <= 100 and r["test_images"] == 100
        assert r["train_images"] == (200 if r["rung"] == 0 else 300)
    points = table(db_path, "points")
    emulated = [r for r in points.values() if r["accuracy"] is None]
    fronted = [r for r in points.values() if r["accuracy"] is not None]
    assert len(emulated) == 8 and len(fronted) == 8  # one per candidate and hardware point
    for r in fronted:
        e = points[r["emulation_key"]]
        same = ("cycles", "energy", "latency_s", "hardware", "dataflow", "sparsity")
        assert {k: r[k] for k in same} == {k: e[k] for k in same}
        t = trained[r["training_key"]]
        assert r["accuracy"] == t["accuracy"] and r["rung"] == t["rung"] == (1 if t["network"] in best else 0)
        assert f"rung {t['rung']}" in r["accuracy_source"]
    # sqnxt-emu pareto reads the database as any sweep's
    assert emu_main(["pareto", str(db_path), "--json"]) == 0
    fronts = json.loads(capsys.readouterr().out)
    front = fronts["accuracy-vs-energy"]
    assert front and all(f["accuracy"] is not None for f in front)
    # run again: nothing trained or emulated again
    db = CD.CodesignDB(db_path)
    run = CD.run_codesign(search, db)
    db.close()
    assert (run.trained, run.skipped, run.emulation.computed) == (0, 6, 0)
    assert table(db_path, "points") == points


def test_the_command_prints_candidates_agreement_and_fronts(tiny_run, capsys):
    path, db_path = tiny_run
    assert CD.main([str(path), "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    assert "rank agreement, rung 0 against rung 1" in out and "over 2 candidates" in out
    assert "Pareto front, accuracy against energy" in out and "0 training jobs run" in out
    assert CD.main([str(path), "--db", str(db_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["candidates"]) == 4 and result["rank_agreement"][0]["candidates"] == 2


def test_budget_in_epochs_stops_and_the_same_command_continues(tiny_run, tmp_path):
    path, full = tiny_run
    search = CD.load_search(path)
    db = CD.CodesignDB(tmp_path / "b.sqlite")
    run = CD.run_codesign(search, db, budget=CD.Budget.parse("2epochs"))
    assert (run.trained, run.epochs, run.stopped_by_budget) == (2, 2, True)
    run = CD.run_codesign(search, db)
    db.close()
    assert run.trained == 4 and not run.stopped_by_budget
    assert table(tmp_path / "b.sqlite", "training") == table(full, "training")


@pytest.mark.slow  # 18 s at load 6 on 2 cores: a second interpreter importing torch, a run and its resume
def test_killed_and_resumed_gives_the_records_of_one_run(tmp_path):
    # two candidates on one hardware point: three training jobs
    path = write(tmp_path, TINY.replace("small_stem_kernel = [3, 5]", "small_stem_kernel = [3]")
                 .replace("[16384, 32768]", "[16384]"))
    db = CD.CodesignDB(tmp_path / "one.sqlite")
    CD.run_codesign(CD.load_search(path), db)
    db.close()
    db_path = tmp_path / "k.sqlite"
    cmd = [sys.executable, "-c", "from sqnxt_engine.emu.codesign import main; raise SystemExit(main())",
           str(path), "--db", str(db_path)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None and _count(db_path, "training") < 1:
            time.sleep(0.05)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert 1 <= _count(db_path, "training") < 3
    assert CD.main([str(path), "--db", str(db_path)]) == 0
    assert table(db_path, "training") == table(tmp_path / "one.sqlite", "training")
    assert table(db_path, "points") == table(tmp_path / "one.sqlite", "points")


def _count(db_path, name):
    if not db_path.exists():
        return 0
    try:
        with sqlite3.connect(db_path, timeout=5) as conn:
            return conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]
    except sqlite3.OperationalError:  # not made yet
        return 0


def stop_after_an_epoch(job, folder, monkeypatch) -> None:
    """Run `job` keeping checkpoints in `folder` and stop it right after its first epoch's."""
    from sqnxt_engine.train.checkpoint import Checkpoint
    save = Checkpoint.save

    def save_then_stop(self, *a, **kw):
        save(self, *a, **kw)
        raise KeyboardInterrupt
    with monkeypatch.context() as m:
        m.setattr(Checkpoint, "save", save_then_stop)
        with pytest.raises(KeyboardInterrupt):
            CD.train_job(job, str(folder))


def test_the_last_rungs_networks_are_kept_as_weight_files(tiny_run):
    """Each job of the last rung leaves its trained network as DB.weights/KEY.npz, the engine's
    weight file: the candidate's network, scoring what the job's record says on the same test
    images (PyTorch's float32 there, the engine's here: one image of rounding allowed), with
    sqnxt-train's record of the run beside it (KEY.train.json: recipe, time, parts)."""
    from sqnxt_engine.io.datasets import load_dataset
    from sqnxt_engine.runtime.predict import engine_accuracy
    path, full = tiny_run
    search = CD.load_search(path)
    trained = table(full, "training")
    last = [r for r in trained.values() if r["rung"] == len(search.rungs) - 1]
    files = sorted((full.parent / "full.sqlite.weights").glob("*.npz"))
    assert len(last) == 2 and sorted(f.stem for f in files) == sorted(r["key"] for r in last)
    x, y = load_dataset("fashion-mnist", "test")
    for r in last:
        correct, n = engine_accuracy(full.parent / "full.sqlite.weights" / f"{r['key']}.npz",
                                     x[:r["test_images"]], y[:r["test_images"]])
        assert n == r["test_images"] and abs(100.0 * correct / n - r["accuracy"]) <= 100.0 / n + 1e-9
        run = json.loads((full.parent / "full.sqlite.weights" / f"{r['key']}.train.json").read_text())
        assert run["recipe"] == r["recipe"] and run["training_seconds"] > 0   # what the manifest reads
        assert run["parts"] == [{"epochs": [1, r["epochs"]], "threads": r["threads"], "device": "cpu"}]


def test_a_stopped_job_continues_from_its_checkpoint(tiny_run, tmp_path, monkeypatch):
    """A job stopped after its first epoch continues from it: its record is an uninterrupted job's."""
    path, _ = tiny_run
    search = CD.load_search(path)
    job = CD.jobs_of(search, 1, search.candidates[:1])[0]  # two epochs
    folder = tmp_path / "ckpt"
    stop_after_an_epoch(job, folder, monkeypatch)
    saved = folder / f"{job.key}.npz"
    assert saved.exists()
    from sqnxt_engine.io.weights import read_npz_with_meta
    assert read_npz_with_meta(saved, "a checkpoint")[1]["epoch"] == 1
    resumed, _ = CD.train_job(job, str(folder))
    assert not saved.exists()
    uninterrupted, _ = CD.train_job(job)
    assert resumed == uninterrupted


def test_training_on_a_dask_cluster_gives_the_same_records(tiny_run, tmp_path, monkeypatch):
    """Including a job stopped after an epoch before: its workers continue it from the database's
    checkpoints, as a run without a cluster does (the checkpoint is used, then removed)."""
    distributed = pytest.importorskip("distributed")
    from sqnxt_engine.train.checkpoint import Checkpoint
    path, full = tiny_run
    search = CD.load_search(path)
    job = CD.jobs_of(search, 0, search.candidates[:1])[0]
    folder = tmp_path / "d.sqlite.checkpoints"
    stop_after_an_epoch(job, folder, monkeypatch)
    assert (folder / f"{job.key}.npz").exists()
    resumed = []
    restore = Checkpoint.restore

    def restore_noted(self, *a, **kw):
        saved = restore(self, *a, **kw)
        resumed.append(saved is not None)
        return saved
    monkeypatch.setattr(Checkpoint, "restore", restore_noted)  # the cluster's workers are threads here
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as client:
        db = CD.CodesignDB(tmp_path / "d.sqlite")
        run = CD.run_codesign(CD.load_search(path), db, scheduler=client)
        db.close()
    assert run.trained == 6
    assert table(tmp_path / "d.sqlite", "training") == table(full, "training")
    assert table(tmp_path / "d.sqlite", "points") == table(full, "points")
    assert not (folder / f"{job.key}.npz").exists() and resumed.count(True) == 1


@pytest.mark.parametrize("change, message", [
    (("[training]", "[trainer]"), "unknown key trainer (expected network, hardware"),
    (("width = [0.25]", "widths = [0.25]"), "unknown axis network.axes.widths"),
    (("width = [0.25]", "input_size = [32]"), "unknown axis network.axes.input_size"),
    (("width = [0.25]", "width = []"), "network.axes.width must be a non-empty list"),
    (("width = [0.25]", "width = [0.25, 0.25]"), "lists a value twice"),
    (("width = [0.25]", "width = [0.25]\nprune = [1.5]"), "network.axes.prune must be in [0, 1)"),
    (("small_stem_kernel = [3, 5]", "small_stem_kernel = [4]"), "odd"),
    (('model = "1.0-SqNxt-23"', 'model = "ResNet-20"'), "paper-family SqueezeNext"),
    (("keep = 0.5", "keep = 0"), "training.keep must be a fraction"),
    (("test_images = 100", "test_images = 20000"), "training.test_images must be a whole number"),
    (("{ train_images = 200, epochs = 1 }", "{ train_images = 200 }"), "needs train_images and epochs"),
    (("{ train_images = 200, epochs = 1 }", "{ train_images = 70000, epochs = 1 }"), "from 1 to 60,000"),
    (("warmup_steps = 2", "epochs = 2"), "unknown key training.recipe.epochs"),
    (("warmup_steps = 2", "lr = -1.0"), "--lr must be"),
    (('base = "8x8"', 'base = "8x8"\npoints = [{ pe = { rows = -1 } }]'), "pe.rows"),
    (('base = "8x8"', 'base = "8x8"\n[emulation]\nsparsity = 0.4'), "is the candidate's network.axes.prune"),
])
def test_a_bad_search_file_is_one_line_and_exit_2(tmp_path, capsys, change, message):
    path = write(tmp_path, TINY.replace(*change))
    assert CD.main([str(path), "--db", str(tmp_path / "x.sqlite")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.sqlite").exists()


def test_search_sizes_are_bounded_before_expansion(tmp_path, capsys):
    axis = "[" + ", ".join(f"[{i}, 1, 1, 1]" for i in range(1, 60)) + "]"
    path = write(tmp_path, TINY.replace("depths = [[1, 1, 1, 1], [2, 1, 1, 1]]", f"depths = {axis}"))
    assert CD.main([str(path), "--db", str(tmp_path / "x.sqlite"), "--resource-limit",
                    "max_sweep_points=100"]) == 2
    assert "118 candidates make 236 emulation points, more than max_sweep_points" in capsys.readouterr().err


def test_another_programs_database_is_refused(tmp_path, capsys):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    before = other.read_bytes()
    assert CD.main([str(write(tmp_path, TINY)), "--db", str(other)]) == 2
    assert "not a sweep database" in capsys.readouterr().err and other.read_bytes() == before


def test_a_tampered_training_record_is_refused(tiny_run, tmp_path):
    _, full = tiny_run
    copy = tmp_path / "t.sqlite"
    copy.write_bytes(full.read_bytes())
    with sqlite3.connect(copy) as conn:
        conn.execute("""UPDATE training SET record = json_set(record, '$.accuracy', 'high')""")
    db = CD.CodesignDB(copy)
    with pytest.raises(UserError, match="not a training record: accuracy is 'high'"):
        db.trained()
    db.close()


@pytest.mark.parametrize("text, budget", [("48epochs", CD.Budget(epochs=48)), ("2.5h", CD.Budget(hours=2.5)),
                                          ("3 epoch", CD.Budget(epochs=3)), (None, CD.Budget())])
def test_budget_parse(text, budget):
    assert CD.Budget.parse(text) == budget


@pytest.mark.parametrize("text", ["48", "0h", "-1h", "2 days", "epochs"])
def test_budget_refused(text):
    with pytest.raises(UserError, match="--budget"):
        CD.Budget.parse(text)


def test_spearman():
    assert CD.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1)
    assert CD.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1)
    assert CD.spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)  # 1 - 6 * 2 / (4 * 15)
    assert CD.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(0.9486833)  # ties: average ranks
    assert math.isnan(CD.spearman([1], [2])) and math.isnan(CD.spearman([1, 1], [1, 2]))


def test_the_search_files_in_the_docs_load():
    """Every search file docs/codesign.md runs is valid: its candidates build, its points expand."""
    files = sorted((Path(__file__).resolve().parents[1] / "docs" / "codesign").glob("*.toml"))
    assert len(files) >= 3
    for path in files:
        search = CD.load_search(path)
        assert search.candidates and search.points, path.name

