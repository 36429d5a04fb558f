"""Hostile and careless inputs to sqnxt-emu sweep, pareto and diff: a sweep file's points counted
before anything is expanded, another program's database never written, a read-only view never
changing a file, damaged records and traces refused in one line, a scheduler that never answers
given up on, --jobs capped, worker processes that die with the command. Each case ended in a
hang, an internal error or a modified file before."""
import hashlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest
from processes import started_workers

from sqnxt_engine.emu import sweep as SW
from sqnxt_engine.emu.cli import main

TINY = '''
[[network]]
model = "1.0-SqNxt-23"
options = { input_size = 28, small_input = true, stem_stride = 2, num_classes = 10, depths = [1, 1, 1, 1] }
[hardware]
base = "8x8"
[hardware.grid]
buffer.bytes = [16384, 32768]
'''


def one_line_error(capsys, code, rc=2) -> str:
    assert code == rc
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "internal error" not in err
    return err


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


@pytest.fixture
def swept(tiny, tmp_path, capsys):
    db = tmp_path / "ours.sqlite"
    assert main(["sweep", str(tiny), "--db", str(db), "--jobs", "1"]) == 0
    capsys.readouterr()
    return db


def test_points_are_counted_before_anything_is_expanded(tmp_path, capsys):
    axes = "\n".join(f"a{i}.b = [" + ", ".join(map(str, range(10))) + "]" for i in range(9))
    sweep = tmp_path / "huge.toml"
    sweep.write_text('[[network]]\nmodel = "1.0-SqNxt-23"\n[hardware.grid]\n' + axes + "\n")
    t0 = time.perf_counter()
    err = one_line_error(capsys, main(["sweep", str(sweep), "--db", str(tmp_path / "h.sqlite")]))
    assert "1,000,000,000 points, more than max_sweep_points (100,000)" in err
    assert time.perf_counter() - t0 < 5 and not (tmp_path / "h.sqlite").exists()
    # the limit is a resource limit like the others
    assert "max_sweep_points=N" in err


def foreign_db(path):
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE users (name TEXT)")
        conn.execute("INSERT INTO users VALUES ('ada')")
    conn.close()


@pytest.mark.parametrize("command", ["sweep", "pareto"])
def test_another_programs_database_is_never_written(tiny, tmp_path, capsys, command):
    db = tmp_path / "theirs.sqlite"
    foreign_db(db)
    before = digest(db)
    argv = ["sweep", str(tiny), "--db", str(db)] if command == "sweep" else ["pareto", str(db)]
    err = one_line_error(capsys, main(argv))
    assert "not a sweep database (another program's: users)" in err
    assert digest(db) == before and not (tmp_path / "theirs.sqlite-wal").exists()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_pareto_is_read_only(tmp_path, swept, capsys):
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    err = one_line_error(capsys, main(["pareto", str(empty)]))
    assert "an empty database" in err and empty.stat().st_size == 0
    before = digest(swept)
    assert main(["pareto", str(swept), "--json"]) == 0
    assert digest(swept) == before


def test_a_sweep_database_carries_its_marker(swept):
    with sqlite3.connect(swept) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == SW.APPLICATION_ID
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SW.SCHEMA_VERSION


@pytest.mark.parametrize("record, what", [
    ("[1, 2]", "not a sweep record"),
    ('{"key": "k"}', "network is"),
    ("[" * 5000 + "]" * 5000, "nesting depth"),
    ("not json", "not valid JSON"),
])
def test_damaged_records_are_refused_in_one_line(swept, capsys, record, what):
    with sqlite3.connect(swept) as conn:
        conn.execute("UPDATE points SET record = ? WHERE rowid = 1", (record,))
    conn.close()
    err = one_line_error(capsys, main(["pareto", str(swept)]))
    assert what in err and "record 0" in err or "record 1" in err


def test_a_record_with_a_wrong_type_is_refused(swept, capsys):
    with sqlite3.connect(swept) as conn:
        (r,) = conn.execute("SELECT record FROM points LIMIT 1").fetchone()
        bad = json.loads(r) | {"energy": "a lot"}
        conn.execute("UPDATE points SET record = ?", (json.dumps(bad),))
    conn.close()
    assert "energy is 'a lot'" in one_line_error(capsys, main(["pareto", str(swept)]))


def test_a_corrupt_database_is_one_line(swept, capsys):
    data = bytearray(swept.read_bytes())
    data[100:4096] = os.urandom(3996)   # the schema page
    swept.write_bytes(bytes(data))
    for argv in (["pareto", str(swept)], ["sweep", str(swept.parent / "tiny.toml"), "--db", str(swept)]):
        one_line_error(capsys, main(argv))


def test_a_locked_database_stops_the_sweep_with_what_is_stored(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(SW, "BUSY_TIMEOUT_S", 0.1)
    db = tmp_path / "locked.sqlite"
    assert main(["sweep", str(tiny), "--db", str(db), "--jobs", "1"]) == 0   # made, marked
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM points WHERE rowid = 1")
    conn.close()
    capsys.readouterr()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        err = one_line_error(capsys, main(["sweep", str(tiny), "--db", str(db), "--jobs", "1"]))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "locked" in err


def test_a_store_error_mid_sweep_says_what_is_kept(tiny, tmp_path, capsys, monkeypatch):
    db = tmp_path / "full.sqlite"
    calls = []

    def add(self, record, info, real=SW.ResultsDB.add):
        calls.append(record["key"])
        if len(calls) == 2:
            raise SW.UserError(f"{self.path}: cannot store a point (database or disk is full)")
        real(self, record, info)
    monkeypatch.setattr(SW.ResultsDB, "add", add)
    err = one_line_error(capsys, main(["sweep", str(tiny), "--db", str(db), "--jobs", "1"]))
    assert "database or disk is full); 1 of 2 points are stored" in err and "computes the rest" in err


@pytest.mark.parametrize("text, what", [
    ("[" * 100_000 + "]" * 100_000, "nesting depth"),
    ('{"layers": [{"layer": "a", "cycles": 1e400, "energy": 1, "dram_bytes": 1, "utilisation": 0}],'
     ' "total": {"layer": "total", "cycles": 1, "energy": 1, "dram_bytes": 1, "utilisation": 0}}', "cycles"),
    ('{"layers": [{"layer": "a", "dataflow": {"x": 1}, "cycles": 1, "energy": 1, "dram_bytes": 1,'
     ' "utilisation": 0}], "total": {"layer": "total", "cycles": 1, "energy": 1, "dram_bytes": 1,'
     ' "utilisation": 0}}', "dataflow"),
    ('{"layers": [], "total": {"layer": "total", "cycles": NaN}}', "NaN is not a JSON value"),
])
def test_hostile_traces_are_refused_by_diff(tmp_path, capsys, text, what):
    a = tmp_path / "a.json"
    a.write_text(text)
    assert what in one_line_error(capsys, main(["diff", str(a), str(a)]))


def test_huge_hardware_values_are_refused(tiny, tmp_path, capsys):
    hw = tmp_path / "hw.toml"
    hw.write_text(f"[pe]\nrows = {2 ** 64}\ncols = 4\n[buffer]\nbytes = 4096\n")
    assert "pe.rows must be at most 4,096" in one_line_error(capsys, main(["trace", "--hw", str(hw)]))
    sweep = tmp_path / "s.toml"
    sweep.write_text(TINY.replace("buffer.bytes = [16384, 32768]", f"pe.rows = [8, {2 ** 63}]"))
    assert "pe.rows must be at most" in one_line_error(capsys, main(["sweep", str(sweep)]))


def test_a_scheduler_that_never_answers_is_given_up(tiny, tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(SW, "SCHEDULER_TIMEOUT_S", 1.0)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    accepted = []
    stop = threading.Event()

    def accept():   # accept every connection and never say a word
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                pass
    threading.Thread(target=accept, daemon=True).start()
    try:
        t0 = time.perf_counter()
        err = one_line_error(capsys, main(["sweep", str(tiny), "--db", str(tmp_path / "d.sqlite"),
                                           "--scheduler", f"tcp://127.0.0.1:{server.getsockname()[1]}"]))
        assert time.perf_counter() - t0 < 10
    finally:
        stop.set()
        server.close()
    assert "cannot reach a Dask scheduler" in err and "no answer in 1 s" in err


def test_jobs_are_capped_by_the_points(tiny, tmp_path, capsys):
    assert main(["sweep", str(tiny), "--db", str(tmp_path / "j.sqlite"), "--jobs", "10000"]) == 0
    err = capsys.readouterr().err
    assert "note: --jobs 10000 lowered to" in err and "2 points to compute" in err


def test_workers_die_with_a_killed_sweep(tmp_path):
    psutil = pytest.importorskip("psutil")
    sweep = tmp_path / "long.toml"   # 120 points: the workers live for seconds, not a moment
    sizes = ", ".join(str(16384 + 1024 * i) for i in range(60))
    sweep.write_text(TINY.replace("[16384, 32768]", f"[{sizes}]") + '[emulation]\nseed = [0, 1]\n')
    err = tmp_path / "stderr.txt"
    with open(err, "w") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", "from sqnxt_engine.emu.cli import main; main()",
                                 "sweep", str(sweep), "--db", str(tmp_path / "k.sqlite"), "--jobs", "2"],
                                stdout=subprocess.DEVNULL, stderr=stderr, cwd=tmp_path)  # not the source tree
    try:
        children = started_workers(psutil, proc)
        assert len(children) >= 2, f"the sweep started no workers (exit {proc.poll()}): {err.read_text()[-300:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, f"{len(alive)} worker(s) outlived the sweep"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_a_copy_named_like_a_shipped_file_gets_no_shipped_accuracy(tmp_path, capsys):
    """A sweep's accuracy of a weight file comes from the manifest only for the shipped bytes:
    a file that merely has a shipped file's name (or one a name match would take) has none."""
    import numpy as np

    from sqnxt_engine.io.shipped import shipped_weights
    from sqnxt_engine.io.weights import read_npz_with_meta, write_npz_with_meta
    arrays, meta = read_npz_with_meta(shipped_weights("ResNet-20-fmnist"), "weight file")
    arrays = {k: (v * np.float32(0.5)).astype(v.dtype) if k.endswith(".weight") else v
              for k, v in arrays.items()}
    fake = tmp_path / "ResNet_20_FMNIST.npz"
    write_npz_with_meta(fake, arrays, json.dumps(meta), force=False)
    sweep = tmp_path / "s.toml"
    sweep.write_text(f'[[network]]\nweights = "{fake}"\n[hardware]\nbase = "8x8"\n')
    assert main(["sweep", str(sweep), "--db", str(tmp_path / "a.sqlite"), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)["records"]
    assert record["accuracy"] is None and record["accuracy_source"] is None


def test_a_network_too_deep_to_build_is_refused_before_building(tmp_path, capsys):
    """depths of 2^32 blocks (found by benchmarks/fuzz.py's sweep target) built for ever."""
    sweep = tmp_path / "deep.toml"
    sweep.write_text(TINY.replace("depths = [1, 1, 1, 1]", f"depths = [{2 ** 32}, 1, 1, 1]"))
    t0 = time.perf_counter()
    err = one_line_error(capsys, main(["sweep", str(sweep), "--db", str(tmp_path / "d.sqlite")]))
    assert "exceeds the limit max_graph_nodes" in err and time.perf_counter() - t0 < 5
    err = one_line_error(capsys, main(["trace", "--zoo-options", '{"depths": [1, 1, 1, 4294967296]}']))
    assert "depths: nodes of the blocks" in err


def test_a_fifo_as_the_database_is_refused(tiny, tmp_path, capsys):
    fifo = tmp_path / "db.sqlite"
    os.mkfifo(fifo)
    for argv in (["sweep", str(tiny), "--db", str(fifo)], ["pareto", str(fifo)]):
        assert "is a FIFO (named pipe), not a regular file" in one_line_error(capsys, main(argv))
