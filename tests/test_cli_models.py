"""sqnxt-models: the listing, one model's table, machine formats, and one-line errors."""
import json
import shutil
import subprocess

import pytest

from sqnxt_engine import zoo
from sqnxt_engine.cli.models import main


def test_listing_json_has_every_model(capsys):
    assert main(["--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == zoo.names()
    v5 = next(r for r in rows if r["name"] == "1.0-SqNxt-23v5")
    assert set(v5) == {"name", "input_size", "params", "macs"}
    assert v5["input_size"] == 227 and abs(v5["macs"] / 1e6 - 228.0) < 2.28


def test_csv_and_layer_table(capsys):
    assert main(["--csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("name,input_size,params,macs")
    assert main(["AlexNet"]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "96x55x55" in out and "60,965,224 params" in out


def test_unknown_model_is_one_line_exit_2(capsys):
    assert main(["NoSuchNet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model 'NoSuchNet'" in err


@pytest.mark.skipif(shutil.which("sqnxt-models") is None, reason="console script not installed")
def test_console_script_runs():
    r = subprocess.run(["sqnxt-models", "--bad-flag"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_prototxt_file_prints_its_layers(caffe_dir, capsys):
    assert main([str(caffe_dir / "SqueezeNet_v1.1.deploy.prototxt"), "--input-size", "224"]) == 0
    assert "1,235,496 params" in capsys.readouterr().out


@pytest.mark.parametrize("text,message", [
    ("layer { name: 'a' type: 'Convolution' bottom: 'data' top: 'a' convolution_param { num_output: 4 ",
     "expected"),
    ("input: 'data' input_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n"
     "layer { name: 'w' type: 'Warp' bottom: 'data' top: 'w' }", "Warp"),
])
def test_malformed_or_unsupported_prototxt_is_one_line_exit_2(tmp_path, capsys, text, message):
    f = tmp_path / "net.prototxt"
    f.write_text(text)
    assert main([str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
