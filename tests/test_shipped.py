"""The shipped Fashion-MNIST weights: manifest hashes, refusal of a changed file, sqnxt-eval, the
engine's accuracy equal to PyTorch's on the same arrays, and the default of sqnxt-infer."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from sqnxt_engine.cli.eval import main as sqnxt_eval
from sqnxt_engine.cli.infer import main as infer
from sqnxt_engine.errors import UserError
from sqnxt_engine.io import shipped
from sqnxt_engine.io.datasets import load_dataset
from sqnxt_engine.io.images import Preprocess, batch_from_arrays, load_image
from sqnxt_engine.io.labels import FASHION_MNIST
from sqnxt_engine.io.model import load_model
from sqnxt_engine.io.weights import sha256_file
from sqnxt_engine.runtime.predict import engine_accuracy

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MANIFEST = shipped.manifest()
REQUIRED = ["1.0-SqNxt-23v5-fmnist", "1.0-SqNxt-23-fmnist",
            "1.0-SqNxt-23v5-fmnist-pruned40", "1.0-SqNxt-23-fmnist-pruned40"]
SUBSET = 1000  # test images for the engine-vs-PyTorch check: one image is 0.1 points


@pytest.fixture(scope="module")
def test_split():
    try:
        return load_dataset("fashion-mnist", "test")
    except UserError as e:
        pytest.skip(f"Fashion-MNIST unavailable: {e}")


def test_manifest_lists_the_required_files_with_matching_hashes():
    assert set(REQUIRED) <= set(MANIFEST)
    assert shipped.DEFAULT_WEIGHTS in MANIFEST
    for name, entry in MANIFEST.items():
        path = shipped.shipped_dir() / entry["file"]
        assert sha256_file(path) == entry["sha256"], name
        assert path.stat().st_size == entry["bytes"], name
        assert abs(entry["engine_top1"] - entry["torch_top1"]) <= 0.1, name
        assert entry["test_images"] == 10000 and entry["train_command"] and entry["seed"] is not None
    for name in REQUIRED[2:]:
        assert abs(MANIFEST[name]["weight_sparsity"] - 0.4) < 0.005


def test_loading_refuses_a_file_whose_hash_does_not_match(tmp_path, monkeypatch):
    name = shipped.DEFAULT_WEIGHTS
    entry = MANIFEST[name]
    shutil.copy(shipped.shipped_dir() / shipped.MANIFEST, tmp_path)
    data = bytearray((shipped.shipped_dir() / entry["file"]).read_bytes())
    (tmp_path / entry["file"]).write_bytes(data)
    monkeypatch.setattr(shipped, "shipped_dir", lambda: tmp_path)
    graph, _, _ = load_model(name)  # intact copy: loads
    assert graph.name == entry["architecture"]
    data[len(data) // 2] ^= 0xFF
    (tmp_path / entry["file"]).write_bytes(data)
    with pytest.raises(UserError, match="sha256"):
        load_model(name)
    (tmp_path / entry["file"]).unlink()
    with pytest.raises(UserError, match="missing"):
        load_model(name.upper() + ".npz")  # names match without case or suffix


@pytest.mark.parametrize("name", REQUIRED)
def test_engine_accuracy_equals_pytorch_on_a_subset(name, test_split):
    torch = pytest.importorskip("torch")
    from sqnxt_engine.train.torch_graph import GraphModule
    from sqnxt_engine.train.train import torch_accuracy

    torch.set_num_threads(1)
    images, labels = test_split[0][:SUBSET], test_split[1][:SUBSET]
    correct, total = engine_accuracy(name, images, labels)
    graph, arrays, _ = load_model(name)
    model = GraphModule(graph)
    model.load_arrays(arrays)
    assert abs(100.0 * correct / total - torch_accuracy(model, images, labels)) <= 0.1 + 1e-9


def test_sqnxt_eval_on_a_subset_with_the_default(test_split, capsys):
    assert sqnxt_eval(["--limit", "300", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["weights"] == shipped.DEFAULT_WEIGHTS and out["images"] == 300
    correct, _ = engine_accuracy(shipped.DEFAULT_WEIGHTS, *(a[:300] for a in test_split))
    assert out["correct"] == correct and out["top1"] > 80
    assert sqnxt_eval(["--data", "cifar"]) == 2


def test_example_pngs_are_the_test_images_the_engine_sees(test_split):
    pre = Preprocess.from_meta(load_model(shipped.DEFAULT_WEIGHTS)[2])
    for png in sorted(EXAMPLES.glob("fmnist-*.png")):
        index = int(png.stem.split("-")[1])
        np.testing.assert_array_equal(load_image(png, pre), batch_from_arrays(test_split[0][index:index + 1], pre)[0])


def example_label(png: Path) -> str:
    slug = png.stem.split("-", 2)[2]
    return next(n for n in FASHION_MNIST if n.lower().replace("/", "-").replace(" ", "-") == slug)


def test_sqnxt_infer_default_labels_a_shipped_example(capsys):
    png = EXAMPLES / "fmnist-00000-ankle-boot.png"  # README's first command
    assert infer([str(png), "--top", "1"]) == 0
    assert capsys.readouterr().out.split("\n")[1].strip().endswith("Ankle boot")
    pngs = sorted(EXAMPLES.glob("fmnist-*.png"))
    assert infer([*map(str, pngs), "--top", "1", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 10  # the first test image of each class: all ten right
    assert [r["top"][0]["label"] for r in results] == [example_label(Path(r["path"])) for r in results]
