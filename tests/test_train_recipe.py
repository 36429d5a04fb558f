"""The training recipe: random erasing, label smoothing, the device option, the Fashion-MNIST form
of the CIFAR networks, and a short end-to-end run of sqnxt-train on a few hundred real images whose
export the engine runs with the same top-1 as PyTorch."""
import json

import numpy as np
import pytest

from sqnxt_engine.cli.train import main
from sqnxt_engine.graph import ops as O
from sqnxt_engine.graph.graph import GraphBuilder
from sqnxt_engine.io.model import load_model
from sqnxt_engine.runtime import Runner

torch = pytest.importorskip("torch")
from sqnxt_engine.train.torch_graph import GraphModule  # noqa: E402
from sqnxt_engine.train.train import (  # noqa: E402
    CIFAR_FORM,
    ERASE_MIN_AREA,
    SMALL_INPUT,
    Recipe,
    fashion_mnist_options,
    normalise,
    random_erase,
    resolve_device,
    train,
)

torch.set_num_threads(1)


def test_random_erasing_replaces_one_rectangle_per_chosen_image():
    batch = torch.full((400, 1, 28, 28), 7.0)  # noise never equals 7 exactly
    out = random_erase(batch, 1.0, 0.25, torch.Generator().manual_seed(0))
    changed = (out != 7.0)[:, 0]
    for img in changed:
        rows, cols = img.any(1).nonzero()[:, 0], img.any(0).nonzero()[:, 0]
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert img.sum() == h * w  # one filled rectangle
        assert 1 <= h * w <= 0.25 * 784 * 1.3  # rounding the sides may overshoot a little
    areas = changed.sum((1, 2)).float() / 784
    assert areas.min() >= ERASE_MIN_AREA * 0.5 and areas.mean() > 0.08
    half = random_erase(batch, 0.5, 0.25, torch.Generator().manual_seed(1))
    assert 150 < int((half != 7.0).flatten(1).any(1).sum()) < 250
    assert random_erase(batch, 0.0, 0.25, None) is batch
    again = random_erase(batch, 1.0, 0.25, torch.Generator().manual_seed(0))
    assert torch.equal(again, out)  # the seed decides everything


def tiny_net():
    b = GraphBuilder("tiny", (1, 28, 28))
    x = b.conv_bn_act("c1", b.input, 8, 3, 2, 1)
    x = b.add("s", O.Shift(3), x)
    x = b.conv_bn_act("c2", x, 16, 1, 2)
    x = b.add("flat", O.Flatten(), b.add("gap", O.GlobalAvgPool(), x))
    b.add("fc", O.Linear(10), x)
    return b.build()


def test_label_smoothing_keeps_the_model_less_confident():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (128, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 128)
    confidence = {}
    for smoothing in (0.0, 0.5):
        torch.manual_seed(0)
        m = GraphModule(tiny_net())
        train(m, images, labels, Recipe(epochs=8, batch_size=32, warmup_steps=1, erase_p=0, crop_pad=0,
                                        flip=False, label_smoothing=smoothing), log=lambda _: None)
        m.eval()
        with torch.no_grad():
            p = torch.softmax(m(torch.from_numpy(normalise(images))), 1)
        confidence[smoothing] = p.max(1).values.mean().item()
    assert confidence[0.5] < confidence[0.0]


def test_device_option_and_fashion_mnist_forms(capsys):
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert fashion_mnist_options("ShiftResNet-20-e3") == CIFAR_FORM
    assert fashion_mnist_options("1.0-Shift-SqNxt-23v5") == SMALL_INPUT
    if not torch.cuda.is_available():
        assert main(["ResNet-20", "-o", "x.npz", "--device", "cuda"]) == 2
        assert "no CUDA device" in capsys.readouterr().err


def test_short_run_trains_exports_and_the_engine_agrees(tmp_path):
    out = tmp_path / "s.npz"
    assert main(["ShiftResNet-20-e1", "-o", str(out), "--epochs", "4", "--limit-train", "500",
                 "--limit-test", "300", "--batch-size", "50", "--warmup-steps", "4", "--threads", "1",
                 "--device", "cpu", "--erase-p", "0.5", "--label-smoothing", "0.1"]) == 0
    record = json.loads(out.with_suffix(".train.json").read_text())
    assert record["zoo_options"] == CIFAR_FORM
    assert record["parts"] == [{"epochs": [1, 4], "threads": 1, "device": "cpu"}]
    assert record["recipe"]["erase_p"] == 0.5 and record["recipe"]["label_smoothing"] == 0.1
    assert record["torch_top1_float32"] > 40  # 10 classes: chance is 10% (this run: 62%)
    graph, arrays, meta = load_model(out)
    assert graph.name == "ShiftResNet-20-e1" and graph.input_shape == (1, 28, 28)
    from sqnxt_engine.io.datasets import load_dataset
    images, labels = load_dataset("fashion-mnist", "test")
    x = normalise(images[:300])
    engine = Runner(graph, arrays)(x).argmax(1)
    m = GraphModule(graph).eval()
    m.load_arrays(arrays)
    with torch.no_grad():
        ref = m(torch.from_numpy(x)).argmax(1).numpy()
    assert (engine == ref).mean() >= 0.99  # float32 ties aside, the same classes
    assert 100.0 * (engine == labels[:300]).mean() == pytest.approx(record["torch_top1_float32"], abs=1.0)


class _Stop(Exception):
    """Raised from the log after an epoch: a run killed between two epochs."""


CPU = {"threads": 1, "device": "cpu"}  # a checkpoint's setting where it does not matter


def _checkpointed_recipe():
    return Recipe(epochs=3, batch_size=16, warmup_steps=2, erase_p=0.5, label_smoothing=0.1)


def test_a_stopped_run_continued_from_its_checkpoint_ends_with_the_same_weights(tmp_path):
    from sqnxt_engine.train.checkpoint import Checkpoint
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 64)

    def fresh():
        torch.manual_seed(0)
        return GraphModule(tiny_net())

    straight = fresh()
    train(straight, images, labels, _checkpointed_recipe(), log=lambda _: None)

    def stop_after_first_epoch(msg):
        if msg.startswith("epoch 1/"):
            raise _Stop

    path = tmp_path / "run.ckpt"
    with pytest.raises(_Stop):
        train(fresh(), images, labels, _checkpointed_recipe(), log=stop_after_first_epoch,
              checkpoint=Checkpoint(path, {"run": "a"}, {"threads": 1, "device": "cpu"}))
    assert path.is_file()
    messages = []
    resumed, ckpt = fresh(), Checkpoint(path, {"run": "a"}, {"threads": 2, "device": "cpu"})
    seconds = train(resumed, images, labels, _checkpointed_recipe(), log=messages.append, checkpoint=ckpt)
    assert messages[0].startswith(f"continuing from {path}: 1 of 3 epochs done")
    assert [m.split(":")[0] for m in messages[1:]] == ["epoch 2/3", "epoch 3/3"]  # epoch 1 not repeated
    assert ckpt.parts(3) == [{"epochs": [1, 1], "threads": 1, "device": "cpu"},  # the setting is recorded,
                             {"epochs": [2, 3], "threads": 2, "device": "cpu"}]  # not part of the identity
    assert seconds > 0
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name  # weights, batch-norm statistics: bit for bit


def test_a_checkpoint_of_another_run_or_not_a_checkpoint_is_refused(tmp_path):
    from sqnxt_engine.errors import UserError
    from sqnxt_engine.train.checkpoint import Checkpoint
    path = tmp_path / "run.ckpt"
    net = GraphModule(tiny_net())
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    state = net, opt, torch.Generator().manual_seed(3)
    assert Checkpoint(path, {"recipe": {"epochs": 3}}, CPU).restore(*state) is None  # nothing yet: start afresh
    Checkpoint(path, {"recipe": {"epochs": 3}}, CPU).save(*state, {"epoch": 1, "step": 4, "seconds": 2.5})
    assert Checkpoint(path, {"recipe": {"epochs": 3}}, CPU).restore(*state) == {"epoch": 1, "step": 4, "seconds": 2.5}
    with pytest.raises(UserError, match=r"written by a different run \(recipe differ\)"):
        Checkpoint(path, {"recipe": {"epochs": 30}}, CPU).restore(*state)
    other = GraphModule(tiny_net())  # the identity matches, the arrays do not fit the module
    other.extra = torch.nn.Conv2d(1, 4, 3)
    with pytest.raises(UserError, match="damaged checkpoint"):
        Checkpoint(path, {"recipe": {"epochs": 3}}, CPU).restore(other, opt, state[2])
    from sqnxt_engine.io.weights import read_npz_with_meta, write_npz_with_meta
    arrays, meta = read_npz_with_meta(path, "a checkpoint")
    for parts in ([{"epochs": []}], 7, [{"epochs": [1, 1], "threads": "many", "device": "cpu"}]):
        write_npz_with_meta(path, arrays, json.dumps({**meta, "parts": parts}), force=True)
        with pytest.raises(UserError, match="damaged checkpoint"):
            Checkpoint(path, {"recipe": {"epochs": 3}}, CPU).restore(*state)

    class Payload:  # what a pickle could do when unpickled: run code
        def __reduce__(self):
            return (open, (str(tmp_path / "ran"), "w"))

    import pickle
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(UserError, match="not a sqnxt-train checkpoint"):
        Checkpoint(path, {}, CPU).restore(*state)
    assert not (tmp_path / "ran").exists()  # refused unread
    with path.open("wb") as f:  # an .npz archive, but without the metadata
        np.savez(f, x=np.zeros(3))
    with pytest.raises(UserError, match="no __meta__"):
        Checkpoint(path, {}, CPU).restore(*state)


def test_sqnxt_train_checkpoint_option(tmp_path, capsys):
    out, ckpt = tmp_path / "c.npz", tmp_path / "c.ckpt"
    args = ["ShiftResNet-20-e1", "-o", str(out), "--epochs", "1", "--limit-train", "64", "--limit-test", "64",
            "--batch-size", "32", "--warmup-steps", "1", "--threads", "1", "--device", "cpu",
            "--checkpoint", str(ckpt)]
    from sqnxt_engine.train.checkpoint import Checkpoint
    net = GraphModule(tiny_net())
    Checkpoint(ckpt, {"someone": "else"}, CPU).save(net, torch.optim.SGD(net.parameters(), lr=0.1),
                                               torch.Generator(), {"epoch": 1, "step": 1, "seconds": 1.0})
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "written by a different run" in err and not out.exists()
    ckpt.unlink()
    assert main(args) == 0
    record = json.loads(out.with_suffix(".train.json").read_text())
    assert record["parts"] == [{"epochs": [1, 1], **CPU}]
    assert not ckpt.exists()  # removed once the file is written
    assert main(args[:-2] + ["--checkpoint", str(tmp_path / "no" / "such.ckpt"), "--force"]) == 2
    assert "does not exist" in capsys.readouterr().err
