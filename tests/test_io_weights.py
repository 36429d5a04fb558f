"""The project's .npz weight files: round trip, metadata, atomic writes, mismatches named."""
import json
import os

import numpy as np
import pytest

from sqnxt_engine.errors import UserError
from sqnxt_engine.graph import Flatten, GraphBuilder, Linear
from sqnxt_engine.graph.graph import check_weights
from sqnxt_engine.io.weights import META_KEY, load_weights, save_weights, sha256_file


def tiny_graph():
    b = GraphBuilder("tiny", (3, 8, 8))
    x = b.conv_bn_act("c1", b.input, 4, 3, padding=1, bias=True)
    x = b.add("flat", Flatten(), x)
    b.add("fc", Linear(5), x)
    return b.build()


def tiny_arrays(graph, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in graph.param_shapes().items()}


META = {"mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "labels": "imagenet",
        "source": "unit test", "licence": "MIT", "sha256": "0" * 64, "extra": {"note": 1}}


def test_round_trip_with_graph(tmp_path):
    g = tiny_graph()
    arrays = tiny_arrays(g)
    path = save_weights(tmp_path / "w.npz", g, arrays, META)
    got, meta = load_weights(path, graph=g)
    assert list(got) == list(arrays)
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
        assert got[k].dtype == np.float32
    assert meta == {**META, "architecture": "tiny"}


def test_graph_meta_is_the_default_meta(tmp_path):
    b = GraphBuilder("tiny", (3, 8, 8), {"color": "BGR", "mean": (104.0, 117.0, 123.0), "input_size": 8})
    b.add("fc", Linear(2), b.add("flat", Flatten(), b.input))
    g = b.build()
    save_weights(tmp_path / "w.npz", g, tiny_arrays(g), {"color": "RGB", "source": "here"})
    _, meta = load_weights(tmp_path / "w.npz")
    assert meta == {"architecture": "tiny", "color": "RGB", "mean": [104.0, 117.0, 123.0],
                    "input_size": 8, "source": "here"}


def test_file_is_plain_npz_with_json_meta(tmp_path):
    g = tiny_graph()
    save_weights(tmp_path / "w.npz", "tiny", tiny_arrays(g), {"labels": ["a", "b"]})
    with np.load(tmp_path / "w.npz", allow_pickle=False) as z:
        assert set(z.files) == set(g.param_shapes()) | {META_KEY}
        assert json.loads(str(z[META_KEY])) == {"architecture": "tiny", "labels": ["a", "b"]}


def test_float16_storage_loads_as_float32(tmp_path):
    g = tiny_graph()
    arrays = tiny_arrays(g)
    save_weights(tmp_path / "h.npz", g, arrays, float16=True)
    with np.load(tmp_path / "h.npz") as z:
        assert z["c1.weight"].dtype == np.float16
    got, meta = load_weights(tmp_path / "h.npz")
    assert meta["stored_dtype"] == "float16"
    for k in arrays:
        assert got[k].dtype == np.float32
        np.testing.assert_array_equal(got[k], arrays[k].astype(np.float16).astype(np.float32))
    assert (tmp_path / "h.npz").stat().st_size < (save_weights(tmp_path / "f.npz", g, arrays)).stat().st_size


def test_float64_is_stored_as_float32_and_ints_kept(tmp_path):
    save_weights(tmp_path / "w.npz", "x", {"a.weight": np.ones(3), "a.q": np.arange(3, dtype=np.int8)})
    got, _ = load_weights(tmp_path / "w.npz")
    assert got["a.weight"].dtype == np.float32 and got["a.q"].dtype == np.int8


def test_refuses_to_overwrite_without_force(tmp_path):
    g = tiny_graph()
    path = save_weights(tmp_path / "w.npz", g, tiny_arrays(g, 0))
    before = path.read_bytes()
    with pytest.raises(UserError, match="w.npz: exists"):
        save_weights(path, g, tiny_arrays(g, 1))
    assert path.read_bytes() == before
    save_weights(path, g, tiny_arrays(g, 1), force=True)
    np.testing.assert_array_equal(load_weights(path)[0]["fc.weight"], tiny_arrays(g, 1)["fc.weight"])


def test_nothing_is_left_behind_on_failure(tmp_path):
    g = tiny_graph()
    arrays = tiny_arrays(g)
    del arrays["c1.bn.var"]
    with pytest.raises(UserError, match="lack c1.bn.var"):
        save_weights(tmp_path / "w.npz", g, arrays)
    with pytest.raises(UserError, match="not plain JSON"):
        save_weights(tmp_path / "w.npz", "tiny", tiny_arrays(g), {"bad": object()})
    assert os.listdir(tmp_path) == []


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    g = tiny_graph()
    path = save_weights(tmp_path / "w.npz", g, tiny_arrays(g))
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(UserError, match=r"w\.npz: cannot write \(disk full\)"):  # names the output, not the temp
        save_weights(path, g, tiny_arrays(g, 1), force=True)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["w.npz"]


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("c1.bias"), "lack c1.bias \\(shape 4\\)"),
    (lambda a: a.__setitem__("c1.bn.gamma", np.ones(5)), "c1.bn.gamma has shape 5, 'tiny' needs 4"),
    (lambda a: a.__setitem__("fc.extra", np.ones(1)), "fc.extra is not a parameter of 'tiny'"),
    (lambda a: a.__setitem__("fc.weight", np.ones((5, 3))), "fc.weight has shape 5x3, 'tiny' needs 5x256"),
])
def test_check_names_the_mismatch(change, message):
    g = tiny_graph()
    arrays = tiny_arrays(g)
    change(arrays)
    with pytest.raises(UserError, match=message):
        check_weights(g, arrays)


def test_check_reports_the_first_mismatch_in_graph_order():
    g = tiny_graph()
    arrays = tiny_arrays(g)
    del arrays["fc.bias"], arrays["c1.bn.mean"]
    arrays["zzz.weight"] = np.ones(1)
    with pytest.raises(UserError, match="lack c1.bn.mean"):
        check_weights(g, arrays)


def test_load_checks_against_graph_and_names_file(tmp_path):
    g = tiny_graph()
    arrays = tiny_arrays(g)
    arrays.pop("fc.bias")
    save_weights(tmp_path / "w.npz", "tiny", arrays)
    with pytest.raises(UserError, match=r"w.npz: weights for 'tiny' lack fc.bias"):
        load_weights(tmp_path / "w.npz", graph=g)


@pytest.mark.parametrize("make, message", [
    (None, "no such file"),
    (lambda p: p.write_text("not weights"), "corrupt or not a weight file"),
    (lambda p: np.save(open(p, "wb"), np.ones(3)), "a bare .npy array, not an .npz archive"),
    (lambda p: np.savez(open(p, "wb"), a=np.ones(3)), "no __meta__ entry"),
    (lambda p: np.savez(open(p, "wb"), a=np.array([{"x": 1}], dtype=object), __meta__=np.array("{}")),
     "corrupt or not a weight file: .* never does"),
    (lambda p: np.savez(open(p, "wb"), __meta__=np.array("[1]")), "is not a JSON object"),
    (lambda p: np.savez(open(p, "wb"), __meta__=np.array("{oops")), "__meta__: not valid JSON"),
])
def test_bad_files_are_user_errors(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    if make:
        make(path)
    with pytest.raises(UserError, match=f"bad.npz: .*{message}"):
        load_weights(path)


def test_truncated_file(tmp_path):
    g = tiny_graph()
    path = save_weights(tmp_path / "w.npz", g, tiny_arrays(g))
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(UserError, match="w.npz: corrupt"):
        load_weights(path)


def test_sha256_file(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_pickled_content_is_refused_without_suggesting_unsafe_loading(tmp_path):
    import pickle
    p = tmp_path / "w.npz"
    p.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(UserError, match="never does") as e:
        load_weights(p)
    assert "unsafe" not in str(e.value) and "allow_pickle" not in str(e.value)
