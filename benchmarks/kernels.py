"""Speed of the loop-nest kernels on the layers of 1.0-SqNxt-23v5.

    python benchmarks/kernels.py [--model 1.0-SqNxt-23v5] [--pe 16] [--repeat 3] [--json OUT]

Per conv / fc layer (batch 1, one core):
  * execute-and-count (sqnxt_engine.kernels.execute) in int16 and float32, weight stationary,
    one tile = the whole layer, MACs per second (the layer's dense MACs / seconds);
  * execute-and-count OS SOC-MOP in int16 with 40% zero weights (the paper's sparsity),
    performed MACs per second (skipped MACs do no work);
  * a NumPy reference convolution beside it: im2col + matmul in float32 (BLAS) and in int64;
  * count-only: random legal mappings of the layer (every dataflow, order and tiling whose
    global-buffer footprint fits 64 Ki words = 128 KB of int16) through count() one by one,
    and through count_array() in one call; evaluations per second.
Targets (issue 5): >= 0.5 GMAC/s executing and counting, >= 100,000 count-only evaluations/s.
Timing: best of --repeat runs; the machine's other load shows in the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")  # one core for every contender (set before NumPy loads)

import numpy as np  # noqa: E402

from sqnxt_engine import zoo
from sqnxt_engine.kernels import (
    DATAFLOWS,
    ORDERS,
    ConvShape,
    Dataflow,
    Mapping,
    ZeroProfile,
    count,
    count_array,
    execute,
)


def layer_shapes(model: str):
    """(name, ConvShape) for every conv and fc layer of a zoo model."""
    out = []
    for layer in zoo.build(model).layers:
        op = layer.op
        if op.kind == "conv":
            if tuple(op.dilation) != (1, 1):
                raise SystemExit(f"{layer.name}: dilated convolutions are not modelled")
            c, h, w = layer.in_shapes[0]
            out.append((layer.name, ConvShape(C=c, H=h, W=w, K=op.out_channels, R=op.kernel[0],
                                              S=op.kernel[1], stride=op.stride,
                                              padding=op.padding, groups=op.groups)))
        elif op.kind == "fc":
            (f,) = layer.in_shapes[0]
            out.append((layer.name, ConvShape.fc(f, layer.out_shape[0])))
    return out


def numpy_conv(shape: ConvShape, x, w, acc):
    """Reference: im2col (R*S strided slice copies) + one matmul per group, in dtype acc."""
    pt, pb, pl, pr = shape.padding
    sy, sx = shape.stride
    R, S, Ho, Wo = shape.R, shape.S, shape.Ho, shape.Wo
    xp = np.pad(x.astype(acc, copy=False), ((0, 0), (pt, pb), (pl, pr)))
    if R == S == 1 and sy == sx == 1:
        cols = xp.reshape(shape.C, Ho * Wo)
    else:
        cols = np.empty((shape.C, R, S, Ho, Wo), acc)
        for j in range(R):
            for i in range(S):
                cols[:, j, i] = xp[:, j:j + sy * (Ho - 1) + 1:sy, i:i + sx * (Wo - 1) + 1:sx]
        cols = cols.reshape(shape.C, R * S * Ho * Wo)
    G, cg, kg = shape.groups, shape.Cg, shape.K // shape.groups
    wm = w.astype(acc, copy=False).reshape(shape.K, cg * R * S)
    outs = [wm[g * kg:(g + 1) * kg] @ cols[g * cg:(g + 1) * cg].reshape(cg * R * S, Ho * Wo)
            for g in range(G)]
    return np.concatenate(outs).reshape(shape.K, Ho, Wo)


def best(fn, repeat):
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = fn()
        t = min(t, time.perf_counter() - t0)
    return t, r


def candidate_mappings(shape: ConvShape, pe: int, n: int, rng, gb_words=64 * 1024):
    legal = shape.legal_tiles()
    out, tries = [], 0
    while len(out) < n and tries < 50 * n:
        tries += 1
        tiles = tuple(int(rng.choice(legal[d])) for d in "kcyx")
        m = Mapping(DATAFLOWS[rng.integers(len(DATAFLOWS))], pe, pe, ORDERS[rng.integers(24)], tiles)
        if sum(m.footprint(shape).values()) <= gb_words:
            out.append(m)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="1.0-SqNxt-23v5")
    ap.add_argument("--pe", type=int, default=16, help="PE array side (default 16)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--mappings", type=int, default=200, help="count-only mappings per layer")
    ap.add_argument("--json", help="write the figures to this JSON file")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    layers = layer_shapes(a.model)
    rows, tot = [], dict(macs=0, ws16=0.0, ws32=0.0, os16=0.0, os16_macs=0, np32=0.0, np64=0.0,
                         n_single=0, t_single=0.0, n_batch=0, t_batch=0.0)
    hdr = (f"{'layer':24s} {'shape CxHxW->K RxS/s':26s} {'MMAC':>7s} | GMAC/s: {'ws i16':>6s} "
           f"{'ws f32':>6s} {'os i16':>6s} {'np f32':>6s} {'np i64':>6s} | count/s: "
           f"{'single':>8s} {'batch':>9s}")
    print(f"# {a.model}, PE array {a.pe}x{a.pe}, best of {a.repeat}; "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    print(hdr)
    for name, s in layers:
        x16 = rng.integers(-2048, 2048, (s.C, s.H, s.W)).astype(np.int16)
        w16 = rng.integers(-2048, 2048, (s.K, s.Cg, s.R, s.S)).astype(np.int16)
        w16[rng.random(w16.shape) < 0.4] = 0
        x32, w32 = x16.astype(np.float32), w16.astype(np.float32)
        ws = Mapping.untiled(s, Dataflow.WS, a.pe, a.pe)
        soc = Mapping.untiled(s, Dataflow.OS_SOCMOP, a.pe, a.pe)
        t_ws16, (y16, _) = best(lambda: execute(s, ws, x16, w16), a.repeat)
        t_ws32, _ = best(lambda: execute(s, ws, x32, w32), a.repeat)
        t_os16, (_, cs) = best(lambda: execute(s, soc, x16, w16), a.repeat)
        t_np32, _ = best(lambda: numpy_conv(s, x32, w32, np.float32), a.repeat)
        t_np64, r64 = best(lambda: numpy_conv(s, x16, w16, np.int64), a.repeat)
        assert np.array_equal(r64, y16), name  # the kernels and the reference agree
        # count-only
        zp = ZeroProfile.of(s, w16)
        maps = candidate_mappings(s, a.pe, a.mappings, rng)
        def one_by_one():
            for m in maps:
                count(s, m, zp)
        t_single, _ = best(one_by_one, a.repeat)
        arr = np.array([m._tup for m in maps] * 20, np.int64)
        t_batch, _ = best(lambda: count_array(s, arr, zp), a.repeat)
        r = dict(layer=name, C=s.C, H=s.H, W=s.W, K=s.K, R=s.R, S=s.S, stride=s.stride,
                 macs=s.macs, ws_int16=s.macs / t_ws16, ws_float32=s.macs / t_ws32,
                 os_int16_performed=cs.macs / t_os16, numpy_float32=s.macs / t_np32,
                 numpy_int64=s.macs / t_np64, count_single=len(maps) / t_single,
                 count_batch=len(arr) / t_batch, mappings=len(maps))
        rows.append(r)
        for k, v in (("ws16", t_ws16), ("ws32", t_ws32), ("os16", t_os16), ("np32", t_np32),
                     ("np64", t_np64), ("t_single", t_single), ("t_batch", t_batch)):
            tot[k] += v
        tot["macs"] += s.macs
        tot["os16_macs"] += cs.macs
        tot["n_single"] += len(maps)  # per repeat: t_single is the best single pass
        tot["n_batch"] += len(arr)
        desc = f"{s.C}x{s.H}x{s.W}->{s.K} {s.R}x{s.S}/{s.stride[0]}"
        print(f"{name[:24]:24s} {desc:26s} {s.macs / 1e6:7.1f} | {'':7s} "
              f"{r['ws_int16'] / 1e9:6.2f} {r['ws_float32'] / 1e9:6.2f} "
              f"{r['os_int16_performed'] / 1e9:6.2f} {r['numpy_float32'] / 1e9:6.2f} "
              f"{r['numpy_int64'] / 1e9:6.2f} | {'':8s} {r['count_single']:8.0f} "
              f"{r['count_batch']:9.0f}", flush=True)
    total = dict(macs=tot["macs"], ws_int16=tot["macs"] / tot["ws16"],
                 ws_float32=tot["macs"] / tot["ws32"],
                 os_int16_performed=tot["os16_macs"] / tot["os16"],
                 numpy_float32=tot["macs"] / tot["np32"], numpy_int64=tot["macs"] / tot["np64"],
                 count_single=tot["n_single"] / tot["t_single"],
                 count_batch=tot["n_batch"] / tot["t_batch"])
    print(f"{'TOTAL (' + str(len(layers)) + ' layers)':24s} {'':26s} {tot['macs'] / 1e6:7.1f} | "
          f"{'':7s} {total['ws_int16'] / 1e9:6.2f} {total['ws_float32'] / 1e9:6.2f} "
          f"{total['os_int16_performed'] / 1e9:6.2f} {total['numpy_float32'] / 1e9:6.2f} "
          f"{total['numpy_int64'] / 1e9:6.2f} | {'':8s} {total['count_single']:8.0f} "
          f"{total['count_batch']:9.0f}")
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(dict(model=a.model, pe=a.pe, layers=rows, total=total), f, indent=1)
        os.replace(tmp, a.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
