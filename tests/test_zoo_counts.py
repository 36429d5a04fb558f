"""The zoo reproduces the published parameter and MAC counts (MODELS.md, pytorchcv)."""
import pytest

from sqnxt_engine import UserError, zoo
from sqnxt_engine.graph import Conv2d, MaxPool

# MODELS.md, "Counting conventions and the figures they reproduce": (params M, MACs M)
EXPECTED = {
    "1.0-SqNxt-23": (0.717, 282.0),
    "1.0-G-SqNxt-23": (0.543, 228.2),
    "1.0-SqNxt-23v5": (0.930, 228.0),
    "2.0-SqNxt-23": (2.362, 749.3),
    "2.0-SqNxt-23v5": (3.223, 708.0),
    "AlexNet": (60.97, 725.1),
    "SqueezeNet-v1.0": (1.248, 837.1),
    "SqueezeNet-v1.1": (1.236, 351.7),
    "TinyDarknet": (1.042, 494.5),
    "MobileNet-v1": (4.232, 573.8),
}

# pytorchcv's own trainable parameter counts (MODELS.md): exact.
PYTORCHCV = {"sqnxt23_w1": 724_056, "sqnxt23_w3d2": 1_511_824, "sqnxt23_w2": 2_583_752,
             "sqnxt23v5_w1": 921_816, "sqnxt23v5_w3d2": 1_953_616, "sqnxt23v5_w2": 3_366_344}

# The paper's Tables 1-3 in millions of parameters, for the variants MODELS.md's table omits.
PAPER_PARAMS = {"1.0-SqNxt-23v2": 0.74, "1.0-SqNxt-23v3": 0.74, "1.0-SqNxt-23v4": 0.77,
                "2.0-SqNxt-23v4": 2.56, "1.5-SqNxt-23": 1.4, "1.5-SqNxt-34": 2.1, "1.5-SqNxt-44": 2.6}


@pytest.mark.parametrize("name", EXPECTED)
def test_counts_match_models_md(name):
    g = zoo.build(name)
    params_m, macs_m = EXPECTED[name]
    assert g.params / 1e6 == pytest.approx(params_m, rel=0.01)
    assert g.macs / 1e6 == pytest.approx(macs_m, rel=0.01)


@pytest.mark.parametrize("name", PYTORCHCV)
def test_pytorchcv_param_counts_exact(name):
    assert zoo.build(name).params == PYTORCHCV[name]


@pytest.mark.parametrize("name", PAPER_PARAMS)
def test_other_variants_near_paper_tables(name):
    # the paper rounds to two digits, and 34/44 depth lists are inferred: 3% is the honest bound
    assert zoo.build(name).params / 1e6 == pytest.approx(PAPER_PARAMS[name], rel=0.03)


def test_every_model_builds_to_its_classes():
    for name in zoo.names():
        g = zoo.build(name)
        classes = 10 if g.meta["family"] == "cifar-resnet" else 1000  # CIFAR-10 / ImageNet
        assert g.output_shape() == (classes,), name


def test_spatial_sizes_follow_the_paper():
    v1, v5 = zoo.build("1.0-SqNxt-23"), zoo.build("1.0-SqNxt-23v5")
    assert v1.shapes["stem"][1:] == (111, 111) and v1.shapes["pool1"][1:] == (55, 55)
    assert v5.shapes["stem"][1:] == (112, 112) and v5.shapes["pool1"][1:] == (56, 56)
    assert v5.shapes["stage4.unit1.activ"] == (256, 7, 7)
    assert zoo.build("sqnxt23_w1").shapes["features.final_block.act"] == (128, 7, 7)


def test_grouped_variant_groups_exactly_the_right_convs():
    g = zoo.build("1.0-G-SqNxt-23")
    grouped = {l.name.rsplit(".", 1)[-1] for l in g.layers if isinstance(l.op, Conv2d) and l.op.groups == 2}
    assert grouped == {"conv1", "conv3", "conv4"}


def test_separable_order_alternates_in_paper_family():
    g = zoo.build("1.0-SqNxt-23")
    assert g["stage1.unit1.conv3"].op.kernel == (3, 1) and g["stage1.unit2.conv3"].op.kernel == (1, 3)
    assert g["stage2.unit1.conv3"].op.kernel == (3, 1)  # block 7 (odd) over the whole network


def test_custom_depths_and_stem():
    from sqnxt_engine.zoo import SqueezeNextSpec, build_squeezenext
    g = build_squeezenext(SqueezeNextSpec(depths=(3, 5, 12, 1), stem_kernel=5, wiring="projection"), "mine")
    assert sum(1 for l in g.layers if l.name.endswith(".conv5")) == 21
    assert g["stem"].op.kernel == (5, 5)


def test_small_input_stem_option():
    g = zoo.build("1.0-SqNxt-23v5", small_input=True, input_size=28, in_channels=1, num_classes=10)
    assert g["stem"].op.kernel == (3, 3) and g["stem"].op.stride == (1, 1)
    assert not any(isinstance(l.op, MaxPool) for l in g.layers)
    assert g.output_shape() == (10,)


def test_names_are_forgiving_but_unknown_names_fail_clearly():
    assert zoo.build("squeezenet v1.0").name == "SqueezeNet-v1.0"
    assert zoo.build("1.0-sqnxt-23V5").name == "1.0-SqNxt-23v5"
    with pytest.raises(UserError, match="unknown model"):
        zoo.build("ResNet-50")
    with pytest.raises(UserError, match="v2-v5"):
        zoo.build("1.0-SqNxt-34v5")
