# Shared C-level declarations of the loop-nest kernels (kernels/_loopnest.pyx.tp cimports them).
# The counter layout (NCOUNT slots) is defined here once; kernels/api.py names the slots in the
# same order (COUNTER_FIELDS) and kernels/README.md defines each in words.

cdef enum:
    DF_WS = 0
    DF_SOCMOP = 1
    DF_MOCSOP = 2
    DF_MOCMOP = 3

# operand base offsets; each operand has 7 counters in the order below
cdef enum:
    OP_INPUT = 0
    OP_WEIGHT = 7
    OP_PSUM = 14
    C_RF_READS = 0
    C_RF_WRITES = 1
    C_PE_TRANSFERS = 2
    C_GB_READS = 3
    C_GB_WRITES = 4
    C_DRAM_READS = 5
    C_DRAM_WRITES = 6
    C_MACS = 21
    C_SKIPPED = 22
    C_CYCLES = 23
    C_PE_SLOTS = 24
    NCOUNT = 25

ctypedef long long i64

cdef struct Layer:
    # one convolution: input C x H x W, K output channels, R x S kernel
    i64 C, H, W, K, R, S
    i64 sy, sx, pt, pb, pl, pr, G     # stride, padding (top, bottom, left, right), groups
    i64 Cg, Kg, Ho, Wo, Hp, Wp        # channels per group, output size, padded input size

cdef struct Map:
    i64 df, Pr, Pc                    # dataflow, PE array rows x cols
    i64 tk, tc, ty, tx                # tile sizes (k over K, c over C/groups, y over Ho, x over Wo)
    i64 nk, nc, ny, nx                # number of tiles per loop
    i64 order                         # index of the loop order in ORDERS (24 walks)

cdef struct Tally:
    # what the tile walk accumulates; every counter is a linear function of these (finalize)
    i64 ntiles          # tiles visited
    i64 nfirst          # tiles with c-tile index 0 (first contribution to their outputs)
    i64 sum_sng         # sum over tiles of the input-group spans of the dataflow's k-blocks
    i64 sum_zero        # sum over tiles of zero weights in the tile (SOC-MOP only)
    i64 w_fills         # weight tiles fetched from DRAM
    i64 in_dram         # input words fetched from DRAM (padding excluded)
    i64 in_gbw          # input words written into the GB by those fetches (padding materialised)
    i64 out_runs        # psum/output tile residencies (each ends with one write-back to DRAM)
    i64 out_reloads     # residencies that start by reading spilled partial sums back from DRAM
    i64 macs_done       # MACs the arithmetic actually executed (execute mode only)
