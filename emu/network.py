"""Run a whole network on the emulated accelerator, layer by layer.

1. Conv and fc weights are pruned by magnitude to the chosen sparsity (the paper assumes 40%),
   so OS really has zeros to skip; the float runner gets the same pruned weights.
2. The float runner (batch norms folded, activations fused) runs the image once; its per-step
   outputs calibrate the activation scales.
3. The emulated run walks the same steps: every conv / fc step becomes a kernel call on 16-bit
   fixed-point operands (quantize.py) through the mapping the search chose (count-only mode),
   executed and counted for real; its int64 accumulators are scaled back, and the fused
   activation applied. Every other step (pooling, add, concat, ...) runs in NumPy on the
   emulated values and is not timed: the accelerator runs the MAC layers (as the paper's
   per-layer results do).
4. Per MAC layer: the counters, timing.py's cycles, energy.py's energy. The emulated output
   is compared with the float runner's.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..graph import ops as O
from ..graph.graph import INPUT, Graph
from ..kernels import AccumulatorOverflowWarning, ConvShape, Counters, ZeroProfile, count, execute
from ..progress import progress_bar
from ..runtime import Runner
from . import search as S
from .energy import Energy, energy
from .hardware import Hardware
from .quantize import frac_bits, prune, quantize
from .timing import Timing, timing


@dataclass
class LayerRecord:
    name: str
    shape: ConvShape
    mapping: object
    counters: Counters
    timing: Timing
    energy: Energy
    dense_macs: int
    overflow_bits: int | None = None  # bits a partial sum needed, if it overflowed acc_bits

    @property
    def cycles(self) -> float:
        return self.timing.total

    def row(self) -> dict:
        r = {"layer": self.name, "shape": S.shape_str(self.shape),
             "dataflow": self.mapping.dataflow, "mapping": S.mapping_str(self.mapping),
             "macs": self.dense_macs, "cycles": round(self.cycles),
             "macs_per_cycle": self.dense_macs / self.cycles if self.cycles else 0.0,
             "utilisation": self.counters.utilisation,
             "dram_bytes": round(self.timing.transfers.bytes)}
        for lv, e in self.energy.levels().items():
            r[f"e_{lv}"] = e
        r["energy"] = self.energy.total
        return r


@dataclass
class NetworkResult:
    model: str
    hw: Hardware
    dataflow: str
    sparsity: float
    layers: list[LayerRecord] = field(default_factory=list)
    max_abs_diff: float = 0.0
    max_abs_ref: float = 0.0
    top1_match: bool = True

    @property
    def cycles(self) -> float:
        return sum(r.cycles for r in self.layers)

    @property
    def energy(self) -> Energy:
        return sum((r.energy for r in self.layers), 0)

    @property
    def macs(self) -> int:
        return sum(r.dense_macs for r in self.layers)

    def total_row(self) -> dict:
        e = self.energy
        c = sum((r.counters for r in self.layers), Counters())
        row = {"layer": "total", "shape": "", "dataflow": "", "mapping": "", "macs": self.macs,
               "cycles": round(self.cycles), "macs_per_cycle": self.macs / self.cycles,
               "utilisation": c.utilisation,
               "dram_bytes": round(sum(r.timing.transfers.bytes for r in self.layers))}
        for lv, v in e.levels().items():
            row[f"e_{lv}"] = v
        row["energy"] = e.total
        return row


def conv_shape(op, in_shape) -> ConvShape:
    if isinstance(op, O.Linear):
        return ConvShape.fc(in_shape[0], op.out_features)
    if op.dilation != (1, 1):
        raise ValueError(f"dilated convolutions are not supported by the kernels ({op})")
    c, h, w = in_shape
    return ConvShape(C=c, H=h, W=w, K=op.out_channels, R=op.kernel[0], S=op.kernel[1],
                     stride=op.stride, padding=op.padding, groups=op.groups)


def pruned_weights(graph: Graph, weights: dict, sparsity: float) -> dict:
    out = dict(weights)
    if sparsity:
        for layer in graph.layers:
            if isinstance(layer.op, (O.Conv2d, O.Linear)):
                key = f"{layer.name}.weight"
                out[key] = prune(weights[key], sparsity).astype(weights[key].dtype)
    return out


def emulate(graph: Graph, weights: dict, hw: Hardware, dataflow: str = "best",
            sparsity: float = 0.4, x: np.ndarray | None = None, seed: int = 0,
            progress: bool = False, cache: dict | None = None) -> NetworkResult:
    """Emulate `graph` on `hw` (see the module doc). x: one input (C, H, W) or (1, C, H, W);
    default a seeded standard-normal input. cache: shared between calls of the same hardware
    to reuse searches of identical layers."""
    if dataflow not in S.DATAFLOW_CHOICES:
        from ..errors import UserError
        raise UserError(f"unknown dataflow {dataflow!r} (choose from {', '.join(S.DATAFLOW_CHOICES)})")
    if x is None:
        x = np.random.default_rng(seed).standard_normal((1,) + graph.input_shape).astype(np.float32)
    x = np.asarray(x, np.float32).reshape((1,) + graph.input_shape)
    w = pruned_weights(graph, weights, sparsity)
    runner = Runner(graph, w, np.float32)
    ref = runner.run(x, capture=True)
    ref[INPUT] = x
    result = NetworkResult(graph.name, hw, dataflow, sparsity)
    cache = {} if cache is None else cache
    env = {INPUT: x}
    mac_steps = sum(isinstance(s.op, (O.Conv2d, O.Linear)) for s in runner.steps)
    bar = progress_bar(mac_steps, f"{graph.name} on {hw.name}", progress)
    for step in runner.steps:
        xs = [env[i] for i in step.inputs]
        if isinstance(step.op, (O.Conv2d, O.Linear)):
            y, rec = _mac_layer(step, xs[0], ref[step.inputs[0]], hw, dataflow, cache)
            result.layers.append(rec)
            bar.update()
        else:
            y = step.run(xs)  # the runner's prepared forward pass
        if step.activation is not None:
            step.activation.apply_(y)
        env[step.name] = y
        for name in step.release:
            del env[name]
    bar.close()
    out = graph.outputs[0]
    emu, fl = env[out].reshape(-1), ref[out].reshape(-1)
    result.max_abs_diff = float(np.abs(emu.astype(np.float64) - fl).max())
    result.max_abs_ref = float(np.abs(fl).max())
    result.top1_match = bool(np.argmax(emu) == np.argmax(fl))
    return result


def _mac_layer(step, x, x_ref, hw: Hardware, dataflow: str, cache: dict):
    op = step.op
    in_shape = x.shape[1:]
    shape = conv_shape(op, in_shape)
    wf = step.params["weight"]
    bf = step.params.get("bias")
    fx = frac_bits(float(np.abs(x_ref).max()), hw.word_bits)
    fw = frac_bits(float(np.abs(wf).max()), hw.word_bits)
    xq = quantize(x[0].reshape(shape.C, shape.H, shape.W), fx, hw.word_bits)
    wq = quantize(wf.reshape(shape.K, shape.Cg, shape.R, shape.S), fw, hw.word_bits)
    bq = None if bf is None else np.rint(np.asarray(bf, np.float64) * 2.0 ** (fx + fw)).astype(np.int64)
    zeros = ZeroProfile.of(shape, wq)
    key = (shape, zeros.zeros, dataflow, hw)
    if key not in cache:
        cache[key] = S.search(shape, hw, dataflow, zeros)
    mapping = cache[key].mapping
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AccumulatorOverflowWarning)
        yq, counters = execute(shape, mapping, xq, wq, bq, acc_bits=hw.acc_bits)
    over = [w.message for w in caught if isinstance(w.message, AccumulatorOverflowWarning)]
    if mapping.dataflow == "os_socmop" and not hw.zero_skip_os:
        # the hardware does not skip zeros: count as if every weight were non-zero
        counters = count(shape, mapping, np.zeros((shape.K, shape.Cg, shape.R, shape.S), bool))
    tm = timing(shape, mapping, counters, hw)
    rec = LayerRecord(step.covers[0], shape, mapping, counters, tm, energy(counters, hw.energy),
                      shape.macs, over[0].bits_needed if over else None)
    y = (yq.astype(np.float64) * 2.0 ** -(fx + fw)).astype(np.float32)
    return y.reshape((1,) + tuple(op.output_shape([in_shape]))), rec
