"""A quantized network (sqnxt-quant's file) on the emulated accelerator, in integers throughout.

Every conv and fc step runs through the loop-nest kernels in execute-and-count mode on the
layer's operands (the file's `bits`, which the hardware stores and moves them at:
hardware_for): the input's activation codes and the weight codes, with the bias
(already in accumulator units) loaded into the accumulator first. The kernels return the exact
sums; the hardware's accumulator (arith.acc_bits wide, arith.overflow: network.accumulate, the
one overflow policy of both emulated paths) and the output stage (requantization by multiplier
and shift, the activation's clamp) are the quantized model's own integer functions, so the codes
passed to the next layer are exactly what the NumPy integer runner computes with the same
accumulator (tests/test_emu_integer.py holds this for every layer, dataflow, loop order and
tile size). Pooling, adds and concats run the same integer functions outside the array; like the
float emulation's, they are charged only where the hardware times them (network.charged_steps).

Trace and eval compare the emulated codes with the file's *own* integer path (the accumulator
the file was quantized for), never with one re-run on the hardware's accumulator: "bit-exact"
means the hardware computes what the file says. A hardware whose accumulator or words differ
from the file's is refused in one line (`check_made_for`) unless the caller passes the named
override (--any-hardware), and then the differences are counted and stated.

The mapping of each layer is searched once per (layer shape, zero weights, dataflow, hardware)
in `cache`: sqnxt-emu eval runs a whole test set through the kernels with one search per layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError
from ..graph import ops as O
from ..graph.graph import INPUT
from ..kernels import ConvShape
from ..quant.fixedpoint import Accumulator
from ..quant.model import IntegerStep, QuantizedModel
from .hardware import Hardware
from .network import charged_steps, conv_shape, hardware_accumulator, kernel_layer
from .record import StepRecord


def check_made_for(model: QuantizedModel, hw: Hardware, any_hardware: bool = False) -> str | None:
    """None if the hardware computes what the file's own integer path computes (its accumulator
    as wide as the file's, with the same overflow mode, and words that hold the file's codes);
    else one line saying how it differs, raised as a UserError unless any_hardware (the named
    override: then the line is returned for the caller to print)."""
    acc, made = model.accumulator, model.info.get("hardware")
    diffs = []
    if (hw.acc_bits, hw.overflow) != (acc.bits, acc.overflow):
        diffs.append(f"a {hw.acc_bits}-bit {hw.overflow} accumulator, the file {acc.bits}-bit {acc.overflow}")
    if hw.word_bits < model.bits:
        diffs.append(f"{hw.word_bits}-bit words, the file {model.bits}-bit codes")
    if not diffs:
        return None
    line = (f"{hw.name} has {' and '.join(diffs)}"
            + (f" (the file was quantized for {made['name']})" if isinstance(made, dict) and "name" in made else "")
            + ": its results may differ from the file's integer path")
    if not any_hardware:
        raise UserError(f"{line}; quantize for it (sqnxt-quant --hw {hw.name}) or pass --any-hardware")
    return line


def hardware_for(model: QuantizedModel, hw: Hardware) -> Hardware:
    """hw running the file's codes: its operands stored and moved at the file's widths, the
    weights at its weight_bits (DRAM bytes, buffer fit, energy per bit); a file wider than the
    datapath refused."""
    return hw.with_operand_bits(model.bits, f"quantized {model.graph.name}", model.weight_bits)


@dataclass
class IntegerRun:
    """One image through the emulated datapath, beside the NumPy integer runner's codes."""
    model: str
    hw: Hardware
    dataflow: str
    accumulator: Accumulator
    steps: list[StepRecord] = field(default_factory=list)  # every charged step, in run order
    codes: dict = field(default_factory=dict)  # every step's emulated output codes
    overflow_layers: list[str] = field(default_factory=list)

    @property
    def cycles(self) -> float:
        return sum(r.cycles for r in self.steps)

    @property
    def energy(self) -> float:
        return sum(r.energy.total for r in self.steps)


def _operands(step: IntegerStep, x: np.ndarray, shape: ConvShape):
    """The kernel's int16 operands and int64 bias for a batch's input codes x (N, C, H, W) or (N, F)."""
    xq = x.reshape(len(x), shape.C, shape.H, shape.W).astype(np.int16)
    wq = step.arrays["weight"].reshape(shape.K, shape.Cg, shape.R, shape.S).astype(np.int16)
    return xq, wq, step.arrays["bias"].astype(np.int64)


def mac_on_array(step: IntegerStep, x: np.ndarray, hw: Hardware, dataflow: str, cache: dict,
                 mapping=None):
    """(exact int64 sums with bias, StepRecord) of a mac step on input codes, through the searched
    mapping (or the one given): one image's (C, H, W) or (F,), or a batch's (N, C, H, W) or (N, F)
    in one kernel call. The record is one image's: the counts depend on the weights, not on the
    input, so every image of a batch costs the same."""
    one = x.ndim == (1 if isinstance(step.op, O.Linear) else 3)
    xb = x[None] if one else x
    shape = conv_shape(step.op, xb.shape[1:])
    xq, wq, bias = _operands(step, xb, shape)
    acc, rec = kernel_layer(step.covers[0], step.op.kind, shape, xq, wq, bias, hw, dataflow, cache, mapping)
    if isinstance(step.op, O.Linear):
        acc = acc.reshape(len(xb), step.op.out_features)
    return (acc[0] if one else acc), rec


def emulate_codes(model: QuantizedModel, xq: np.ndarray, hw: Hardware, dataflow: str = "best",
                  cache: dict | None = None) -> IntegerRun:
    """One image's input codes (C, H, W), or a batch's (N, C, H, W), through the emulated
    accelerator: each mac step one kernel call over the batch. The records are one image's
    (every image costs the same, mac_on_array); the codes and the overflowing layers cover the
    batch."""
    cache = {} if cache is None else cache
    hw = hardware_for(model, hw)
    acc_model = hardware_accumulator(hw)
    run = IntegerRun(model.graph.name, hw, dataflow, acc_model)
    mac_records: dict[str, StepRecord] = {}

    def on_mac(step, xs):
        acc, rec = mac_on_array(step, xs[0], hw, dataflow, cache)  # accumulated (network.accumulate)
        if rec.overflow_bits is not None:
            run.overflow_layers.append(step.covers[0])
        mac_records[step.name] = rec
        return step.finish(acc, acc_model)
    xq = np.asarray(xq, np.int64).reshape((-1,) + model.graph.input_shape)
    run.codes = model.run_codes(xq, capture=True, accumulator=acc_model, mac_step=on_mac)
    run.steps = charged_steps(model.steps, model.graph, hw, mac_records, {})
    return run


def compare(run: IntegerRun, reference: dict, output: str) -> dict:
    """max |emulated - the file's own integer path| over the network's output codes, and
    whether every step's codes are equal (`differing_layers` names those that are not)."""
    diffs = {k: int(np.abs(v - reference[k]).max(initial=0)) for k, v in run.codes.items() if k != INPUT}
    return {"max_abs_diff": diffs[output], "bit_exact": not any(diffs.values()),
            "differing_layers": [k for k, d in diffs.items() if d]}


def trace_quantized(model: QuantizedModel, x: np.ndarray, hw: Hardware, dataflow: str = "best"):
    """(IntegerRun, comparison) for one float input image (C, H, W): the emulated run, and its
    codes against the file's own integer path (its accumulator, not the hardware's: `compare`)."""
    xq = model.quantize_input(np.asarray(x)[None])
    run = emulate_codes(model, xq[0], hw, dataflow)
    reference = model.run_codes(xq, capture=True)
    return run, compare(run, reference, model.graph.outputs[0])


def emulate_dataset(model: QuantizedModel, x: np.ndarray, labels: np.ndarray, hw: Hardware,
                    dataflow: str = "best", progress=None, batch_size: int = 100) -> dict:
    """Top-1 of the emulated datapath over a preprocessed float batch x (N, C, H, W): every image
    through the kernels (the mappings searched once per layer), beside the file's own integer
    path (its accumulator) on the same images. Each batch of batch_size images goes through
    each layer's kernel in one call (100: every step's codes of a batch are kept while it runs,
    measured on 500 Fashion-MNIST images: peak 432 MB and 6.2 s CPU, against 982 MB and 7.8 s
    with 250); progress(n) is called per batch with its images."""
    cache: dict = {}
    hardware_for(model, hw)   # a file wider than the datapath: refused before any work
    emulated_acc = hardware_accumulator(hw)
    out = model.graph.outputs[0]
    correct = numpy_correct = exact = 0
    cycles = energy_units = 0.0
    overflow: set[str] = set()
    for s in range(0, len(x), batch_size):
        xq = model.quantize_input(x[s:s + batch_size])
        reference = model.run_codes(xq)[out].reshape(len(xq), -1)
        run = emulate_codes(model, xq, hw, dataflow, cache)  # the batch through each kernel at once
        logits = run.codes[out].reshape(len(xq), -1)
        label = labels[s:s + len(xq)]
        correct += int((logits.argmax(1) == label).sum())
        numpy_correct += int((reference.argmax(1) == label).sum())
        exact += int((logits == reference).all(1).sum())
        cycles += run.cycles * len(xq)  # one image's records
        energy_units += run.energy * len(xq)
        overflow.update(run.overflow_layers)
        if progress:
            progress(len(xq))
    n = len(x)
    searches = len(cache)
    return {"images": n, "correct": correct, "top1": 100.0 * correct / n,
            "numpy_correct": numpy_correct, "numpy_top1": 100.0 * numpy_correct / n,
            "bit_exact_images": exact, "cycles_per_image": cycles / n, "energy_per_image": energy_units / n,
            "accumulator": {"bits": emulated_acc.bits, "overflow": emulated_acc.overflow},
            "file_accumulator": {"bits": model.accumulator.bits, "overflow": model.accumulator.overflow},
            "acc_overflow_layers": sorted(overflow), "mapping_searches": searches}
