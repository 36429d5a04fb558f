"""An independent, cycle-by-cycle Python simulator of the array and of the tile residencies,
written from the definitions in docs/kernels.md, against the kernels' closed-form counts.
Slow and literal on purpose: it enumerates every tile (partial last tiles included), every cycle and
every active PE."""
import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqnxt_engine.kernels import ConvShape, Counters, Dataflow, Mapping, count

from strategies import KERNELS, conv_shapes, mappings


def weights(draw, shp, zeros=0.4):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    w = rng.integers(-5, 6, size=shp).astype(np.int16)
    w[rng.random(shp) < zeros] = 0
    return w


def blocks(lo, hi, size):
    return [range(b, min(b + size, hi)) for b in range(lo, hi, size)]


def simulate(shape: ConvShape, m: Mapping, w, offsets=None) -> Counters:
    """offsets: a shifted fetch's (dy, dx) per input channel (1x1 layers): channel c of output
    (y, x) is read at (y*sy + dy, x*sx + dx), and a word outside the image is never fetched
    from DRAM nor read from the buffer (the array's work is unchanged)."""
    K, Cg, R, S = shape.K, shape.Cg, shape.R, shape.S
    Kg, G = K // shape.groups, shape.groups
    sy, sx = shape.stride
    pt, pb, pl, pr = shape.padding
    tk, tc, ty, tx = m.tiles
    Pr, Pc = m.pe_rows, m.pe_cols
    ext = {"k": K, "c": Cg, "y": shape.Ho, "x": shape.Wo}
    n = {d: -(-ext[d] // t) for d, t in zip("kcyx", m.tiles)}   # the last tile may be partial
    Q = m.psums_per_pe
    z = {f: 0 for f in Counters._fields}

    def fetched(c, y, x):
        """Whether the word of input channel c under output (y, x) is read (1x1 when shifted)."""
        if offsets is None:
            return True
        return 0 <= y * sy + offsets[c][0] < shape.H and 0 <= x * sx + offsets[c][1] < shape.W

    def add(op, kind, v):
        z[f"{op}_{kind}"] += v

    prev_w = prev_i = prev_o = None
    prev_words = 0  # words of the resident psum tile
    for idx in itertools.product(*(range(n[d]) for d in m.order)):
        t = dict(zip(m.order, idx))
        kt, ct, yt, xt = t["k"], t["c"], t["y"], t["x"]
        ks = range(kt * tk, min(kt * tk + tk, K))
        cs = range(ct * tc, min(ct * tc + tc, Cg))
        ys = range(yt * ty, min(yt * ty + ty, shape.Ho))
        xs = range(xt * tx, min(xt * tx + tx, shape.Wo))
        psum_words = len(ks) * len(ys) * len(xs)
        # --- residencies (GB <-> DRAM) ---
        if (kt, ct) != prev_w:
            add("weight", "dram_reads", len(ks) * len(cs) * R * S)
            add("weight", "gb_writes", len(ks) * len(cs) * R * S)
            z["weight_transfers"] += 1
            prev_w = (kt, ct)
        iid = (ct, yt, xt, kt if G > 1 else None)
        if iid != prev_i and offsets is not None:   # each channel's own in-image window
            words = sum(fetched(c, y, x) for c in cs for y in ys for x in xs)
            add("input", "gb_writes", words)
            add("input", "dram_reads", words)
            z["input_transfers"] += 1
            prev_i = iid
        elif iid != prev_i:
            chans = {(k // Kg) * Cg + c for k in ks for c in cs}
            rows = {y * sy + j for y in ys for j in range(R)}      # padded coordinates
            cols = {x * sx + i for x in xs for i in range(S)}
            add("input", "gb_writes", len(chans) * len(rows) * len(cols))
            real_r = [r for r in rows if pt <= r < pt + shape.H]
            real_c = [q for q in cols if pl <= q < pl + shape.W]
            add("input", "dram_reads", len(chans) * len(real_r) * len(real_c))
            z["input_transfers"] += 1
            prev_i = iid
        if (kt, yt, xt) != prev_o:
            if prev_o is not None:  # the tile left is written back
                add("psum", "dram_writes", prev_words)
                add("psum", "gb_reads", prev_words)
            z["psum_write_transfers"] += 1
            if ct > 0:
                add("psum", "dram_reads", psum_words)
                add("psum", "gb_writes", psum_words)
                z["psum_read_transfers"] += 1
            prev_o, prev_words = (kt, yt, xt), psum_words
        # --- the array, cycle by cycle ---
        taps = [(c, j, i) for c in cs for j in range(R) for i in range(S)]
        if m.dataflow == Dataflow.WS:
            for kb in blocks(ks.start, ks.stop, Pc):
                for cb in blocks(cs.start, cs.stop, Pr):
                    for j in range(R):
                        for i in range(S):
                            z["passes"] += 1
                            add("weight", "gb_reads", len(kb) * len(cb))
                            add("weight", "rf_writes", len(kb) * len(cb))
                            first = ct == 0 and cb.start == cs.start and j == 0 and i == 0
                            for y in ys:
                                for x in xs:
                                    z["cycles"] += 1
                                    z["macs"] += len(kb) * len(cb)
                                    # one GB read per (row, group), broadcast to the row's PEs
                                    groups = {k // Kg for k in kb}
                                    rows_read = sum(fetched(c, y, x) for c in cb)
                                    add("input", "gb_reads", rows_read * len(groups))
                                    add("input", "rf_writes", len(kb) * len(cb))
                                    for _k in kb:   # each column: the psum chain
                                        hops = len(cb) - 1
                                        add("psum", "pe_transfers", hops)
                                        add("psum", "gb_writes", 1)
                                        add("psum", "rf_writes", len(cb) + hops + (0 if first else 1))
                                        add("psum", "rf_reads", len(cb) + hops + 1)
                                        if not first:
                                            add("psum", "gb_reads", 1)
        elif m.dataflow == Dataflow.RS:
            # row stationary: PE (row, column) convolves one filter row (k, c, j) with one input
            # row under output row y (tx outputs x S taps, a MAC a cycle) for each output
            # channel of a piece (up to Q of one group); a column stacks the R rows of
            # floor(Pr / R) channels (or one channel's rows folded by Pr), partial sums running
            # down it; the columns hold the tile's output rows in strips of Pc
            runs = [[k for k in ks if k // Kg == g]
                    for g in range(ks.start // Kg, (ks.stop - 1) // Kg + 1)]
            if R <= Pr:
                cpasses = [[(c, j) for c in cb for j in range(R)]
                           for cb in blocks(cs.start, cs.stop, Pr // R)]
            else:
                cpasses = [[(c, j) for j in fold] for c in cs for fold in blocks(0, R, Pr)]
            for piece in (run[b:b + Q] for run in runs for b in range(0, len(run), Q)):
                for strip in blocks(ys.start, ys.stop, Pc):
                    for cp in cpasses:
                        z["passes"] += 1
                        V = len(cp)
                        z["cycles"] += len(piece) * len(xs) * S
                        z["macs"] += len(piece) * len(strip) * len(xs) * V * S
                        first = ct == 0 and cp[0] == (cs.start, 0)
                        for c in {c for c, _ in cp}:
                            js = [j for cc, j in cp if cc == c]
                            # a filter row read once per PE row and broadcast along it
                            add("weight", "gb_reads", len(piece) * len(js) * S)
                            add("weight", "rf_writes", len(piece) * len(js) * S * len(strip))
                            # each input row under the strip read once for the piece
                            # (a diagonal multicast)
                            if offsets is not None:
                                add("input", "gb_reads", sum(
                                    fetched(c, y, x) for y in strip for x in xs))
                            else:
                                rows = {y * sy + j for y in strip for j in js}
                                cols = {x * sx + i for x in xs for i in range(S)}
                                add("input", "gb_reads", len(rows) * len(cols))
                            # each PE receives the window its row's outputs slide over
                            win = len({x * sx + i for x in xs for i in range(S)})
                            add("input", "rf_writes", len(js) * len(strip) * win)
                        outs = len(piece) * len(strip) * len(xs)
                        add("psum", "pe_transfers", outs * (V - 1))
                        add("psum", "gb_writes", outs)
                        add("psum", "rf_writes", outs * (V * S + V - 1 + (0 if first else 1)))
                        add("psum", "rf_reads", outs * (V * S + V - 1 + 1))
                        if not first:
                            add("psum", "gb_reads", outs)
        else:
            if m.dataflow == Dataflow.OS_SOCMOP:   # (k, pixel block) owns the array
                groups_of_pes = [([k], [(y, x) for y in yb for x in xb]) for k in ks
                                 for yb in blocks(ys.start, ys.stop, Pr)
                                 for xb in blocks(xs.start, xs.stop, Pc)]
            elif m.dataflow == Dataflow.OS_MOCSOP:
                groups_of_pes = [(list(kb), [(y, x)]) for y in ys for x in xs
                                 for kb in blocks(ks.start, ks.stop, Pr * Pc)]
            else:
                groups_of_pes = [(list(kb), [(y, x) for x in xb]) for kb in blocks(ks.start, ks.stop, Pr)
                                 for y in ys for xb in blocks(xs.start, xs.stop, Pc)]
            if m.dataflow == Dataflow.OS_SOCMOP:
                # a PE holds the partial sums of a piece of up to Q output channels of one
                # group (each group's channels in the tile cut into pieces of Q from its
                # first) and reads its input once per tap for the piece (Figure 4); a piece
                # of one channel reads it only for a performed MAC
                runs = [[k for k in ks if k // Kg == g]
                        for g in range(ks.start // Kg, (ks.stop - 1) // Kg + 1)]
                for piece in (run[b:b + Q] for run in runs for b in range(0, len(run), Q)):
                    for yb in blocks(ys.start, ys.stop, Pr):
                        for xb in blocks(xs.start, xs.stop, Pc):
                            for c, j, i in taps:
                                if len(piece) == 1 and w[piece[0], c, j, i] == 0:
                                    continue
                                add("input", "gb_reads",
                                    sum(fetched(c, y, x) for y in yb for x in xb))
                                add("input", "rf_writes", len(yb) * len(xb))
            for kk, pix in groups_of_pes:
                z["passes"] += 1
                npe = len(kk) * len(pix)
                if ct > 0:
                    add("psum", "gb_reads", npe)
                    add("psum", "rf_writes", npe)
                for c, j, i in taps:
                    if m.dataflow == Dataflow.OS_SOCMOP:
                        add("weight", "gb_reads", 1)    # read, then tested for zero
                        if w[kk[0], c, j, i] == 0:
                            z["skipped_macs"] += npe
                            continue
                    elif m.dataflow == Dataflow.OS_MOCSOP:
                        add("weight", "gb_reads", npe)  # each PE its own weight
                        add("input", "gb_reads", len({k // Kg for k in kk}) * fetched(c, *pix[0]))
                    else:
                        add("weight", "gb_reads", len(kk))  # one per row
                        add("input", "gb_reads", sum(fetched(c, y, x) for y, x in pix)
                            * len({k // Kg for k in kk}))
                    z["cycles"] += 1
                    z["macs"] += npe
                    add("weight", "rf_writes", npe)
                    add("psum", "rf_reads", npe)
                    add("psum", "rf_writes", npe)
                add("psum", "gb_writes", npe)
                add("psum", "rf_reads", npe)
    add("psum", "dram_writes", prev_words)   # the last resident tile
    add("psum", "gb_reads", prev_words)
    macs = z["macs"]
    if m.dataflow not in (Dataflow.OS_SOCMOP, Dataflow.RS):   # counted above
        z["input_rf_writes"] = macs
    z["input_rf_reads"] = macs
    z["weight_rf_reads"] = macs
    z["pe_slots"] = z["cycles"] * Pr * Pc
    return Counters(**z)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_closed_forms_match_a_cycle_by_cycle_simulation(data):
    # small layers (depthwise too, kernels up to 3x3, inputs up to 6x6) on arrays of up to 3x3
    shape = data.draw(conv_shapes(kernels=KERNELS[:5], max_hw=6))
    m = data.draw(mappings(shape, max_pe=3, max_psums=3))
    w = weights(data.draw, (shape.K, shape.Cg, shape.R, shape.S))
    got = count(shape, m, w)
    want = simulate(shape, m, w)
    diff = {f: (getattr(got, f), getattr(want, f)) for f in Counters._fields
            if getattr(got, f) != getattr(want, f)}
    assert not diff, f"{shape} {m}: kernel vs simulation {diff}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_row_stationary_matches_the_simulation_on_every_kernel(data):
    # RS alone, every kernel shape (5x5 and 2x3 too, so filter rows fold on the small arrays
    # and several channels stack on the larger ones), arrays up to 4x4
    shape = data.draw(conv_shapes(kernels=KERNELS, max_hw=7))
    m = data.draw(mappings(shape, Dataflow.RS, max_pe=4, max_psums=3))
    w = weights(data.draw, (shape.K, shape.Cg, shape.R, shape.S))
    got, want = count(shape, m, w), simulate(shape, m, w)
    assert got == want, f"{shape} {m}: kernel {got} vs simulation {want}"
