"""pytorchcv SqueezeNext state dicts -> zoo names, and recognising which model they are."""
import numpy as np
import pytest

from sqnxt_engine.errors import UserError
from sqnxt_engine.graph.graph import check_weights
from sqnxt_engine.io.convert_pytorchcv import convert_pytorchcv, recognise_pytorchcv
from sqnxt_engine.io.pth import read_pth
from sqnxt_engine.io.weights import load_weights, save_weights

from tolerance import assert_close

# pytorchcv's own trainable-parameter counts (MODELS.md)
PARAMS = {"sqnxt23_w1": 724_056, "sqnxt23_w3d2": 1_511_824, "sqnxt23_w2": 2_583_752,
          "sqnxt23v5_w1": 921_816, "sqnxt23v5_w3d2": 1_953_616, "sqnxt23v5_w2": 3_366_344}


def _bn(prefix, c):
    return {f"{prefix}.{p}": np.full(c, i, np.float32)
            for i, p in enumerate(["weight", "bias", "running_mean", "running_var"])} | \
        {f"{prefix}.num_batches_tracked": np.array(7)}


def test_rules_on_a_hand_made_state_dict():
    state = {"features.init_block.conv.conv.weight": np.zeros((64, 3, 7, 7), np.float32),
             "features.init_block.conv.conv.bias": np.zeros(64, np.float32),
             **_bn("features.init_block.conv.bn", 64),
             "features.stage1.unit1.identity_conv.conv.weight": np.zeros((32, 64, 1, 1)),
             **_bn("features.stage1.unit1.identity_conv.bn", 32),
             "output.weight": np.zeros((10, 128)), "output.bias": np.zeros(10)}
    out = convert_pytorchcv(state)
    assert list(out) == [
        "features.init_block.conv.weight", "features.init_block.conv.bias",
        "features.init_block.conv.bn.gamma", "features.init_block.conv.bn.beta",
        "features.init_block.conv.bn.mean", "features.init_block.conv.bn.var",
        "features.stage1.unit1.identity_conv.weight",
        "features.stage1.unit1.identity_conv.bn.gamma", "features.stage1.unit1.identity_conv.bn.beta",
        "features.stage1.unit1.identity_conv.bn.mean", "features.stage1.unit1.identity_conv.bn.var",
        "output.weight", "output.bias"]
    assert out["features.init_block.conv.bn.var"][0] == 3  # running_var, not another BN field
    assert out["output.weight"] is state["output.weight"]


def test_modules_merely_named_conv_or_bn_keep_their_names():
    state = {"head.conv.weight": np.zeros(3), "x.bn.weight": np.zeros(3)}  # no batch norm stats
    assert list(convert_pytorchcv(state)) == ["head.conv.weight", "x.bn.weight"]


def test_data_parallel_prefix_is_stripped():
    state = {"module." + k: v for k, v in _bn("a.bn", 2).items()} | {"module.a.conv.weight": np.zeros(2)}
    assert sorted(convert_pytorchcv(state)) == ["a.bn.beta", "a.bn.gamma", "a.bn.mean", "a.bn.var", "a.weight"]


def test_unknown_batch_norm_entry_is_refused():
    with pytest.raises(UserError, match="a.bn.extra"):
        convert_pytorchcv(_bn("a.bn", 2) | {"a.bn.extra": np.zeros(2)})


def test_unrecognised_state_dicts():
    assert recognise_pytorchcv({}) is None
    assert recognise_pytorchcv({"features.stage1.unit1.conv1.conv.weight": np.zeros(1)}) is None


@pytest.fixture(scope="module")
def squeezenext():
    pytest.importorskip("torch")
    return pytest.importorskip("pytorchcv.models.squeezenext")


@pytest.mark.parametrize("arch", PARAMS)
def test_pytorchcv_models_convert_and_are_recognised(tmp_path, squeezenext, arch):
    import torch
    torch.manual_seed(0)
    model = getattr(squeezenext, arch)()
    sd = model.state_dict()
    path = tmp_path / f"{arch}.pth"
    torch.save(sd, path)
    state = read_pth(path)
    assert recognise_pytorchcv(state) == arch

    out = convert_pytorchcv(state)
    # every tensor but num_batches_tracked survives, under one name, unchanged
    assert len(out) == sum(not k.endswith("num_batches_tracked") for k in sd)
    trainable = sum(v.size for k, v in out.items() if not k.endswith((".mean", ".var")))
    assert trainable == PARAMS[arch]
    assert all(k.endswith((".weight", ".bias", ".bn.gamma", ".bn.beta", ".bn.mean", ".bn.var")) for k in out)
    for module_name, module in model.named_modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            conv = module_name[: -len(".bn")]
            np.testing.assert_array_equal(out[f"{conv}.bn.var"], module.running_var.numpy())
            np.testing.assert_array_equal(out[f"{conv}.weight"],
                                          model.get_submodule(f"{conv}.conv").weight.detach().numpy())
    np.testing.assert_array_equal(out["output.bias"], model.output.bias.detach().numpy())


def test_converted_weights_fit_the_zoo_graphs(tmp_path, squeezenext):
    import torch

    from sqnxt_engine.zoo import build
    for arch in PARAMS:
        torch.manual_seed(0)
        state = {k: v.numpy() for k, v in getattr(squeezenext, arch)().state_dict().items()}
        graph = build(recognise_pytorchcv(state))
        arrays = convert_pytorchcv(state)
        check_weights(graph, arrays)  # every parameter, no extra array, every shape
    path = save_weights(tmp_path / "w.npz", graph, arrays, {"source": f"pytorchcv {arch}: w.pth"})
    got, meta = load_weights(path, graph)
    assert meta["color"] == "RGB" and meta["resize"] == 256 and meta["input_size"] == 224
    assert meta["source"] == f"pytorchcv {arch}: w.pth" and meta["architecture"] == arch


def test_converted_weights_compute_what_pytorchcv_computes(tmp_path, squeezenext):
    """Semantic check of the mapping (gamma/beta/mean/var not swapped, conv bias kept): the
    float runner with converted weights matches the torch model, BN statistics randomised."""
    import torch

    from sqnxt_engine.runtime.runner import Runner
    from sqnxt_engine.zoo import build
    torch.manual_seed(0)
    model = squeezenext.sqnxt23v5_w1().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2), m.running_var.uniform_(0.5, 2.0)
            elif isinstance(m, torch.nn.Conv2d):
                m.bias.uniform_(-0.1, 0.1)
    path = tmp_path / "m.pth"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=False)
    state = read_pth(path)
    arch = recognise_pytorchcv(state)
    runner = Runner(build(arch), convert_pytorchcv(state), dtype=np.float64)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        want = model.double()(x.double()).numpy()
    assert_close(runner(x.numpy().astype(np.float64)), want, 1e-9)
