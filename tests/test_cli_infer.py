"""sqnxt-infer and sqnxt-convert from the command line: outputs, formats and one-line errors."""
import json
import os

import numpy as np
import pytest
from PIL import Image

from sqnxt_engine import zoo
from sqnxt_engine.cli.convert import main as convert
from sqnxt_engine.cli.infer import main as infer
from sqnxt_engine.io.model import save_model
from sqnxt_engine.runtime import random_weights


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    g = zoo.build("sqnxt23v5_w1")
    path = tmp_path_factory.mktemp("w") / "w.npz"
    save_model(path, g, random_weights(g, 0), dict(g.meta, labels=[f"thing {i}" for i in range(1000)]))
    return path


@pytest.fixture()
def images(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, mode in enumerate(["RGB", "L", "RGBA", "P"]):
        img = Image.fromarray(rng.integers(0, 255, (300, 260, 3), dtype=np.uint8)).convert(mode)
        paths.append(tmp_path / f"img{i}.png")
        img.save(paths[-1])
    return paths


def test_json_output_per_image(weights, images, capsys):
    assert infer([*map(str, images), "--weights", str(weights), "--top", "3", "--json", "--batch-size", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["path"] for r in out] == [str(p) for p in images]
    for r in out:
        assert len(r["top"]) == 3
        probs = [t["probability"] for t in r["top"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1 + 1e-9
        assert r["top"][0]["label"] == f"thing {r['top'][0]['class_id']}"


def test_batches_do_not_change_results(weights, images, capsys):
    infer([*map(str, images), "--weights", str(weights), "--json", "--batch-size", "1"])
    one = json.loads(capsys.readouterr().out)
    infer([*map(str, images), "--weights", str(weights), "--json", "--batch-size", "4"])
    four = json.loads(capsys.readouterr().out)
    for a, b in zip(one, four):
        assert [t["class_id"] for t in a["top"]] == [t["class_id"] for t in b["top"]]


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "bad_weights", "no_weights_file"])
def test_bad_input_is_one_line_exit_2(weights, images, tmp_path, capsys, case):
    img, w = str(images[0]), str(weights)
    if case == "missing":
        img = str(tmp_path / "nope.jpg")
    elif case == "text":
        (tmp_path / "t.jpg").write_text("not an image")
        img = str(tmp_path / "t.jpg")
    elif case == "truncated":
        data = images[0].read_bytes()
        (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
        img = str(tmp_path / "cut.png")
    elif case == "bad_weights":
        g = zoo.build("sqnxt23_w1")  # arrays of another architecture under this one's name
        arrays = random_weights(g, 0)
        np.savez(tmp_path / "bad.npz", **arrays, __meta__=np.array(json.dumps({"architecture": "sqnxt23v5_w1"})))
        w = str(tmp_path / "bad.npz")
    elif case == "no_weights_file":
        w = str(tmp_path / "none.npz")
    assert infer([img, "--weights", w]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


def test_convert_refuses_overwrite_and_unknown_keys(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    torch.save({"foo.weight": torch.zeros(3)}, tmp_path / "x.pth")
    assert convert([str(tmp_path / "x.pth"), "-o", str(tmp_path / "x.npz")]) == 2
    assert "--model" in capsys.readouterr().err
    (tmp_path / "exists.npz").write_bytes(b"")
    assert convert([str(tmp_path / "x.pth"), "-o", str(tmp_path / "exists.npz")]) == 2
    assert "exists" in capsys.readouterr().err
    assert not list(tmp_path.glob(".*tmp"))  # nothing half-written left behind


def test_an_image_that_is_not_a_regular_file_is_named_for_what_it_is(weights, tmp_path, capsys):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    assert infer([str(fifo), "--weights", str(weights)]) == 2   # refused before any read: no hang
    assert "is a FIFO (named pipe), not a regular file" in capsys.readouterr().err
    assert infer([str(tmp_path), "--weights", str(weights)]) == 2
    assert "is a directory, not a regular file" in capsys.readouterr().err
