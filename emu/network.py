"""Run a whole network on the emulated accelerator, layer by layer.

1. Conv and fc weights are pruned by magnitude to the chosen sparsity (the paper assumes 40%),
   so OS really has zeros to skip; the float runner gets the same pruned weights.
2. The float runner (batch norms folded, activations fused) runs the image once; its per-step
   outputs calibrate the activation scales.
3. The emulated run is the runner's own step loop with a hook for the MAC steps: every conv /
   fc step becomes a kernel call on fixed-point operands of the hardware's widths
   (arith.input_bits / weight_bits, 16 by default; quantize.py) through the
   mapping the search chose (count-only mode), executed and counted for real; its exact sums
   go through the hardware's accumulator (`accumulate`: arith.acc_bits wide, arith.overflow,
   the same policy as a quantized file's run in integer.py), are scaled back, and the runner
   applies the fused activation. The operands' scales are the emulator's choice, so a layer
   whose sums would leave the accumulator gets a coarser input scale (fewer fractional bits,
   until they fit: the record's acc_fit_bits) instead of a wrapped result. Every other step
   (pooling, add, concat, ...) runs in NumPy on the emulated values; it costs cycles and energy
   only when hardware layers.non_mac_cycles is true, as a pass streamed through the buffer.
   A network's emulations on several hardware that share its float pass (table3, figure6:
   Reference.keep_codes) read its weights' codes made once, and execute each layer's operands
   once: an emulation whose operands were executed already (the same codes: the same
   arithmetic) takes their exact sums, which do not depend on the mapping, and counts its own
   mapping in count-only mode, whose counters are execute()'s (Reference.sums).
4. Every charged step becomes one StepRecord (record.py): its counters, timing.py's cycles,
   energy.py's energy (`charged_steps`). The emulated output is compared with the float
   runner's.
5. Shifts (hardware layers.shift, emu/shift.py): "remap" runs a shift's 1x1 consumer with a
   shifted fetch (the shift step itself moves nothing, and the consumer's record says so);
   "copy", or a shift no such conv consumes, is a record of its own.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from math import prod

import numpy as np

from ..errors import UserError
from ..graph import ops as O
from ..graph.graph import INPUT, Graph
from ..kernels import ConvShape, Counters, count, execute
from ..progress import progress_bar
from ..quant.fixedpoint import Accumulator
from ..runtime import Runner
from ..runtime.threads import single_threaded_blas
from . import search as S
from .energy import Energy
from .hardware import Hardware
from .onchip import keep_on_chip
from .quantize import frac_bits, prune, quantize, quantized_zeros, zero_count
from .record import StepRecord, charge, stream_step
from .shift import copy_record, remap_plan, shift_offsets
from .timing import CYCLE_PARTS, timing


@dataclass
class NetworkResult:
    """A network's run on the emulated accelerator: every charged step's record (record.py) in
    run order, and how the emulated output compares with the float runner's."""
    model: str
    hw: Hardware
    dataflow: str
    sparsity: float
    steps: list[StepRecord] = field(default_factory=list)
    non_mac_steps: dict[str, str] = field(default_factory=dict)  # step -> op kind, charged or not
    max_abs_diff: float = 0.0
    max_abs_ref: float = 0.0
    top1_match: bool = True

    @property
    def mac_steps(self) -> list[StepRecord]:
        """The conv and fc layers' records."""
        return [r for r in self.steps if r.has_macs]

    @property
    def cycles(self) -> float:
        return sum(r.cycles for r in self.steps)

    @property
    def energy(self) -> Energy:
        return sum((r.energy for r in self.steps), 0)

    @property
    def macs(self) -> int:
        return sum(r.dense_macs for r in self.steps)

    def total_row(self) -> dict:
        e = self.energy
        c = sum((r.counters for r in self.steps), Counters())
        row = {"layer": "total", "kind": "", "shape": "", "dataflow": "", "mapping": "",
               "macs": self.macs, "cycles": round(self.cycles),
               "macs_per_cycle": self.macs / self.cycles if self.cycles else 0.0,
               "utilisation": c.utilisation,
               "dram_bytes": round(sum(r.timing.dram_bytes for r in self.steps)),
               "outputs": sum(r.outputs for r in self.steps)}
        for lv, v in e.levels().items():
            row[f"e_{lv}"] = v
        row["energy"] = e.total
        row.update({f"cycles_{part}": v for part, v in self.cycle_parts().items()})
        row["counts"] = c.to_dict()
        return row

    def cycle_parts(self) -> dict[str, float]:
        """Where the network's cycles go: its steps' parts (timing.CYCLE_PARTS) summed."""
        return {p: sum(r.timing.parts[p] for r in self.steps) for p in CYCLE_PARTS}

    def cycles_by_kind(self) -> dict[str, float]:
        """The network's cycles by step kind (conv, fc, shift, maxpool, add, ...)."""
        out: dict[str, float] = {}
        for r in self.steps:
            out[r.kind] = out.get(r.kind, 0.0) + r.cycles
        return out


def conv_shape(op, in_shape) -> ConvShape:
    if isinstance(op, O.Linear):
        return ConvShape.fc(in_shape[0], op.out_features)
    if op.dilation != (1, 1):
        raise UserError(f"the accelerator's kernels do not model dilated convolutions "
                        f"({op.describe()}, dilation {op.dilation[0]}x{op.dilation[1]})")
    c, h, w = in_shape
    return ConvShape(C=c, H=h, W=w, K=op.out_channels, R=op.kernel[0], S=op.kernel[1],
                     stride=op.stride, padding=op.padding, groups=op.groups)


def pruned_weights(graph: Graph, weights: dict, sparsity: float, in_place: bool = False) -> dict:
    """The weights with every conv and fc weight pruned to `sparsity` (quantize.prune): a new
    dict of new arrays, or with in_place=True the arrays of `weights` themselves pruned (no
    second copy of a network's weights: AlexNet's are 245 MB; an array that cannot be written
    in place is copied) and returned in that dict."""
    out = weights if in_place else dict(weights)
    if sparsity:
        for layer in graph.layers:
            if isinstance(layer.op, (O.Conv2d, O.Linear)):
                key = f"{layer.name}.weight"
                w = weights[key]
                own = in_place and w.flags.writeable and w.flags.c_contiguous
                out[key] = prune(w, sparsity, in_place=own)
    return out


@dataclass
class Reference:
    """The float runner's pass on a network's pruned weights, which every emulation of the
    network shares (it does not depend on the hardware): the runner (its steps are the emulated
    run's), the input, the largest |value| of each MAC step's input in the float pass (what
    calibrates the step's input scale) and the float output. Only those maxima are kept, not
    the pass's activations."""
    graph: Graph
    runner: Runner
    x: np.ndarray
    sparsity: float
    input_max: dict[str, float]
    output: np.ndarray
    # (MAC step, weight bits) -> (fractional bits, zero codes, codes), where keep_codes dropped
    # the float weights
    codes: dict = field(default_factory=dict)
    # with keep_codes: the exact sums of the MAC steps' operands executed so far (kernel_layer),
    # which the network's emulations on hardware of the same arithmetic share
    sums: dict | None = None

    def weight_scale(self, step, bits: int) -> tuple[int, int]:
        """A MAC step's weights at `bits` as the emulation reads them: their fractional bits
        (frac_bits of their largest magnitude) and how many of their codes are zero (counted
        block by block: the search that needs the count comes before the codes are made, so a
        layer's search tables and its codes are not held at once)."""
        if (step.name, bits) in self.codes:
            return self.codes[(step.name, bits)][:2]
        wf = self._floats(step, bits)
        fw = frac_bits(_max_abs(wf), bits)
        return fw, quantized_zeros(wf, fw, bits)

    def weight_codes(self, step, bits: int, fw: int) -> np.ndarray:
        """The step's weights at `bits` and fw fractional bits (weight_scale): quantize, in
        the float weights' shape."""
        if (step.name, bits) in self.codes:
            return self.codes[(step.name, bits)][2]
        return quantize(self._floats(step, bits), fw, bits)

    def keep_codes(self, widths) -> None:
        """Keep every MAC step's weight scale and codes at each of `widths` and drop its float
        weights (the float pass is done, and the emulations read nothing else of them): the
        emulations of a network on hardware of those weight widths then hold int16 codes
        (AlexNet: 122 MB, not 244 MB of floats). Smallest layers first, each layer's floats
        dropped once its codes are made, so at most one layer has both."""
        steps = [s for s in self.runner.steps if isinstance(s.op, (O.Conv2d, O.Linear))]
        for step in sorted(steps, key=lambda s: s.params["weight"].size):
            for bits in widths:
                fw = frac_bits(_max_abs(step.params["weight"]), bits)
                wq = self.weight_codes(step, bits, fw)
                self.codes[(step.name, bits)] = (fw, zero_count(wq), wq)
            step.params["weight"] = None
            step.run = _dropped
        self.sums = {}

    def _floats(self, step, bits: int) -> np.ndarray:
        wf = step.params["weight"]
        if wf is None:
            raise RuntimeError(f"internal error: {step.name}'s float weights were dropped, and "
                               f"its {bits}-bit codes were not kept")
        return wf


def _operands_key(name: str, shape: ConvShape, weight_bits: int, fw: int, fx: int, xq, shift):
    """What a MAC step's operands are made of (Reference.sums): its weights' codes (the step,
    their width and scale), the input codes (their scale and a 256-bit digest of their bytes)
    and the bias (the step's, at the scale 2**(fx + fw)), and a shifted fetch's offsets."""
    def digest(a):
        return hashlib.blake2b(np.ascontiguousarray(a), digest_size=32).digest()
    return (name, shape, weight_bits, fw, fx, digest(xq), None if shift is None else digest(shift))


def _max_abs(a: np.ndarray) -> float:
    """The largest |value| of a float array, without an array of the magnitudes."""
    return float(max(a.max(), -a.min())) if a.size else 0.0


def _dropped(xs):
    raise RuntimeError("internal error: a MAC step's float weights were dropped (keep_codes): "
                       "its float pass cannot run")


def reference(graph: Graph, weights: dict, sparsity: float = 0.4, x: np.ndarray | None = None,
              seed: int = 0, in_place: bool = False) -> Reference:
    """The float pass emulate() compares with (Reference): the conv and fc weights pruned to
    `sparsity` (in_place: in `weights` itself, pruned_weights), x one input (C, H, W) or
    (1, C, H, W), default a seeded standard-normal input. BLAS runs on one thread: a batch of
    one image's products are small, where OpenBLAS's threads cost ten times the CPU for no
    gain (measured in docs/emulator.md), and table3's workers already use every core."""
    for layer in graph.layers:   # refuse what the kernels cannot run before any work
        if isinstance(layer.op, O.Conv2d):
            conv_shape(layer.op, layer.in_shapes[0])
    if x is None:
        x = np.random.default_rng(seed).standard_normal((1,) + graph.input_shape).astype(np.float32)
    x = np.asarray(x, np.float32).reshape((1,) + graph.input_shape)
    runner = Runner(graph, pruned_weights(graph, weights, sparsity, in_place), np.float32)
    with single_threaded_blas():
        ref = runner.run(x, capture=True)
    ref[INPUT] = x
    input_max = {s.name: float(np.abs(ref[s.inputs[0]]).max()) for s in runner.steps
                 if isinstance(s.op, (O.Conv2d, O.Linear))}
    return Reference(graph, runner, x, sparsity, input_max, ref[graph.outputs[0]].reshape(-1))


def emulate(graph: Graph, weights: dict, hw: Hardware, dataflow: str = "best",
            sparsity: float = 0.4, x: np.ndarray | None = None, seed: int = 0,
            progress: bool = False, cache: dict | None = None) -> NetworkResult:
    """Emulate `graph` on `hw` (see the module doc). x: one input (C, H, W) or (1, C, H, W);
    default a seeded standard-normal input. cache: shared between calls of the same hardware
    to reuse searches of identical layers."""
    if dataflow not in S.DATAFLOW_CHOICES:
        raise UserError(f"unknown dataflow {dataflow!r} (choose from {', '.join(S.DATAFLOW_CHOICES)})")
    return emulate_reference(reference(graph, weights, sparsity, x, seed), hw, dataflow,
                             progress, cache)


def emulate_reference(ref: Reference, hw: Hardware, dataflow: str = "best",
                      progress: bool = False, cache: dict | None = None) -> NetworkResult:
    """emulate() on a float pass made once (reference()): a network's emulations on several
    hardware share it, with the same results as emulate() of each."""
    if dataflow not in S.DATAFLOW_CHOICES:
        raise UserError(f"unknown dataflow {dataflow!r} (choose from {', '.join(S.DATAFLOW_CHOICES)})")
    graph, runner = ref.graph, ref.runner
    result = NetworkResult(graph.name, hw, dataflow, ref.sparsity)
    cache = {} if cache is None else cache
    mac_steps = sum(isinstance(s.op, (O.Conv2d, O.Linear)) for s in runner.steps)
    bar = progress_bar(mac_steps, f"{graph.name} on {hw.name}", progress)

    remap, shift_form = remap_plan(runner.steps, graph, hw)
    for step in runner.steps:   # after the float run: the shifts as the hardware does them
        if isinstance(step.op, O.Shift):
            step.run = _shift_run(step, shift_form[step.name], graph)
    mac_records: dict[str, StepRecord] = {}

    def on_mac(step, xs):
        y, mac_records[step.name] = _mac_layer(step, xs[0], ref, hw, dataflow, cache,
                                               remap.get(step.name))
        bar.update()
        return y
    with single_threaded_blas():   # a copy of x: no step of this run may alter the shared one
        out = runner.run(ref.x.copy(), mac_step=on_mac)[graph.outputs[0]]
    bar.close()
    result.steps = charged_steps(runner.steps, graph, hw, mac_records, shift_form)
    result.non_mac_steps = {s.covers[0]: s.op.kind for s in _non_mac_steps(runner.steps)}
    fl = ref.output
    emu = out.reshape(-1)
    result.max_abs_diff = float(np.abs(emu.astype(np.float64) - fl).max())
    result.max_abs_ref = float(np.abs(fl).max())
    # NaN or infinity in either output makes argmax meaningless: that is no agreement
    finite = bool(np.isfinite(emu).all() and np.isfinite(fl).all())
    result.top1_match = finite and bool(np.argmax(emu) == np.argmax(fl))
    return result


# steps that move no data on the accelerator: a reshape, a concatenation (its producers write
# into the right places of the output in DRAM) and a channel slice (its consumers read their part)
_FREE = (O.Flatten, O.Concat, O.Slice)


def charged_steps(steps, graph: Graph, hw: Hardware, mac_records: dict,
                  shift_form: dict[str, str]) -> list[StepRecord]:
    """Every step the accelerator charges, in run order (record.py): the MAC steps' records
    (mac_records, by step name; with hw.keep_on_chip, re-costed where an output stays in the
    buffer for the next layer: onchip.py); each shift the hardware copies (shift_form, shift.py; a
    shift not in it is copied); and, where hw.non_mac_cycles, every step without MACs that
    moves data, streamed through the buffer with one element operation per input element, or
    per output element and window tap for a pool, whichever is more."""
    mac_records = keep_on_chip(steps, mac_records, set(graph.outputs), hw)
    non_mac = {s.name for s in _non_mac_steps(steps)} if hw.non_mac_cycles else set()
    out = []
    for step in steps:
        if step.name in mac_records:
            out.append(mac_records[step.name])
        elif isinstance(step.op, O.Shift):
            form = shift_form.get(step.name, "copy")
            if not form.startswith("remap"):
                out.append(copy_record(step.covers[0], step.op, graph.shapes[step.inputs[0]],
                                       hw, form))
        elif step.name in non_mac:
            ins = sum(prod(graph.shapes[i]) for i in step.inputs)
            shape = graph.shapes[step.name]
            window = prod(step.op.kernel) if hasattr(step.op, "kernel") else 1
            out.append(stream_step(step.covers[0], step.op.kind, _stream_shape(graph, step),
                                   "stream", ins, prod(shape), max(ins, prod(shape) * window), hw))
    return out


def _stream_shape(graph: Graph, step) -> str:
    """'64x56x56 + 64x56x56 -> 64x56x56 add' of a step without MACs, for a table."""
    def dims(name):
        return "x".join(map(str, graph.shapes[name]))
    return (" + ".join(dims(i) for i in step.inputs) + f" -> {dims(step.name)} "
            + step.op.describe())


def _non_mac_steps(steps):
    """The steps without MACs that move data: all but conv, fc, shift (charged by
    layers.shift, emu/shift.py) and the free ones (_FREE)."""
    return [s for s in steps if not isinstance(s.op, (O.Conv2d, O.Linear, O.Shift) + _FREE)]


def non_mac_line(res: NetworkResult) -> str:
    """One line on the steps without MACs: how many of each kind, and their cycles when the
    hardware times them."""
    if not res.non_mac_steps:
        return "no steps without MACs"
    kinds: dict[str, int] = {}
    for kind in res.non_mac_steps.values():
        kinds[kind] = kinds.get(kind, 0) + 1
    listed = ", ".join(f"{k} x{n}" for k, n in kinds.items())
    charged = sum(r.cycles for r in res.steps if r.name in res.non_mac_steps)
    timed = (f"{charged:,.0f} cycles, in the total" if res.hw.non_mac_cycles
             else "not timed ([layers] non_mac_cycles = false)")
    return f"steps without MACs, run in NumPy: {len(res.non_mac_steps)} ({listed}): {timed}"


def _shift_run(step, form: str, graph: Graph):
    """The emulated run's forward pass of a shift step. Remapped: the input passes unchanged (a
    copy only where another step also reads it, so no in-place step can alter what the
    consumer fetches), the consumer's fetch does the shift. Copied: the shift's NumPy forward
    pass on the emulated values (its cost is charged_steps')."""
    if form.startswith("remap"):
        shared = len(graph.consumers().get(step.inputs[0], ())) > 1
        return (lambda xs: xs[0].copy()) if shared else (lambda xs: xs[0])
    return lambda xs: step.op.forward(xs, {})


def _mac_layer(step, x, ref: Reference, hw: Hardware, dataflow: str, cache: dict, through=None):
    """ref: the network's float pass (its step input's largest |value| calibrates the input
    scale; the weights' codes: Reference.weight_codes); through: the shift (ops.Shift) this
    conv's fetch performs (remap), or None."""
    x_max = ref.input_max[step.name]
    op = step.op
    in_shape = x.shape[1:]
    shape = conv_shape(op, in_shape)
    bf = step.params.get("bias")
    fx = frac_bits(x_max, hw.input_bits)
    fw, zero_codes = ref.weight_scale(step, hw.weight_bits)
    mapping = layer_mapping(shape, zero_codes if hw.zero_skip_os else 0, hw, dataflow, cache)
    wq = ref.weight_codes(step, hw.weight_bits, fw).reshape(shape.K, shape.Cg, shape.R, shape.S)
    shift = None if through is None else shift_offsets(through, shape.C)
    fit = 0
    while True:  # the sums must fit the accumulator: coarser input codes until they do
        xq = quantize(x[0].reshape(shape.C, shape.H, shape.W), fx - fit, hw.input_bits)
        bq = None if bf is None else np.rint(np.asarray(bf, np.float64) * 2.0 ** (fx - fit + fw)).astype(np.int64)
        sums = None if ref.sums is None else (ref.sums, _operands_key(
            step.name, shape, hw.weight_bits, fw, fx - fit, xq, shift))
        yq, rec = kernel_layer(step.covers[0], op.kind, shape, xq, wq, bq, hw, dataflow, cache,
                               mapping, shift, sums)
        if rec.overflow_bits is None:
            break
        fit += rec.overflow_bits - hw.acc_bits
    rec.acc_fit_bits = fit
    fx -= fit
    if through is not None:
        rec.shift = f"{step.inputs[0]} (remap)"
        rec.shape += f", fetched through {rec.shift}"
    y = (yq.astype(np.float64) * 2.0 ** -(fx + fw)).astype(np.float32)
    return y.reshape((1,) + tuple(op.output_shape([in_shape]))), rec


def kernel_layer(name: str, kind: str, shape: ConvShape, xq, wq, bq, hw: Hardware, dataflow: str,
                 cache: dict, mapping=None, shift=None, sums: tuple | None = None):
    """(int64 sums, StepRecord) of one conv/fc layer on int16 operands: the mapping searched
    once per (shape, number of zero weights, dataflow, hardware) in `cache` (or the one given)
    on that many zeros spread evenly (search.spread_zeros: the layers sharing the search do not
    wait on which of them came first, so the results never depend on the order of the layers,
    the networks or --jobs), then executed on the real weights and counted by the kernels,
    with the cycles and energy of those counts on hw.
    shift: per-channel (dy, dx) of a shifted fetch (a remapped shift): xq is then the
    unshifted input. The mapping is the one searched for the plain layer: the shift removes
    border reads only, and changes no tile's buffer footprint.
    sums: (a dict, the key of these operands in it; Reference.sums): the exact sums depend on
    the operands alone, not on the mapping, so operands executed once (by a network's
    emulation on other hardware) are not executed again: their sums are taken from the dict
    and this mapping is counted in count-only mode, whose counters are execute()'s (the
    kernels' tests)."""
    if mapping is None:
        mapping = layer_mapping(shape, S.zero_count(shape, hw, wq), hw, dataflow, cache)
    done, key = sums if sums is not None else ({}, None)
    if key in done:
        yq = done[key].astype(np.int64)
        counters = count(shape, mapping, S.zero_profile(shape, hw, wq)
                         if mapping.dataflow.skips_zero_weights else None, shift=shift)
    else:
        yq, counters = execute(shape, mapping, xq, wq, bq, shift=shift)
        if key is not None:   # (int32 where they fit: the same values in half the bytes)
            narrow = yq.size and -2 ** 31 <= yq.min() and yq.max() < 2 ** 31
            done[key] = yq.astype(np.int32) if narrow else yq.copy()
        if mapping.dataflow.skips_zero_weights and not hw.zero_skip_os:
            # the arithmetic skipped zeros (same result); the hardware does not: count it so
            counters = count(shape, mapping, S.zero_profile(shape, hw, wq), shift=shift)
    rec = charge(name, kind, S.shape_str(shape),
                 S.mapping_str(mapping), counters, timing(shape, mapping, counters, hw), hw,
                 shape.output_size, dense_macs=shape.macs, conv=shape, mapping=mapping)
    yq, rec.overflow_bits = accumulate(yq, hw)
    return yq, rec


def layer_mapping(shape: ConvShape, zeros: int, hw: Hardware, dataflow: str, cache: dict):
    """The mapping of a layer with `zeros` zero weights that the hardware skips
    (search.zero_count): searched once per (shape, zeros, dataflow, hardware) in `cache`, on
    that many zeros spread evenly (search.spread_zeros; kernel_layer's doc)."""
    key = (shape, zeros, dataflow, hw)
    if key not in cache:
        cache[key] = S.search(shape, hw, dataflow, S.spread_zeros(shape, zeros))
    return cache[key].mapping


def accumulate(sums: np.ndarray, hw: Hardware) -> tuple[np.ndarray, int | None]:
    """The one overflow policy of both emulated paths: a MAC layer's exact int64 sums as the
    hardware's accumulator holds them (arith.acc_bits wide, arith.overflow: wrap or saturate,
    quant.fixedpoint.Accumulator), and the bits the largest sum needed if any left its range
    (None if none did). Wrapping the total equals wrapping every partial sum, and saturation
    applies when the sum is written back, so the dataflow's order does not matter."""
    acc = hardware_accumulator(hw)
    if not acc.overflows(sums):
        return sums, None
    return acc.apply(sums), int(np.abs(sums).max()).bit_length() + 1


def hardware_accumulator(hw: Hardware) -> Accumulator:
    return Accumulator(hw.acc_bits, hw.overflow)
