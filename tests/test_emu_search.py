"""Energy = counts x table; timing's DMA transfers agree with the kernels' counters; the
mapping search is optimal (checked against brute force over every legal mapping)."""
from itertools import permutations, product

import numpy as np
import pytest

from sqnxt_engine.emu import search as S
from sqnxt_engine.emu import timing as T
from sqnxt_engine.emu.energy import LEVELS, energy
from sqnxt_engine.emu.hardware import EnergyTable, hardware_from_dict, load_hardware
from sqnxt_engine.errors import UserError
from sqnxt_engine.kernels import ConvShape, Mapping, ZeroProfile, count, divisors

SMALL = [
    ConvShape(C=4, H=6, W=6, K=6, R=3, S=3, padding=1),
    ConvShape(C=8, H=4, W=6, K=4),
    ConvShape(C=6, H=7, W=7, K=4, R=3, S=1, stride=2, padding=(1, 1, 0, 0)),
    ConvShape(C=4, H=5, W=5, K=4, R=3, S=3, padding=1, groups=4),
    ConvShape.fc(12, 10),
]


def tiny_hw(**over):
    doc = {"pe": {"rows": 2, "cols": 3}, "buffer": {"bytes": 256}}
    for k, v in over.items():
        sec, key = k.split("__")
        doc.setdefault(sec, {})[key] = v
    return hardware_from_dict(doc, "tiny")


def weights(shape, seed=0, sparsity=0.4):
    w = np.random.default_rng(seed).integers(-50, 50, (shape.K, shape.Cg, shape.R, shape.S))
    cut = np.quantile(np.abs(w), sparsity)
    w[np.abs(w) <= cut] = 0
    return w.astype(np.int16)


@pytest.mark.parametrize("shape", SMALL)
@pytest.mark.parametrize("dataflow", ["ws", "os_socmop", "os_mocsop", "os_mocmop"])
@pytest.mark.parametrize("over", [{}, {"buffer__double_buffering": False, "search__dram_weight": 0.0}])
def test_search_is_optimal_exhaustive(shape, dataflow, over):
    hw = tiny_hw(**over)
    zp = ZeroProfile.of(shape, weights(shape))
    best = None
    for tiles in product(*(divisors(n) for n in (shape.K, shape.Cg, shape.Ho, shape.Wo))):
        for order in permutations("kcyx"):
            m = Mapping(dataflow, hw.pe_rows, hw.pe_cols, order, tiles)
            if not hw.fits(m.footprint(shape)):
                continue
            c = S.evaluate(shape, m, hw, zp)
            # the bound is a bound
            assert S.lower_bound(shape, m, hw, zp.zeros) <= c.cost + 1e-9
            if best is None or c.cost < best:
                best = c.cost
    stats = S.SearchStats()
    got = S.search_dataflow(shape, hw, dataflow, zp, stats)
    assert got.cost == pytest.approx(best)
    assert hw.fits(got.mapping.footprint(shape))


def test_best_picks_the_faster_dataflow():
    hw = load_hardware("8x8")
    shape = ConvShape(C=16, H=12, W=12, K=16, R=3, S=3, padding=1)
    zp = ZeroProfile.of(shape, weights(shape))
    ws = S.search(shape, hw, "ws", zp)
    os_ = S.search(shape, hw, "os", zp)
    best = S.search(shape, hw, "best", zp)
    assert best.timing.total == min(ws.timing.total, os_.timing.total)
    assert {ws.mapping.dataflow, os_.mapping.dataflow} == {"ws", "os_socmop"}


def test_buffer_smaller_than_a_tile_is_a_user_error():
    hw = hardware_from_dict({"pe": {"rows": 2, "cols": 2}, "buffer": {"bytes": 24}}, "hw.toml")
    shape = ConvShape(C=4, H=6, W=6, K=4, R=5, S=5)  # 5x5 input window alone is 50 bytes
    with pytest.raises(UserError, match="buffer.bytes"):
        S.search(shape, hw, "ws", None)


@pytest.mark.parametrize("shape", SMALL)
def test_energy_is_counts_times_table(shape):
    table = EnergyTable(mac=1.5, rf=1.25, pe=2.5, gb=6.5, dram=201.0)
    m = Mapping.untiled(shape, "ws", 2, 3)
    c = count(shape, m)
    e = energy(c, table)
    d = c.to_dict()
    ops = ("input", "weight", "psum")
    assert e.mac == c.macs * 1.5
    assert e.rf == sum(d[f"{o}_rf_reads"] + d[f"{o}_rf_writes"] for o in ops) * 1.25
    assert e.pe == sum(d[f"{o}_pe_transfers"] for o in ops) * 2.5
    assert e.gb == sum(d[f"{o}_gb_reads"] + d[f"{o}_gb_writes"] for o in ops) * 6.5
    assert e.dram == sum(d[f"{o}_dram_reads"] + d[f"{o}_dram_writes"] for o in ops) * 201.0
    assert e.total == pytest.approx(sum(e.levels().values()))
    assert sum(e.operand("gb", o) for o in ops) == pytest.approx(e.gb)
    assert (e + e).dram == 2 * e.dram and (e + e).operand("rf", "psum") == 2 * e.operand("rf", "psum")
    assert set(e.levels()) == set(LEVELS)


@pytest.mark.parametrize("shape", SMALL)
@pytest.mark.parametrize("order", ["kcyx", "yxck", "cykx", "xkyc"])
def test_dma_transfers_match_the_kernels_residencies(shape, order):
    """Weight fetches and psum write-backs/reloads derived from the loop order equal what the
    kernels counted (their words divided by the tile size)."""
    hw = tiny_hw()
    for tiles in product(*(divisors(n)[:2] for n in (shape.K, shape.Cg, shape.Ho, shape.Wo))):
        m = Mapping("ws", 2, 3, tuple(order), tiles)
        c = count(shape, m)
        tr = T.transfers(shape, m, c, hw)
        tk, tc, ty, tx = tiles
        assert tr.weight_reads * tk * tc * shape.R * shape.S == c.weight_dram_reads
        assert tr.psum_writes * tk * ty * tx == c.psum_dram_writes
        assert tr.psum_reads * tk * ty * tx == c.psum_dram_reads
        assert (tr.input_reads > 0) == (c.input_dram_reads > 0)


def test_timing_overlap_and_fill_drain():
    shape = ConvShape(C=8, H=8, W=8, K=8, R=3, S=3, padding=1)
    m = Mapping("ws", 2, 3, ("k", "c", "y", "x"), (4, 4, 4, 8))
    c = count(shape, m)
    db = T.timing(shape, m, c, tiny_hw(buffer__bytes=4096))
    single = T.timing(shape, m, c, tiny_hw(buffer__bytes=4096, buffer__double_buffering=False))
    nofd = T.timing(shape, m, c, tiny_hw(buffer__bytes=4096, dataflow__fill_drain=False))
    assert single.total == single.compute + single.dram
    assert max(db.compute, db.dram) <= db.total <= single.total
    assert nofd.fill_drain == 0 and db.fill_drain == T.passes(shape, m) * (2 + 3 - 2)
    assert db.array == c.cycles
    # one DMA transfer per residency, each paying the latency
    assert single.dram == pytest.approx(single.transfers.count * 100 + single.transfers.bytes / 32)
