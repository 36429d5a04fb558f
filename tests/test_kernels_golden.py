"""Golden test: the paper's Figure 4 example (SqueezeNext, Section 3), counted by hand.

A 2x2 PE array runs a 1x1 convolution on a 5x4x2 input (H=5 rows, W=4 columns, C=2 input
channels) with K=2 output channels, giving a 5x4x2 output. 20 output pixels per channel, so
the layer has MACs = K * Ho * Wo * C = 2 * 20 * 2 = 80.
Everything fits one tile (tiles = (2, 2, 5, 4)), so each operand is fetched once.
"""
import numpy as np
import pytest

from sqnxt_engine.kernels import ConvShape, Counters, Dataflow, Mapping, count, execute

SHAPE = ConvShape(C=2, H=5, W=4, K=2)
X = (np.arange(40, dtype=np.int16).reshape(2, 5, 4) - 17)
W_DENSE = np.array([[3, -2], [5, 7]], np.int16).reshape(2, 2, 1, 1)   # w[k, c]


def ref(w):
    return np.einsum("kc,chw->khw", w[:, :, 0, 0].astype(np.int64), X.astype(np.int64))


def test_figure4_weight_stationary():
    # WS: the array holds the 2x2 weight block, rows r = input channel c, columns q = output
    # channel k (Pr splits C, Pc splits K). One cycle = one input pixel vector (the 2 channel
    # values of one pixel) streamed through the array: PE(r, q) computes x[r] * w[q, r] and
    # the partial sum of column q runs from row 0 to row 1, then to the global buffer.
    #   cycles      = 20 pixels x 1 k-block x 1 c-block x 1 tap           = 20
    #   macs        = 20 cycles x 4 PEs                                   = 80, utilisation 1
    # weights: the 2x2 block is loaded once: GB reads 4, RF writes 4; every MAC reads its
    #   weight from the RF: RF reads 80. DRAM: 4 words fetched (GB writes 4 by the DMA).
    # input: per cycle each row gets one word from the GB, broadcast to its 2 PEs:
    #   GB reads 2 x 20 = 40, RF writes 4 x 20 = 80, RF reads (one per MAC) 80.
    #   DRAM reads 40 = the input size (GB writes 40 by the DMA; no padding).
    # psum: per cycle and column one hop row 0 -> row 1: PE-to-PE 2 x 20 = 40; the bottom PE
    #   writes it to the GB: GB writes 2 x 20 = 40; only one pass per output (C fits the 2
    #   rows, 1x1 kernel) so no partial sum is read back: GB reads (array) 0.
    #   RF writes = 80 (one per MAC) + 40 (arriving from the PE above) = 120
    #   RF reads  = 80 (one per MAC) + 40 (sent down) + 40 (sent to the GB) = 160
    #   Outputs written to DRAM once: DRAM writes 40, which the DMA reads from the GB: +40.
    m = Mapping(Dataflow.WS, 2, 2, ("k", "c", "y", "x"), (2, 2, 5, 4))
    y, c = execute(SHAPE, m, X, W_DENSE)
    np.testing.assert_array_equal(y, ref(W_DENSE))
    assert c == Counters(
        input_rf_reads=80, input_rf_writes=80, input_pe_transfers=0, input_gb_reads=40,
        input_gb_writes=40, input_dram_reads=40, input_dram_writes=0,
        weight_rf_reads=80, weight_rf_writes=4, weight_pe_transfers=0, weight_gb_reads=4,
        weight_gb_writes=4, weight_dram_reads=4, weight_dram_writes=0,
        psum_rf_reads=160, psum_rf_writes=120, psum_pe_transfers=40, psum_gb_reads=0 + 40,
        psum_gb_writes=40, psum_dram_reads=0, psum_dram_writes=40,
        macs=80, skipped_macs=0, cycles=20, pe_slots=20 * 4,
        passes=1,   # one weight block, one tap
        input_transfers=1, weight_transfers=1, psum_read_transfers=0, psum_write_transfers=1)
    assert c.utilisation == 1.0


def test_figure4_output_stationary_socmop():
    # OS SOC-MOP: each PE owns one output pixel of one output channel; the array covers a 2x2
    # block of output pixels (rows over y, columns over x). The 5x4 map needs
    # ceil(5/2) x ceil(4/2) = 3 x 2 = 6 pixel blocks (the last block row has 1 active row).
    # Per block, one cycle per (k, c) weight (T0..T3 in the figure): the weight w[k, c] is
    # broadcast to all PEs, each PE reads its own input pixel of channel c.
    #   cycles = 6 blocks x (2 k x 2 c) weights = 24; slots = 24 x 4 = 96
    #   macs   = 20 pixels x 4 weights = 80 (the 2 idle PEs of the 3rd block row: 16 slots)
    # weights: every weight read from the GB once per pixel block (it is tested for zero
    #   there): GB reads 4 x 6 = 24; broadcast into each active PE: RF writes 80; RF reads 80.
    # input: each PE fetches its own word every cycle: GB reads 80, RF writes 80, RF reads 80.
    # psum: stays in the PE over c; 40 outputs drained to the GB once: GB writes 40,
    #   RF reads 80 + 40 = 120, RF writes 80, no reload (one c-tile), no PE-to-PE.
    # DRAM as in WS: input 40, weights 4, outputs 40 written.
    m = Mapping(Dataflow.OS_SOCMOP, 2, 2, ("k", "c", "y", "x"), (2, 2, 5, 4))
    y, c = execute(SHAPE, m, X, W_DENSE)
    np.testing.assert_array_equal(y, ref(W_DENSE))
    expected = dict(
        input_rf_reads=80, input_rf_writes=80, input_pe_transfers=0, input_gb_reads=80,
        input_gb_writes=40, input_dram_reads=40, input_dram_writes=0,
        weight_rf_reads=80, weight_rf_writes=80, weight_pe_transfers=0, weight_gb_reads=24,
        weight_gb_writes=4, weight_dram_reads=4, weight_dram_writes=0,
        psum_rf_reads=120, psum_rf_writes=80, psum_pe_transfers=0, psum_gb_reads=40,
        psum_gb_writes=40, psum_dram_reads=0, psum_dram_writes=40,
        macs=80, skipped_macs=0, cycles=24, pe_slots=96,
        passes=12,  # one per output channel and pixel block: 2 x 6
        input_transfers=1, weight_transfers=1, psum_read_transfers=0, psum_write_transfers=1)
    assert c == Counters(**expected)
    assert c.utilisation == pytest.approx(80 / 96)

    # One zero weight, w[1, 0] = 0: its cycle is skipped in all 6 blocks:
    #   cycles 24 - 6 = 18, macs 80 - 20 = 60, skipped 20 (one per output pixel of k=1);
    #   weight GB reads stay 24 (the zero is found by reading it); every per-MAC count
    #   (RF reads/writes of inputs and weights, input GB reads, psum RF) drops by 20.
    w0 = W_DENSE.copy()
    w0[1, 0] = 0
    y0, c0 = execute(SHAPE, m, X, w0)
    np.testing.assert_array_equal(y0, ref(w0))
    for k in ("input_rf_reads", "input_rf_writes", "input_gb_reads", "weight_rf_reads",
              "weight_rf_writes", "psum_rf_reads", "psum_rf_writes"):
        expected[k] -= 20
    expected.update(macs=60, skipped_macs=20, cycles=18, pe_slots=72)
    assert c0 == Counters(**expected)
    assert count(SHAPE, m, w0) == c0


def test_figure4_output_stationary_reads_an_input_once_for_two_channels():
    # The figure's text: "In T0 and T1 cycles of OS data flow, the shaded area on left is read
    # and convolved with different filter weights": each PE holds the partial sums of both
    # output channels (psums_per_pe = 2) and reads its input pixel once for the two.
    #   input GB reads: 20 pixels x 2 input channels = 40 (one per PE, channel and pixel),
    #   RF writes 40 (each word delivered once), RF reads 80 (one per MAC); the rest as above.
    m = Mapping(Dataflow.OS_SOCMOP, 2, 2, ("k", "c", "y", "x"), (2, 2, 5, 4), psums_per_pe=2)
    y, c = execute(SHAPE, m, X, W_DENSE)
    np.testing.assert_array_equal(y, ref(W_DENSE))
    one = count(SHAPE, Mapping(Dataflow.OS_SOCMOP, 2, 2, ("k", "c", "y", "x"), (2, 2, 5, 4)), W_DENSE)
    assert (c.input_gb_reads, c.input_rf_writes, c.input_rf_reads) == (40, 40, 80)
    assert c._replace(input_gb_reads=80, input_rf_writes=80) == one


def test_figure4_partial_tiles():
    # Tiles of 3 output rows on the 5-row map: a full tile of 3 rows and a partial one of 2.
    # SOC-MOP on the 2x2 array: the full tile needs ceil(3/2) x ceil(4/2) = 4 pixel blocks
    # (its second block row has one active PE row), the partial one 1 x 2 = 2: 6 blocks of
    # 4 weights, cycles 24 as untiled; one pass per channel and block: 2 x 6 = 12. The input
    # rows each tile touches: 3 and 2 (1x1 kernel): 40 words in 2 transfers.
    m = Mapping(Dataflow.OS_SOCMOP, 2, 2, ("k", "c", "y", "x"), (2, 2, 3, 4))
    y, c = execute(SHAPE, m, X, W_DENSE)
    np.testing.assert_array_equal(y, ref(W_DENSE))
    assert (c.cycles, c.macs, c.passes, c.input_dram_reads) == (24, 80, 12, 40)
    assert (c.input_transfers, c.psum_write_transfers, c.psum_dram_writes) == (2, 2, 40)
    # WS, three output channels in k-tiles of 2: the partial k-tile of 1 channel leaves one
    # of the 2 PE columns idle. cycles = 2 k-tiles x 20 pixels = 40, macs 3 x 20 x 2 = 120,
    # slots 40 x 4 = 160: utilisation 0.75
    s3 = ConvShape(C=2, H=5, W=4, K=3)
    w3 = np.arange(6, dtype=np.int16).reshape(3, 2, 1, 1) - 2
    y, c = execute(s3, Mapping(Dataflow.WS, 2, 2, ("k", "c", "y", "x"), (2, 2, 5, 4)), X, w3)
    np.testing.assert_array_equal(y, np.einsum("kc,chw->khw", w3[:, :, 0, 0].astype(np.int64),
                                               X.astype(np.int64)))
    assert (c.cycles, c.macs, c.utilisation) == (40, 120, 0.75)


def test_figure4_ws_with_the_c_loop_tiled_outermost():
    # The same layer tiled tc = 1, tk = 1 (4 tiles of 1 output channel x 1 input channel)
    # in the order (c, k, y, x): the output tile of channel k is left between its two
    # c-tiles, so its partial sums spill to DRAM and come back.
    #   output tile runs: c=0: k=0, k=1; c=1: k=0, k=1 -> 4 runs of 20 words:
    #     DRAM writes 4 x 20 = 80; DRAM reads (runs starting at c > 0) 2 x 20 = 40.
    #   The array: each tile uses 1 row and 1 column: cycles = 4 tiles x 20 pixels = 80,
    #   utilisation 80 / (80 x 4) = 1/4; no PE-to-PE hop (one row); the psum enters the
    #   PE from the GB except on the first c-tile: array GB reads 40, writes 80.
    #   psum GB reads = 40 (array) + 80 (DMA write-back); GB writes = 80 (array) + 40 (DMA).
    #   Weights: 4 tiles of 1 word, each fetched once: DRAM reads 4.
    #   Input: tile (c, y, x) changes only with c: fetched twice, 20 words each: 40.
    m = Mapping(Dataflow.WS, 2, 2, ("c", "k", "y", "x"), (1, 1, 5, 4))
    y, c = execute(SHAPE, m, X, W_DENSE)
    np.testing.assert_array_equal(y, ref(W_DENSE))
    assert (c.cycles, c.macs, c.pe_slots) == (80, 80, 320)
    assert (c.psum_dram_writes, c.psum_dram_reads) == (80, 40)
    assert (c.psum_gb_reads, c.psum_gb_writes, c.psum_pe_transfers) == (120, 120, 0)
    assert (c.weight_dram_reads, c.input_dram_reads) == (4, 40)
    # order (k, c, y, x): the c-tiles of one output tile are consecutive, no spill;
    # but the input tile now changes at every tile: fetched 4 times (80 words).
    m2 = Mapping(Dataflow.WS, 2, 2, ("k", "c", "y", "x"), (1, 1, 5, 4))
    c2 = count(SHAPE, m2, W_DENSE)
    assert (c2.psum_dram_writes, c2.psum_dram_reads, c2.input_dram_reads) == (40, 0, 80)


# ---- row stationary (Eyeriss), counted by hand on a 3x3 layer ---------------------------------
RS_SHAPE = ConvShape(C=2, H=4, W=5, K=2, R=3, S=3)     # output 2 x 2 x 3, 216 MACs
RS_X = (np.arange(40, dtype=np.int16).reshape(2, 4, 5) * 3 - 50)
RS_W = (np.arange(36, dtype=np.int16).reshape(2, 2, 3, 3) % 7 - 3)


def rs_ref():
    x, w = RS_X.astype(np.int64), RS_W.astype(np.int64)
    out = np.zeros((2, 2, 3), np.int64)
    for y in range(2):
        for xx in range(3):
            out[:, y, xx] = np.einsum("kcji,cji->k", w, x[:, y:y + 3, xx:xx + 3])
    return out


def test_row_stationary_by_hand():
    # RS on a 3x3 array (Pr = 3 rows, Pc = 2 columns), the layer in one tile, psums_per_pe 1.
    # PE (row j, column e) convolves filter row j of (k, c) with input row e + j: output row e,
    # 3 outputs x 3 taps = 9 MACs, one a cycle. A column holds the 3 rows of one channel
    # (floor(3 / 3) = 1 channel a pass), the 2 columns the 2 output rows (one strip).
    #   passes = 2 output channels (pieces of 1) x 2 channels (c-passes) x 1 strip = 4
    #   cycles = 4 passes x 9 = 36; slots 36 x 6 = 216 = the MACs: utilisation 1.
    # weights: a filter row (3 words) read once per strip and PE row, broadcast along the
    #   row's 2 PEs: GB reads 2 x 2 x 3 x 3 = 36, RF writes 36 x 2 = 72, RF reads 216.
    # input: per piece and channel the strip's 2 output rows read input rows 0..3 (4 rows) x
    #   5 columns once, each row multicast along its diagonal: GB reads 2 x 2 x 20 = 80; each
    #   of the 6 PEs receives its row's 5-word window per piece and channel: RF writes
    #   2 x 2 x 6 x 5 = 120; RF reads 216.
    # psum: per pass 6 outputs run down the 3 PEs: 2 hops each, 12 a pass, 48 in all; each
    #   leaves the bottom PE for the GB: 24 array writes; the second channel's pass of each
    #   output channel starts from the GB: 2 x 6 = 12 array reads (+ 12 by the DMA's
    #   write-back). RF writes 216 + 48 + 12 = 276, RF reads 216 + 48 + 24 = 288.
    # DRAM: input 40 words, weights 36, outputs 12; one transfer each.
    m = Mapping(Dataflow.RS, 3, 2, ("k", "c", "y", "x"), (2, 2, 2, 3))
    y, c = execute(RS_SHAPE, m, RS_X, RS_W)
    np.testing.assert_array_equal(y, rs_ref())
    assert c == Counters(
        input_rf_reads=216, input_rf_writes=120, input_pe_transfers=0, input_gb_reads=80,
        input_gb_writes=40, input_dram_reads=40, input_dram_writes=0,
        weight_rf_reads=216, weight_rf_writes=72, weight_pe_transfers=0, weight_gb_reads=36,
        weight_gb_writes=36, weight_dram_reads=36, weight_dram_writes=0,
        psum_rf_reads=288, psum_rf_writes=276, psum_pe_transfers=48, psum_gb_reads=12 + 12,
        psum_gb_writes=24, psum_dram_reads=0, psum_dram_writes=12,
        macs=216, skipped_macs=0, cycles=36, pe_slots=216, passes=4,
        input_transfers=1, weight_transfers=1, psum_read_transfers=0, psum_write_transfers=1)
    assert count(RS_SHAPE, m, None) == c
    # Two filters interleaved in each PE (Eyeriss's p = 2): one piece of both output channels,
    # so the input rows are read and delivered once for the two: GB reads 40, RF writes 60;
    # passes 2 of 18 cycles (same 36 cycles); weights and psums unchanged.
    m2 = Mapping(Dataflow.RS, 3, 2, ("k", "c", "y", "x"), (2, 2, 2, 3), psums_per_pe=2)
    y2, c2 = execute(RS_SHAPE, m2, RS_X, RS_W)
    np.testing.assert_array_equal(y2, rs_ref())
    assert c2 == c._replace(input_gb_reads=40, input_rf_writes=60, passes=2)


def test_row_stationary_folds_and_strips_by_hand():
    # The same layer on a 2x1 array: the 3 filter rows fold onto 2 PE rows (rows 0-1, then 2),
    # the 2 output rows become 2 strips of 1 column. Per output channel, channel and strip,
    # 2 folds: passes 2 x 2 x 2 x 2 = 16 of 9 cycles: 144 cycles, slots 288, MACs 216.
    # Input GB reads per (piece, channel, strip): fold 0 reads rows e, e+1, fold 1 row e+2:
    #   3 rows x 5 columns = 15; x 2 x 2 x 2 = 120. Psum: a fold of 2 rows makes 1 hop, of 1
    #   row none: hops = 12 outputs x 2 channels x 1 = 24; GB writes per output 4 (2 channels
    #   x 2 folds) = 48, array GB reads 48 - 12 = 36.
    m = Mapping(Dataflow.RS, 2, 1, ("k", "c", "y", "x"), (2, 2, 2, 3))
    y, c = execute(RS_SHAPE, m, RS_X, RS_W)
    np.testing.assert_array_equal(y, rs_ref())
    assert (c.passes, c.cycles, c.pe_slots, c.macs) == (16, 144, 288, 216)
    assert (c.input_gb_reads, c.psum_pe_transfers) == (120, 24)
    assert (c.psum_gb_writes, c.psum_gb_reads) == (48, 36 + 12)
