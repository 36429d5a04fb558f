"""Any network in: NetworkSpec (zoo model + options, .npz, .onnx, .prototxt), its name and key,
and the sqnxt-emu options that take it (--zoo-options, --weights FILE, --models, --hw FILE)."""
import json
import pickle
from pathlib import Path

import pytest

from sqnxt_engine import UserError
from sqnxt_engine.emu.cli import main
from sqnxt_engine.io.network_spec import NetworkSpec, split_networks

CAFFE = Path(__file__).parent / "data" / "caffe"
OPTIONS = {"depths": [3, 5, 12, 1], "stem_kernel": 3}


def test_a_zoo_model_with_options_is_named_by_what_it_is():
    spec = NetworkSpec.of("1.0-sqnxt-23v5", OPTIONS)
    assert spec.name == "1.0-SqNxt-23v5[depths=3-5-12-1,stem_kernel=3]"
    graph, weights, meta, name = spec.load()
    assert graph.name == name == spec.name and meta == {}
    plain = NetworkSpec.of("1.0-SqNxt-23v5").load()[0]
    def units(g, stage):
        return len({n.name.split(".")[1] for n in g.nodes if n.name.startswith(f"stage{stage}.unit")})
    assert [units(graph, s) for s in (1, 2, 3, 4)] == [3, 5, 12, 1] != [units(plain, s) for s in (1, 2, 3, 4)]
    assert graph.layers[0].op.kernel == (3, 3) != plain.layers[0].op.kernel
    # frozen, hashable, picklable; the key is stable and tells options, seeds and models apart
    assert pickle.loads(pickle.dumps(spec)) == spec and hash(spec) == hash(NetworkSpec.of("1.0-SqNxt-23v5", OPTIONS))
    keys = {NetworkSpec.of("1.0-SqNxt-23v5", OPTIONS).key(), NetworkSpec.of("1.0-SqNxt-23v5").key(),
            NetworkSpec.of("1.0-SqNxt-23v5", OPTIONS, seed=1).key(),
            NetworkSpec.of("1.0-SqNxt-23v5", {"stem_kernel": 3, "depths": [3, 5, 12, 1]}).key()}
    assert len(keys) == 3


def test_files_are_keyed_by_content_and_a_prototxt_gets_seeded_weights(tmp_path):
    src = CAFFE / "1.0-SqNxt-23.train_val.prototxt"
    copy = tmp_path / "mine.prototxt"
    copy.write_bytes(src.read_bytes())
    a, b = NetworkSpec.of(file=str(copy)), NetworkSpec.of(file=str(copy), seed=3)
    graph, weights, _, name = a.load()
    assert name == "mine" and graph.name == "mine" and weights
    before = a.key()
    assert before != b.key() and before.startswith("file:mine.prototxt:sha256=")
    copy.write_bytes(src.read_bytes() + b"\n# edited\n")
    assert a.key() != before


def test_a_shipped_name_with_a_dot_is_named_in_full():
    # "1.0-SqNxt-23-fmnist" has a dot but no file suffix: Path.stem would make it "1"
    assert NetworkSpec.of(file="1.0-SqNxt-23-fmnist").name == "1.0-SqNxt-23-fmnist"
    assert NetworkSpec.of(file="nets/1.0-SqNxt-23.onnx").name == "1.0-SqNxt-23"


@pytest.mark.parametrize("kwargs, match", [
    ({"model": "1.0-SqNxt-23v5", "zoo_options": {"stem": 3}}, r"unknown SqueezeNext option 'stem' "
                                                              r"\(known: .*depths.*stem_kernel"),
    ({"model": "NoSuchNet"}, "model"),
    ({"file": "x.onnx", "zoo_options": {"depths": [1, 1, 1, 1]}}, "zoo options apply to a zoo model"),
    ({}, "a zoo model or a file"),
])
def test_bad_specs_are_user_errors(kwargs, match):
    with pytest.raises(UserError, match=match):
        NetworkSpec.of(**kwargs).load()


def test_a_network_list_keeps_json_options_whole():
    words = split_networks('A, B{"depths": [3,5,12,1], "stem_kernel": 3},net.onnx')
    assert words == ["A", 'B{"depths": [3,5,12,1], "stem_kernel": 3}', "net.onnx"]
    spec = NetworkSpec.parse(words[1].replace("B", "1.0-SqNxt-23v5"))
    assert spec.options == OPTIONS
    assert NetworkSpec.parse("net.onnx").file == "net.onnx"
    assert NetworkSpec.parse("1.0-SqNxt-23", {"small_input": True}).options == {"small_input": True}


def test_trace_with_zoo_options(capsys):
    assert main(["trace", "--model", "1.0-SqNxt-23v5", "--zoo-options", json.dumps(OPTIONS),
                 "--hw", "8x8", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "1.0-SqNxt-23v5[depths=3-5-12-1,stem_kernel=3]"
    assert out["layers"][0]["shape"].startswith("3x") or "3x3" in out["layers"][0]["shape"]


@pytest.mark.parametrize("argv, match", [
    (["--model", "1.0-SqNxt-23v5", "--zoo-options", "[1]"], "--zoo-options must be a JSON object"),
    (["--model", "1.0-SqNxt-23v5", "--zoo-options", "{bad"], "--zoo-options is not JSON"),
    (["--model", "1.0-SqNxt-23v5", "--zoo-options", '{"stem": 3}'], "known: width, depths"),
    (["--weights", "x.onnx", "--zoo-options", '{"width": 2.0}'], "zoo options apply to a zoo model"),
])
def test_trace_option_mistakes_are_one_line(argv, match, capsys):
    assert main(["trace", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err


def test_trace_of_a_prototxt(capsys):
    assert main(["trace", "--weights", str(CAFFE / "SqueezeNet_v1.1.deploy.prototxt"), "--hw", "16x16",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == "SqueezeNet_v1.1.deploy" and out["total"]["cycles"] > 0


def _hw_file(tmp_path, name, text_name=None):
    from importlib import resources
    text = resources.files("sqnxt_engine.emu").joinpath("presets", "8x8.toml").read_text()
    text = text.replace('name = "8x8"', f'name = "{text_name}"' if text_name else "")
    text = text.replace("bytes = 32768", "bytes = 65536")
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def test_table3_and_figure6_take_hardware_files_and_networks_with_options(tmp_path, capsys):
    mine = _hw_file(tmp_path, "my-array")
    models = 'ResNet-20,ResNet-20{"depth": 8}'
    assert main(["table3", "--models", models, "--hw", f"8x8,{mine}", "--jobs", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["model"], r["config"]) for r in rows} == {
        (m, c) for m in ("ResNet-20", "ResNet-20[depth=8]") for c in ("8x8", "my-array")}
    by = {(r["model"], r["config"]): r for r in rows}
    assert by[("ResNet-20[depth=8]", "8x8")]["macs"] < by[("ResNet-20", "8x8")]["macs"]
    assert main(["figure6", "--models", "ResNet-20", "--zoo-options", '{"depth": 8}',
                 "--hw", str(_hw_file(tmp_path, "other", "wide-buffer")), "--jobs", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {(r["model"], r["config"]) for r in rows} == {("ResNet-20[depth=8]", "wide-buffer")}


@pytest.mark.parametrize("hw, match", [
    ("named-8x8", "a preset's name"),
    ("missing.toml", "no such hardware file"),
])
def test_hardware_file_mistakes_are_one_line(hw, match, tmp_path, capsys):
    path = _hw_file(tmp_path, "named-8x8", "8x8") if hw == "named-8x8" else tmp_path / hw
    assert main(["table3", "--models", "ResNet-20", "--hw", str(path), "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err
