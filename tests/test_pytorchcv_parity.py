"""Parity with the reference: pytorchcv's six SqueezeNext models, seeded and saved as .pth in both
formats, converted by sqnxt-convert, then compared float64 layer by layer and float32 end to end."""
import numpy as np
import pytest

from tolerance import assert_close

torch = pytest.importorskip("torch")
sqn = pytest.importorskip("pytorchcv.models.squeezenext")

from sqnxt_engine.cli.convert import main as convert  # noqa: E402
from sqnxt_engine.io.model import load_model  # noqa: E402
from sqnxt_engine.runtime import Runner  # noqa: E402

NAMES = ["sqnxt23_w1", "sqnxt23_w3d2", "sqnxt23_w2", "sqnxt23v5_w1", "sqnxt23v5_w3d2", "sqnxt23v5_w2"]


def reference(name: str, seed: int = 0):
    """A pytorchcv model with seeded weights, non-trivial biases and batch-norm statistics."""
    torch.manual_seed(seed)
    model = getattr(sqn, name)(pretrained=False)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
            elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.normal_(0.0, 0.05, generator=g)
    return model.eval()


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    cache = {}

    def get(name):
        if name not in cache:
            model = reference(name)
            d = tmp_path_factory.mktemp(name)
            legacy = NAMES.index(name) % 2 == 1  # half the models go through the legacy format
            torch.save(model.state_dict(), d / "model.pth", _use_new_zipfile_serialization=not legacy)
            assert convert([str(d / "model.pth"), "-o", str(d / "model.npz")]) == 0
            cache[name] = (model, load_model(d / "model.npz"))
        return cache[name]
    return get


def engine_name(module_path: str, module) -> str | None:
    """The engine node whose output equals this torch module's output."""
    kind = type(module).__name__
    if kind == "ConvBlock":
        return f"{module_path}.act"
    if kind == "SqnxtUnit":
        return f"{module_path}.activ"
    return {"features.init_block.pool": "features.init_block.pool",
            "features.final_pool": "features.final_pool", "output": "output"}.get(module_path)


@pytest.mark.parametrize("name", NAMES)
def test_float64_layer_by_layer(converted, name):
    model, (graph, arrays, meta) = converted(name)
    assert graph.name == name
    x = np.random.default_rng(1).normal(size=(1, 3, 224, 224))
    want = {}
    model = model.double()
    # n=...: bind each hook's node name now, not the loop's last one
    hooks = [m.register_forward_hook(lambda mod, i, o, n=engine_name(p, m): want.__setitem__(n, o.detach().numpy()))  # noqa: B008
             for p, m in model.named_modules() if engine_name(p, m)]
    with torch.no_grad():
        model(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    model.float()
    got = Runner(graph, arrays, np.float64, fuse=False).run(x, capture=True)
    assert len(want) > 20
    for node, ref in want.items():
        assert_close(got[node], ref, 1e-9, err_msg=node)


@pytest.mark.parametrize("name", NAMES)
def test_float32_logits_end_to_end(converted, name):
    model, (graph, arrays, meta) = converted(name)
    x = np.random.default_rng(2).normal(size=(2, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    got = Runner(graph, arrays)(x)
    span = want.max() - want.min()
    assert np.abs(got - want).max() < 1e-4 * span
    for a, b in zip(got, want):
        assert list(np.argsort(-a)[:5]) == list(np.argsort(-b)[:5])
