"""The float runner: executes a graph on an NCHW batch.

Binding weights compiles the graph into a plan of steps (graph.fusion's: a batch norm that is the
only consumer of a conv or fc is folded into its weights and bias, in float64, then cast; an
activation that is the only consumer of a conv, fc, batch norm or add runs in place on its
producer's fresh output), each specialised to its weights, and each intermediate buffer is
released as soon as its last consumer has run.

Calling the runner (`runner(x)`) runs a compiled pass (CompiledPass): for one input shape, the
steps resolved once into a flat list of native calls (_infer.Plan) over buffers allocated once,
run by one call without the GIL. What it saves is the Python around each step: on the 28x28
Fashion-MNIST model a pass is 135 steps of small products, and the step-by-step pass spent more
time in the Python of each (the loop, ConvPlan's call, array allocation, shape and contiguity
checks, reshapes: about five calls per step) than in the products. What it moves is the same
data: the same gathers, products (NumPy's own BLAS, called with the arguments np.matmul passes,
functional.blas) and epilogues, in the same order, so its outputs equal `run`'s bit for bit.
Steps with no native form (a non-clamp activation, global pooling, fc, ...) run from Python
between native stretches, on the same buffers. `run` (captures, the emulator's mac_step) keeps
the step-by-step pass.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from math import prod

import numpy as np

from ..errors import UserError
from ..functional import _infer, blas, linear_steps
from ..graph import ops as O
from ..graph.fusion import FOLDS_BN, fused_steps
from ..graph.graph import INPUT, Graph, check_weights
from .threads import inference_threads, single_threaded_blas


@dataclass
class Step:
    name: str  # the name of the last node the step computes (its output's name)
    op: O.Op
    inputs: tuple[str, ...]
    params: dict
    activation: O.Op | None
    release: tuple[str, ...]  # buffers whose last consumer is this step
    covers: tuple[str, ...]  # every node the step computes (the op's, a folded BN's, the act's)
    run: object = None  # op.prepare(params, dtype): the forward pass specialised to its weights
    in_place: bool = False  # an add that may accumulate into its first input's dying buffer
    act_in_run: bool = False  # `run` applies the activation itself (a conv's fused clamp)


class Runner:
    """Runs `graph` with `weights` ({'<node>.<param>': array}) in float32 or float64.

    fuse=False keeps every node separate (every node's output can then be captured), which is
    what layer-by-layer comparisons with a reference need. The weights are checked against the
    graph (graph.check_weights) unless checked=True says that was done already, by the weight
    file's loader (io.model.load_model checks a file against its architecture and names the file).
    """

    def __init__(self, graph: Graph, weights: dict, dtype=np.float32, fuse: bool = True,
                 checked: bool = False):
        self.graph = graph
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise UserError(f"the float runner takes float32 or float64, not {self.dtype}")
        if not checked:
            check_weights(graph, weights)
        self.steps = self._compile(weights, fuse)
        self._passes: dict[int, CompiledPass] = {}   # the last input shape's pass, per batch slice
        self._locks = {}                               # one caller at a time per slice's buffers
        self._locks_lock = threading.Lock()

    def _compile(self, weights, fuse):
        steps = []
        for f in fused_steps(self.graph, weights, fuse):
            params = {k: np.ascontiguousarray(v, dtype=self.dtype) for k, v in f.params.items()}
            clamp = f.activation.bounds if isinstance(f.op, O.Conv2d) and f.activation is not None else None
            run = f.op.prepare(params, self.dtype, clamp) if clamp else f.op.prepare(params, self.dtype)
            steps.append(Step(f.name, f.op, f.inputs, params, f.activation, (), f.covers, run,
                              act_in_run=clamp is not None))
        return _with_releases(steps, self.graph.outputs)

    def _check_input(self, x: np.ndarray) -> None:
        expected = self.graph.input_shape
        if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise UserError(f"{self.graph.name} takes input (N, {', '.join(map(str, expected))}), "
                            f"got {tuple(x.shape)}")

    def run(self, x: np.ndarray, capture: bool = False, mac_step=None) -> dict[str, np.ndarray]:
        """Run on a batch, step by step; returns the graph outputs by name, and with capture=True
        every step's output (keyed by the name of the last node the step covers). mac_step: a
        function (step, inputs) -> output that computes the conv and fc steps instead of
        their prepared forward pass (the emulator runs them on the accelerator's kernels);
        the step's fused activation is still applied here."""
        x = np.asarray(x)
        self._check_input(x)
        env = {INPUT: x.astype(self.dtype, copy=False)}
        captured = {}
        for step in self.steps:
            y = _step(step, [env[i] for i in step.inputs], mac_step, in_place=step.in_place and not capture)
            env[step.name] = y
            if capture:
                captured[step.name] = y
            for name in step.release:
                del env[name]
        outs = {name: env[name] for name in self.graph.outputs}
        return {**captured, **outs} if capture else outs

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The first output of the graph for a batch, by a compiled pass (module docstring); its
        value equals `run`'s bit for bit.

        With more than one inference thread (runtime.set_threads) and at least two images per
        thread, the batch is split into one slice per thread, run side by side with BLAS held to
        one thread. Split by images, all of a pass runs in parallel: a batch's products are many
        small ones (one per image, which OpenBLAS runs on one thread anyway) and the compiled
        kernels run serially in the default build; both release the GIL. The outputs equal the
        unsplit pass's up to rounding: BLAS picks a product's blocking, so its summation order,
        by the matrix sizes, and a fully connected layer's rows are the batch. With fewer images
        the compiled pass splits each step instead (CompiledPass.run): the outputs equal one
        thread's bit for bit."""
        x = np.asarray(x)
        threads = inference_threads()
        if threads > 1 and x.ndim > 0 and len(x) >= 2 * threads:
            return self._split_batch(x, threads)
        if threads > 1:
            with single_threaded_blas():  # the pass's own threads split the products
                return self._compiled(x, 0, threads)
        return self._compiled(x, 0, 1)

    def _compiled(self, x: np.ndarray, slot: int, threads: int) -> np.ndarray:
        """The first output by the compiled pass kept for `slot` (a slice of a split batch), built
        anew when the input's shape changed; by `run` where no compiled pass can be built or
        another thread is using this slot's buffers."""
        self._check_input(x)
        with self._locks_lock:
            lock = self._locks.setdefault(slot, threading.Lock())
        if not blas.usable() or not lock.acquire(blocking=False):
            return self.run(x)[self.graph.outputs[0]]
        try:
            compiled = self._passes.get(slot)
            if compiled is None or compiled.shape != x.shape:
                self._passes[slot] = None   # the old buffers go before the new ones are taken
                compiled = self._passes[slot] = CompiledPass(self, x.shape)
            return compiled.run(x, threads)
        finally:
            lock.release()

    def _split_batch(self, x: np.ndarray, threads: int) -> np.ndarray:
        from concurrent.futures import ThreadPoolExecutor
        with single_threaded_blas(), ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(lambda job: self._compiled(job[1], job[0], 1),
                                  enumerate(np.array_split(x, threads))))
        return np.concatenate(parts)


def _step(step: Step, xs: list[np.ndarray], mac_step=None, in_place: bool = False) -> np.ndarray:
    """One step of the step-by-step pass on its inputs: its output, activation applied."""
    fused = step.act_in_run   # the prepared forward pass applies the activation itself
    if mac_step is not None and isinstance(step.op, FOLDS_BN):
        y = mac_step(step, xs)
        fused = False         # ...but mac_step replaces that pass
    elif in_place:            # an add accumulating into its first input's dying buffer
        y = xs[0]
        for other in xs[1:]:
            y += other
    else:
        y = step.run(xs)
    if step.activation is not None and not fused:
        step.activation.apply_(y)
    return y


class CompiledPass:
    """The runner's steps compiled for one input shape: every step's output gets a buffer once
    (a buffer whose last reader has run is handed to a later step of the same or smaller size,
    as the step-by-step pass frees it, so the peak is about that pass's), and the steps become
    native calls of an _infer.Plan, run without the GIL in one call per native stretch; the steps
    with no native form run from Python on the same buffers, their output copied into its
    buffer. The output returned is a copy: no buffer of the pass reaches the caller."""

    def __init__(self, runner: Runner, shape: tuple[int, ...]):
        self.shape = tuple(shape)
        n, dtype, graph = shape[0], runner.dtype, runner.graph
        self.plan = _infer.Plan(dtype)
        self.buffers: list[np.ndarray] = []   # every buffer the pass holds
        self.split_for = 1                    # the thread count the plan's splits were decided for
        self.split_steps = 0                  # how many steps are split for it
        free: list[np.ndarray] = []   # flat buffers no step holds now

        def take(shape):
            size = max(1, prod(shape))
            fits = [i for i, b in enumerate(free) if len(b) >= size]
            if fits:
                buf = free.pop(min(fits, key=lambda i: len(free[i])))
            else:
                buf = np.empty(size, dtype)
                self.buffers.append(buf)
            return buf[: prod(shape)].reshape(shape)

        def give(view):
            free.append(view.base if view.base is not None else view)

        self.input = take(self.shape)
        homes = {INPUT: self.input}
        self._conv_before = None   # (name, ConvPlan, input, first plan step) of a native conv just added
        self.stretches: list = []   # (start, end) of native steps, or (step, inputs, output)
        self.spans: list = []       # (step, start, end): the native steps each step became
        for step in runner.steps:
            xs = [homes[i] for i in step.inputs]
            shape_out = (n,) + tuple(graph.output_shape(step.name))
            y = xs[0] if step.in_place else take(shape_out)
            temps: list[np.ndarray] = []
            start = len(self.plan)
            if self._native(step, xs, y, lambda shape, temps=temps: temps.append(take(shape)) or temps[-1]):
                self._record_span(step, start)
                if self.stretches and isinstance(self.stretches[-1][0], int):
                    self.stretches[-1] = (self.stretches[-1][0], len(self.plan))
                else:
                    self.stretches.append((start, len(self.plan)))
            else:
                self.plan.truncate(start)
                self.stretches.append((step, xs, y))
            for t in temps:
                give(t)
            homes[step.name] = y
            for name in step.release:
                if not (step.in_place and name == step.inputs[0]):
                    give(homes.pop(name))
        self.output = homes[graph.outputs[0]]

    def _native(self, step: Step, xs, y, temp) -> bool:
        """Add the step's native calls to the plan; False where it has none."""
        op, plan = step.op, self.plan
        before, self._conv_before = self._conv_before, None
        if isinstance(op, O.Conv2d):
            conv, start = getattr(step.run, "conv_plan", None), len(plan)
            done = (conv is not None and (step.activation is None or step.act_in_run)
                    and conv.native_steps(plan, xs[0], y, temp))
            if done:
                self._conv_before = (step.name, conv, xs[0], start)
            return done
        clamp = step.activation.bounds if step.activation is not None else None
        if step.activation is not None and clamp is None:
            return False
        if isinstance(op, O.Add) and len(xs) >= 2:
            for i, other in enumerate(xs[1:]):
                last = i == len(xs) - 2
                plan.add(_infer.OP_ADD, (y, xs[0] if i == 0 else y, other), (y.size, int(last and clamp is not None)),
                         *(clamp if last and clamp is not None else (-np.inf, np.inf)))
            return True
        if isinstance(op, O.GlobalAvgPool) and clamp is None:
            n, c, h, w = xs[0].shape
            plan.add(_infer.OP_MEAN, (xs[0], y), (n * c, h * w))
            return True
        if isinstance(op, O.Flatten) and clamp is None:
            plan.add(_infer.OP_COPY, (xs[0], y), (1, y.size, y.size, y.size))
            return True
        if isinstance(op, O.Linear):
            return self._linear(step, xs[0], y, clamp)
        if isinstance(op, O.MaxPool) and clamp is None:
            n, c, h, w = xs[0].shape
            t, _, l, _ = op.padding
            if self._pool_fuses(step, before, y):
                name, conv, x, start = before
                plan.truncate(start)
                conv.native_pooled_steps(plan, x, y, op.kernel, op.stride, t, l)
                return True
            plan.add(_infer.OP_MAX_POOL, (xs[0], y), (n * c, h, w, *y.shape[2:], *op.kernel, *op.stride, t, l))
            return True
        return False

    def _record_span(self, step: Step, start: int) -> None:
        """Note the native steps [start, end) a runner step became (for profiles); a step folded
        into the one before (_pool_fuses) moves that one's end and has none of its own."""
        end = len(self.plan)
        if self.spans and self.spans[-1][2] > start:   # folded: the plan was cut back below start
            before, first, _ = self.spans.pop()
            self.spans += [(before, first, end), (step, end, end)]
        else:
            self.spans.append((step, start, end))

    @staticmethod
    def _pool_fuses(step: Step, before, y) -> bool:
        """Whether a max pool step folds into the convolution added just before it (OP_PHASED_POOL):
        it reads that convolution's output, nothing else does (the pool is its last reader and
        no step came between), the convolution's scheme pools natively, and its input is not the
        pool's output buffer. The convolution's output then never exists: its rows are pooled in
        cache as they are computed, which for a stem (sqnxt23v5_w1's 64 x 110 x 110) saves writing
        the network's largest activation out and reading it back."""
        if before is None:
            return False
        name, conv, x, _ = before
        return (step.inputs[0] == name and name in step.release and conv.pools_natively()
                and not np.shares_memory(x, y))

    def _linear(self, step: Step, x, y, clamp) -> bool:
        """Linear.forward's product (functional.linear_steps), then its bias added row by row,
        the clamp on the sum: the operations the step-by-step pass does, in its order."""
        bias = step.params.get("bias")
        if not linear_steps(self.plan, x, step.params["weight"], y):
            return False
        if bias is not None:
            for row in range(y.shape[0]):
                self.plan.add(_infer.OP_ADD, ((y, row * y.shape[1]), (y, row * y.shape[1]), bias),
                              (y.shape[1], int(clamp is not None)), *(clamp or (-np.inf, np.inf)))
        elif clamp is not None:
            self.plan.add(_infer.OP_BIAS_CLAMP, (y, None), (y.size, 1, 1), *clamp)
        return True

    def run(self, x: np.ndarray, threads: int = 1) -> np.ndarray:
        if threads > 1 and threads != self.split_for:
            # which steps are split, decided once per thread count (Plan.check_splits): a product
            # split must give its whole's bytes, checked on varied values
            rng = np.random.default_rng(0)
            for buf in self.buffers:
                buf[:] = rng.standard_normal(len(buf))
            self.split_steps = self.plan.check_splits(threads)
            self.split_for = threads
        if not self.split_steps:
            threads = 1   # nothing big enough to split: the other threads would only wait
        np.copyto(self.input, x, casting="unsafe")
        for stretch in self.stretches:
            if isinstance(stretch[0], int):
                self.plan.run(*stretch, threads)
            else:
                step, xs, y = stretch
                np.copyto(y, _step(step, xs, in_place=step.in_place))
        return self.output.copy()


def _with_releases(steps: list[Step], outputs) -> list[Step]:
    """Mark, on each step, the buffers it is the last to read."""
    last_use: dict[str, int] = {}
    for i, s in enumerate(steps):
        for name in s.inputs:
            last_use[name] = i
    for name in outputs:
        last_use.pop(name, None)
    releases: dict[int, list[str]] = {}
    for name, i in last_use.items():
        releases.setdefault(i, []).append(name)
    for i, s in enumerate(steps):
        s.release = tuple(releases.get(i, ()))
        first = s.inputs[0]
        s.in_place = (isinstance(s.op, O.Add) and first in s.release and first != INPUT
                      and s.inputs.count(first) == 1)
    return steps
