"""A user's own model classifies images: sqnxt-convert records an ONNX model's input size, and
sqnxt-infer takes --input-size, --mean, --std and --labels over what the metadata says (or says
nothing: an .onnx given directly)."""
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from sqnxt_engine.cli.convert import main as convert
from sqnxt_engine.cli.infer import main as infer
from sqnxt_engine.io.images import Preprocess, load_image
from sqnxt_engine.io.weights import load_weights

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
SIDE = 20


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6, 3)

    def forward(self, x):
        return self.fc(torch.sigmoid(self.conv(x)).mean((2, 3)))


@pytest.fixture
def own_model(tmp_path):
    torch.manual_seed(0)
    model = Tiny().eval()
    path = tmp_path / "mine.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, SIDE, SIDE),), str(path), dynamo=False, opset_version=13)
    image = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(2).integers(0, 255, (37, 29, 3), np.uint8)).save(image)
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n\nbird\n")
    return model, path, image, labels


def _torch_probabilities(model, image, pre):
    x = torch.from_numpy(load_image(image, pre)[None])
    with torch.no_grad():
        return torch.softmax(model(x).double(), 1)[0].numpy()


def test_convert_records_the_onnx_input_size(own_model, tmp_path):
    _, path, _, _ = own_model
    assert convert([str(path), "-o", str(tmp_path / "a.npz")]) == 0
    assert load_weights(tmp_path / "a.npz")[1]["input_size"] == SIDE
    # a preset keeps its normalisation and crop fraction (224 of 256) at the model's own size
    assert convert([str(path), "-o", str(tmp_path / "b.npz"), "--preprocess", "imagenet-torch"]) == 0
    meta = load_weights(tmp_path / "b.npz")[1]
    assert (meta["input_size"], meta["resize"]) == (SIDE, round(SIDE * 256 / 224))
    assert meta["mean"] == [123.675, 116.28, 103.53]


def test_infer_with_own_preprocessing_and_labels(own_model, capsys):
    model, path, image, labels = own_model
    assert infer([str(image), "--weights", str(path), "--mean", "127", "--std", "64,64,64",
                  "--labels", str(labels), "--top", "3", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]["top"]
    want = _torch_probabilities(model, image, Preprocess(SIDE, SIDE, "RGB", (127.0,), (64.0,)))
    assert [t["label"] for t in top] == [["cat", "dog", "bird"][i] for i in np.argsort(-want)]
    np.testing.assert_allclose([t["probability"] for t in top], np.sort(want)[::-1], atol=1e-5)
    # --input-size: a different view of the photo (its border cropped less), so other probabilities
    assert infer([str(image), "--weights", str(path), "--input-size", str(SIDE), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)[0]["top"]
    assert [t["label"] for t in plain][0].startswith("class ")


@pytest.mark.parametrize("argv, match", [
    (["--mean", "1,x"], "--mean takes numbers separated by commas"),
    (["--std", "1,2"], "std needs 1 or 3 values, got 2"),
    (["--input-size", "0"], "--input-size must be a positive integer"),
    (["--labels", "two"], "2 class names for the 3 classes"),
    (["--labels", "missing.txt"], "missing.txt"),
])
def test_infer_option_mistakes_are_one_line(argv, match, own_model, capsys):
    _, path, image, labels = own_model
    argv = [a.replace("two", str(labels.with_name("two.txt"))) for a in argv]
    labels.with_name("two.txt").write_text("a\nb\n")
    assert infer([str(image), "--weights", str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err
