# Shared C-level declarations of the loop-nest kernels (kernels/_loopnest.pyx.tp cimports them).
# The counter layout (NCOUNT slots) is defined here once; kernels/api.py names the slots in the
# same order (COUNTER_FIELDS, checked against NCOUNT at import) and defines each in words
# (the Counters docstring).

cdef enum:
    DF_WS = 0
    DF_SOCMOP = 1
    DF_MOCSOP = 2
    DF_MOCMOP = 3
    DF_RS = 4

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
    C_PASSES = 25                 # array passes: the array starting on a new stationary block
    C_IN_TRANSFERS = 26           # DMA transfers (one per tile made resident) per operand
    C_W_TRANSFERS = 27
    C_PSUM_READ_TRANSFERS = 28    # spilled partial-sum tiles read back
    C_PSUM_WRITE_TRANSFERS = 29   # partial-sum / output tiles written back
    NCOUNT = 30

cdef enum:
    MAP_COLUMNS = 9   # a mapping row: dataflow, Pr, Pc, order index, tk, tc, ty, tx, Q

ctypedef long long i64

cdef struct Layer:
    # one convolution: input C x H x W, K output channels, R x S kernel
    i64 C, H, W, K, R, S
    i64 sy, sx, pt, pb, pl, pr, G     # stride, padding (top, bottom, left, right), groups
    i64 Cg, Kg, Ho, Wo, Hp, Wp        # channels per group, output size, padded input size

cdef struct Map:
    i64 df, Pr, Pc                    # dataflow, PE array rows x cols
    i64 tk, tc, ty, tx                # tile sizes (k over K, c over C/groups, y over Ho, x over Wo);
                                      # the last tile of a loop may be smaller (partial)
    i64 nk, nc, ny, nx                # number of tiles per loop: ceil(extent / tile)
    i64 order                         # index of the loop order in ORDERS (24 walks)
    i64 Q                             # SOC-MOP: output channels a PE holds at once (input reuse);
                                      # RS: filters interleaved in a PE (Eyeriss's p)

cdef struct Tally:
    # the DMA side of a walk: residencies of each operand's tiles in the global buffer
    i64 w_fills         # weight tiles fetched from DRAM
    i64 w_words         # their words
    i64 in_fills        # input tiles fetched from DRAM
    i64 in_dram         # input words fetched from DRAM (padding excluded)
    i64 in_gbw          # input words written into the GB by those fetches (padding materialised)
    i64 out_runs        # psum/output tile residencies (each ends with one write-back to DRAM)
    i64 out_words       # words written back
    i64 out_reloads     # residencies that start by reading spilled partial sums back from DRAM
    i64 reload_words    # words read back
    i64 macs_done       # MACs the arithmetic actually executed (execute mode only)

cdef struct Agg:
    # a class of tiles of equal sizes (the array side of the counts is linear over tiles, so a
    # walk adds one tile at a time and the closed form one class of equal-sized tiles at a time)
    i64 tk, tc, ty, tx  # the tiles' sizes
    i64 nk, nc, ny, nx  # how many tiles of the class along each loop (the class is their product)
    i64 sng             # sum over its k-tiles of the input-group spans of the dataflow's k-blocks
    i64 first           # its c-tiles with index 0 (first contribution to their outputs)
    i64 zero            # zero weights in its (k, c) tiles, all R x S taps (SOC-MOP only)
    i64 inw             # input words the array reads under its (c, y, x) tiles, all taps, once
                        # (every word, padding included; with a shifted fetch only those inside
                        # the image: the border is never read)
    i64 pm              # SOC-MOP and RS: over its k-tiles, the input-reuse pieces of several output
                        # channels (a piece: up to Q consecutive channels of one group that a
                        # PE holds at once; a group run of L channels in a k-tile is cut into
                        # ceil(L / Q) pieces from its first channel)
    i64 ps              # SOC-MOP: over its k-tiles, the pieces of one output channel
    i64 zs              # SOC-MOP: zero weights of the one-channel pieces' channels over its
                        # c-tiles, all R x S taps
    i64 inz             # shifted fetch, SOC-MOP: over its tiles and its one-channel pieces'
                        # channels, nonzero weights x in-image input words of their input
                        # channel (each such MAC's read)
