"""Energy = counts x table; timing's DMA transfers agree with the kernels' counters; the
mapping search is optimal (checked against brute force over every legal mapping)."""
from dataclasses import replace
from itertools import permutations, product

import numpy as np
import pytest

from sqnxt_engine.emu import search as S
from sqnxt_engine.emu import timing as T
from sqnxt_engine.emu.energy import LEVELS, energy
from sqnxt_engine.emu.hardware import EnergyTable, hardware_from_dict, load_hardware
from sqnxt_engine.errors import UserError
from sqnxt_engine.kernels import (
    COUNTER_FIELDS,
    DATAFLOWS,
    ConvShape,
    Dataflow,
    Mapping,
    ZeroProfile,
    count,
    count_array,
    least_dram_words,
)

SMALL = [
    ConvShape(C=4, H=6, W=6, K=6, R=3, S=3, padding=1),
    ConvShape(C=8, H=4, W=6, K=4),
    ConvShape(C=6, H=7, W=7, K=4, R=3, S=1, stride=2, padding=(1, 1, 0, 0)),
    ConvShape(C=4, H=5, W=5, K=4, R=3, S=3, padding=1, groups=4),
    ConvShape(C=4, H=5, W=4, K=10, R=3, S=1, padding=(1, 1, 0, 0), groups=2),  # SOC-MOP reuse
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


def brute_force(shape, hw, dataflow, zeros):
    """The least key (cost, tiebreak) over every tile size (1 to the extent) and order that
    fits, one by one, each costed on its own (search.evaluate)."""
    best = (np.inf, np.inf)
    for tiles in product(*(range(1, n + 1) for n in (shape.K, shape.Cg, shape.Ho, shape.Wo))):
        for order in permutations("kcyx"):
            m = S.mapping_for(hw, dataflow, order, tiles, shape)
            if hw.fits(m.footprint(shape)):
                best = min(best, S.evaluate(shape, m, hw, zeros).key)
    return best


HW_VARIANTS = [
    {"search__objective": "cycles"},   # cycles, then DRAM words
    {"search__objective": "weighted", "buffer__double_buffering": False, "search__dram_weight": 0.0,
     "pipeline__fill_drain": "pass", "dram__engines": 2, "buffer__words_per_cycle": 3.0,
     "pe__rf_words": 4, "pe__rf_double_buffered": False},
]
# the other objectives, on a plain and a grouped layer, one dataflow of each kind
OBJECTIVE_CASES = [(shape, dataflow, over) for shape in (SMALL[0], SMALL[3])
                   for dataflow in (Dataflow.WS, Dataflow.OS_SOCMOP, Dataflow.RS)
                   for over in ({"search__objective": "weighted"}, {"search__objective": "energy"},
                                {"search__objective": "edp", "buffer__bytes": 512},
                                {"search__objective": "energy", "energy__model": "horowitz-45nm",
                                 "pipeline__fill_drain": "pass"})]


# the 1x1 layer (768 tilings x 24 orders) takes as long as the other shapes together, and the
# second hardware's cross product as long as the first: slow, but for the plain and grouped layer
@pytest.mark.parametrize("shape, dataflow, over", [
    pytest.param(s, d, o, marks=pytest.mark.slow)
    if s is SMALL[1] or (o is HW_VARIANTS[1] and s not in (SMALL[0], SMALL[3])) else (s, d, o)
    for o in HW_VARIANTS for d in DATAFLOWS for s in SMALL] + OBJECTIVE_CASES)
def test_search_equals_brute_force_over_every_tile_size(shape, dataflow, over):
    hw = tiny_hw(**over)
    zp = ZeroProfile.of(shape, weights(shape))
    stats = S.SearchStats()
    got = S.search_dataflow(shape, hw, dataflow, zp, stats)
    want = brute_force(shape, hw, dataflow, zp)
    assert got.cost == pytest.approx(want[0], rel=1e-12)
    assert got.tiebreak == pytest.approx(want[1], rel=1e-12)
    assert hw.fits(got.mapping.footprint(shape))
    assert got == S.evaluate(shape, got.mapping, hw, zp)   # its counts and timing are its own


@pytest.mark.parametrize("shape", SMALL + [ConvShape(C=6, H=13, W=11, K=10, R=3, S=3, padding=1)])
@pytest.mark.parametrize("dataflow", DATAFLOWS)
def test_compute_is_a_product_of_per_loop_factors(shape, dataflow):
    """What the bound relies on: cycles and passes of a tiling follow from counts of one size
    per loop (search._separable), for every tile size, full or partial."""
    hw = tiny_hw(buffer__bytes=1 << 20)
    zp = ZeroProfile.of(shape, weights(shape))
    tilings = S.fitting_tilings(shape, hw)
    rng = np.random.default_rng(1)
    pick = np.concatenate([[0], rng.integers(0, len(tilings), 40)])
    tilings.at = tilings.at[pick]
    tiles = tilings.tiles
    rows = np.array([S.mapping_for(hw, dataflow, "kcyx", tuple(t), shape)._tup for t in tiles])
    counted = count_array(shape, rows, zp)
    for f in ("cycles", "passes"):
        got = S._separable(shape, hw, dataflow, zp if dataflow.skips_zero_weights else None,
                           tilings, f)
        np.testing.assert_array_equal(got, counted[:, COUNTER_FIELDS.index(f)])


def test_least_dram_words_is_a_bound_over_every_order():
    shape = ConvShape(C=6, H=9, W=7, K=10, R=3, S=3, padding=1, groups=2)
    for tiles in [(5, 3, 9, 7), (2, 1, 4, 3), (10, 3, 2, 7), (1, 2, 9, 1)]:
        n = [-(-e // t) for e, t in zip((shape.K, shape.Cg, shape.Ho, shape.Wo), tiles)]
        least = least_dram_words(shape, [n])[0]
        words = [T.dram_words(count(shape, Mapping(Dataflow.WS, 2, 2, o, tiles)))
                 for o in permutations("kcyx")]
        assert least <= min(words)


def test_candidate_sizes_keep_the_aligned_and_smallest_sizes():
    hw = load_hardware("16x16")
    k, c, y, x = S.candidate_sizes(ConvShape(C=3, H=227, W=227, K=64, R=7, S=7, stride=2), hw)
    assert 16 in y and 111 in y and 56 in y   # aligned to 16 rows; whole; 2 tiles
    assert 55 not in y          # 2 tiles of 55 + 56 are never better than 56 + 55
    assert list(c) == [1, 2, 3] and 64 in k


def test_best_picks_the_faster_dataflow():
    hw = load_hardware("8x8")
    shape = ConvShape(C=16, H=12, W=12, K=16, R=3, S=3, padding=1)
    zp = ZeroProfile.of(shape, weights(shape))
    ws = S.search(shape, hw, "ws", zp)
    os_ = S.search(shape, hw, "os", zp)
    best = S.search(shape, hw, "best", zp)
    assert best.timing.total == min(ws.timing.total, os_.timing.total)
    assert {ws.mapping.dataflow, os_.mapping.dataflow} == {Dataflow.WS, Dataflow.OS_SOCMOP}


@pytest.mark.parametrize("objective", ["cycles", "energy", "edp", "weighted"])
def test_best_is_best_under_the_objective_over_the_supported_dataflows(objective):
    """No single dataflow beats `best` under the hardware's objective; with every dataflow
    supported, best is at least as good as with the paper's two."""
    shape = ConvShape(C=16, H=12, W=12, K=16, R=3, S=3, padding=1)
    w = weights(shape)
    paper = tiny_hw(buffer__bytes=2048, search__objective=objective)
    every = tiny_hw(buffer__bytes=2048, search__objective=objective,
                    dataflow__supported=[d.value for d in DATAFLOWS])
    zp = ZeroProfile.of(shape, w)
    best = S.search(shape, every, "best", zp)
    for d in DATAFLOWS:
        assert best.key <= S.search(shape, every, d.value, zp).key
    assert best.key <= S.search(shape, paper, "best", zp).key
    assert S.search(shape, paper, "best", zp).mapping.dataflow in (Dataflow.WS, Dataflow.OS_SOCMOP)
    if objective == "cycles":   # the least cycles; the least DRAM words among those
        assert best.cost == min(S.search(shape, every, d.value, zp).timing.total for d in DATAFLOWS)


def test_objective_is_checked_and_named(tmp_path):
    with pytest.raises(UserError, match='search.dram_weight applies to search.objective "weighted"'):
        tiny_hw(search__objective="cycles", search__dram_weight=2.0)
    with pytest.raises(UserError, match="unknown dataflow 'ws2'"):
        tiny_hw(dataflow__supported=["ws2"])
    with pytest.raises(UserError, match="search.objective must be"):
        tiny_hw(search__objective="speed")
    assert "search objective energy" in tiny_hw(search__objective="energy").describe()
    with pytest.raises(UserError, match="unknown dataflow 'all'"):
        S.search(ConvShape(C=2, H=2, W=2, K=2), tiny_hw(), "all")


def test_buffer_smaller_than_a_tile_is_a_user_error():
    hw = hardware_from_dict({"pe": {"rows": 2, "cols": 2}, "buffer": {"bytes": 24}}, "hw.toml")
    shape = ConvShape(C=4, H=6, W=6, K=4, R=5, S=5)  # 5x5 input window alone is 50 bytes
    with pytest.raises(UserError, match="buffer.bytes"):
        S.search(shape, hw, "ws", None)


@pytest.mark.parametrize("shape", SMALL)
def test_energy_is_counts_times_table(shape):
    hw = replace(load_hardware("16x16"), energy=EnergyTable(mac=1.5, rf=1.25, pe=2.5, gb=6.5, dram=201.0))
    m = Mapping.untiled(shape, Dataflow.WS, 2, 3)
    c = count(shape, m)
    e = energy(c, hw, shape.output_size)
    d = c.to_dict()
    ops = ("input", "weight", "psum")
    # per bit (energy.per_bit): the table prices a 16-bit access; partial sums are 32-bit
    width = {"input": 1, "weight": 1, "psum": 2}
    assert e.mac == c.macs * 1.5
    assert e.rf == sum((d[f"{o}_rf_reads"] + d[f"{o}_rf_writes"]) * width[o] for o in ops) * 1.25
    assert e.pe == sum(d[f"{o}_pe_transfers"] * width[o] for o in ops) * 2.5
    assert e.gb == sum((d[f"{o}_gb_reads"] + d[f"{o}_gb_writes"]) * width[o] for o in ops) * 6.5
    # the final outputs leave at the output's 16 bits, spilled partial sums at 32
    assert e.dram == (sum((d[f"{o}_dram_reads"] + d[f"{o}_dram_writes"]) * width[o] for o in ops)
                      - shape.output_size) * 201.0
    literal = energy(c, replace(hw, energy=replace(hw.energy, per_bit=False)), shape.output_size)
    assert literal.dram == sum(d[f"{o}_dram_reads"] + d[f"{o}_dram_writes"] for o in ops) * 201.0
    assert literal.gb == sum(d[f"{o}_gb_reads"] + d[f"{o}_gb_writes"] for o in ops) * 6.5
    assert e.total == pytest.approx(sum(e.levels().values()))
    assert sum(e.operand("gb", o) for o in ops) == pytest.approx(e.gb)
    assert (e + e).dram == 2 * e.dram and (e + e).operand("rf", "psum") == 2 * e.operand("rf", "psum")
    assert set(e.levels()) == set(LEVELS)


def test_timing_overlap_fill_drain_and_dma_engines():
    shape = ConvShape(C=8, H=8, W=8, K=8, R=3, S=3, padding=1)
    m = Mapping(Dataflow.WS, 2, 3, ("k", "c", "y", "x"), (4, 4, 4, 8))
    c = count(shape, m)
    db = T.timing(shape, m, c, tiny_hw(buffer__bytes=4096))
    single = T.timing(shape, m, c, tiny_hw(buffer__bytes=4096, buffer__double_buffering=False))
    per_pass = T.timing(shape, m, c, tiny_hw(buffer__bytes=4096, pipeline__fill_drain="pass"))
    per_layer = T.timing(shape, m, c, tiny_hw(buffer__bytes=4096, pipeline__fill_drain="layer"))
    assert single.total == single.compute + single.dram
    assert max(db.compute, db.dram) <= db.total <= single.total
    skew = 2 + 3 - 2
    assert per_pass.fill_drain == c.passes * skew and db.fill_drain == 2 * 2 * 2 * 1 * skew  # tiles
    assert per_layer.fill_drain == skew
    assert db.array == c.cycles
    # one DMA transfer per tile made resident or written back, each paying the latency
    n = c.input_transfers + c.weight_transfers + c.psum_read_transfers + c.psum_write_transfers
    assert single.transfers == n
    assert single.dram == pytest.approx(n * 100 + single.dram_bytes / 32)
    two = T.timing(shape, m, c, tiny_hw(buffer__bytes=4096, buffer__double_buffering=False,
                                        dram__engines=2))
    assert two.dram == pytest.approx(max(two.dram_bytes / 32, (n * 100 + two.dram_bytes / 32) / 2))
    # a buffer of 1 word a cycle makes the layer buffer-bound
    slow = T.timing(shape, m, c, tiny_hw(buffer__bytes=4096, buffer__words_per_cycle=1.0))
    # (16-bit operands, 32-bit partial sums: a port of one 16-bit word a cycle)
    assert slow.buffer == T.gb_bits(c, {"input": 16, "weight": 16, "psum": 32}) / 16
    assert slow.compute == slow.buffer + slow.fill_drain


def test_zero_skip_off_is_searched_as_no_skip():
    """With zero_skip_os = false the search must not assume skipped zeros (issue 11's bug)."""
    shape = ConvShape(C=16, H=12, W=12, K=16, R=3, S=3, padding=1)
    w = weights(shape, sparsity=0.6)
    noskip = tiny_hw(buffer__bytes=1 << 16, dataflow__zero_skip_os=False)
    zp = S.zero_profile(shape, noskip, w)
    assert zp.zeros == 0
    ch = S.search(shape, noskip, "os", zp)
    assert ch.counters.skipped_macs == 0 and ch.counters.macs == shape.macs


def test_spread_zeros_places_that_many_zeros_evenly():
    shape = ConvShape(C=6, H=5, W=5, K=4, R=3, S=3, padding=1)
    for n in (0, 1, 7, 100, 216):
        zp = S.spread_zeros(shape, n)
        assert zp.zeros == n
    # every filter of a layer with a zero in every other weight gets its share
    halves = S.zero_profile(shape, tiny_hw(), np.arange(216).reshape(4, 6, 3, 3) % 2)
    assert np.array_equal(S.spread_zeros(shape, 108).table, halves.table)


def test_row_stationary_runs_only_layers_whose_filter_rows_fit():
    # a filter row of S words must fit the RS PE's input window and filter scratchpads; p,
    # the filters a PE interleaves, is the most its psum and filter scratchpads hold
    hw = tiny_hw(pe__spad_ifmap_words=2, dataflow__supported=["ws", "rs"])
    with pytest.raises(UserError, match="row stationary"):
        S.search(SMALL[0], hw, "rs")                 # 3x3: a row of 3 words
    assert S.search(SMALL[0], hw, "best").mapping.dataflow == Dataflow.WS
    m = S.search(SMALL[2], hw, "rs").mapping         # 3x1: rows of one word
    assert m.dataflow == Dataflow.RS and m.psums_per_pe == min(24, 224 // 1)
    assert S.psums_per_pe(tiny_hw(pe__spad_filter_words=30), Dataflow.RS, SMALL[0]) == 10


def _whole_mask_spread(shape, zeros):
    """The even spread as one mask (what spread_zeros made before it went block by block)."""
    size = shape.K * shape.Cg * shape.R * shape.S
    mask = np.zeros(size, bool)
    if zeros:
        mask[(np.arange(zeros) * size) // zeros] = True
    return ZeroProfile.of(shape, mask.reshape(shape.K, shape.Cg, shape.R, shape.S))


def _int64_table(shape, mask):
    """The 2-D prefix sums over (k, c) of a zero mask in int64, by NumPy: the table's values."""
    per = mask.reshape(shape.K, shape.Cg, -1).sum(axis=2, dtype=np.int64)
    t = np.zeros((shape.K + 1, shape.Cg + 1), np.int64)
    t[1:, 1:] = per.cumsum(0).cumsum(1)
    return t.ravel()


@pytest.mark.parametrize("shape", SMALL + [ConvShape(C=300, H=1, W=1, K=40, R=1, S=1)])
def test_zero_tables_int32_by_rows_and_spread_equal_the_whole_int64_one(monkeypatch, shape):
    """The int32 table (of and of_rows, any split of the output channels) holds the int64
    prefix sums; the block-by-block even spread is the whole-mask one; count() gives the same
    counters from any of them."""
    rng = np.random.default_rng(5)
    mask = rng.random((shape.K, shape.Cg, shape.R, shape.S)) < 0.4
    whole = ZeroProfile.of(shape, mask)
    assert whole.table.dtype == np.int32
    np.testing.assert_array_equal(whole.table, _int64_table(shape, mask))
    cuts = np.sort(rng.choice(np.arange(1, shape.K), min(3, shape.K - 1), replace=False))
    rows = ZeroProfile.of_rows(shape, np.split(mask, cuts))
    np.testing.assert_array_equal(rows.table, whole.table)
    assert rows.zeros == whole.zeros == mask.sum()
    with pytest.raises(ValueError, match="cover"):
        ZeroProfile.of_rows(shape, [mask[:-1]])
    size = mask.size
    for zeros in (0, 1, size // 3, size - 1, size):
        np.testing.assert_array_equal(S.spread_zeros(shape, zeros).table,
                                      _whole_mask_spread(shape, zeros).table)
    hw = tiny_hw(buffer__bytes=1 << 20)
    tiles = tuple(min(t, n) for t, n in zip((3, 7, 2, 2), (shape.K, shape.Cg, shape.Ho, shape.Wo)))
    m = S.mapping_for(hw, Dataflow.OS_SOCMOP, "kcyx", tiles, shape)
    assert count(shape, m, rows) == count(shape, m, mask)


@pytest.mark.parametrize("shape", SMALL + [ConvShape(C=64, H=14, W=14, K=96, R=3, S=3, padding=1)])
def test_fitting_tilings_and_their_least_words_equal_the_enumeration(shape):
    """The grid's fitting points in grid order, and least_dram_words looked up per distinct
    tile count, equal enumerating every tiling and bounding each."""
    hw = load_hardware("8x8") if shape.C == 64 else tiny_hw()
    got = S.fitting_tilings(shape, hw, rs=True)
    grids = np.meshgrid(*got.sizes, indexing="ij")
    tiles = np.stack([g.ravel() for g in grids], axis=1)
    from sqnxt_engine.kernels import footprints
    tiles = tiles[hw.fits_array(footprints(shape, tiles))]
    np.testing.assert_array_equal(got.tiles, tiles)
    for d in range(4):
        np.testing.assert_array_equal(got.sizes[d][got.at[:, d]], tiles[:, d])
    ext = np.array([shape.K, shape.Cg, shape.Ho, shape.Wo])
    np.testing.assert_array_equal(got.least_words, least_dram_words(shape, -(-ext // tiles)))


def test_tile_sums_and_pareto_equal_their_definitions():
    """_tile_sums (every size's tiles in one call) equals summing tile by tile, size by size;
    _pareto (a block of sizes at a time) keeps exactly the sizes no smaller size of the same
    tile count dominates (all features <=)."""
    rng = np.random.default_rng(3)
    for n in (1, 7, 64, 300):
        sizes = np.arange(1, n + 1)
        got = S._tile_sums(n, sizes, lambda a, b: (a % 5) * b + 1)
        want = [sum((a % 5) * min(t, n - a) + 1 for a in range(0, n, t)) for t in sizes]
        np.testing.assert_array_equal(got, want)
        m = -(-n // sizes)
        f = np.column_stack([sizes, m] + [rng.integers(0, 4, n) for _ in range(3)])
        keep = [i + 1 for i in range(n)
                if not any((f[j] <= f[i]).all() for j in range(i) if m[j] == m[i])]
        np.testing.assert_array_equal(S._pareto(f), keep)
