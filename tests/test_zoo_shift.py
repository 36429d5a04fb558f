"""Shift networks in the zoo: the twelve ShiftResNets and the ResNet baselines have the parameter
counts of the authors' code, counted on an independent PyTorch re-implementation of it written here
from MODELS.md; the shift SqueezeNext is the SqueezeNext builder's block with shift + 1x1."""
import numpy as np
import pytest

from sqnxt_engine import zoo
from sqnxt_engine.errors import UserError
from sqnxt_engine.graph import ops as O
from sqnxt_engine.runtime import Runner, random_weights

torch = pytest.importorskip("torch")
nn = torch.nn

SHIFT_RESNETS = [f"ShiftResNet-{d}-e{e}" for d in (20, 56, 110) for e in (1, 3, 6, 9)]


class AuthorsBlock(nn.Module):
    """The authors' CIFAR block as MODELS.md describes it: CSC (1x1 to eps*C + BN + ReLU, shift,
    1x1 to C with the stride + BN) or basic (two 3x3 + BN); shortcut 1x1 + BN on a shape change.
    The shift has no parameters, so the parameter count does not depend on how it is written."""

    def __init__(self, cin, cout, stride, eps):
        super().__init__()
        if eps is None:
            self.body = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                                      nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(cout))
        else:
            mid = int(cout * eps)
            self.body = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), nn.BatchNorm2d(mid), nn.ReLU(),
                                      nn.Conv2d(mid, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


def authors_resnet(blocks, eps, num_classes=10):
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16)]
    cin = 16
    for stage, cout in enumerate((16, 32, 64)):
        for u in range(blocks):
            layers.append(AuthorsBlock(cin, cout, 2 if (u == 0 and stage > 0) else 1, eps))
            cin = cout
    layers.append(nn.Linear(64, num_classes))
    return nn.Sequential(*layers)


def torch_params(model):
    return sum(p.numel() for p in model.parameters())


def test_shift_resnet_20_e3_has_the_published_count():
    assert zoo.build("ShiftResNet-20-e3").params == 95_642  # MODELS.md, the authors' code


@pytest.mark.parametrize("name", SHIFT_RESNETS + ["ResNet-20", "ResNet-56", "ResNet-110"])
def test_parameter_counts_equal_the_authors_code(name):
    depth = int(name.split("-")[1])
    eps = float(name.split("-e")[1]) if name.startswith("Shift") else None
    assert zoo.build(name).params == torch_params(authors_resnet((depth - 2) // 6, eps))


def test_sqnxt_models_lists_the_twelve_shift_resnets_with_the_authors_counts(capsys):
    import json

    from sqnxt_engine.cli.models import main
    assert main(["--json"]) == 0
    listed = {r["name"]: r["params"] for r in json.loads(capsys.readouterr().out)}
    for name in SHIFT_RESNETS:
        depth, eps = int(name.split("-")[1]), float(name.split("-e")[1])
        assert listed[name] == torch_params(authors_resnet((depth - 2) // 6, eps)), name
    assert "1.0-Shift-SqNxt-23v5" in listed


def test_zoo_lists_the_twelve_shift_resnets_and_the_shift_squeezenext():
    names = zoo.names()
    assert [n for n in names if n.startswith("ShiftResNet")] == SHIFT_RESNETS
    assert {"ResNet-20", "ResNet-56", "ResNet-110", "1.0-Shift-SqNxt-23v5"} <= set(names)
    assert zoo.canonical("shiftresnet 56 e6") == "ShiftResNet-56-e6"


def test_csc_module_layout_and_counts():
    g = zoo.build("ShiftResNet-20-e6", in_channels=1, input_size=28)
    assert g.input_shape == (1, 28, 28)
    unit = {n.name: n for n in g.nodes if n.name.startswith("stage2.unit1.")}
    assert unit["stage2.unit1.shift"].op == O.Shift(3, 1, "interleaved")
    assert g.shapes["stage2.unit1.shift"] == (192, 28, 28)  # the shift runs before the stride
    assert g.shapes["stage2.unit1.conv2"] == (32, 14, 14)
    assert "stage2.unit1.shortcut" in unit and "stage2.unit2.shortcut" not in g
    assert sum(layer.macs for layer in g.layers if isinstance(layer.op, O.Shift)) == 0
    with pytest.raises(UserError, match="6n \\+ 2"):
        zoo.build("ShiftResNet-20-e3", depth=21)
    assert zoo.build("ResNet-20", depth=32).params == torch_params(authors_resnet(5, None))
    with pytest.raises(UserError, match="assignment"):
        zoo.build("ShiftResNet-20-e3", shift_assignment="diagonal")


@pytest.mark.parametrize("width, depths", [(1.0, (2, 4, 14, 1)), (2.0, (1, 1, 2, 1)), (1.5, (6, 6, 8, 1))])
def test_shift_squeezenext_replaces_the_separable_pair(width, depths):
    spec = zoo.SqueezeNextSpec(width=width, depths=depths, stem_kernel=5, wiring="projection")
    dense = zoo.build_squeezenext(spec, "dense")
    shifted = zoo.build_squeezenext(zoo.squeezenext.with_options(spec, spatial="shift"), "shift")
    kinds = [n.op.kind for n in shifted.nodes]
    assert kinds.count("shift") == sum(depths)
    assert not any(isinstance(n.op, O.Conv2d) and n.op.kernel in ((1, 3), (3, 1)) for n in shifted.nodes)
    # per block, the separable pair (conv3, conv4 and their BNs) becomes one 1x1 conv3 + BN
    def params(g, suffixes):
        return sum(layer.params for layer in g.layers if layer.name.endswith(suffixes))
    pair = (".conv3", ".conv3.bn", ".conv4", ".conv4.bn")
    assert shifted.params == dense.params - params(dense, pair) + params(shifted, pair)
    assert all(layer.op.kernel == (1, 1) for layer in shifted.layers if layer.name.endswith(".conv3"))
    w = random_weights(shifted, 0)
    x = np.random.default_rng(0).standard_normal((1,) + shifted.input_shape).astype(np.float32)
    assert np.isfinite(Runner(shifted, w)(x)).all()


def test_shift_squeezenext_by_name_and_small_input_form():
    g = zoo.build("1.0-Shift-SqNxt-23v5", small_input=True, stem_stride=2, input_size=28, in_channels=1,
                  num_classes=10)
    assert g.input_shape == (1, 28, 28) and g.output_shape() == (10,)
    assert any(n.name == "stage1.unit1.shift" for n in g.nodes)
    with pytest.raises(UserError, match="paper family"):
        zoo.SqueezeNextSpec(family="pytorchcv", spatial="shift")
