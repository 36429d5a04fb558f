"""A corpus of hostile files and faults (issue 16): each is refused with one UserError naming the
file, before any object is built or any large allocation made; outputs are whole or absent.

Bombs are made at test time (small on disk, huge when inflated or allocated). Memory is measured
with tracemalloc, which NumPy reports its buffers to: a refusal must cost a few megabytes at most.
"""
from __future__ import annotations

import gzip
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from sqnxt_engine import limits
from sqnxt_engine.errors import UserError, escape_controls
from sqnxt_engine.io.files import check_out, open_regular, write_atomic, write_atomic_group
from sqnxt_engine.io.model import load_model
from sqnxt_engine.io.weights import META_KEY

sys.path.insert(0, str(Path(__file__).parent))
import fuzz_targets as ft  # noqa: E402

CORPUS = Path(__file__).parent / "corpus"
MB = 1 << 20


def refused(load, path, match="", peak_mb=16):
    """`load(path)` raises a UserError naming the file, allocating at most `peak_mb`."""
    tracemalloc.start()
    try:
        with pytest.raises(UserError) as e:
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(e.value)
    assert Path(path).name in msg and "\n" not in msg, msg
    assert re.search(match, msg), msg
    assert peak < peak_mb * MB, f"{peak / MB:.0f} MB to refuse {path}"
    return msg



def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _npy_header(header: str, data: bytes = b"") -> bytes:
    h = header.encode("latin1")
    h += b" " * (-(10 + len(h) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


META = _npy(np.array(json.dumps({"architecture": "1.0-SqNxt-23"})))


def _weights(tmp_path, members: dict[str, bytes], method=zipfile.ZIP_STORED) -> Path:
    p = tmp_path / "w.npz"
    p.write_bytes(ft._zip(members, method))
    return p


# --- pickles ------------------------------------------------------------------------------------

@pytest.mark.parametrize("index", range(len(ft.hostile_pth())))
def test_hostile_pickles_run_nothing(tmp_path, monkeypatch, index):
    from sqnxt_engine.io.pth import read_pth
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "evil.pth"
    p.write_bytes(ft.hostile_pth()[index])
    refused(read_pth, p)
    assert not (tmp_path / ft.CANARY).exists()


def test_pickled_objects_in_a_weight_file_run_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = tmp_path / "evil.npz"
    p.write_bytes(ft.hostile_npz()[0])
    refused(load_model, p, "Python objects .* never does")
    assert not (tmp_path / ft.CANARY).exists()


def test_corpus_files_are_refused(tmp_path, monkeypatch):
    """The small hostile files kept in tests/corpus (see its README)."""
    from sqnxt_engine.emu.hardware import load_hardware
    from sqnxt_engine.io.prototxt import read_prototxt
    from sqnxt_engine.io.pth import read_pth
    monkeypatch.chdir(tmp_path)
    loaders = {".pth": read_pth, ".npz": load_model, ".prototxt": read_prototxt, ".toml": load_hardware}
    files = sorted(CORPUS.glob("*.*"))
    assert len(files) >= 8
    for f in files:
        if f.suffix in loaders:
            refused(loaders[f.suffix], f)
    assert not (tmp_path / ft.CANARY).exists()


# --- bombs --------------------------------------------------------------------------------------

def test_zip_bomb_in_a_weight_file_is_refused_unread(tmp_path):
    # 64 MB of zeros deflate to 64 kB; the archive declares the size, which is checked first
    zeros = _npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (16777216,), }", bytes(64 * MB))
    p = _weights(tmp_path, {"w.npy": zeros, "__meta__.npy": META}, zipfile.ZIP_DEFLATED)
    assert p.stat().st_size < MB
    with limits.using(max_file_bytes=8 * MB):
        refused(load_model, p, "declared size in all .* exceeds the limit max_file_bytes")


def test_zip_member_that_inflates_past_its_declared_size(tmp_path):
    data = ft._zip({"w.npy": bytes(4 * MB), "__meta__.npy": META}, zipfile.ZIP_DEFLATED)
    # lower the declared (uncompressed) size of w.npy in both headers: zipfile stops there
    fixed = data.replace(struct.pack("<I", 4 * MB), struct.pack("<I", 100))
    p = tmp_path / "w.npz"
    p.write_bytes(fixed)
    refused(load_model, p, "corrupt|malformed|Bad|CRC")


def test_pth_zip_bomb_is_refused_unread(tmp_path):
    from sqnxt_engine.io.pth import read_pth
    p = tmp_path / "bomb.pth"
    p.write_bytes(ft._zip({"archive/data.pkl": b"\x80\x02}.", "archive/data/0": bytes(64 * MB)},
                          zipfile.ZIP_DEFLATED))
    with limits.using(max_file_bytes=8 * MB):
        refused(read_pth, p, "exceeds the limit max_file_bytes")


def test_pth_tensor_with_zero_strides_and_a_huge_shape(tmp_path):
    """torch.save keeps views: one float with strides (0, 0) and shape 2^20 x 2^20 (4 TB dense)."""
    torch = pytest.importorskip("torch")
    from sqnxt_engine.io.pth import read_pth
    p = tmp_path / "stride.pth"
    torch.save({"w": torch.ones(1).expand(1 << 20, 1 << 20)}, p)
    assert p.stat().st_size < 10_000
    refused(read_pth, p, "elements .* exceeds the limit max_tensor_elements")


def test_legacy_pth_storage_larger_than_the_file(tmp_path):
    from sqnxt_engine.io.pth import read_pth
    good = ft.pth_seeds()[1]
    # the element count of the first storage (after the key list) set to 2^40
    i = good.rindex(struct.pack("<q", 3 * 4))  # "a.weight"'s 12 elements
    p = tmp_path / "big.pth"
    p.write_bytes(good[:i] + struct.pack("<q", 1 << 40) + good[i + 8:])
    refused(read_pth, p, "declares .* elements")


def test_gzip_bomb_in_the_data_set_cache(tmp_path):
    from sqnxt_engine.io.datasets import read_idx
    p = tmp_path / "train-images-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 64 * MB) + bytes(64 * MB), 1))
    with limits.using(max_file_bytes=8 * MB):
        refused(read_idx, p, "more than .* bytes")


# --- malformed npz / npy ------------------------------------------------------------------------

@pytest.mark.parametrize("member, match", [
    (b"not an npy file", "malformed .npy header"),
    (_npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", b"abc"), "data bytes"),
    (_npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }"),
     "exceeds the limit max_tensor_elements"),
    (_npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-5,), }"), "malformed"),
    (_npy_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", bytes(4)),
     "not a plain numeric type"),
    (_npy_header("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", bytes(8)), "Python objects"),
    (_npy_header("{'descr': '<f4', 'fortran_order': False, 'shape': " + "(" * 500 + ")" * 500 + ", }"),
     "malformed .npy header"),
    (_npy_header("__import__('os').system('touch CANARY')"), "malformed .npy header"),
    (_npy(np.array([1.0, np.nan], np.float32)), "NaN or infinite"),
    (_npy(np.array([np.inf], np.float16)), "NaN or infinite"),
])
def test_malformed_npy_members(tmp_path, monkeypatch, member, match):
    monkeypatch.chdir(tmp_path)
    p = _weights(tmp_path, {"c.npy": member, "__meta__.npy": META})
    refused(load_model, p, match)
    assert not (tmp_path / ft.CANARY).exists()


@pytest.mark.parametrize("order", ["<", ">"])
def test_metadata_text_past_the_last_code_point_is_refused(tmp_path, order):
    """A '<U' or '>U' member is 4-byte code units; NumPy makes a str of 0x110000 and beyond that
    crashed the metadata check with SystemError (the fuzz case FOUND in test_fuzz.py)."""
    units = [ord(c) for c in json.dumps({"sha256": "a" * 64})]
    units[12] = 0x110000  # inside the sha256 value, which the check reads character by character
    data = struct.pack(f"{order}{len(units)}I", *units)
    member = _npy_header(f"{{'descr': '{order}U{len(units)}', 'fortran_order': False, 'shape': (), }}", data)
    refused(load_model, _weights(tmp_path, {"__meta__.npy": member}), "past U\\+10FFFF")
    units[12] = 0x10FFFF  # the last code point is text: the file gets past the container
    data = struct.pack(f"{order}{len(units)}I", *units)
    member = _npy_header(f"{{'descr': '{order}U{len(units)}', 'fortran_order': False, 'shape': (), }}", data)
    refused(load_model, _weights(tmp_path, {"__meta__.npy": member}), "sha256 must be")

def test_zip_container_faults(tmp_path):
    arr = _npy(np.ones(3, np.float32))
    cases = {
        "not an .npy": {"c.txt": b"x", "__meta__.npy": META},
        "appears twice": None,
        "encrypted": None,
        "compression method": None,
    }
    refused(load_model, _weights(tmp_path, cases["not an .npy"]), "not a .npy")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, pytest.warns(UserWarning):
        z.writestr("c.npy", arr)
        z.writestr("c.npy", arr)
        z.writestr("__meta__.npy", META)
    (tmp_path / "dup.npz").write_bytes(buf.getvalue())
    refused(load_model, tmp_path / "dup.npz", "appears twice")
    enc = bytearray(ft._zip({"c.npy": arr, "__meta__.npy": META}))
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # set the "encrypted" flag in both headers
        for m in re.finditer(re.escape(sig), enc):
            flag_at = m.start() + (6 if sig == b"PK\x03\x04" else 8)
            enc[flag_at] |= 1
    (tmp_path / "enc.npz").write_bytes(enc)
    refused(load_model, tmp_path / "enc.npz", "encrypted")
    (tmp_path / "bz.npz").write_bytes(ft._zip({"c.npy": arr, "__meta__.npy": META}, zipfile.ZIP_BZIP2))
    refused(load_model, tmp_path / "bz.npz", "compression method 12")


# --- metadata and graphs in weight files ------------------------------------------------------------

def _with_meta(tmp_path, meta: dict | str, arrays=None) -> Path:
    text = meta if isinstance(meta, str) else json.dumps(meta)
    members = {f"{k}.npy": _npy(v) for k, v in (arrays or {}).items()}
    return _weights(tmp_path, {**members, "__meta__.npy": _npy(np.array(text))})


def _graph_meta(**node_args):
    node = {"name": "c", "op": "conv", "inputs": ["input"], "args": {"out_channels": 2, **node_args}}
    return {"graph": {"name": "g", "input_shape": [3, 8, 8], "outputs": ["c"], "nodes": [node]},
            "architecture": "g"}


@pytest.mark.parametrize("meta, match", [
    ({"architecture": "1.0-SqNxt-23", "input_size": "big"}, "input_size must be"),
    ({"architecture": "1.0-SqNxt-23", "labels": ["ok", "\x1b[2Jwipe"]}, "labels must be"),
    ({"architecture": "1.0-SqNxt-23", "std": [0]}, "std must be"),
    ({"architecture": "1.0-SqNxt-23", "zoo_options": {"num_classes": 10, "bogus": 1}},
     "unknown SqueezeNext option 'bogus'"),
    ({"architecture": "1.0-SqNxt-23", "zoo_options": {"num_classes": "ten"}}, "num_classes"),
    ("[" * 100000 + "]" * 100000, "nesting depth .* exceeds the limit max_nesting"),
    ('{"architecture": NaN}', "NaN is not a JSON value"),
    (_graph_meta(stride=0), "stride must be positive"),
    (_graph_meta(kernel=[3, 3, 3]), "one or two values"),
    (_graph_meta(kernel="3"), "must be an int or a list of ints"),
    (_graph_meta(padding=-1), "non-negative"),
    (_graph_meta(out_channels=2**40), "at most"),
    (_graph_meta(spin=1), "takes no argument 'spin'"),
    ({**_graph_meta(), "graph": {**_graph_meta()["graph"], "input_shape": [3, 2**30, 2**30]}},
     "exceeds the limit max_tensor_elements"),
    ({**_graph_meta(), "graph": {**_graph_meta()["graph"], "nodes": [
        {"name": "n", "op": "lrn", "inputs": ["input"], "args": {"size": 0}}], "outputs": ["n"]}},
     "size must be positive"),
    ({**_graph_meta(), "graph": {**_graph_meta()["graph"], "nodes": [
        {"name": "n", "op": "lrn", "inputs": ["input"], "args": {"alpha": float("inf")}}], "outputs": ["n"]}},
     "NaN|Infinity|finite"),
    ({**_graph_meta(), "graph": {**_graph_meta()["graph"], "nodes": [
        {"name": "n\x1b[31m", "op": "relu", "inputs": ["input"]}], "outputs": ["n\x1b[31m"]}},
     "control characters"),
    ({**_graph_meta(), "graph": {**_graph_meta()["graph"], "nodes": [
        {"name": "n", "op": "system", "inputs": ["input"]}]}}, "unknown operator 'system'"),
])
def test_bad_metadata_and_graphs(tmp_path, meta, match):
    if isinstance(meta, dict):
        meta = json.dumps(meta)  # NaN/Infinity floats are written as the bare words on purpose
    msg = refused(load_model, _with_meta(tmp_path, meta), match)
    assert "\x1b" not in msg


def test_huge_graphs_are_refused_by_node_count(tmp_path):
    nodes = [{"name": f"r{i}", "op": "relu", "inputs": [f"r{i - 1}" if i else "input"]} for i in range(300)]
    meta = {"graph": {"name": "g", "input_shape": [3, 8, 8], "nodes": nodes}, "architecture": "g"}
    with limits.using(max_graph_nodes=100):
        refused(load_model, _with_meta(tmp_path, meta), "node count .* exceeds the limit max_graph_nodes")


# --- ONNX -----------------------------------------------------------------------------------------

def _onnx_model(tmp_path, nodes, inits=(), in_shape=(1, 3, 8, 8), out="y"):
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(in_shape))], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    p = tmp_path / "m.onnx"
    p.write_bytes(model.SerializeToString())
    return p, onnx


def test_onnx_constant_of_shape_bomb(tmp_path):
    from onnx import helper, numpy_helper

    from sqnxt_engine.io.onnx_import import read_onnx
    shape = numpy_helper.from_array(np.array([1 << 20, 1 << 20], np.int64), "s")
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["big"], "cos"),
             helper.make_node("Add", ["x", "big"], ["y"], "add")]
    p, _ = _onnx_model(tmp_path, nodes, [shape])
    refused(read_onnx, p, "ConstantOfShape.*exceeds the limit max_tensor_elements")


def test_onnx_loop_is_never_run(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from sqnxt_engine.io.onnx_import import read_onnx
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                 helper.make_tensor_value_info("v_in", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [1])])
    inits = [numpy_helper.from_array(np.array(10**15, np.int64), "n"),
             numpy_helper.from_array(np.array(True), "c"), numpy_helper.from_array(np.zeros(1, np.float32), "v")]
    nodes = [helper.make_node("Loop", ["n", "c", "v"], ["lv"], "loop", body=body),
             helper.make_node("Add", ["x", "lv"], ["y"], "add")]
    p, _ = _onnx_model(tmp_path, nodes, inits)
    refused(read_onnx, p, r"does not support: .loop. \(Loop\)")


def test_onnx_range_and_huge_input_and_external_data(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    from sqnxt_engine.io.onnx_import import read_onnx
    inits = [numpy_helper.from_array(np.array(v, np.float32), n) for n, v in
             (("a", 0.0), ("b", 1e15), ("d", 1.0))]
    p, _ = _onnx_model(tmp_path, [helper.make_node("Range", ["a", "b", "d"], ["r"], "range"),
                                  helper.make_node("Add", ["x", "r"], ["y"], "add")], inits)
    refused(read_onnx, p, "Range.*exceeds the limit max_tensor_elements")
    p, _ = _onnx_model(tmp_path, [helper.make_node("Relu", ["x"], ["y"], "relu")], in_shape=(1, 3, 10**6, 10**6))
    refused(read_onnx, p, "declared elements .* exceeds the limit max_tensor_elements")
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3, 1, 1])
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value="/etc/passwd")
    p, _ = _onnx_model(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"], "conv")], [w])
    refused(read_onnx, p, "stored outside the file")
    nan = numpy_helper.from_array(np.full((2, 3, 1, 1), np.nan, np.float32), "w")
    p, _ = _onnx_model(tmp_path, [helper.make_node("Conv", ["x", "w"], ["y"], "conv")], [nan])
    refused(read_onnx, p, "NaN or infinite")


# --- text formats ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, match", [
    ("a {" * 5000 + "}" * 5000, "nesting depth .* exceeds the limit max_nesting"),
    (ft.PROTOTXT_SEED.decode().replace("input_dim: 16 input_dim: 16", "input_dim: 99999999 input_dim: 99999999"),
     "exceeds the limit max_tensor_elements"),
    (ft.PROTOTXT_SEED.decode().replace("stride: 2 pad", "stride: 0 pad"), "stride must be positive"),
    (ft.PROTOTXT_SEED.decode().replace("alpha: 0.0001", "alpha: nan"), "finite"),
])
def test_hostile_prototxt(tmp_path, text, match):
    from sqnxt_engine.io.prototxt import read_prototxt
    p = tmp_path / "net.prototxt"
    p.write_text(text)
    refused(read_prototxt, p, match)


@pytest.mark.parametrize("content, match", [
    (b"x = " + b"[" * 100000 + b"]" * 100000, "nesting depth"),
    (b"name = \"\xff\xfe\"\n", "not UTF-8"),
    (bytes(range(256)) * 4, "not UTF-8"),
    (b"x = { y = " * 2000 + b"1" + b" }" * 2000, "nesting depth"),
])
def test_hostile_toml(tmp_path, content, match):
    from sqnxt_engine.emu.hardware import load_hardware
    p = tmp_path / "hw.toml"
    p.write_bytes(content)
    refused(load_hardware, p, match)


def test_image_declaring_a_huge_size_is_refused_before_decoding(tmp_path):
    from PIL import Image

    from sqnxt_engine.io.images import PRESETS, load_image
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    png = bytearray(buf.getvalue())
    png[16:24] = struct.pack(">II", 60000, 60000)  # IHDR width and height, then its CRC
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    (tmp_path / "big.png").write_bytes(png)
    refused(lambda p: load_image(p, PRESETS["imagenet-torch"]), tmp_path / "big.png",
            "pixels .* exceeds the limit max_image_pixels")
    Image.new("L", (4000, 2)).save(tmp_path / "thin.png")
    refused(lambda p: load_image(p, PRESETS["imagenet-torch"]), tmp_path / "thin.png",
            "aspect ratio .* exceeds the limit max_image_aspect")


# --- only regular files ---------------------------------------------------------------------------

@pytest.fixture
def alarm():
    """Fail instead of hanging if a reader blocks on a FIFO."""
    def hang(*_):
        raise TimeoutError("blocked")
    old = signal.signal(signal.SIGALRM, hang)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.mark.parametrize("name", list(ft.LOADERS))
def test_fifos_devices_and_folders_are_refused_by_every_loader(tmp_path, alarm, name):
    suffix, load, _ = ft.LOADERS[name]
    fifo = tmp_path / f"pipe{suffix}"
    os.mkfifo(fifo)
    assert "is a FIFO (named pipe), not a regular file" in refused(load, fifo)
    folder = tmp_path / f"dir{suffix}"
    folder.mkdir()
    assert "is a directory" in refused(load, folder)
    with pytest.raises(UserError, match="/dev/zero: is a character device"):
        load(Path("/dev/zero"))


# --- outputs --------------------------------------------------------------------------------------

def test_force_never_replaces_a_fifo_or_device(tmp_path):
    fifo = tmp_path / "out.npz"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="is a FIFO .*--force replaces only regular files"):
        check_out(fifo, force=True)
    with pytest.raises(UserError, match="is a FIFO"):
        write_atomic(fifo, lambda f: f.write(b"x"), force=True)
    assert fifo.is_fifo() and os.listdir(tmp_path) == ["out.npz"]
    with pytest.raises(UserError, match="is a character device"):
        check_out("/dev/null", force=True)


def test_a_file_that_appears_during_the_run_is_not_clobbered(tmp_path):
    out = tmp_path / "out.csv"

    def slow_write(f):
        f.write(b"new")
        out.write_bytes(b"someone else's")  # appears while we write
    with pytest.raises(UserError, match="appeared there during the run; not overwritten"):
        write_atomic(out, slow_write)
    assert out.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["out.csv"]  # no temporary file left behind


def test_a_multi_file_output_is_whole_or_absent(tmp_path):
    def boom(f):
        raise KeyboardInterrupt  # Ctrl-C between the CSV and the PNG
    with pytest.raises(KeyboardInterrupt):
        write_atomic_group([(tmp_path / "t.csv", lambda f: f.write(b"a,b\n")), (tmp_path / "t.png", boom)])
    assert os.listdir(tmp_path) == []
    # the second file cannot be placed (appeared meanwhile): the first is taken back
    (tmp_path / "t.png").write_bytes(b"theirs")
    with pytest.raises(UserError, match="t.png: exists"):
        write_atomic_group([(tmp_path / "t.csv", lambda f: f.write(b"a,b\n")), (tmp_path / "t.png", lambda f: 0)])
    assert sorted(os.listdir(tmp_path)) == ["t.png"]
    write_atomic_group([(tmp_path / "t.csv", lambda f: f.write(b"a,b\n")), (tmp_path / "u.png", lambda f: 0)])
    assert sorted(os.listdir(tmp_path)) == ["t.csv", "t.png", "u.png"]


def test_a_failed_write_names_the_output_not_the_temporary_file(tmp_path, monkeypatch):
    import tempfile

    def denied(prefix, suffix, dir):
        raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "x1" + suffix))
    monkeypatch.setattr(tempfile, "mkstemp", denied)
    with pytest.raises(UserError) as e:
        write_atomic(tmp_path / "w.npz", lambda f: None)
    assert str(e.value) == f"{tmp_path / 'w.npz'}: cannot write in {tmp_path} (Permission denied)"


SLOW_WRITER = """
import sys, time
from sqnxt_engine.cli.common import run
from sqnxt_engine.io.files import write_atomic
def main(argv):
    def slow(f):
        f.write(b"partial")
        f.flush()
        print("writing", flush=True)
        time.sleep(30)
    write_atomic(argv[0], slow)
sys.exit(run(main, sys.argv[1:]))
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signals_remove_the_temporary_file(tmp_path, sig, code):
    # SIGINT's default action restored in the child: a shell starts background jobs (a test run
    # under `nohup ... &`) with SIGINT ignored, and Python then never raises KeyboardInterrupt
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(tmp_path / "out.npz")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline().strip() == "writing"
    assert len(os.listdir(tmp_path)) == 1  # the temporary file
    proc.send_signal(sig)
    assert proc.wait(timeout=20) == code
    proc.stdout.close()
    proc.stderr.close()
    assert os.listdir(tmp_path) == []


# --- what a failure looks like on the command line --------------------------------------------------

def _cli(*args):
    # run from the file system root: the source folder must not shadow the installed package
    return subprocess.run([sys.executable, "-m", "sqnxt_engine.cli.infer", *args], capture_output=True,
                          text=True, cwd="/", timeout=120)


def test_cli_error_is_one_escaped_line_exit_2(tmp_path):
    evil = tmp_path / "evil\x1b[2J\nname.png"
    evil.write_bytes(b"not an image")
    r = _cli(str(evil))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "\x1b" not in r.stderr and "\\x1b[2J\\nname.png" in r.stderr
    assert "Traceback" not in r.stderr
    r = _cli(str(evil), "--debug")
    assert "Traceback" in r.stderr


def test_resource_limit_option(tmp_path):
    r = _cli("--resource-limit", "max_image_pixels=10", "x.png")
    assert r.returncode == 2 and "x.png: no such file" in r.stderr
    r = _cli("--resource-limit", "bogus=1", "x.png")
    assert r.returncode == 2 and "NAME one of max_file_bytes" in r.stderr
    r = _cli("--resource-limit", "max_image_pixels=0", "x.png")
    assert r.returncode == 2 and "must be a positive integer" in r.stderr
    assert limits.parse_limit("max_file_bytes=2G") == ("max_file_bytes", 2 << 30)


def test_json_output_never_holds_bare_nan():
    from sqnxt_engine.cli.common import to_json
    text = to_json([{"p": float("nan"), "q": [float("inf"), 1.5]}])
    assert json.loads(text) == [{"p": None, "q": [None, 1.5]}]


def test_emulator_never_agrees_on_nan_outputs():
    from sqnxt_engine import zoo
    from sqnxt_engine.emu.hardware import load_hardware
    from sqnxt_engine.emu.network import emulate
    from sqnxt_engine.runtime import random_weights
    g = zoo.build("1.0-SqNxt-23", small_input=True, in_channels=1, num_classes=10, input_size=28)
    w = random_weights(g, 0)
    last = [k for k in w if k.endswith(".weight")][-1]
    w[last] = np.full_like(w[last], np.nan)
    with np.errstate(invalid="ignore"):  # quantizing NaN warns; the verdict is what is tested
        res = emulate(g, w, load_hardware("8x8"), "os", 0.0)
    assert res.top1_match is False


def test_escape_controls():
    assert escape_controls("a\nb\x1b[31m\u202e") == "a\\nb\\x1b[31m\\u202e"
    assert escape_controls("héllo, 中文 ok") == "héllo, 中文 ok"


def test_regular_files_open(tmp_path):
    (tmp_path / "f").write_bytes(b"ok")
    with open_regular(tmp_path / "f") as f:
        assert f.read() == b"ok"
    with pytest.raises(UserError, match="no such file"):
        open_regular(tmp_path / "missing")


def test_weight_file_arrays_and_meta_key(tmp_path):
    """A text array other than the metadata is refused; a file without metadata too."""
    p = _weights(tmp_path, {"c.npy": _npy(np.array("text")), "__meta__.npy": META})
    refused(load_model, p, "not a plain numeric type")
    p = _weights(tmp_path, {"c.npy": _npy(np.ones(2, np.float32))})
    refused(load_model, p, f"no {META_KEY} entry")
