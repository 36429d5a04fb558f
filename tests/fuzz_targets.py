"""What the fuzzers attack: one valid seed file per loader, hostile seeds, and mutations.

Shared by the in-suite fuzz tests (tests/test_fuzz.py, a few hundred cases per loader) and the
long run (benchmarks/fuzz.py, >= 10,000 cases per loader). A case is bytes written to a file;
the loader reads that file and must either succeed or raise UserError. Mutations are structured
where the format has structure: zip archives are rebuilt around a mutated member (so the CRC
holds and the member's content is what gets tested), text formats get token-level changes
(numbers swapped for extreme ones, brackets repeated, control characters), and the JSON
metadata of weight files is mutated as JSON and written back.

Hostile seeds carry a canary: pickles that would create the file CANARY (in the working folder)
or call os.system if any pickled code ran.
"""
from __future__ import annotations

import gzip
import io
import json
import random
import re
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

CANARY = "CANARY"  # a file that only executed pickled code would create

# --- seeds --------------------------------------------------------------------------------------


def _graph():
    from sqnxt_engine.graph import LRN, Flatten, GraphBuilder, Linear, MaxPool
    b = GraphBuilder("fz", (3, 12, 12))
    x = b.conv_bn_act("c1", b.input, 4, 3, padding=1, bias=True)
    x = b.add("pool", MaxPool(2, 2), x)
    x = b.add("lrn", LRN(3), x)
    x = b.add("flat", Flatten(), x)
    b.add("fc", Linear(5), x)
    return b.build()


def weights_seed(tmp: Path) -> bytes:
    from sqnxt_engine.io.model import save_model
    g = _graph()
    rng = np.random.default_rng(0)
    arrays = {k: rng.standard_normal(s).astype(np.float32) for k, s in g.param_shapes().items()}
    meta = {"labels": [f"c{i}" for i in range(5)], "input_size": 12, "resize": 12, "mean": [1, 2, 3],
            "std": [4.0], "source": "fuzz", "sha256": "0" * 64}
    path = save_model(tmp / "seed.npz", g, arrays, meta, force=True, in_zoo=False)
    with zipfile.ZipFile(path) as z:  # np.savez dates the members by the clock: rewritten, fixed
        return _zip({i.filename: z.read(i) for i in z.infolist()})


def pth_seeds() -> list[bytes]:
    """A zip and a legacy torch.save of a small state dict (torch only here, never in loaders)."""
    import torch
    state = {"a.weight": torch.arange(12, dtype=torch.float32).reshape(3, 4),
             "a.bias": torch.ones(3, dtype=torch.float16), "n": torch.tensor([1, 2], dtype=torch.int64),
             "v": torch.arange(10, dtype=torch.float32)[2:8:2]}
    out = []
    for new in (True, False):
        buf = io.BytesIO()
        torch.save({"state_dict": state}, buf, _use_new_zipfile_serialization=new)
        out.append(buf.getvalue() if new else _fixed_storage_keys(buf.getvalue()))
    return out


def _fixed_storage_keys(data: bytes) -> bytes:
    """The legacy format names each storage by its memory address (different on every run) and
    writes the storages in the order of those names. Renamed 0...0, 0...1, ... in the order the
    tensors name them (same lengths: the pickles stay valid) and written in that order, the seed
    and every case made from it are the same bytes on every run."""
    import pickle
    import pickletools
    ends, at = [], 0
    for _ in range(5):  # magic number, protocol, system info, the object, the storage keys
        at = 1 + max(pos for _, _, pos in pickletools.genops(data[at:])) + at
        ends.append(at)
    keys = pickle.loads(data[ends[3]:ends[4]])
    sizes, glob, last, memo = {}, "", None, {}  # key -> element size, from the storage type before it
    for op, arg, _ in pickletools.genops(data[ends[2]:ends[3]]):
        if op.name == "GLOBAL":
            glob = arg
        elif op.name in ("BINPUT", "LONG_BINPUT") and last == "GLOBAL":
            memo[arg] = glob
        elif op.name in ("BINGET", "LONG_BINGET") and arg in memo:
            glob = memo[arg]  # a storage type named again
        elif op.name == "BINUNICODE" and arg in keys and arg not in sizes:
            sizes[arg] = {"Float": 4, "Half": 2, "Long": 8, "Double": 8, "Int": 4, "BFloat16": 2}[
                glob.split()[-1].removesuffix("Storage")]
        last = op.name
    order = list(sizes)  # first named first
    new = {k: str(i).zfill(len(k)) for i, k in enumerate(order)}
    records, at = {}, ends[4]
    for k in keys:
        n = struct.unpack("<q", data[at:at + 8])[0]
        records[k], at = data[at:at + 8 + n * sizes[k]], at + 8 + n * sizes[k]
    head = data[:ends[3]]
    for k in order:
        head = head.replace(b"X" + struct.pack("<I", len(k)) + k.encode(),
                            b"X" + struct.pack("<I", len(k)) + new[k].encode())
    key_list = pickle.dumps(sorted(new.values()), protocol=2)
    return head + key_list + b"".join(records[k] for k in sorted(order, key=new.get)) + data[at:]


def hostile_pickles() -> list[bytes]:
    """Pickles that run code when loaded with pickle.load: every way a pickle can name a callable
    (GLOBAL, STACK_GLOBAL, INST, OBJ, REDUCE, NEWOBJ, BUILD, extension codes) and the canary."""
    touch = f"open({CANARY!r}, 'w').close()"
    p = [
        f"cbuiltins\nexec\n(V{touch}\ntR.".encode(),                     # GLOBAL + REDUCE
        f"cposix\nsystem\n(Vtouch {CANARY}\ntR.".encode(),
        f"(Vtouch {CANARY}\nios\nsystem\n.".encode(),                     # INST
        f"(cos\nsystem\nVtouch {CANARY}\no.".encode(),                    # OBJ
        b"\x80\x04\x95" + struct.pack("<Q", 0) + b"\x8c\x08builtins\x94\x8c\x04exec\x94\x93\x94"
        + b"\x8c" + bytes([len(touch)]) + touch.encode() + b"\x85R.",    # STACK_GLOBAL, protocol 4
        b"\x80\x02cbuiltins\nobject\n)\x81}(Vx\nK\x01ub.",                # NEWOBJ + BUILD
        b"\x80\x02\x82\x01.",                                             # EXT1 (copyreg registry)
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(cos\nsystem\nK\x00)))tR.",  # code inside args
        b"\x80\x02c_codecs\nencode\nVx\nVrot13\n\x86R.",                  # an allowed global, bad args
        b"\x80\x02ccollections\nOrderedDict\n)R}(Vx\ncos\nsystem\nub.",  # BUILD smuggling a global
        b"\x80\x02" + b"(" * 10000 + b"t" * 10000 + b".",                 # nesting
        b"\x80\x02]q\x00h\x00a.",                                         # a list that holds itself
    ]
    # "billion laughs": each level holds ten references to the one below (memo, no copies)
    laughs = b"\x80\x02]q\x00"
    for level in range(1, 40):
        laughs += b"(" + (b"h" + bytes([level - 1])) * 10 + b"lq" + bytes([level])
    p.append(laughs + b".")
    return p


def _zip(members: dict[str, bytes], method=zipfile.ZIP_STORED) -> bytes:
    """A zip archive of `members`, the same bytes on every run (a fixed date, not the clock's)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, method)
    return buf.getvalue()


def hostile_pth() -> list[bytes]:
    """The hostile pickles as torch.save files: inside a zip archive and bare (legacy form)."""
    return [_zip({"archive/data.pkl": p}) for p in hostile_pickles()] + hostile_pickles()


def hostile_npz() -> list[bytes]:
    """Weight files whose arrays are pickled objects (the canary runs if numpy unpickles)."""
    class Canary:
        def __reduce__(self):
            return (exec, (f"open({CANARY!r}, 'w').close()",))
    buf = io.BytesIO()
    np.save(buf, np.array([Canary()], dtype=object), allow_pickle=True)
    meta = io.BytesIO()
    np.save(meta, np.array(json.dumps({"architecture": "fz"})))
    return [_zip({"w.npy": buf.getvalue(), "__meta__.npy": meta.getvalue()})]


def onnx_seed() -> bytes:
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.zeros(4, np.float32), "b"),
             numpy_helper.from_array(rng.standard_normal((5, 4)).astype(np.float32), "fw"),
             numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], "conv", pads=[1, 1, 1, 1], strides=[1, 1]),
             helper.make_node("Relu", ["c"], ["r"], "relu"),
             helper.make_node("MaxPool", ["r"], ["p"], "pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["p"], ["g"], "gap"),
             helper.make_node("Reshape", ["g", "flat_shape"], ["f"], "flat"),
             helper.make_node("Gemm", ["f", "fw"], ["y"], "fc", transB=1)]
    graph = helper.make_graph(nodes, "fz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    return model.SerializeToString()


PROTOTXT_SEED = b"""name: "fz"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 16 input_dim: 16
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
  pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "norm1" type: "LRN" bottom: "pool1" top: "norm1" lrn_param { local_size: 5 alpha: 0.0001 beta: 0.75 } }
layer { name: "fc" type: "InnerProduct" bottom: "norm1" top: "fc" inner_product_param { num_output: 10 } }
"""


def toml_seed() -> bytes:
    from importlib import resources
    return resources.files("sqnxt_engine.emu").joinpath("presets", "16x16.toml").read_bytes()


def image_seeds() -> list[bytes]:
    from PIL import Image
    out = []
    rng = np.random.default_rng(0)
    for fmt, mode in (("PNG", "RGB"), ("PNG", "P"), ("JPEG", "RGB"), ("GIF", "L"), ("BMP", "RGB"),
                      ("PNG", "RGBA"), ("TIFF", "RGB"), ("ICO", "RGBA")):   # (ICNS writes 2 MB)
        img = Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).convert(mode)
        buf = io.BytesIO()
        img.save(buf, fmt, **({"sizes": [(16, 16), (32, 32)]} if fmt == "ICO" else {}))
        out.append(buf.getvalue())
    buf = io.BytesIO()   # 16-bit grey: budgeted by its decoded bytes, not its pixels
    Image.fromarray(rng.integers(0, 65535, (20, 30), dtype=np.uint16)).save(buf, "PNG")
    out.append(buf.getvalue())
    return out


def idx_seed() -> bytes:
    data = b"\x00\x00\x08\x03" + struct.pack(">III", 4, 5, 5) + bytes(range(100))
    return gzip.compress(data, mtime=0)


# --- loaders ------------------------------------------------------------------------------------

def _load_weights(path):
    from sqnxt_engine.io.model import load_model
    load_model(path)


def _load_pth(path):
    from sqnxt_engine.io.pth import read_pth
    read_pth(path)


def _load_onnx(path):
    from sqnxt_engine.io.onnx_import import read_onnx
    read_onnx(path)


def _load_prototxt(path):
    from sqnxt_engine.io.prototxt import read_prototxt
    read_prototxt(path)


def _load_toml(path):
    from sqnxt_engine.emu.hardware import load_hardware
    load_hardware(path)


def _load_image(path):
    from sqnxt_engine.io.images import PRESETS, load_image
    load_image(path, PRESETS["imagenet-torch"])


def _load_idx(path):
    from sqnxt_engine.io.datasets import read_idx
    read_idx(path)


SWEEP_SEED = b"""[[network]]
model = "1.0-SqNxt-23"
options = { input_size = 28, small_input = true, stem_stride = 2, num_classes = 10, depths = [1, 1, 1, 1] }
[hardware]
base = "8x8"
points = [{ pe = { rows = 4, cols = 4 } }, {}]
[hardware.grid]
buffer.bytes = [16384, 32768]
[emulation]
dataflow = ["best", "ws"]
sparsity = 0.4
seed = [0, 1]
"""


def _record(i: int) -> dict:
    """A stored sweep record of the shape compute_record makes (made by hand: no emulation)."""
    from sqnxt_engine.emu import sweep as SW
    r = {c: 0 for c in SW.COLUMNS} | {k: 1.5 for k, kind in SW.RECORD_FIELDS.items() if kind == (int, float)}
    r.update(key=f"k{i}", network="net", model="1.0-SqNxt-23", zoo_options="{}", file=None, hardware="8x8",
             overrides="{}", pe_rows=8, pe_cols=8, gb_bytes=32768, word_bits=16, clock_mhz=500.0,
             dataflow="best", seed=i, energy_unit="normalised (MAC = 1)", accuracy=50.0 + i,
             accuracy_source="made up", params=1000 + i, top1_match=True, version="0")
    return r


def sweep_db_seed(tmp: Path) -> bytes:
    from sqnxt_engine.emu import sweep as SW
    path = tmp / "seed.sqlite"
    path.unlink(missing_ok=True)
    db = SW.ResultsDB(path)
    for i in range(3):
        db.add(_record(i), {"finished_at": "2026-01-01T00:00:00+00:00", "worker": "w", "seconds": 1.0})
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.execute("PRAGMA journal_mode=DELETE")   # one self-contained file
    db.close()
    return path.read_bytes()


def trace_seed() -> bytes:
    row = {"layer": "stem", "kind": "conv", "dataflow": "ws", "cycles": 100, "energy": 12.5,
           "dram_bytes": 64, "utilisation": 0.5}
    return json.dumps({"model": "m", "hardware": "8x8", "dataflow": "best",
                       "layers": [row, {**row, "layer": "fc", "dataflow": "os_socmop"}],
                       "total": {**row, "layer": "total", "cycles": 200}}).encode()


def _load_sweep(path):
    from sqnxt_engine.emu.sweep import load_sweep
    load_sweep(path)


def _load_sweep_db(path):
    from sqnxt_engine.emu.pareto import fronts
    from sqnxt_engine.emu.sweep import open_results
    db = open_results(path)
    try:
        fronts(db.records())
        db.rows()
    finally:
        db.close()


def _load_trace(path):
    from sqnxt_engine.emu.compare import diff, load_trace
    t = load_trace(path)
    diff(t, t)


_CKPT_IDENTITY = {"run": "fuzz"}
_CKPT_SETTING = {"threads": 1, "device": "cpu"}


def _ckpt_objects():
    """A small module, its SGD optimiser and a generator: what a checkpoint is restored into."""
    import torch

    from sqnxt_engine.graph import GraphBuilder
    from sqnxt_engine.graph import ops as O
    from sqnxt_engine.train.torch_graph import GraphModule
    b = GraphBuilder("fz", (1, 8, 8))
    x = b.conv_bn_act("c1", b.input, 4, 3, 1, 1)
    x = b.add("flat", O.Flatten(), b.add("gap", O.GlobalAvgPool(), x))
    b.add("fc", O.Linear(3), x)
    torch.manual_seed(0)
    model = GraphModule(b.build())
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), torch.Generator()


def checkpoint_seed(tmp: Path) -> bytes:
    """A sqnxt-train checkpoint after epoch 1 of 3 (4 steps an epoch), its momentum filled."""
    import torch

    from sqnxt_engine.train.checkpoint import Checkpoint
    model, opt, gen = _ckpt_objects()
    model(torch.zeros(2, 1, 8, 8)).sum().backward()
    opt.step()
    path = tmp / "seed.ckpt"
    Checkpoint(path, _CKPT_IDENTITY, _CKPT_SETTING).save(model, opt, gen,
                                                         {"epoch": 1, "step": 4, "seconds": 1.5})
    with zipfile.ZipFile(path) as z:  # fixed member dates, as weights_seed
        return _zip({i.filename: z.read(i) for i in z.infolist()})


def _load_checkpoint(path):
    from sqnxt_engine.train.checkpoint import Checkpoint
    Checkpoint(path, _CKPT_IDENTITY, _CKPT_SETTING).restore(*_ckpt_objects(), epochs=3,
                                                            steps_per_epoch=4)


def _quant_graph():
    from sqnxt_engine.graph import Add, Flatten, GlobalAvgPool, GraphBuilder, Linear, MaxPool
    b = GraphBuilder("fq", (2, 6, 6))
    x = b.conv_bn_act("c1", b.input, 4, 3, padding=1)
    y = b.conv_bn_act("c2", x, 4, 1, act=None)
    x = b.relu("sum.act", b.add("sum", Add(), x, y))
    x = b.add("pool", MaxPool(2, 2), x)
    x = b.add("flat", Flatten(), b.add("gap", GlobalAvgPool(), x))
    b.add("fc", Linear(3), x)
    return b.build()


def quantized_seeds(tmp: Path) -> list[bytes]:
    """A small quantized file (its graph inside) of each method at 8 and 16 bits."""
    from sqnxt_engine.graph.serialize import graph_to_dict
    from sqnxt_engine.quant import quantize_network
    from sqnxt_engine.quant.model import save_quantized
    from sqnxt_engine.runtime import random_weights
    g = _quant_graph()
    w = random_weights(g, 0)
    x = np.random.default_rng(1).normal(0, 1, (8,) + g.input_shape).astype(np.float32)
    out = []
    for bits, method in ((8, "shift-scaler"), (16, "per-channel")):
        model, _ = quantize_network(g, w, [x], 8, bits, method, "max", meta={"graph": graph_to_dict(g)})
        path = save_quantized(tmp / f"q{bits}.npz", model, force=True)
        with zipfile.ZipFile(path) as z:  # fixed member dates, as weights_seed
            out.append(_zip({i.filename: z.read(i) for i in z.infolist()}))
    return out


def _load_quantized(path):
    """What sqnxt-infer does with a quantized file: load (the schema's checks), then run images
    through the integer runner; an accepted file must run without an error."""
    from sqnxt_engine.quant.model import load_quantized
    model = load_quantized(str(path))
    x = np.linspace(-3, 3, 2 * int(np.prod(model.graph.input_shape)), dtype=np.float32)
    with np.errstate(all="raise"):  # an accepted file computes no NaN, no overflow
        model(x.reshape((2,) + model.graph.input_shape))


def _warm_quantized():
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        for i, data in enumerate(quantized_seeds(Path(d))):
            (Path(d) / f"w{i}.npz").write_bytes(data)
            _load_quantized(Path(d) / f"w{i}.npz")


# what a loader needs loaded before benchmarks/fuzz.py watches for code run: importing torch
# dlopens its libraries, an event the watch would take for a case running code
WARM_UP = {"checkpoint (.ckpt)": _ckpt_objects, "quantized weights (.npz)": _warm_quantized}

# name -> (file suffix, loader, seeds(tmp folder) -> list of byte strings)
LOADERS: dict[str, tuple[str, Callable, Callable[[Path], list[bytes]]]] = {
    "weights (.npz)": (".npz", _load_weights, lambda tmp: [weights_seed(tmp)] + hostile_npz()),
    "pytorch (.pth)": (".pth", _load_pth, lambda tmp: pth_seeds() + hostile_pth()),
    "onnx": (".onnx", _load_onnx, lambda tmp: [onnx_seed()]),
    "caffe (.prototxt)": (".prototxt", _load_prototxt, lambda tmp: [PROTOTXT_SEED]),
    "hardware (.toml)": (".toml", _load_toml, lambda tmp: [toml_seed()]),
    "image": (".img", _load_image, lambda tmp: image_seeds()),
    "idx (.gz)": (".gz", _load_idx, lambda tmp: [idx_seed()]),
    "sweep (.toml)": (".toml", _load_sweep, lambda tmp: [SWEEP_SEED]),
    "sweep database (.sqlite)": (".sqlite", _load_sweep_db, lambda tmp: [sweep_db_seed(tmp)]),
    "trace (.json)": (".json", _load_trace, lambda tmp: [trace_seed()]),
    "checkpoint (.ckpt)": (".ckpt", _load_checkpoint, lambda tmp: [checkpoint_seed(tmp)]),
    "quantized weights (.npz)": (".npz", _load_quantized, quantized_seeds),
}

# --- mutations ----------------------------------------------------------------------------------

_INTERESTING_INTS = [0, -1, 1, 2, 3, 7, 255, 256, 65535, 2**31 - 1, 2**31, 2**32, 2**63 - 1, 10**18, 10**100]
_INTERESTING_WORDS = ["nan", "inf", "-inf", "1e308", "-0", "true", "null", '"\\u001b[2J"', "[]", "{}",
                      "\"x\\ny\""]
_NUMBER = re.compile(rb"-?\d+(\.\d+)?(e-?\d+)?")


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One mutation of `data`, structure-aware where the format allows (see the module notes)."""
    # a structured mutation needs a parsable input; an earlier mutation may have broken it
    if data[:2] == b"PK" and rng.random() < 0.7:
        try:
            return _mutate_zip(data, rng)
        except Exception:  # noqa: BLE001
            pass
    if data[:2] == b"\x1f\x8b" and rng.random() < 0.6:
        try:
            return gzip.compress(mutate(gzip.decompress(data), rng), mtime=0)
        except Exception:  # noqa: BLE001
            pass
    if _is_text(data) and rng.random() < 0.6:
        return _mutate_text(data, rng)
    return _mutate_bytes(data, rng)


def _is_text(data: bytes) -> bool:
    return data[:1] in (b"n", b"#", b"{", b"[") or data.startswith(b"\x93NUMPY")


def _mutate_zip(data: bytes, rng: random.Random) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {i.filename: z.read(i) for i in z.infolist()}
    names = list(members)
    name = rng.choice(names)
    roll = rng.random()
    if name.endswith("__meta__.npy") and roll < 0.5:
        members[name] = _mutate_meta(members[name], rng)
    elif roll < 0.05:
        del members[name]
    elif roll < 0.1:
        members[name + rng.choice(["", ".npy", "x"])] = members[name][: rng.randrange(1 + len(members[name]))]
    else:
        members[name] = mutate(members[name], rng)
    method = rng.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
    return _zip(members, method)


def _mutate_meta(npy: bytes, rng: random.Random) -> bytes:
    """A weight file's metadata, mutated as JSON: a value somewhere replaced by another."""
    arr = np.load(io.BytesIO(npy), allow_pickle=False)
    meta = json.loads(str(arr))
    for _ in range(rng.randint(1, 3)):
        _mutate_json(meta, rng)
    buf = io.BytesIO()
    np.save(buf, np.array(json.dumps(meta)))
    return buf.getvalue()


def _random_json(rng: random.Random, depth=0):
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(_INTERESTING_INTS)
    if roll < 0.4:
        return rng.choice([0.0, -1.5, 1e308, 1e-308])
    if roll < 0.5:
        return rng.choice(["", "x", "\x1b[31mred", "a\nb", "conv", "input", "RGB", "imagenet"])
    if roll < 0.6:
        return rng.choice([True, False, None])
    if roll < 0.8 and depth < 3:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 3:
        return {rng.choice(["a", "kernel", "stride", "name", "op", "args"]): _random_json(rng, depth + 1)}
    return 1


def _mutate_json(obj, rng: random.Random) -> None:
    """Replace, delete or add one entry at a random place in a JSON tree (in place)."""
    path = [obj]
    while True:
        cur = path[-1]
        kids = list(cur.items()) if isinstance(cur, dict) else list(enumerate(cur)) if isinstance(cur, list) else []
        kids = [(k, v) for k, v in kids if isinstance(v, (dict, list))]
        if not kids or rng.random() < 0.3:
            break
        path.append(rng.choice(kids)[1])
    cur = path[-1]
    if isinstance(cur, dict) and cur:
        key = rng.choice(list(cur))
        roll = rng.random()
        if roll < 0.15:
            del cur[key]
        elif roll < 0.25:
            cur[rng.choice(["extra", "kernel", "size", "zz"])] = _random_json(rng)
        else:
            cur[key] = _random_json(rng)
    elif isinstance(cur, list) and cur:
        i = rng.randrange(len(cur))
        if rng.random() < 0.2:
            cur.pop(i)
        else:
            cur[i] = _random_json(rng)


def _mutate_text(data: bytes, rng: random.Random) -> bytes:
    roll = rng.random()
    numbers = list(_NUMBER.finditer(data))
    if roll < 0.4 and numbers:
        m = rng.choice(numbers)
        new = str(rng.choice(_INTERESTING_INTS)) if rng.random() < 0.7 else rng.choice(_INTERESTING_WORDS)
        return data[:m.start()] + new.encode() + data[m.end():]
    if roll < 0.55:  # deep nesting
        i = rng.randrange(len(data) + 1)
        opener = rng.choice([b"{", b"[", b"a { ", b"x = [", b"<"])
        return data[:i] + opener * rng.choice([10, 100, 5000]) + data[i:]
    if roll < 0.65:  # control characters and non-UTF-8 bytes
        i = rng.randrange(len(data) + 1)
        return data[:i] + rng.choice([b"\x1b[2J", b"\n", b"\x00", b"\xff\xfe", b"\xc3", b"\"", b"}"]) + data[i:]
    if roll < 0.8:  # a line duplicated many times
        lines = data.split(b"\n")
        i = rng.randrange(len(lines))
        lines[i:i + 1] = [lines[i]] * rng.choice([2, 50, 2000])
        return b"\n".join(lines)
    return _mutate_bytes(data, rng)


def _mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        i = rng.randrange(len(b) + 1) if b else 0
        if roll < 0.35 and b:
            b[min(i, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif roll < 0.55 and b:
            v = rng.choice(_INTERESTING_INTS) & 0xFFFFFFFF
            b[i:i + 4] = struct.pack(rng.choice(["<I", ">I"]), v)
        elif roll < 0.65:
            del b[i:]
        elif roll < 0.8:
            j = rng.randrange(len(b) + 1) if b else 0
            b[i:i] = b[min(i, j):max(i, j)][:4096]
        elif roll < 0.9 and b:
            del b[i:i + rng.randint(1, 64)]
        else:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
    return bytes(b)


def case(seeds: list[bytes], rng: random.Random) -> bytes:
    """One fuzz case: a seed, unchanged now and then (hostile seeds must stay refused), else mutated
    one to three times."""
    data = rng.choice(seeds)
    if rng.random() < 0.05:
        return data
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        data = mutate(data, rng)
    return data


def _convert_onnx(path):
    """The sqnxt-convert command on a mutated ONNX file: exit 0 or 2 only, and nothing left in
    the folder but its output (an exit code of 1 is an internal error: a crash)."""
    import contextlib

    from sqnxt_engine.cli.convert import main
    from sqnxt_engine.errors import UserError
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(path), "-o", str(path.with_name("out.npz")), "--force"])
    if code == 2:
        raise UserError(err.getvalue().strip())
    if code != 0:
        raise RuntimeError(f"exit {code}: {err.getvalue().strip()}")


LOADERS["sqnxt-convert (.onnx)"] = (".onnx", _convert_onnx, lambda tmp: [onnx_seed()])
OUTPUTS = {"out.npz"}  # what a case may leave beside its input
