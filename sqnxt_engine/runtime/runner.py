"""The float runner: executes a graph on an NCHW batch.

Binding weights compiles the graph into a plan of steps (graph.fusion's: a batch norm that is the
only consumer of a conv or fc is folded into its weights and bias, in float64, then cast; an
activation that is the only consumer of a conv, fc, batch norm or add runs in place on its
producer's fresh output), each specialised to its weights, and each intermediate buffer is
released as soon as its last consumer has run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UserError
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

    def _compile(self, weights, fuse):
        steps = []
        for f in fused_steps(self.graph, weights, fuse):
            params = {k: np.ascontiguousarray(v, dtype=self.dtype) for k, v in f.params.items()}
            clamp = f.activation.bounds if isinstance(f.op, O.Conv2d) and f.activation is not None else None
            run = f.op.prepare(params, self.dtype, clamp) if clamp else f.op.prepare(params, self.dtype)
            steps.append(Step(f.name, f.op, f.inputs, params, f.activation, (), f.covers, run,
                              act_in_run=clamp is not None))
        return _with_releases(steps, self.graph.outputs)

    def run(self, x: np.ndarray, capture: bool = False, mac_step=None) -> dict[str, np.ndarray]:
        """Run on a batch; returns the graph outputs by name, and with capture=True every
        step's output (keyed by the name of the last node the step covers). mac_step: a
        function (step, inputs) -> output that computes the conv and fc steps instead of
        their prepared forward pass (the emulator runs them on the accelerator's kernels);
        the step's fused activation is still applied here."""
        x = np.asarray(x)
        expected = self.graph.input_shape
        if x.ndim != len(expected) + 1 or tuple(x.shape[1:]) != expected:
            raise UserError(f"{self.graph.name} takes input (N, {', '.join(map(str, expected))}), "
                            f"got {tuple(x.shape)}")
        env = {INPUT: x.astype(self.dtype, copy=False)}
        captured = {}
        for step in self.steps:
            xs = [env[i] for i in step.inputs]
            fused = step.act_in_run   # the prepared forward pass applies the activation itself
            if mac_step is not None and isinstance(step.op, FOLDS_BN):
                y = mac_step(step, xs)
                fused = False         # ...but mac_step replaces that pass
            elif step.in_place and not capture:  # captured buffers must stay as they were
                y = xs[0]
                for other in xs[1:]:
                    y += other
            else:
                y = step.run(xs)
            if step.activation is not None and not fused:
                step.activation.apply_(y)
            env[step.name] = y
            if capture:
                captured[step.name] = y
            for name in step.release:
                del env[name]
        outs = {name: env[name] for name in self.graph.outputs}
        return {**captured, **outs} if capture else outs

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The first output of the graph for a batch.

        With more than one inference thread (runtime.set_threads) and at least two images per
        thread, the batch is split into one slice per thread, run side by side with BLAS held to
        one thread. Split by images, all of a pass runs in parallel: a batch's products are many
        small ones (one per image, which OpenBLAS runs on one thread anyway) and the compiled
        kernels run serially in the default build; both release the GIL. The outputs equal the
        unsplit pass's up to rounding: BLAS picks a product's blocking, so its summation order,
        by the matrix sizes, and a fully connected layer's rows are the batch."""
        x = np.asarray(x)
        threads = inference_threads()
        if threads > 1 and x.ndim > 0 and len(x) >= 2 * threads:
            return self._split_batch(x, threads)
        return self.run(x)[self.graph.outputs[0]]

    def _split_batch(self, x: np.ndarray, threads: int) -> np.ndarray:
        from concurrent.futures import ThreadPoolExecutor
        out = self.graph.outputs[0]
        with single_threaded_blas(), ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(lambda part: self.run(part)[out], np.array_split(x, threads)))
        return np.concatenate(parts)


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
