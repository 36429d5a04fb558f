"""Outputs kept in the buffer between layers (hardware layers.keep_on_chip, emu/onchip.py).

Expected counts come from the network's tensors, not from onchip.py's rule: a chain of layers
each of which hands its whole output to the next, on a buffer large enough for everything, moves
between DRAM and the chip exactly the first input, every weight once and the last output."""
from dataclasses import replace

import numpy as np
import pytest

from sqnxt_engine.emu.hardware import load_hardware
from sqnxt_engine.emu.network import emulate
from sqnxt_engine.graph import GraphBuilder
from sqnxt_engine.graph import ops as O
from sqnxt_engine.runtime import random_weights
from sqnxt_engine.zoo import build


def chain():
    b = GraphBuilder("chain", (8, 10, 10))
    x = b.conv("c1", b.input, 16, 3, padding=1)
    x = b.relu("c1.act", x)
    x = b.conv("c2", x, 16, 1)
    x = b.relu("c2.act", x)
    x = b.conv("c3", x, 8, (1, 3), padding=(0, 1))
    x = b.add("flat", O.Flatten(), x)
    b.add("fc", O.Linear(4), x)
    return b.build()


@pytest.fixture(scope="module")
def hw():
    return replace(load_hardware("16x16"), gb_bytes=1 << 20)


def test_a_chain_on_a_large_buffer_moves_its_input_weights_and_output_once(hw):
    g = chain()
    w = random_weights(g, 0)
    kept = emulate(g, w, replace(hw, keep_on_chip=True), sparsity=0)
    plain = emulate(g, w, hw, sparsity=0)
    # the first layer's input as its mapping fetches it (halo rows of its y-tiles twice)
    first_input = plain.mac_steps[0].counters.input_dram_reads
    assert first_input >= 8 * 10 * 10
    words = {"input": first_input, "output": 4,
             "weight": sum(v.size for k, v in w.items() if k.endswith(".weight"))}
    assert sum(r.timing.dram_bytes for r in kept.steps) == 2 * sum(words.values())   # 16-bit words
    assert sum(r.timing.dram_bytes for r in plain.steps) > 2 * sum(words.values())
    first, *middle, last = kept.mac_steps
    assert first.counters.psum_dram_writes == 0 and last.counters.input_dram_reads == 0
    assert all(r.counters.input_dram_reads == r.counters.psum_dram_writes == 0 for r in middle)
    assert "output kept in the buffer" in first.shape and "input from the buffer" in last.shape
    # the array's work does not change, only the DRAM's: fewer cycles, less energy
    for k, p in zip(kept.mac_steps, plain.mac_steps):
        assert k.mapping == p.mapping and k.counters.macs == p.counters.macs
        # every field but the counts and what they cost is the step's own
        assert (k.name, k.dense_macs, k.shift, k.overflow_bits, k.acc_fit_bits) == \
            (p.name, p.dense_macs, p.shift, p.overflow_bits, p.acc_fit_bits)
        assert k.counters.input_gb_reads == p.counters.input_gb_reads
        assert k.cycles <= p.cycles and k.energy.total < p.energy.total
    assert kept.cycles < plain.cycles
    assert np.isclose(kept.max_abs_diff, plain.max_abs_diff)   # the same arithmetic


def test_nothing_is_kept_where_it_does_not_fit_or_is_not_asked(hw):
    g = chain()
    w = random_weights(g, 0)
    small = replace(hw, gb_bytes=2048, keep_on_chip=True)
    a, b = emulate(g, w, small, sparsity=0), emulate(g, w, replace(small, keep_on_chip=False), sparsity=0)
    assert [r.counters for r in a.steps] == [r.counters for r in b.steps]
    split = replace(hw, keep_on_chip=True, gb_split=(("input", 0.4), ("weight", 0.3), ("psum", 0.3)))
    c = emulate(g, w, split, sparsity=0)
    assert all(r.counters.input_dram_reads > 0 for r in c.mac_steps)


def test_squeezenext_keeps_its_block_internal_tensors_on_16x16():
    g = build("1.0-SqNxt-23v5", small_input=True, input_size=32)
    w = random_weights(g, 0)
    hw = load_hardware("16x16")
    kept = emulate(g, w, replace(hw, keep_on_chip=True))
    plain = emulate(g, w, hw)
    fed = [r for r in kept.mac_steps if r.counters.input_dram_reads == 0]
    assert fed   # some of each block's 1x1 -> 1x1 -> 3x1 -> 1x3 chain
    # a tensor read by two steps (a block's input, read by its first conv and its shortcut) is
    # never kept: every block's first conv still fetches its input
    firsts = [r for r in kept.mac_steps if r.name.endswith(".conv1")]
    assert len(firsts) == 21 and all(r.counters.input_dram_reads > 0 for r in firsts)
    dram = [sum(r.timing.dram_bytes for r in res.steps) for res in (kept, plain)]
    assert dram[0] < dram[1]
