"""The float runner: folding and fusion change nothing, buffers are released, inputs checked."""
import numpy as np
import pytest

from sqnxt_engine import UserError, zoo
from sqnxt_engine.runtime import Runner, random_weights

from tolerance import assert_close


@pytest.mark.parametrize("name", ["1.0-SqNxt-23v5", "sqnxt23_w1", "1.0-G-SqNxt-23", "MobileNet-v1",
                                  "TinyDarknet", "AlexNet", "SqueezeNet-v1.1"])
def test_fused_float32_equals_unfused_float64(name):
    g = zoo.build(name)
    w = random_weights(g, seed=3)
    x = np.random.default_rng(0).normal(size=(2,) + g.input_shape)
    fast = Runner(g, w)(x.astype(np.float32))
    exact = Runner(g, w, np.float64, fuse=False)(x)
    assert fast.dtype == np.float32
    assert_close(fast, exact, 1e-4)


def test_batch_items_are_independent():
    g = zoo.build("1.0-SqNxt-23")
    r = Runner(g, random_weights(g, 1), np.float64)
    x = np.random.default_rng(0).normal(size=(3,) + g.input_shape)
    # one image alone is a different BLAS call shape from the batch: equal up to rounding
    assert_close(r(x)[1:2], r(x[1:2]), 1e-12)


def test_buffers_are_released_after_their_last_consumer():
    g = zoo.build("1.0-SqNxt-23v5")
    r = Runner(g, random_weights(g, 0))
    live, peak = {"input"}, 0
    for step in r.steps:
        live.add(step.name)
        live -= set(step.release)
        peak = max(peak, len(live))
    assert live == set(g.outputs)
    assert peak <= 4  # a residual block keeps at most its input, the branch and the shortcut


def test_wrong_input_shape_and_weights_are_user_errors():
    g = zoo.build("1.0-SqNxt-23v5")
    w = random_weights(g, 0)
    with pytest.raises(UserError, match="takes input"):
        Runner(g, w)(np.zeros((1, 3, 224, 224), np.float32))
    bad = dict(w)
    del bad["stem.weight"]
    with pytest.raises(UserError, match="lack stem.weight"):
        Runner(g, bad)
    bad = dict(w, **{"stem.weight": np.zeros((64, 3, 7, 7))})
    with pytest.raises(UserError, match="stem.weight has shape"):
        Runner(g, bad)
    with pytest.raises(UserError, match="extra is not a parameter"):
        Runner(g, dict(w, extra=np.zeros(1)))


def test_capture_gives_every_node_when_unfused():
    g = zoo.build("1.0-SqNxt-23v5")
    out = Runner(g, random_weights(g, 0), fuse=False).run(
        np.zeros((1,) + g.input_shape, np.float32), capture=True)
    assert set(out) == {n.name for n in g.nodes}
