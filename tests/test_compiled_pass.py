"""The runner's compiled pass (runtime.runner.CompiledPass, functional._infer.Plan): the same values
as the step-by-step pass bit for bit, on every zoo model, on one thread or split over several;
rebuilt for a new input shape; never handing its own buffers to the caller."""
from types import SimpleNamespace

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from sqnxt_engine import zoo
from sqnxt_engine.functional import _infer, blas
from sqnxt_engine.graph import ops as O
from sqnxt_engine.graph.graph import GraphBuilder
from sqnxt_engine.runtime import Runner, random_weights, set_threads
from sqnxt_engine.runtime import threads as T

pytestmark = pytest.mark.skipif(not blas.usable(), reason="NumPy's CBLAS entry points not found: no compiled pass")

SLOW = {"AlexNet", "ResNet-56", "ResNet-110"}  # their random weights or passes take seconds


def _graph(name):
    try:  # a small input where the model takes one (its own otherwise)
        return zoo.build(name, input_size=32, num_classes=10)
    except Exception:
        return zoo.build(name)


@pytest.fixture
def threads():
    """set_threads for the test, the thread count and BLAS's limits put back afterwards; every
    step of a plan is split however small (the default leaves small steps whole)."""
    before = T.inference_threads()
    sizes = _infer.set_split_sizes(1, 1)
    with threadpool_limits(limits=None, user_api="blas"):
        try:
            yield SimpleNamespace(set=set_threads, default_sizes=sizes)
        finally:
            set_threads(before)
            _infer.set_split_sizes(*sizes)


def _compiled_steps(runner):
    return [s for s in runner._passes[0].stretches if isinstance(s[0], int)]


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in zoo.names()])
def test_compiled_pass_equals_step_by_step_on_every_zoo_model(name, threads):
    threads.set(1)
    g = _graph(name)
    runner = Runner(g, random_weights(g, 0))
    x = np.random.default_rng(1).normal(size=(1,) + g.input_shape).astype(np.float32)
    want = runner.run(x)[g.outputs[0]]
    got = runner(x)
    assert _compiled_steps(runner), "nothing of the pass was compiled"
    np.testing.assert_array_equal(got, want)
    threads.set(2)   # each step split over two threads: the same bytes again
    np.testing.assert_array_equal(runner(x), want)
    assert runner._passes[0].split_for == 2


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batches_and_both_precisions(dtype, threads):
    threads.set(1)
    g = zoo.build("1.0-SqNxt-23v5", input_size=32, num_classes=10)
    runner = Runner(g, random_weights(g, 2), dtype)
    x = np.random.default_rng(2).normal(size=(3,) + g.input_shape).astype(dtype)
    want = runner.run(x)[g.outputs[0]]
    np.testing.assert_array_equal(runner(x), want)
    threads.set(2)   # 3 images: fewer than two per thread, so each step is split, not the batch
    np.testing.assert_array_equal(runner(x), want)


@pytest.mark.parametrize("batch", [1, 4])
def test_the_classifier_head_runs_natively(batch, threads):
    """Global average pool, flatten and the fully connected layer (one image: NumPy's gemv; more:
    its gemm by the transposed weights, functional.linear_steps) in the plan: no step from Python."""
    threads.set(1)
    g = zoo.build("1.0-SqNxt-23v5", input_size=32, num_classes=10)
    runner = Runner(g, random_weights(g, 5))
    x = np.random.default_rng(5).normal(size=(batch,) + g.input_shape).astype(np.float32)
    want = runner.run(x)[g.outputs[0]]
    np.testing.assert_array_equal(runner(x), want)
    assert [s for s in runner._passes[0].stretches if not isinstance(s[0], int)] == []
    assert {_infer.OP_MEAN, _infer.OP_GEMV if batch == 1 else _infer.OP_GEMM} <= set(runner._passes[0].plan.kinds())


def test_a_max_pool_folds_into_the_phased_stem_it_alone_reads(threads):
    """SqueezeNext's stem and max pool become one step (OP_PHASED_POOL) with the same bytes; a
    pool whose convolution's output is read again later stays a step of its own."""
    threads.set(1)
    g = zoo.build("1.0-SqNxt-23v5", input_size=64, num_classes=10)
    runner = Runner(g, random_weights(g, 6))
    x = np.random.default_rng(6).normal(size=(2,) + g.input_shape).astype(np.float32)
    np.testing.assert_array_equal(runner(x), runner.run(x)[g.outputs[0]])
    kinds = runner._passes[0].plan.kinds()
    assert kinds[0] == _infer.OP_PHASED_POOL and _infer.OP_MAX_POOL not in kinds
    (stem, a, b), (pool, c, d) = runner._passes[0].spans[:2]   # for profiles: the step each came from
    assert (a, b) == (0, 1) and stem.op.kind == "conv" and pool.op.kind == "maxpool" and c == d == 1
    b = GraphBuilder("reread", (3, 24, 24))
    stem = b.relu("stem.act", b.conv("stem", b.input, 8, 7, stride=2, padding=3))
    p = b.add("p", O.MaxPool((3, 3), (2, 2), ceil_mode=True), stem)
    b.add("sum", O.Add(), b.add("q", O.MaxPool((3, 3), (2, 2), ceil_mode=True), stem), p)
    g = b.build()
    runner = Runner(g, random_weights(g, 7))
    x = np.random.default_rng(7).normal(size=(1,) + g.input_shape).astype(np.float32)
    np.testing.assert_array_equal(runner(x), runner.run(x)[g.outputs[0]])
    kinds = runner._passes[0].plan.kinds()
    assert _infer.OP_PHASED in kinds and kinds.count(_infer.OP_MAX_POOL) == 2


def test_two_threads_equal_one_on_the_fashion_mnist_model(threads):
    from sqnxt_engine.io.model import load_model
    from sqnxt_engine.io.shipped import shipped_weights
    graph, arrays, _ = load_model(shipped_weights("1.0-SqNxt-23v5-fmnist"))
    runner = Runner(graph, arrays, checked=True)
    x = np.random.default_rng(3).normal(size=(1,) + graph.input_shape).astype(np.float32)
    threads.set(1)
    one = runner(x)
    np.testing.assert_array_equal(one, runner.run(x)[graph.outputs[0]])
    for n in (2, 3):
        threads.set(n)
        np.testing.assert_array_equal(runner(x), one)
    _infer.set_split_sizes(*threads.default_sizes)   # only the big steps split
    runner._passes[0].split_for = 1            # ...decided again at the next call
    threads.set(2)
    np.testing.assert_array_equal(runner(x), one)


def test_python_steps_between_native_ones():
    """A step with no native form (here a sigmoid) runs from Python between native stretches,
    reading and writing the pass's buffers; pools, adds and fused activations run natively."""
    b = GraphBuilder("mixed", (3, 12, 12))
    a = b.relu("a.act", b.conv("a", b.input, 8, 3, padding=1))   # the ReLU fused into the conv
    s = b.add("s", O.Sigmoid(), a)
    c = b.add("c.act", O.ReLU6(), b.conv("c", s, 8, (1, 3), padding=(0, 0, 1, 1)))
    p = b.add("p", O.MaxPool((3, 3), (2, 2), ceil_mode=True), c)
    d = b.conv("d", p, 8, 1, groups=2)
    b.relu("out", b.add("sum", O.Add(), d, p, p))
    g = b.build()
    runner = Runner(g, random_weights(g, 4))
    x = np.random.default_rng(4).normal(size=(2,) + g.input_shape).astype(np.float32)
    want = runner.run(x)[g.outputs[0]]
    np.testing.assert_array_equal(runner(x), want)
    stretches = runner._passes[0].stretches
    assert [s[0].op.kind for s in stretches if not isinstance(s[0], int)] == ["sigmoid"]
    assert len(stretches) == 3   # native (conv a), sigmoid, native (conv c, pool, conv d, add)


def test_a_new_input_shape_rebuilds_the_pass():
    g = zoo.build("1.0-SqNxt-23v5", input_size=32, num_classes=10)
    runner = Runner(g, random_weights(g, 5))
    rng = np.random.default_rng(5)
    for n in (1, 4, 1, 2):
        x = rng.normal(size=(n,) + g.input_shape).astype(np.float32)
        np.testing.assert_array_equal(runner(x), runner.run(x)[g.outputs[0]])
        assert runner._passes[0].shape == x.shape


def test_outputs_are_the_callers_own():
    """The output is a copy: a later call does not change an earlier call's output, and no
    output shares memory with the pass's buffers."""
    g = zoo.build("1.0-SqNxt-23v5", input_size=32, num_classes=10)
    runner = Runner(g, random_weights(g, 6))
    rng = np.random.default_rng(6)
    x1, x2 = (rng.normal(size=(1,) + g.input_shape).astype(np.float32) for _ in range(2))
    y1 = runner(x1)
    kept = y1.copy()
    y2 = runner(x2)
    np.testing.assert_array_equal(y1, kept)
    assert not np.array_equal(y1, y2)
    for buf in runner._passes[0].buffers:
        assert not np.shares_memory(y1, buf) and not np.shares_memory(y2, buf)
    y2[:] = 0   # the caller may write into its output: the next pass is not affected
    np.testing.assert_array_equal(runner(x1), kept)


def test_convolutions_without_native_steps_run_from_python(monkeypatch):
    """A ConvPlan on the NumPy reference path has no native steps (native_steps mirrors only
    the compiled path): its steps run from Python inside the compiled pass, values unchanged."""
    from sqnxt_engine import functional as F
    g = zoo.build("1.0-SqNxt-23v5", input_size=32, num_classes=10)
    monkeypatch.setattr(F.ConvPlan, "REFERENCE", True)
    runner = Runner(g, random_weights(g, 7))
    x = np.random.default_rng(7).normal(size=(1,) + g.input_shape).astype(np.float32)
    np.testing.assert_array_equal(runner(x), runner.run(x)[g.outputs[0]])
    from_python = [s[0].op.kind for s in runner._passes[0].stretches if not isinstance(s[0], int)]
    assert from_python.count("conv") == sum(isinstance(s.op, O.Conv2d) for s in runner.steps)


def test_the_direct_pointwise_kernel_runs_from_python_and_winograd_natively():
    """The scheme the compiled pass does not mirror (the direct 1x1 kernel) leaves its step to
    Python, Winograd runs as native steps (its transforms around six BLAS products): the pass
    equals the step-by-step runner bit for bit either way (a 1x1 layer the direct rule picks was
    mirrored as a BLAS product before, and differed in the last bits)."""
    b = GraphBuilder("small", (8, 28, 28))
    y = b.relu("a.act", b.conv("a", b.input, 16, 1))                          # direct: <= 32 channels
    y = b.relu("w.act", b.conv("w", y, 64, (1, 3), padding=(0, 0, 1, 1)))
    g = b.build()
    from sqnxt_engine.functional import ConvPlan
    before, ConvPlan.DIRECT = ConvPlan.DIRECT, True   # (off by default)
    try:
        runner = Runner(g, random_weights(g, 5))
    finally:
        ConvPlan.DIRECT = before
    x = np.random.default_rng(5).normal(size=(1,) + g.input_shape).astype(np.float32)
    np.testing.assert_array_equal(runner(x), runner.run(x)[g.outputs[0]])
    python = [s[0] for s in runner._passes[0].stretches if not isinstance(s[0], int)]
    assert [s.name for s in python] == ["a.act"]   # conv a (direct); conv w is Winograd (saves 1.29M)
    kinds = runner._passes[0].plan.kinds()
    assert kinds.count(_infer.OP_WINO_IN) == kinds.count(_infer.OP_WINO_OUT) == 1
