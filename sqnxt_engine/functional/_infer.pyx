# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Inference kernels of the float runner (sqnxt_engine.functional.ConvPlan and max_pool2d):
the passes that NumPy cannot fuse, each done once per element while the data is in cache.

- bias_clamp: a product's epilogue, y = min(max(y + bias[c], lo), hi) in place (ReLU is
  (0, inf), ReLU6 (0, 6), no activation (-inf, inf)); bias_clamp_crop does the same while
  copying a product computed with spare columns (ConvPlan's "flat" scheme) into its output.
- depthwise: a depthwise convolution computed directly, with its epilogue (on phase planes, or
  with the channels in the vector lanes: interleave=True).
- phased_conv: a convolution of a few input channels (a stem) computed directly, with its
  epilogue (ConvPlan's "phased" scheme); phased_weights packs its weights.
- flat_columns: the flat scheme's padded gather of every tap (ConvPlan._fast_flat).
- winograd_input / winograd_output: the transforms around the products of a 1x3 or 3x1
  convolution computed by Winograd's F(4,3) (ConvPlan's "winograd" scheme).
- max_pool: windows clipped to the input (what padding with -inf gives).
- Plan: a whole forward pass as one native call (runtime.runner.CompiledPass).

Every kernel runs over independent (image, channel) planes; with OpenMP (when the compiler has
it, see setup.py) the planes are split over `set_threads` threads, otherwise it runs serially.
The NumPy code in functional.py is the reference the tests compare these against.

The hot loops are compiled once per instruction set (_infer_simd.h): "avx512", "avx2",
"baseline" on x86-64 (GCC 12+), "portable" elsewhere. The best one the CPU runs is used unless
the environment variable SQNXT_SIMD names another when the module loads, or set_simd() is called;
both exist to measure each clone on one machine (forced "avx2" on an AVX-512 CPU stands in for an
AVX2-only one). simd_clone() says which is in use.
"""
import os
import warnings

from cython.parallel cimport parallel, prange
from libc.stdlib cimport calloc, malloc, free, realloc
from libc.math cimport INFINITY
from libc.string cimport memcmp, memcpy, memmove, memset

cimport cython

ctypedef fused real:
    float
    double

cdef int _threads = 1


def set_threads(int n):
    """How many OpenMP threads the kernels use (without OpenMP they run serially anyway)."""
    global _threads
    _threads = max(1, n)


def threads():
    return _threads


def has_openmp():
    """Whether this build splits work over threads (compiled with OpenMP)."""
    return bool(_openmp_build())


cdef extern from *:
    """
    #ifdef _OPENMP
    static int _openmp_build(void) { return 1; }
    #else
    static int _openmp_build(void) { return 0; }
    #endif
    """
    int _openmp_build()


cdef extern from "_infer_simd.h" nogil:
    # the hot loops, compiled once per instruction set, called through the clone in use (the header)
    int SQNXT_BLOCK_FLOATS
    int SQNXT_SIMD_NCLONES
    const char* sqnxt_simd_name(int i)
    int sqnxt_simd_supported(int i)
    int sqnxt_simd_select(int i)
    int sqnxt_simd_best()
    void sqnxt_taps_f32(float* dst, const float* base, const Py_ssize_t* offs, const float* w,
                        Py_ssize_t ntaps, Py_ssize_t n)
    void sqnxt_taps_f64(double* dst, const double* base, const Py_ssize_t* offs, const double* w,
                        Py_ssize_t ntaps, Py_ssize_t n)
    void sqnxt_clamp_f32(float* y, Py_ssize_t n, float b, float lo, float hi)
    void sqnxt_clamp_f64(double* y, Py_ssize_t n, double b, double lo, double hi)
    void sqnxt_crop_f32(float* dst, Py_ssize_t ds, const float* src, Py_ssize_t ss, Py_ssize_t rows, Py_ssize_t n,
                        float b, float lo, float hi)
    void sqnxt_crop_f64(double* dst, Py_ssize_t ds, const double* src, Py_ssize_t ss, Py_ssize_t rows, Py_ssize_t n,
                        double b, double lo, double hi)
    void sqnxt_gather_f32(float* dst, const float* src, Py_ssize_t stride, Py_ssize_t n)
    void sqnxt_gather_f64(double* dst, const double* src, Py_ssize_t stride, Py_ssize_t n)
    void sqnxt_wino_in_lanes_f32(float* v, Py_ssize_t vs, const float* s, Py_ssize_t ps, Py_ssize_t ks,
                                 Py_ssize_t n)
    void sqnxt_wino_in_lanes_f64(double* v, Py_ssize_t vs, const double* s, Py_ssize_t ps, Py_ssize_t ks,
                                 Py_ssize_t n)
    void sqnxt_wino_in_run_f32(float* v, Py_ssize_t vs, const float* s, Py_ssize_t n)
    void sqnxt_wino_in_run_f64(double* v, Py_ssize_t vs, const double* s, Py_ssize_t n)
    void sqnxt_wino_out_lanes_f32(float* d, Py_ssize_t js, const float* m, Py_ssize_t ms, Py_ssize_t n,
                                  float b, float lo, float hi)
    void sqnxt_wino_out_lanes_f64(double* d, Py_ssize_t js, const double* m, Py_ssize_t ms, Py_ssize_t n,
                                  double b, double lo, double hi)
    int SQNXT_PW_OB
    void sqnxt_pw_f32(float* y, Py_ssize_t ys, Py_ssize_t ob, const float* x, Py_ssize_t xs, Py_ssize_t c,
                      Py_ssize_t n, const float* w, Py_ssize_t wr, const float* b, float lo, float hi)
    void sqnxt_pw_f64(double* y, Py_ssize_t ys, Py_ssize_t ob, const double* x, Py_ssize_t xs, Py_ssize_t c,
                      Py_ssize_t n, const double* w, Py_ssize_t wr, const double* b, double lo, double hi)
    void sqnxt_wino_out_run_f32(float* d, const float* m, Py_ssize_t ms, Py_ssize_t n, float b, float lo, float hi)
    void sqnxt_maxcols_f32(float* dst, const float* row, Py_ssize_t n, Py_ssize_t k, Py_ssize_t stride)
    void sqnxt_maxrows_f32(float* dst, const float* src, Py_ssize_t ss, Py_ssize_t rows, Py_ssize_t n)
    void sqnxt_maxrows_f64(double* dst, const double* src, Py_ssize_t ss, Py_ssize_t rows, Py_ssize_t n)
    Py_ssize_t SQNXT_DWI_SCRATCH(Py_ssize_t p, Py_ssize_t po, Py_ssize_t ntaps)
    void sqnxt_dwi_f32(float* out, const float* x, const float* w, const float* bias, Py_ssize_t nch,
                       const Py_ssize_t* geo, float lo, float hi, float* buf)
    void sqnxt_dwi_f64(double* out, const double* x, const double* w, const double* bias, Py_ssize_t nch,
                       const Py_ssize_t* geo, double lo, double hi, double* buf)
    void sqnxt_maxcols_f64(double* dst, const double* row, Py_ssize_t n, Py_ssize_t k, Py_ssize_t stride)
    int SQNXT_PH_OB
    int SQNXT_PH_RUN
    void sqnxt_phased_f32(float* acc, Py_ssize_t acc_stride, Py_ssize_t nb, const float* base,
                          const Py_ssize_t* offs, const float* w, Py_ssize_t ntaps, Py_ssize_t n)
    void sqnxt_phased_f64(double* acc, Py_ssize_t acc_stride, Py_ssize_t nb, const double* base,
                          const Py_ssize_t* offs, const double* w, Py_ssize_t ntaps, Py_ssize_t n)
    void sqnxt_wino_out_run_f64(double* d, const double* m, Py_ssize_t ms, Py_ssize_t n, double b, double lo, double hi)


def simd_clones():
    """{clone name: whether this CPU runs it}, best first."""
    return {sqnxt_simd_name(i).decode(): bool(sqnxt_simd_supported(i)) for i in range(SQNXT_SIMD_NCLONES)}


def simd_clone():
    """The name of the clone the kernels run."""
    return _clone


def set_simd(name):
    """Run the kernels' clone `name` ("auto": the best this CPU runs) from now on, in this process.
    ValueError if there is no such clone or this CPU cannot run it."""
    global _clone
    names = list(simd_clones())
    if name == "auto":
        i = sqnxt_simd_best()
    elif name in names:
        i = names.index(name)
    else:
        raise ValueError(f"no kernel clone {name!r}: the clones are auto, {', '.join(names)}")
    if sqnxt_simd_select(i) != 0:
        raise ValueError(f"this CPU cannot run the {name} kernel clone; it runs "
                         f"{', '.join(k for k, ok in simd_clones().items() if ok)}")
    _clone = names[i]


_clone = None
set_simd("auto")
if os.environ.get("SQNXT_SIMD", "auto") not in ("", "auto"):
    try:
        set_simd(os.environ["SQNXT_SIMD"])
    except ValueError as e:  # a bad value must not stop every import of the package
        warnings.warn(f"SQNXT_SIMD ignored, using {_clone}: {e}", RuntimeWarning)


cdef inline void _clamp_row(real* y, Py_ssize_t n, real b, real lo, real hi) noexcept nogil:
    """y = min(max(y + b, lo), hi) over a row."""
    if real is float:
        sqnxt_clamp_f32(y, n, b, lo, hi)
    else:
        sqnxt_clamp_f64(y, n, b, lo, hi)


cdef inline void _crop_clamp(real* dst, Py_ssize_t ds, const real* src, Py_ssize_t ss, Py_ssize_t rows,
                             Py_ssize_t n, real b, real lo, real hi) noexcept nogil:
    """dst rows (ds apart) = clamp(src rows (ss apart, the first n of each) + b, lo, hi)."""
    if real is float:
        sqnxt_crop_f32(dst, ds, src, ss, rows, n, b, lo, hi)
    else:
        sqnxt_crop_f64(dst, ds, src, ss, rows, n, b, lo, hi)


cdef inline void _taps(real* dst, const real* base, const Py_ssize_t* offs, const real* w,
                       Py_ssize_t ntaps, Py_ssize_t n) noexcept nogil:
    """dst[q] = sum over t of w[t] * base[offs[t] + q], for q < n."""
    if real is float:
        sqnxt_taps_f32(dst, base, offs, w, ntaps, n)
    else:
        sqnxt_taps_f64(dst, base, offs, w, ntaps, n)


cdef inline void _gather(real* dst, const real* src, Py_ssize_t stride, Py_ssize_t n) noexcept nogil:
    """dst[k] = src[k * stride] for k < n."""
    if n <= 0:
        return
    if stride == 1:
        memcpy(dst, src, n * sizeof(real))
    elif real is float:
        sqnxt_gather_f32(dst, src, stride, n)
    else:
        sqnxt_gather_f64(dst, src, stride, n)


cdef inline void _wino_in_lanes(real* v, Py_ssize_t vs, const real* s, Py_ssize_t ps, Py_ssize_t ks,
                                Py_ssize_t n) noexcept nogil:
    if real is float:
        sqnxt_wino_in_lanes_f32(v, vs, s, ps, ks, n)
    else:
        sqnxt_wino_in_lanes_f64(v, vs, s, ps, ks, n)


cdef inline void _wino_in_run(real* v, Py_ssize_t vs, const real* s, Py_ssize_t n) noexcept nogil:
    if real is float:
        sqnxt_wino_in_run_f32(v, vs, s, n)
    else:
        sqnxt_wino_in_run_f64(v, vs, s, n)


cdef inline void _wino_out_lanes(real* d, Py_ssize_t js, const real* m, Py_ssize_t ms, Py_ssize_t n,
                                 real b, real lo, real hi) noexcept nogil:
    if real is float:
        sqnxt_wino_out_lanes_f32(d, js, m, ms, n, b, lo, hi)
    else:
        sqnxt_wino_out_lanes_f64(d, js, m, ms, n, b, lo, hi)


cdef inline void _wino_out_run(real* d, const real* m, Py_ssize_t ms, Py_ssize_t n, real b, real lo,
                               real hi) noexcept nogil:
    if real is float:
        sqnxt_wino_out_run_f32(d, m, ms, n, b, lo, hi)
    else:
        sqnxt_wino_out_run_f64(d, m, ms, n, b, lo, hi)


cdef inline void _pw(real* y, Py_ssize_t ys, Py_ssize_t ob, const real* x, Py_ssize_t xs, Py_ssize_t c,
                     Py_ssize_t n, const real* w, Py_ssize_t wr, const real* b, real lo, real hi) noexcept nogil:
    if real is float:
        sqnxt_pw_f32(y, ys, ob, x, xs, c, n, w, wr, b, lo, hi)
    else:
        sqnxt_pw_f64(y, ys, ob, x, xs, c, n, w, wr, b, lo, hi)


cdef inline void _phased(real* acc, Py_ssize_t acc_stride, Py_ssize_t nb, const real* base,
                         const Py_ssize_t* offs, const real* w, Py_ssize_t ntaps, Py_ssize_t n) noexcept nogil:
    if real is float:
        sqnxt_phased_f32(acc, acc_stride, nb, base, offs, w, ntaps, n)
    else:
        sqnxt_phased_f64(acc, acc_stride, nb, base, offs, w, ntaps, n)


cdef void _bias_clamp_planes(real* y, const real* bias, Py_ssize_t c, Py_ssize_t hw,
                             Py_ssize_t p0, Py_ssize_t p1, real lo, real hi) noexcept nogil:
    """Planes p0 <= p < p1 of (N*C, HW): y = clamp(y + bias[p % c], lo, hi); bias may be NULL."""
    cdef Py_ssize_t p
    for p in range(p0, p1):
        _clamp_row(y + p * hw, hw, bias[p % c] if bias != NULL else 0, lo, hi)


cdef void _bias_clamp_crop_planes(const real* src, Py_ssize_t src_w, real* out, Py_ssize_t out_row,
                                  const real* bias, Py_ssize_t c, Py_ssize_t ho, Py_ssize_t wo,
                                  Py_ssize_t src_plane, Py_ssize_t out_plane, Py_ssize_t p0,
                                  Py_ssize_t p1, real lo, real hi) noexcept nogil:
    """Planes p0 <= p < p1: out rows (wo wide, out_row apart) = clamp(src rows (src_w apart) +
    bias[p % c], lo, hi); a plane starts src_plane / out_plane elements after the previous."""
    cdef Py_ssize_t p
    for p in range(p0, p1):
        _crop_clamp(out + p * out_plane, out_row, src + p * src_plane, src_w, ho, wo,
                    bias[p % c] if bias != NULL else 0, lo, hi)


cdef void _mean_planes(const real* x, real* out, Py_ssize_t size, Py_ssize_t p0,
                       Py_ssize_t p1) noexcept nogil:
    """Planes p0 <= p < p1 of plane_means()."""
    cdef Py_ssize_t p, i
    cdef const real* row
    cdef double a0, a1, a2, a3
    for p in range(p0, p1):
        row = x + p * size
        a0 = a1 = a2 = a3 = 0
        i = 0
        while i + 4 <= size:
            a0 += row[i]
            a1 += row[i + 1]
            a2 += row[i + 2]
            a3 += row[i + 3]
            i += 4
        while i < size:
            a0 += row[i]
            i += 1
        out[p] = <real>(((a0 + a1) + (a2 + a3)) / size)


def plane_means(real[:, ::1] x, real[::1] out):
    """out[p] = the mean of row p of x (P, S): summed in double (four running sums, elements
    i, i+1, i+2, i+3 in turn, then (s0 + s1) + (s2 + s3)), divided by S, rounded once to x's
    type. A global average pool's planes, with one summation order for every caller (the
    step-by-step pass and the compiled one give the same bits) and an error far below float32's
    rounding: NumPy's own mean sums float32 in float32."""
    cdef Py_ssize_t p = x.shape[0], size = x.shape[1]
    cdef int t, nt = <int>min(_threads, max(p, 1))
    if out.shape[0] != p:
        raise ValueError("out must have one element per row of x")
    if p == 0:
        return
    if size == 0:
        raise ValueError("the mean of an empty plane")
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        _mean_planes(&x[0, 0], &out[0], size, _share(p, t, nt), _share(p, t + 1, nt))


cdef inline Py_ssize_t _share(Py_ssize_t total, int part, int parts) noexcept nogil:
    """The first of `part`'s share of range(total) split into `parts` contiguous shares."""
    return total * part // parts


def bias_clamp(real[:, :, ::1] y, real[::1] bias, double lo, double hi):
    """In place on (N, C, HW): y = clamp(y + bias[c], lo, hi); bias may be None (zero)."""
    cdef Py_ssize_t n = y.shape[0], c = y.shape[1], hw = y.shape[2], nc = n * c
    cdef real* base = &y[0, 0, 0] if y.size else NULL
    cdef real* b = &bias[0] if bias is not None else NULL
    cdef int t, nt = <int>min(_threads, max(nc, 1))
    if nc * hw == 0:
        return
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        _bias_clamp_planes(base, b, c, hw, _share(nc, t, nt), _share(nc, t + 1, nt), <real>lo, <real>hi)


def bias_clamp_crop(real[:, :, :, ::1] src, real[:, :, :, :] out, real[::1] bias, double lo, double hi):
    """out[n, c, y, x] = clamp(src[n, c, y, x] + bias[c], lo, hi) for x < out's width: src may be
    wider (spare columns), and out may be a band of rows of a larger array (only its rows need
    be contiguous)."""
    cdef Py_ssize_t n = out.shape[0], c = out.shape[1], ho = out.shape[2], wo = out.shape[3], nc = n * c
    cdef real* b = &bias[0] if bias is not None else NULL
    cdef int t, nt = <int>min(_threads, max(nc, 1))
    if nc * ho * wo == 0:
        return
    if src.shape[0] != n or src.shape[1] != c or src.shape[2] != ho or src.shape[3] < wo:
        raise ValueError("src does not cover out")
    if out.strides[3] != sizeof(real) or (n > 1 and out.strides[0] != c * out.strides[1]):
        raise ValueError("out's rows must be contiguous, its images one plane stride apart")
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        _bias_clamp_crop_planes(&src[0, 0, 0, 0], src.shape[3], &out[0, 0, 0, 0], out.strides[2] // sizeof(real),
                                b, c, ho, wo, ho * src.shape[3], out.strides[1] // sizeof(real),
                                _share(nc, t, nt), _share(nc, t + 1, nt), <real>lo, <real>hi)


cdef struct dw_geom:
    # a depthwise convolution's geometry (depthwise(), below): sizes, stride, dilation, padding,
    # and the phase planes' row length wq, their size `plane`, the run of ho*wq outputs padded to
    # whole vector blocks, and the scratch one thread needs (phase planes, slack, accumulator)
    Py_ssize_t c, h, w, kh, kw, ho, wo, sh, sw, dh, dw, pad_top, pad_left
    Py_ssize_t nph, wq, plane, run_blocks, slack, scratch
    # the interleaved form instead (_infer_simd.h's dwi): channels in the lanes; its geometry
    bint interleave
    Py_ssize_t geo[12]


cdef dw_geom _dw_geometry(Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh, Py_ssize_t kw,
                          Py_ssize_t ho, Py_ssize_t wo, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh,
                          Py_ssize_t dw, Py_ssize_t pad_top, Py_ssize_t pad_left,
                          bint interleave=False) noexcept nogil:
    cdef dw_geom g
    g.c, g.h, g.w, g.kh, g.kw, g.ho, g.wo = c, h, w, kh, kw, ho, wo
    g.sh, g.sw, g.dh, g.dw, g.pad_top, g.pad_left = sh, sw, dh, dw, pad_top, pad_left
    g.interleave = interleave
    g.geo[0], g.geo[1], g.geo[2], g.geo[3], g.geo[4], g.geo[5] = h, w, kh, kw, sh, sw
    g.geo[6], g.geo[7], g.geo[8], g.geo[9], g.geo[10], g.geo[11] = dh, dw, pad_top, pad_left, ho, wo
    g.nph = sh * sw
    # every tap of every output and every input element lands inside the phase planes; the +1
    # row takes the last run's overhang
    g.wq = max(wo + ((kw - 1) * dw) // sw, (pad_left + w + sw - 1) // sw)
    cdef Py_ssize_t hq = max(ho + ((kh - 1) * dh) // sh, (pad_top + h + sh - 1) // sh) + 1
    g.plane = hq * g.wq
    cdef Py_ssize_t run = ho * g.wq
    # the taps run over whole vector blocks (_infer_simd.h); spare outputs past run read the slack
    g.run_blocks = (run + SQNXT_BLOCK_FLOATS - 1) // SQNXT_BLOCK_FLOATS * SQNXT_BLOCK_FLOATS
    g.slack = g.run_blocks - run
    g.scratch = g.nph * g.plane + g.slack + g.run_blocks
    if interleave:
        g.scratch = SQNXT_DWI_SCRATCH(h * w, ho * wo, kh * kw)
    return g


cdef void _dw_offsets(const dw_geom* g, Py_ssize_t* offs) noexcept nogil:
    """offs[i*kw + j]: where tap (i, j)'s run starts in the phase planes."""
    cdef Py_ssize_t i, j
    for i in range(g.kh):
        for j in range(g.kw):
            offs[i * g.kw + j] = (((i * g.dh) % g.sh) * g.sw + (j * g.dw) % g.sw) * g.plane \
                + ((i * g.dh) // g.sh) * g.wq + (j * g.dw) // g.sw


cdef void _fill_phases(const dw_geom* g, const real* src, real* phases) noexcept nogil:
    """The sh*sw phase planes of one input plane src (h x w) at `phases` (depthwise(), below);
    the border they leave is not written (the caller zeroes it once)."""
    cdef Py_ssize_t r, ix, px, yy
    cdef Py_ssize_t w = g.w, sh = g.sh, sw = g.sw, plane = g.plane, pad_left = g.pad_left
    cdef real* row
    for r in range(g.h):
        yy = r + g.pad_top
        row = phases + (yy % sh) * sw * plane + (yy // sh) * g.wq
        if sw == 1:
            memcpy(row + pad_left, src + r * w, w * sizeof(real))
        else:
            for px in range(sw):  # the columns ix with (ix + pad_left) % sw == px
                ix = (px - pad_left % sw + sw) % sw
                _gather(row + px * plane + (ix + pad_left) // sw, src + r * w + ix, sw,
                        (w - ix + sw - 1) // sw)


cdef void _depthwise_planes(const dw_geom* g, const real* x, const real* weight, const real* bias,
                            real* out, const Py_ssize_t* offs, real* phases, Py_ssize_t p0,
                            Py_ssize_t p1, real lo, real hi) noexcept nogil:
    """Planes p0 <= p < p1 (image p // c, channel p % c) of depthwise(); `phases` holds
    g.scratch elements of this thread's own."""
    cdef Py_ssize_t p, ch, wq = g.wq, ho = g.ho, wo = g.wo
    cdef real* acc = phases + g.nph * g.plane + g.slack
    cdef Py_ssize_t count
    if g.interleave:  # a run of channels of one image at a time
        p = p0
        while p < p1:
            count = min(p1 - p, g.c - p % g.c)
            if real is float:
                sqnxt_dwi_f32(out + p * ho * wo, x + p * g.h * g.w, weight + (p % g.c) * g.kh * g.kw,
                              bias + p % g.c if bias != NULL else NULL, count, g.geo, lo, hi, phases)
            else:
                sqnxt_dwi_f64(out + p * ho * wo, x + p * g.h * g.w, weight + (p % g.c) * g.kh * g.kw,
                              bias + p % g.c if bias != NULL else NULL, count, g.geo, lo, hi, phases)
            p += count
        return
    # every plane fills the same positions, so what is zero (the border) stays zero
    memset(phases, 0, g.scratch * sizeof(real))
    for p in range(p0, p1):
        ch = p % g.c
        _fill_phases(g, x + p * g.h * g.w, phases)
        _taps(acc, phases, offs, weight + ch * g.kh * g.kw, g.kh * g.kw, g.run_blocks)
        _crop_clamp(out + p * ho * wo, wo, acc, wq, ho, wo, bias[ch] if bias != NULL else 0, lo, hi)


def depthwise(real[:, :, :, ::1] x, real[:, :, ::1] weight, real[::1] bias, real[:, :, :, ::1] out,
              int sh, int sw, int dh, int dw, int pad_top, int pad_left, double lo, double hi,
              bint interleave=False):
    """out[n, c] = clamp(bias[c] + sum_ij weight[c, i, j] * x[n, c, y*sh - pad_top + i*dh,
    x*sw - pad_left + j*dw], lo, hi), zero outside x.

    Each plane is copied, zero-bordered, into sh*sw phase planes of row length wq: phase (py, px)
    holds the padded plane's rows py, py + sh, ... and columns px, px + sw, ... (one plane at
    stride 1). Output (r, q) of tap (i, j) then reads phase ((i*dh) % sh, (j*dw) % sw) at row
    r + (i*dh) // sh, column q + (j*dw) // sw, so each tap is one contiguous run of ho*wq elements
    at a fixed offset, strided or not (the flat trick of ConvPlan, with wq - wo spare columns per
    row that the epilogue drops). No loop tests bounds, the runs are long and vectorisable even
    on 7x7 planes, and the taps are summed in registers (_infer_simd.h).

    interleave=True computes the same sums with the channels in the vector lanes instead (a
    block of channels copied into [row][column][channel], one vector load per tap and output
    pixel, _infer_simd.h's dwi): no spare columns or padded runs and no per-row calls, which on
    small and strided planes cost more than the taps (ConvPlan.depthwise_interleaves)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], nc = n * c
    cdef dw_geom g = _dw_geometry(c, x.shape[2], x.shape[3], weight.shape[1], weight.shape[2],
                                  out.shape[2], out.shape[3], sh, sw, dh, dw, pad_top, pad_left, interleave)
    cdef real* b = &bias[0] if bias is not None else NULL
    cdef Py_ssize_t* offs
    cdef real* phases
    cdef int t, nt = <int>min(_threads, max(nc, 1))
    if nc * g.ho * g.wo == 0:
        return
    offs = <Py_ssize_t*> malloc(g.kh * g.kw * sizeof(Py_ssize_t))
    if offs == NULL:
        raise MemoryError()
    _dw_offsets(&g, offs)
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        phases = <real*> malloc(g.scratch * sizeof(real))
        if phases != NULL:  # out of memory: practically unreachable (a few KB per thread)
            _depthwise_planes(&g, &x[0, 0, 0, 0], &weight[0, 0, 0], b, &out[0, 0, 0, 0], offs, phases,
                              _share(nc, t, nt), _share(nc, t + 1, nt), <real>lo, <real>hi)
            free(phases)
    free(offs)


cdef struct ph_geom:
    # a phased convolution's geometry (phased_conv, below): each input channel's phase planes as
    # a depthwise convolution's (g), c of them one after the other; output channels in nb blocks
    # of SQNXT_PH_OB; output rows per band and a band's run padded to whole SQNXT_PH_RUN; the
    # scratch one thread needs (the phase planes, the runs' overhang, a band's sums)
    dw_geom g
    Py_ssize_t c, o, nb, planes, rows, band_run, scratch


# About this many outputs per channel are summed per band: a band's sums (O x band) stay in L2
# while the epilogue copies them out, and the kernel's last block past the band's outputs is a few
# percent of it.
cdef Py_ssize_t PH_BAND_OUTPUTS = 1024


cdef ph_geom _ph_geometry(Py_ssize_t c, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh, Py_ssize_t kw,
                          Py_ssize_t ho, Py_ssize_t wo, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh,
                          Py_ssize_t dw, Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t o) noexcept nogil:
    cdef ph_geom pg
    pg.g = _dw_geometry(c, h, w, kh, kw, ho, wo, sh, sw, dh, dw, pad_top, pad_left)
    pg.c, pg.o = c, o
    pg.nb = (o + SQNXT_PH_OB - 1) // SQNXT_PH_OB
    pg.planes = c * pg.g.nph * pg.g.plane
    pg.rows = max(1, min(ho, PH_BAND_OUTPUTS // pg.g.wq))
    pg.band_run = (pg.rows * pg.g.wq + SQNXT_PH_RUN - 1) // SQNXT_PH_RUN * SQNXT_PH_RUN
    # a band's run ends at most SQNXT_PH_RUN - 1 past its last output, and the last tap's run of
    # the last band inside the last phase plane (its spare row): that much slack after the planes
    pg.scratch = pg.planes + SQNXT_PH_RUN + pg.nb * SQNXT_PH_OB * pg.band_run
    return pg


cdef void _ph_offsets(const ph_geom* pg, Py_ssize_t* offs) noexcept nogil:
    """offs[(ci*kh + i)*kw + j]: where tap (i, j) of input channel ci starts in the phase planes."""
    cdef Py_ssize_t ci, t, k = pg.g.kh * pg.g.kw
    _dw_offsets(&pg.g, offs)
    for ci in range(1, pg.c):
        for t in range(k):
            offs[ci * k + t] = offs[t] + ci * pg.g.nph * pg.g.plane


cdef inline void _phased_image(const ph_geom* pg, const real* x, Py_ssize_t i,
                               real* scratch) noexcept nogil:
    """Image i's input channels into the phase planes at the start of `scratch` (their border
    and slack, zeroed once per thread, stay zero: every image fills the same positions)."""
    cdef Py_ssize_t ci
    for ci in range(pg.c):
        _fill_phases(&pg.g, x + (i * pg.c + ci) * pg.g.h * pg.g.w,
                     scratch + ci * pg.g.nph * pg.g.plane)


cdef inline void _phased_band(const ph_geom* pg, const real* w, const real* bias,
                              const Py_ssize_t* offs, real* scratch, Py_ssize_t r0,
                              Py_ssize_t rows, real* dst, Py_ssize_t dst_channel, real lo,
                              real hi) noexcept nogil:
    """Output rows r0 <= r < r0 + rows of every channel from the phase planes in `scratch`: the
    band's sums (the kernel stops at the band's last output; the rows of the sums are its run
    rounded to SQNXT_PH_RUN apart), then with the bias and clamp into dst + ch * dst_channel,
    rows wo wide, without the spare columns."""
    cdef const dw_geom* g = &pg.g
    cdef real* acc = scratch + pg.planes + SQNXT_PH_RUN
    cdef Py_ssize_t ch, run = (rows * g.wq + SQNXT_PH_RUN - 1) // SQNXT_PH_RUN * SQNXT_PH_RUN
    _phased(acc, run, pg.nb, scratch + r0 * g.wq, offs, w, pg.c * g.kh * g.kw, rows * g.wq)
    for ch in range(pg.o):
        _crop_clamp(dst + ch * dst_channel, g.wo, acc + ch * run, g.wq, rows, g.wo,
                    bias[ch] if bias != NULL else 0, lo, hi)


cdef void _phased_rows(const ph_geom* pg, const real* x, const real* w, const real* bias, real* out,
                       const Py_ssize_t* offs, real* scratch, Py_ssize_t u0, Py_ssize_t u1, real lo,
                       real hi) noexcept nogil:
    """Output rows u0 <= u < u1 (image u // ho, row u % ho) of phased_conv(); `scratch` holds
    pg.scratch elements of this thread's own."""
    cdef Py_ssize_t u, i, r0, rows, image = -1
    cdef Py_ssize_t ho = pg.g.ho, wo = pg.g.wo, o = pg.o
    memset(scratch, 0, (pg.planes + SQNXT_PH_RUN) * sizeof(real))
    u = u0
    while u < u1:
        i, r0 = u // ho, u % ho
        if i != image:
            _phased_image(pg, x, i, scratch)
            image = i
        rows = min(pg.rows, ho - r0, u1 - u)
        _phased_band(pg, w, bias, offs, scratch, r0, rows, out + (i * o * ho + r0) * wo, ho * wo,
                     lo, hi)
        u += rows


cdef int _check_phased(const ph_geom* pg, real[:, :, ::1] weight, real[::1] bias,
                       real[:, :, :, ::1] out, Py_ssize_t n, str out_shape) except -1:
    """phased_conv's and phased_pool's arguments against their geometry: a ValueError naming the
    shapes expected, `out_shape` the output's."""
    if weight.shape[0] != pg.nb or weight.shape[1] != pg.c * pg.g.kh * pg.g.kw \
            or weight.shape[2] != SQNXT_PH_OB or out.shape[0] != n or out.shape[1] != pg.o \
            or (bias is not None and bias.shape[0] != pg.o):
        raise ValueError("shapes disagree: x (N, C, H, W), weight (ceil(O / 8), C*kh*kw, 8), "
                         f"bias (O,), {out_shape}")
    return 0


cdef Py_ssize_t* _phased_offsets(const ph_geom* pg) except NULL:
    """Each tap's run start in the phase planes (_ph_offsets), in memory the caller frees."""
    cdef Py_ssize_t* offs = <Py_ssize_t*> malloc(pg.c * pg.g.kh * pg.g.kw * sizeof(Py_ssize_t))
    if offs == NULL:
        raise MemoryError()
    _ph_offsets(pg, offs)
    return offs


cdef struct pool_geom:
    # a max pool over a phased convolution's output (phased_pool, below): its output size, window,
    # stride and padding, and the convolution's rows one thread holds (a band and the rows a
    # window still needs from the band before)
    Py_ssize_t ho, wo, kh, kw, sh, sw, top, left, held


cdef pool_geom _pool_geometry(const ph_geom* pg, Py_ssize_t ho, Py_ssize_t wo, Py_ssize_t kh,
                              Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t top,
                              Py_ssize_t left) noexcept nogil:
    cdef pool_geom q
    q.ho, q.wo, q.kh, q.kw, q.sh, q.sw, q.top, q.left = ho, wo, kh, kw, sh, sw, top, left
    q.held = pg.rows + kh
    return q


cdef inline Py_ssize_t _phased_pool_scratch(const ph_geom* pg, const pool_geom* q) noexcept nogil:
    """The scratch one thread of phased_pool needs: the convolution's, its held rows of every
    channel, a pooling row."""
    return pg.scratch + pg.o * q.held * pg.g.wo + _pool_row(q.wo, q.kw, q.sw)


cdef void _phased_pool_rows(const ph_geom* pg, const pool_geom* q, const real* x, const real* w,
                            const real* bias, real* out, const Py_ssize_t* offs, real* scratch,
                            Py_ssize_t u0, Py_ssize_t u1, real lo, real hi) noexcept nogil:
    """Pooled rows u0 <= u < u1 (image u // q.ho, row u % q.ho) of phased_pool(): the rows of the
    convolution their windows cover are computed band by band (as _phased_rows computes them, so
    each value is the same) into `held`, each channel's rows [have_lo, have_hi) of width wo, and a
    pooled row is taken from them as soon as its window's rows are there (as _max_pool_planes
    takes it from the whole output). Rows below the next window's first are dropped before a band
    is added, so held never holds more than a band and a window's rows. A window overlapping two
    threads' shares has its rows computed by both."""
    cdef Py_ssize_t ho = pg.g.ho, wo = pg.g.wo, o = pg.o, held_rows = q.held
    cdef real* held = scratch + pg.scratch
    cdef real* row = held + o * held_rows * wo
    cdef Py_ssize_t u, i, pr, y0, y1, have_lo = 0, have_hi = 0, rows, ch, keep, first
    cdef Py_ssize_t image = -1
    memset(scratch, 0, (pg.planes + SQNXT_PH_RUN) * sizeof(real))
    _pool_row_border(row, q.wo, q.kw, q.sw)
    u = u0
    while u < u1:
        i, pr = u // q.ho, u % q.ho
        if i != image:
            _phased_image(pg, x, i, scratch)
            image = i
            have_lo = have_hi = 0   # nothing of this image held yet
        _window(pr, q.sh, q.top, q.kh, ho, &y0, &y1)
        if y1 > y0 and y1 > have_hi:   # a band more: drop the rows no window from here on needs
            keep = max(0, have_hi - max(y0, have_lo))
            if keep > 0 and y0 > have_lo:
                for ch in range(o):
                    memmove(held + ch * held_rows * wo, held + (ch * held_rows + y0 - have_lo) * wo,
                            keep * wo * sizeof(real))
            have_lo = have_hi - keep if keep > 0 else max(y0, have_hi)
            have_hi = have_lo + keep
            rows = min(pg.rows, ho - have_hi)
            _phased_band(pg, w, bias, offs, scratch, have_hi, rows, held + (have_hi - have_lo) * wo,
                         held_rows * wo, lo, hi)
            have_hi += rows
            continue
        first = y0 - have_lo if y1 > y0 else 0   # an empty window reads nothing
        for ch in range(o):
            _pool_out_row(out + ((i * o + ch) * q.ho + pr) * q.wo, held + (ch * held_rows + first) * wo,
                          wo, y1 - y0, row, q.wo, q.kw, q.sw, q.left)
        u += 1


def phased_pool(real[:, :, :, ::1] x, real[:, :, ::1] weight, real[::1] bias, real[:, :, :, ::1] out,
                int kh, int kw, int sh, int sw, int dh, int dw, int pad_top, int pad_left,
                Py_ssize_t ho, Py_ssize_t wo, double lo, double hi, int pool_kh, int pool_kw,
                int pool_sh, int pool_sw, int pool_top, int pool_left):
    """max_pool(phased_conv(x, ...), pool_kh, pool_kw, pool_sh, pool_sw, pool_top, pool_left)
    into out (N, O, pooled rows, pooled columns), bit for bit, without the convolution's output:
    its rows are computed band by band into a per-thread buffer (a band and a window's rows of
    every channel, in L2) and pooled from there (_phased_pool_rows). ho, wo: the convolution's
    output size. A stem's output, the largest activation of a network, then never goes to memory
    and back: the compiled pass fuses a max pool into the phased convolution it reads
    (runtime.runner.CompiledPass)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], o = out.shape[1]
    cdef ph_geom pg = _ph_geometry(c, x.shape[2], x.shape[3], kh, kw, ho, wo, sh, sw, dh, dw,
                                   pad_top, pad_left, o)
    cdef pool_geom q = _pool_geometry(&pg, out.shape[2], out.shape[3], pool_kh, pool_kw, pool_sh,
                                      pool_sw, pool_top, pool_left)
    cdef real* b = &bias[0] if bias is not None else NULL
    cdef Py_ssize_t units = n * q.ho
    cdef Py_ssize_t* offs
    cdef real* scratch
    cdef int t, nt = <int>min(_threads, max(units, 1))
    _check_phased(&pg, weight, bias, out, n, "out (N, O, pooled rows, pooled columns)")
    if units * q.wo * o == 0 or ho * wo == 0:
        return
    offs = _phased_offsets(&pg)
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        scratch = <real*> malloc(_phased_pool_scratch(&pg, &q) * sizeof(real))
        if scratch != NULL:  # out of memory: practically unreachable (about a MB per thread)
            _phased_pool_rows(&pg, &q, &x[0, 0, 0, 0], &weight[0, 0, 0], b, &out[0, 0, 0, 0], offs,
                              scratch, _share(units, t, nt), _share(units, t + 1, nt), <real>lo, <real>hi)
            free(scratch)
    free(offs)


def phased_conv(real[:, :, :, ::1] x, real[:, :, ::1] weight, real[::1] bias, real[:, :, :, ::1] out,
                int kh, int kw, int sh, int sw, int dh, int dw, int pad_top, int pad_left, double lo,
                double hi):
    """out[n, o] = clamp(bias[o] + sum over c, i, j of w[o, c, i, j] * x[n, c, y*sh - pad_top +
    i*dh, x*sw - pad_left + j*dw], lo, hi), zero outside x, one group; `weight` is w packed by
    phased_weights: (ceil(O / SQNXT_PH_OB), C*kh*kw, SQNXT_PH_OB).

    A convolution with few input channels (a stem) without im2col: each input channel is split
    into phase planes as depthwise() splits it, so that tap (c, i, j) of a band of output rows is
    one contiguous run, and the compiled kernel (_infer_simd.h) sums the runs of every tap into
    a block of output channels in registers, loading each run once per block. The sums of a band
    of rows (about PH_BAND_OUTPUTS a channel, with wq - wo spare columns a row) are then copied
    into out with the bias and clamp. Each output sums its taps in the order (c, i, j), then adds
    the bias; the im2col scheme's BLAS product sums them in its own blocked order, so the two
    agree within rounding."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], o = out.shape[1]
    cdef ph_geom pg = _ph_geometry(c, x.shape[2], x.shape[3], kh, kw, out.shape[2], out.shape[3],
                                   sh, sw, dh, dw, pad_top, pad_left, o)
    cdef real* b = &bias[0] if bias is not None else NULL
    cdef Py_ssize_t units = n * out.shape[2]
    cdef Py_ssize_t* offs
    cdef real* scratch
    cdef int t, nt = <int>min(_threads, max(units, 1))
    _check_phased(&pg, weight, bias, out, n, "out (N, O, ho, wo)")
    if units * out.shape[3] * o == 0:
        return
    offs = _phased_offsets(&pg)
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        scratch = <real*> malloc(pg.scratch * sizeof(real))
        if scratch != NULL:  # out of memory: practically unreachable (about a MB per thread)
            _phased_rows(&pg, &x[0, 0, 0, 0], &weight[0, 0, 0], b, &out[0, 0, 0, 0], offs, scratch,
                         _share(units, t, nt), _share(units, t + 1, nt), <real>lo, <real>hi)
            free(scratch)
    free(offs)


def phased_weights(w, dtype):
    """Weights (O, C, kh, kw) packed for phased_conv: (ceil(O / SQNXT_PH_OB), C*kh*kw,
    SQNXT_PH_OB), block b's column k the weights of outputs 8b .. 8b + 7 at tap k, zero past O."""
    import numpy as np
    o, k = w.shape[0], w.shape[1] * w.shape[2] * w.shape[3]
    nb = (o + SQNXT_PH_OB - 1) // SQNXT_PH_OB
    packed = np.zeros((nb * SQNXT_PH_OB, k), dtype=dtype)
    packed[:o] = np.asarray(w, dtype=dtype).reshape(o, k)
    return np.ascontiguousarray(packed.reshape(nb, SQNXT_PH_OB, k).transpose(0, 2, 1))


cdef void _flat_planes(const real* x, real* cols, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh,
                       Py_ssize_t kw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t pad_top,
                       Py_ssize_t pad_left, Py_ssize_t wp, Py_ssize_t run, real* plane,
                       Py_ssize_t size, Py_ssize_t p0, Py_ssize_t p1) noexcept nogil:
    """Planes p0 <= p < p1 of flat_columns(); `plane` holds `size` elements of this thread's own."""
    cdef Py_ssize_t p, r, i, j
    cdef real* dst
    memset(plane, 0, size * sizeof(real))  # every plane fills the same positions
    for p in range(p0, p1):
        for r in range(h):
            memcpy(plane + (pad_top + r) * wp + pad_left, x + (p * h + r) * w, w * sizeof(real))
        dst = cols + p * kh * kw * run
        for i in range(kh):
            for j in range(kw):
                memcpy(dst + (i * kw + j) * run, plane + i * dh * wp + j * dw, run * sizeof(real))


cdef inline Py_ssize_t _flat_scratch(Py_ssize_t h, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t dh,
                                     Py_ssize_t dw, Py_ssize_t pad_top, Py_ssize_t wp,
                                     Py_ssize_t run) noexcept nogil:
    """The scratch plane flat_columns needs: every position a tap's run reads."""
    return max((kh - 1) * dh * wp + (kw - 1) * dw + run, (pad_top + h) * wp)


def flat_columns(real[:, :, :, ::1] x, real[:, :, :, ::1] cols, int kh, int kw, int dh, int dw,
                 int pad_top, int pad_left, Py_ssize_t wp):
    """ConvPlan's flat scheme's gather in one pass: cols[n, c, i*kw + j, q] = the zero-padded
    plane of x[n, c] (pad_top rows above, pad_left columns left, row length wp, zero below and
    right as far as needed), flattened, at position i*dh*wp + j*dw + q, for q < cols.shape[3].
    Each plane is padded once into a per-thread scratch plane, then every tap is one block copy:
    what NumPy did as a padded copy and kh*kw slice assignments, without the Python calls."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3], nc = n * c
    cdef Py_ssize_t run = cols.shape[3]
    cdef Py_ssize_t size = _flat_scratch(h, kh, kw, dh, dw, pad_top, wp, run)
    cdef real* plane
    cdef int t, nt = <int>min(_threads, max(nc, 1))
    if cols.shape[0] != n or cols.shape[1] != c or cols.shape[2] != kh * kw:
        raise ValueError("cols must be (N, C, kh*kw, run) for x (N, C, H, W)")
    if pad_left + w > wp or pad_top < 0 or pad_left < 0:
        raise ValueError("the padded row length does not hold a row")
    if nc * run == 0:
        return
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        plane = <real*> malloc(size * sizeof(real))
        if plane != NULL:  # out of memory: practically unreachable (one plane per thread)
            _flat_planes(&x[0, 0, 0, 0], &cols[0, 0, 0, 0], h, w, kh, kw, dh, dw, pad_top, pad_left,
                         wp, run, plane, size, _share(nc, t, nt), _share(nc, t + 1, nt))
            free(plane)


cdef void _im2col_planes(const real* x, real* cols, Py_ssize_t h, Py_ssize_t w, Py_ssize_t kh,
                         Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t dh, Py_ssize_t dw,
                         Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t r0, Py_ssize_t rows,
                         Py_ssize_t wo, Py_ssize_t p0, Py_ssize_t p1) noexcept nogil:
    """Planes p0 <= p < p1 of im2col(): cols[p, i, j, r, q] = x[p, (r0 + r)*sh - pad_top + i*dh,
    q*sw - pad_left + j*dw], zero outside x, for r < rows, q < wo."""
    cdef Py_ssize_t p, i, j, r, iy, x0, q0, q1
    cdef const real* src
    cdef real* dst
    for p in range(p0, p1):
        src = x + p * h * w
        dst = cols + p * kh * kw * rows * wo
        for i in range(kh):
            for j in range(kw):
                x0 = j * dw - pad_left  # input column of output column 0
                # the output columns whose input column lies inside x: q0 <= q < q1
                q0 = 0 if x0 >= 0 else min(wo, (-x0 + sw - 1) // sw)
                q1 = 0 if x0 >= w else min(wo, (w - 1 - x0) // sw + 1)
                q1 = max(q0, q1)
                for r in range(rows):
                    iy = (r0 + r) * sh - pad_top + i * dh
                    if iy < 0 or iy >= h:
                        memset(dst, 0, wo * sizeof(real))
                    else:
                        memset(dst, 0, q0 * sizeof(real))
                        _gather(dst + q0, src + iy * w + x0 + q0 * sw, sw, q1 - q0)
                        memset(dst + q1, 0, (wo - q1) * sizeof(real))
                    dst += wo


def im2col(real[:, :, :, ::1] x, real[:, :, :, :, :, ::1] cols, int sh, int sw, int dh, int dw,
           int pad_top, int pad_left, Py_ssize_t r0):
    """cols[n, c, i, j, r, q] = x[n, c, (r0 + r)*sh - pad_top + i*dh, q*sw - pad_left + j*dw],
    zero outside x: the taps of output rows r0 .. r0 + rows - 1 of a strided convolution
    (ConvPlan's im2col scheme, and a padded or strided 1x1 kernel's input), laid out as
    NumPy's reshape of its strided view lays them out."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], nc = n * c
    cdef int t, nt = <int>min(_threads, max(nc, 1))
    if cols.shape[0] != n or cols.shape[1] != c:
        raise ValueError("cols must be (N, C, kh, kw, rows, wo) for x (N, C, H, W)")
    if nc * cols.shape[2] * cols.shape[3] * cols.shape[4] * cols.shape[5] == 0:
        return
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        _im2col_planes(&x[0, 0, 0, 0], &cols[0, 0, 0, 0, 0, 0], x.shape[2], x.shape[3], cols.shape[2],
                       cols.shape[3], sh, sw, dh, dw, pad_top, pad_left, r0, cols.shape[4],
                       cols.shape[5], _share(nc, t, nt), _share(nc, t + 1, nt))


cdef inline Py_ssize_t _pool_row(Py_ssize_t wo, Py_ssize_t kw, Py_ssize_t sw) noexcept nogil:
    """The scratch row max_pool() needs: every column the windows of one output row cover."""
    return (wo - 1) * sw + kw


cdef void _max_pool_planes(const real* x, real* out, Py_ssize_t h, Py_ssize_t w, Py_ssize_t ho,
                           Py_ssize_t wo, Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                           Py_ssize_t pad_top, Py_ssize_t pad_left, real* row, Py_ssize_t p0,
                           Py_ssize_t p1) noexcept nogil:
    """Planes p0 <= p < p1 of max_pool(); `row` holds _pool_row(wo, kw, sw) elements of this
    thread's own: input column ix at row[pad_left + ix], -inf where no input column is."""
    cdef Py_ssize_t p, r, y0, y1
    _pool_row_border(row, wo, kw, sw)
    for p in range(p0, p1):
        for r in range(ho):
            _window(r, sh, pad_top, kh, h, &y0, &y1)
            _pool_out_row(out + (p * ho + r) * wo, x + (p * h + y0) * w, w, y1 - y0, row, wo, kw, sw,
                          pad_left)


cdef inline void _pool_row_border(real* row, Py_ssize_t wo, Py_ssize_t kw, Py_ssize_t sw) noexcept nogil:
    """-inf in the scratch row's columns that no input column fills (_pool_out_row writes only
    [left, left + cols)): done once per thread."""
    cdef Py_ssize_t ix
    for ix in range(_pool_row(wo, kw, sw)):
        row[ix] = -INFINITY


cdef inline void _pool_out_row(real* dst, const real* src, Py_ssize_t w, Py_ssize_t rows, real* row,
                               Py_ssize_t wo, Py_ssize_t kw, Py_ssize_t sw,
                               Py_ssize_t pad_left) noexcept nogil:
    """One output row of max_pool(): the max over `rows` input rows from src (w wide, one after
    the other; the window's rows inside the input), then over each window's columns; -inf where
    the window holds no input. `row` is the thread's scratch row, bordered by _pool_row_border:
    input column ix at row[pad_left + ix]."""
    cdef Py_ssize_t ix, length = _pool_row(wo, kw, sw)
    cdef Py_ssize_t left = min(pad_left, length), cols = max(0, min(w, length - pad_left))
    if rows <= 0 or cols == 0:
        for ix in range(wo):
            dst[ix] = -INFINITY
        return
    if real is float:
        sqnxt_maxrows_f32(row + left, src, w, rows, cols)
        sqnxt_maxcols_f32(dst, row, wo, kw, sw)
    else:
        sqnxt_maxrows_f64(row + left, src, w, rows, cols)
        sqnxt_maxcols_f64(dst, row, wo, kw, sw)


def max_pool(real[:, :, :, ::1] x, real[:, :, :, ::1] out, int kh, int kw, int sh, int sw,
             int pad_top, int pad_left):
    """out[n, c, y, q] = max of x[n, c, y*sh - pad_top + i, q*sw - pad_left + j] over the window's
    taps inside x (-inf when none is). Separable, as max_pool2d_reference: per output row, the
    elementwise max of the window's input rows (contiguous, vectorisable) into a scratch row
    bordered with -inf, then the max over each window's columns of that row (vectorised over the
    outputs, _infer_simd.h)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], nc = n * c
    cdef real* row
    cdef int t, nt = <int>min(_threads, max(nc, 1))
    if nc * out.shape[2] * out.shape[3] == 0:
        return
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        row = <real*> malloc(_pool_row(out.shape[3], kw, sw) * sizeof(real))
        if row != NULL:  # out of memory: practically unreachable (one row per thread)
            _max_pool_planes(&x[0, 0, 0, 0], &out[0, 0, 0, 0], x.shape[2], x.shape[3], out.shape[2],
                             out.shape[3], kh, kw, sh, sw, pad_top, pad_left, row,
                             _share(nc, t, nt), _share(nc, t + 1, nt))
            free(row)


cdef inline void _window(Py_ssize_t o, Py_ssize_t s, Py_ssize_t pad, Py_ssize_t k, Py_ssize_t size,
                         Py_ssize_t* first, Py_ssize_t* end) noexcept nogil:
    """The input range [first, end) of output o's window, clipped to [0, size)."""
    first[0] = o * s - pad
    end[0] = first[0] + k
    if first[0] < 0:
        first[0] = 0
    if end[0] > size:
        end[0] = size


cdef inline Py_ssize_t _wino_tiles(Py_ssize_t kh, Py_ssize_t hp, Py_ssize_t wp) noexcept nogil:
    return (hp - 2 + 3) // 4 if kh == 3 else (hp * wp + 3) // 4


cdef inline Py_ssize_t _wino_cols(Py_ssize_t kh, Py_ssize_t hp, Py_ssize_t wp) noexcept nogil:
    return _wino_tiles(kh, hp, wp) * (wp if kh == 3 else 1)


def winograd_tiles(int kh, Py_ssize_t hp, Py_ssize_t wp):
    """(tiles, columns) per plane of Winograd F(4,3) on a zero-padded plane of hp rows of wp: a
    3x1 kernel (kh 3) has tiles of 4 output rows, one per column, so ceil((hp - 2) / 4) tile rows
    of wp columns; a 1x3 kernel (kh 1) has tiles of 4 consecutive outputs along the flattened
    plane (the flat scheme's trick: wp - wo spare outputs per row), ceil(hp * wp / 4) of them,
    one column each."""
    return _wino_tiles(kh, hp, wp), _wino_cols(kh, hp, wp)


cdef inline Py_ssize_t _wino_in_scratch(Py_ssize_t kh, Py_ssize_t hp, Py_ssize_t wp) noexcept nogil:
    """The padded plane winograd_input needs per thread: kh 3, 4 phase planes of tiles + 1 rows
    (tap k of tile t is row t + k // 4 of phase k % 4); kh 1, every element a tile reads,
    4 * tiles + 2."""
    cdef Py_ssize_t tiles = _wino_tiles(kh, hp, wp)
    return 4 * (tiles + 1) * wp if kh == 3 else max(4 * tiles + 2, hp * wp)


cdef void _wino_in_planes(const real* x, real* v, Py_ssize_t n, Py_ssize_t c, Py_ssize_t h, Py_ssize_t w,
                          Py_ssize_t kh, Py_ssize_t pad_top, Py_ssize_t pad_left, Py_ssize_t hp,
                          Py_ssize_t wp, real* plane, Py_ssize_t p0, Py_ssize_t p1) noexcept nogil:
    """Planes p0 <= p < p1 (channel p // n, image p % n: v's column order) of winograd_input();
    `plane` holds _wino_in_scratch elements of this thread's own."""
    cdef Py_ssize_t tiles = _wino_tiles(kh, hp, wp), cols = _wino_cols(kh, hp, wp)
    cdef Py_ssize_t vs = c * n * cols, ps = (tiles + 1) * wp
    cdef Py_ssize_t p, r, yy
    cdef const real* src
    cdef real* dst
    memset(plane, 0, _wino_in_scratch(kh, hp, wp) * sizeof(real))  # every plane fills the same positions
    for p in range(p0, p1):
        src = x + ((p % n) * c + p // n) * h * w
        dst = v + p * cols
        if kh == 3:
            for r in range(h):
                yy = pad_top + r
                memcpy(plane + (yy % 4) * ps + (yy // 4) * wp + pad_left, src + r * w, w * sizeof(real))
            _wino_in_lanes(dst, vs, plane, ps, wp, cols)
        else:
            for r in range(h):
                memcpy(plane + (pad_top + r) * wp + pad_left, src + r * w, w * sizeof(real))
            _wino_in_run(dst, vs, plane, tiles)


def winograd_input(real[:, :, :, ::1] x, real[:, :, ::1] v, int kh, int pad_top, int pad_left,
                   Py_ssize_t hp, Py_ssize_t wp):
    """v[xi, c, n*cols + col] = (B^T d)[xi] for every tile (col) of every plane x[n, c]
    zero-padded to hp rows of wp (pad_top above, pad_left left), d the tile's 6 inputs along the
    kernel's axis (kh 3: down a column, kh 1: along the flattened padded plane); cols as
    winograd_tiles says. Each plane is padded once into a per-thread scratch plane (kh 3: its rows
    dealt into 4 phase planes by row mod 4, so that all of a plane's tiles are one run of lanes)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t nc = n * _wino_cols(kh, hp, wp)
    cdef real* plane
    cdef int t, nt = <int>min(_threads, max(n * c, 1))
    if v.shape[0] != 6 or v.shape[1] != c or v.shape[2] != nc:
        raise ValueError("v must be (6, C, N * columns) for x (N, C, H, W)")
    if kh not in (1, 3) or pad_top < 0 or pad_left < 0 or pad_top + h > hp or pad_left + w > wp:
        raise ValueError("kh must be 1 or 3 and the padded plane must hold x")
    if nc * c == 0:
        return
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        plane = <real*> malloc(_wino_in_scratch(kh, hp, wp) * sizeof(real))
        if plane != NULL:  # out of memory: practically unreachable (one plane per thread)
            _wino_in_planes(&x[0, 0, 0, 0], &v[0, 0, 0], n, c, h, w, kh, pad_top, pad_left, hp, wp, plane,
                            _share(n * c, t, nt), _share(n * c, t + 1, nt))
            free(plane)


cdef inline Py_ssize_t _wino_out_scratch(Py_ssize_t kh, Py_ssize_t ho, Py_ssize_t wp) noexcept nogil:
    """The rows winograd_output assembles per thread: 4 per tile (kh 1) or per column (kh 3)."""
    cdef Py_ssize_t hp = ho + 2 if kh == 3 else ho
    return 4 * (_wino_tiles(kh, hp, wp) if kh == 1 else _wino_cols(kh, hp, wp))


cdef void _wino_out_planes(const real* m, real* out, const real* bias, Py_ssize_t n, Py_ssize_t o,
                           Py_ssize_t ho, Py_ssize_t wo, Py_ssize_t kh, Py_ssize_t wp, real* scratch,
                           Py_ssize_t p0, Py_ssize_t p1, real lo, real hi) noexcept nogil:
    """Planes p0 <= p < p1 (channel p // n, image p % n: m's column order) of winograd_output();
    `scratch` holds _wino_out_scratch elements of this thread's own."""
    cdef Py_ssize_t hp = ho + 2 if kh == 3 else ho
    cdef Py_ssize_t tiles = _wino_tiles(kh, hp, wp), cols = _wino_cols(kh, hp, wp)
    cdef Py_ssize_t ms = o * n * cols
    cdef Py_ssize_t p, r
    cdef real bv
    cdef const real* src
    cdef real* dst
    for p in range(p0, p1):
        bv = bias[p // n] if bias != NULL else 0
        src = m + p * cols
        dst = out + ((p % n) * o + p // n) * ho * wo
        if kh == 3:  # into 4 phase planes (row j of every tile), then each row to its place
            _wino_out_lanes(scratch, cols, src, ms, cols, bv, lo, hi)
            for r in range(ho):
                memcpy(dst + r * wo, scratch + (r % 4) * cols + (r // 4) * wo, wo * sizeof(real))
        else:
            _wino_out_run(scratch, src, ms, tiles, bv, lo, hi)
            for r in range(ho):
                memcpy(dst + r * wo, scratch + r * wp, wo * sizeof(real))


def winograd_output(real[:, :, ::1] m, real[:, :, :, ::1] out, real[::1] bias, double lo, double hi,
                    int kh, Py_ssize_t wp):
    """out[n, o] = clamp(bias[o] + A^T m over each tile of plane (n, o), lo, hi): the inverse of
    winograd_input's layout for an output of ho rows of wo (kh 3: wo = wp, plane hp = ho + 2;
    kh 1: hp = ho, the wp - wo spare columns of each row dropped). m is (6, O, N*cols)."""
    cdef Py_ssize_t n = out.shape[0], o = out.shape[1], ho = out.shape[2], wo = out.shape[3]
    cdef Py_ssize_t nc = n * _wino_cols(kh, ho + 2 if kh == 3 else ho, wp)
    cdef real* b = &bias[0] if bias is not None else NULL
    cdef real* scratch
    cdef int t, nt = <int>min(_threads, max(n * o, 1))
    if m.shape[0] != 6 or m.shape[1] != o or m.shape[2] != nc:
        raise ValueError("m must be (6, O, N * columns) for out (N, O, ho, wo)")
    if kh not in (1, 3) or (kh == 3 and wo != wp) or (kh == 1 and wo > wp):
        raise ValueError("kh must be 1 or 3, and wo = wp (kh 3) or wo <= wp (kh 1)")
    if nc * o == 0 or ho * wo == 0:
        return
    for t in prange(nt, nogil=True, num_threads=nt, schedule="static", chunksize=1):
        scratch = <real*> malloc(_wino_out_scratch(kh, ho, wp) * sizeof(real))
        if scratch != NULL:  # out of memory: practically unreachable (a few rows per thread)
            _wino_out_planes(&m[0, 0, 0], &out[0, 0, 0, 0], b, n, o, ho, wo, kh, wp, scratch,
                             _share(n * o, t, nt), _share(n * o, t + 1, nt), <real>lo, <real>hi)
            free(scratch)


def pointwise(real[:, :, ::1] x, real[:, ::1] weight, real[::1] bias, real[:, :, ::1] y, double lo, double hi):
    """y[n, o, p] = clamp(bias[o] + sum_k weight[o, k] x[n, k, p], lo, hi) computed directly (a 1x1
    convolution, stride 1, one group): x (N, C, HW), weight (O, C), y (N, O, HW); bias (O,) or
    None. Output channels in register blocks of SQNXT_PW_OB (_infer_simd.h); the last, partial
    block reads its weights from a zero-padded copy."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], hw = x.shape[2], o = y.shape[1]
    cdef Py_ssize_t blocks = (o + SQNXT_PW_OB - 1) // SQNXT_PW_OB, full = o // SQNXT_PW_OB
    cdef Py_ssize_t p, i, blk
    cdef bint has_bias = bias is not None
    if y.shape[0] != n or y.shape[2] != hw or weight.shape[0] != o or weight.shape[1] != c \
            or (has_bias and bias.shape[0] != o):
        raise ValueError("shapes disagree: x (N, C, HW), weight (O, C), bias (O,), y (N, O, HW)")
    if n * o * hw == 0:
        return
    # the bias padded to whole blocks, then the last block's weights padded with zero rows
    cdef real* pad = <real*> calloc(blocks * SQNXT_PW_OB + SQNXT_PW_OB * c, sizeof(real))
    if pad == NULL:
        raise MemoryError()
    cdef real* tail = pad + blocks * SQNXT_PW_OB
    for i in range(o):
        pad[i] = bias[i] if has_bias else 0
        if i >= full * SQNXT_PW_OB:
            memcpy(tail + (i - full * SQNXT_PW_OB) * c, &weight[i, 0], c * sizeof(real))
    for p in prange(n * blocks, nogil=True, num_threads=_threads, schedule="static"):
        i = p // blocks
        blk = p % blocks
        _pw(&y[i, 0, 0] + blk * SQNXT_PW_OB * hw, hw, min(SQNXT_PW_OB, o - blk * SQNXT_PW_OB), &x[i, 0, 0], hw,
            c, hw, &weight[0, 0] + blk * SQNXT_PW_OB * c if blk < full else tail, c,
            pad + blk * SQNXT_PW_OB, <real>lo, <real>hi)
    free(pad)


# --- the compiled plan: a whole forward pass as one native call ---------------------------------

cdef extern from "_infer_pool.h" nogil:
    ctypedef void (*sqnxt_job_fn)(void* ctx, int tid, int nthreads) noexcept nogil
    int sqnxt_pool_try_run(sqnxt_job_fn fn, void* ctx, int nthreads)
    void sqnxt_barrier(int nthreads)

ctypedef long long blas64
# CBLAS's gemm and gemv with 64-bit (ILP64) or 32-bit integers; the enums are C ints either way
ctypedef void (*sgemm64_t)(int, int, int, blas64, blas64, blas64, float, const float*, blas64,
                           const float*, blas64, float, float*, blas64) noexcept nogil
ctypedef void (*dgemm64_t)(int, int, int, blas64, blas64, blas64, double, const double*, blas64,
                           const double*, blas64, double, double*, blas64) noexcept nogil
ctypedef void (*sgemv64_t)(int, int, blas64, blas64, float, const float*, blas64, const float*,
                           blas64, float, float*, blas64) noexcept nogil
ctypedef void (*dgemv64_t)(int, int, blas64, blas64, double, const double*, blas64, const double*,
                           blas64, double, double*, blas64) noexcept nogil
ctypedef void (*sgemm32_t)(int, int, int, int, int, int, float, const float*, int,
                           const float*, int, float, float*, int) noexcept nogil
ctypedef void (*dgemm32_t)(int, int, int, int, int, int, double, const double*, int,
                           const double*, int, double, double*, int) noexcept nogil
ctypedef void (*sgemv32_t)(int, int, int, int, float, const float*, int, const float*,
                           int, float, float*, int) noexcept nogil
ctypedef void (*dgemv32_t)(int, int, int, int, double, const double*, int, const double*,
                           int, double, double*, int) noexcept nogil

cpdef enum:  # CBLAS's
    ROW_MAJOR = 101
    COL_MAJOR = 102
    NO_TRANS = 111
    TRANS = 112

cdef void* _sgemm = NULL
cdef void* _dgemm = NULL
cdef void* _sgemv = NULL
cdef void* _dgemv = NULL
cdef bint _blas64 = False


def set_blas(size_t sgemm, size_t dgemm, size_t sgemv, size_t dgemv, bint ilp64):
    """The CBLAS entry points (addresses of cblas_sgemm, cblas_dgemm, cblas_sgemv, cblas_dgemv;
    ilp64: their integers are 64-bit) that plans call: NumPy's own BLAS (functional.blas finds
    them), so that a plan's products are NumPy's bit for bit."""
    global _sgemm, _dgemm, _sgemv, _dgemv, _blas64
    _sgemm, _dgemm, _sgemv, _dgemv = <void*>sgemm, <void*>dgemm, <void*>sgemv, <void*>dgemv
    _blas64 = ilp64


def has_blas():
    """Whether set_blas was given the entry points (plans need them)."""
    return _sgemm != NULL


cdef inline void _gemm(int ta, int tb, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const real* a,
                       Py_ssize_t lda, const real* b, Py_ssize_t ldb, real* c, Py_ssize_t ldc) noexcept nogil:
    """c = op(a) @ op(b), row-major (cblas_?gemm with alpha 1, beta 0)."""
    if real is float:
        if _blas64:
            (<sgemm64_t>_sgemm)(101, ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
        else:
            (<sgemm32_t>_sgemm)(101, ta, tb, <int>m, <int>n, <int>k, 1, a, <int>lda, b, <int>ldb, 0, c, <int>ldc)
    else:
        if _blas64:
            (<dgemm64_t>_dgemm)(101, ta, tb, m, n, k, 1, a, lda, b, ldb, 0, c, ldc)
        else:
            (<dgemm32_t>_dgemm)(101, ta, tb, <int>m, <int>n, <int>k, 1, a, <int>lda, b, <int>ldb, 0, c, <int>ldc)


cdef inline void _gemv(int order, int trans, Py_ssize_t m, Py_ssize_t n, const real* a, Py_ssize_t lda,
                       const real* x, Py_ssize_t incx, real* y, Py_ssize_t incy) noexcept nogil:
    """y = op(a) @ x (cblas_?gemv with alpha 1, beta 0)."""
    if real is float:
        if _blas64:
            (<sgemv64_t>_sgemv)(order, trans, m, n, 1, a, lda, x, incx, 0, y, incy)
        else:
            (<sgemv32_t>_sgemv)(order, trans, <int>m, <int>n, 1, a, <int>lda, x, <int>incx, 0, y, <int>incy)
    else:
        if _blas64:
            (<dgemv64_t>_dgemv)(order, trans, m, n, 1, a, lda, x, incx, 0, y, incy)
        else:
            (<dgemv32_t>_dgemv)(order, trans, <int>m, <int>n, 1, a, <int>lda, x, <int>incx, 0, y, <int>incy)


cpdef enum:  # what a plan's step does (Plan.add); v: its integers, p: its arrays, in that order
    # p: a, b, c; v: ta, tb, m, n, k, lda, ldb, ldc, count, sa, sb, sc: the count products
    # c + i*sc = op(a + i*sa) @ op(b + i*sb), row-major (cblas_?gemm); split by rows of c
    OP_GEMM = 0
    # p: a, x, y; v: k, m, lda, incx, incy, count, sa, sx, sy: y[j] = sum over i < k of
    # a[j*lda + i] x[i*incx], j < m (cblas_?gemv column-major, transposed); split by outputs
    OP_GEMV = 1
    OP_BIAS_CLAMP = 2  # p: y, bias; v: planes, c, hw (bias_clamp)
    OP_CROP = 3        # p: src, out, bias; v: planes, c, ho, wo, wp (bias_clamp_crop)
    OP_DEPTHWISE = 4   # p: x, weight, bias, out; v: planes, c, h, w, kh, kw, ho, wo, sh, sw, dh, dw, top, left, interleave
    OP_FLAT = 5        # p: x, cols; v: planes, h, w, kh, kw, dh, dw, top, left, wp, run (flat_columns)
    OP_IM2COL = 6      # p: x, cols; v: planes, h, w, kh, kw, sh, sw, dh, dw, top, left, r0, rows, wo
    OP_MAX_POOL = 7    # p: x, out; v: planes, h, w, ho, wo, kh, kw, sh, sw, top, left
    OP_ADD = 8         # p: out, a, b; v: n, clamp: out = a + b, then clamped to (lo, hi) if clamp
    OP_COPY = 9        # p: src, dst; v: rows, length, src_stride, dst_stride
    # p: x, weight (phased_weights), bias, out; v: rows (n*ho), c, h, w, kh, kw, ho, wo, sh, sw, dh,
    # dw, top, left, o (phased_conv); split by output rows
    OP_PHASED = 10
    OP_WINO_IN = 11    # p: x, v; v: planes (n*c), n, c, h, w, kh, top, left, hp, wp (winograd_input)
    OP_WINO_OUT = 12   # p: m, out, bias; v: planes (n*o), n, o, ho, wo, kh, wp (winograd_output)
    OP_MEAN = 13       # p: x, out; v: planes, size (plane_means)
    # p: x, weight, bias, out (pooled); v: pooled rows (n*pooled ho), then OP_PHASED's v[1:15], then
    # the pool's ho, wo, kh, kw, sh, sw, top, left (phased_pool); split by pooled rows
    OP_PHASED_POOL = 14

cdef enum:
    MAX_V = 24
    MAX_P = 5
    # a step's work is split over threads in shares of whole blocks of this many rows, planes or
    # elements: a multiple of every x86 OpenBLAS kernel's rows per block (16 at most), so that a
    # share of a product is a whole number of the kernel's blocks
    SPLIT_ALIGN = 16

# the least work a step is split over threads for (Plan.check_splits): about 20 us of a product on
# one core (2^20 multiply-adds), or of a pass over its outputs (2^17), so that half the step
# pays for the threads' wait on a quiet machine many times over. Measured on a loaded 2-core
# machine (docs/inference-speed.md), a wait costs up to a scheduler slice: with 2^18 and 2^15
# the Fashion-MNIST model split 9 small steps and took 4.1 ms a pass on two threads against
# 0.40 on one; with these it splits none and runs on one
cdef Py_ssize_t _split_macs = 1 << 20
cdef Py_ssize_t _split_elements = 1 << 17


def set_split_sizes(Py_ssize_t macs, Py_ssize_t elements):
    """The least multiply-adds of a product, and outputs of another step, that plans split over
    threads from their next check_splits on; returns the previous pair (the tests split every
    step with (1, 1))."""
    global _split_macs, _split_elements
    before = (_split_macs, _split_elements)
    _split_macs, _split_elements = max(1, macs), max(1, elements)
    return before


cdef Py_ssize_t _work(const plan_op* op) noexcept nogil:
    """A step's size: multiply-adds of a product, outputs (or inputs gathered) of another."""
    cdef const Py_ssize_t* v = op.v
    if op.kind == OP_GEMM:
        return v[2] * v[3] * v[4] * v[8]
    if op.kind == OP_GEMV:
        return v[0] * v[1] * v[5]
    if op.kind == OP_BIAS_CLAMP:
        return v[0] * v[2]
    if op.kind == OP_CROP:
        return v[0] * v[2] * v[3]
    if op.kind == OP_DEPTHWISE:
        return v[0] * v[6] * v[7] * v[4] * v[5]
    if op.kind == OP_FLAT:
        return v[0] * v[3] * v[4] * v[10]
    if op.kind == OP_IM2COL:
        return v[0] * v[3] * v[4] * v[12] * v[13]
    if op.kind == OP_MAX_POOL:
        return v[0] * v[1] * v[2]
    if op.kind == OP_ADD:
        return v[0]
    if op.kind == OP_PHASED:
        return v[0] * v[7] * v[14] * v[1] * v[4] * v[5]
    if op.kind == OP_PHASED_POOL:
        return v[0] * v[19] * v[7] * v[14] * v[1] * v[4] * v[5]
    if op.kind == OP_WINO_IN:
        return v[0] * v[3] * v[4]
    if op.kind == OP_WINO_OUT:
        return v[0] * v[3] * v[4]
    return v[0] * v[1]   # OP_COPY, OP_MEAN


cdef inline Py_ssize_t _part(Py_ssize_t total, int part, int parts) noexcept nogil:
    """Where `part`'s share of range(total) starts, split into `parts` shares of whole
    SPLIT_ALIGN blocks (the last share takes the remainder). A product's rows, and the steps a
    product's epilogue pairs with (Plan.set_barrier: the same shares, so no wait between them);
    the phased convolutions, never paired, split their rows evenly (_share): 55 pooled rows of a
    stem in blocks of 16 gave one thread 32 and the other 23."""
    cdef Py_ssize_t blocks = (total + SPLIT_ALIGN - 1) // SPLIT_ALIGN
    return min(total, blocks * part // parts * SPLIT_ALIGN)


cdef struct plan_op:
    int kind
    bint barrier   # the builder's word: the next step reads what other threads' shares wrote
    bint whole     # thread 0 runs all of it (too small to split, or its split is not its whole)
    bint sync      # the threads wait for each other after this step (set by check_splits)
    char* p[MAX_P]
    Py_ssize_t v[MAX_V]
    double lo, hi


cdef struct plan_job:
    plan_op* ops
    Py_ssize_t start, end
    char* scratch      # one block per thread, scratch_size elements each
    Py_ssize_t scratch_size
    bint double


cdef void _run_op(const plan_op* op, int tid, int nt, real* scratch, Py_ssize_t scratch_size) noexcept nogil:
    """This thread's share (tid of nt) of one step."""
    cdef const Py_ssize_t* v = op.v
    cdef Py_ssize_t i, lo, hi, m0, m1
    cdef real* a
    cdef real* b
    cdef real* c
    cdef dw_geom g
    cdef ph_geom pg
    cdef pool_geom pq
    cdef real clo = <real>op.lo, chi = <real>op.hi
    if op.whole:
        if tid != 0:
            return
        tid, nt = 0, 1
    if op.kind == OP_GEMM:
        m0, m1 = _part(v[2], tid, nt), _part(v[2], tid + 1, nt)
        if m1 > m0:
            for i in range(v[8]):
                a = <real*>op.p[0] + i * v[9] + (m0 * v[5] if v[0] == NO_TRANS else m0)
                _gemm(<int>v[0], <int>v[1], m1 - m0, v[3], v[4], a, v[5], <real*>op.p[1] + i * v[10],
                      v[6], <real*>op.p[2] + i * v[11] + m0 * v[7], v[7])
    elif op.kind == OP_GEMV:
        m0, m1 = _part(v[1], tid, nt), _part(v[1], tid + 1, nt)
        if m1 > m0:
            for i in range(v[5]):
                _gemv(COL_MAJOR, TRANS, v[0], m1 - m0, <real*>op.p[0] + i * v[6] + m0 * v[2], v[2],
                      <real*>op.p[1] + i * v[7], v[3], <real*>op.p[2] + i * v[8] + m0 * v[4], v[4])
    elif op.kind == OP_BIAS_CLAMP:
        _bias_clamp_planes(<real*>op.p[0], <real*>op.p[1], v[1], v[2], _part(v[0], tid, nt),
                           _part(v[0], tid + 1, nt), clo, chi)
    elif op.kind == OP_CROP:
        _bias_clamp_crop_planes(<real*>op.p[0], v[4], <real*>op.p[1], v[3], <real*>op.p[2], v[1], v[2],
                                v[3], v[2] * v[4], v[2] * v[3], _part(v[0], tid, nt),
                                _part(v[0], tid + 1, nt), clo, chi)
    elif op.kind == OP_DEPTHWISE:
        g = _dw_geometry(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14])
        _depthwise_planes(&g, <real*>op.p[0], <real*>op.p[1], <real*>op.p[2], <real*>op.p[3],
                          <Py_ssize_t*>op.p[4], scratch, _part(v[0], tid, nt), _part(v[0], tid + 1, nt),
                          clo, chi)
    elif op.kind == OP_FLAT:
        _flat_planes(<real*>op.p[0], <real*>op.p[1], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8],
                     v[9], v[10], scratch, _flat_scratch(v[1], v[3], v[4], v[5], v[6], v[7], v[9], v[10]),
                     _part(v[0], tid, nt), _part(v[0], tid + 1, nt))
    elif op.kind == OP_IM2COL:
        _im2col_planes(<real*>op.p[0], <real*>op.p[1], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8],
                       v[9], v[10], v[11], v[12], v[13], _part(v[0], tid, nt), _part(v[0], tid + 1, nt))
    elif op.kind == OP_PHASED:
        pg = _ph_geometry(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12],
                          v[13], v[14])
        _phased_rows(&pg, <real*>op.p[0], <real*>op.p[1], <real*>op.p[2], <real*>op.p[3],
                     <Py_ssize_t*>op.p[4], scratch, _share(v[0], tid, nt), _share(v[0], tid + 1, nt),
                     clo, chi)
    elif op.kind == OP_PHASED_POOL:
        pg = _ph_geometry(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12],
                          v[13], v[14])
        pq = _pool_geometry(&pg, v[15], v[16], v[17], v[18], v[19], v[20], v[21], v[22])
        _phased_pool_rows(&pg, &pq, <real*>op.p[0], <real*>op.p[1], <real*>op.p[2], <real*>op.p[3],
                          <Py_ssize_t*>op.p[4], scratch, _share(v[0], tid, nt), _share(v[0], tid + 1, nt),
                          clo, chi)
    elif op.kind == OP_WINO_IN:
        _wino_in_planes(<real*>op.p[0], <real*>op.p[1], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8],
                        v[9], scratch, _part(v[0], tid, nt), _part(v[0], tid + 1, nt))
    elif op.kind == OP_WINO_OUT:
        _wino_out_planes(<real*>op.p[0], <real*>op.p[1], <real*>op.p[2], v[1], v[2], v[3], v[4], v[5],
                         v[6], scratch, _part(v[0], tid, nt), _part(v[0], tid + 1, nt), clo, chi)
    elif op.kind == OP_MAX_POOL:
        _max_pool_planes(<real*>op.p[0], <real*>op.p[1], v[1], v[2], v[3], v[4], v[5], v[6], v[7],
                         v[8], v[9], v[10], scratch, _part(v[0], tid, nt), _part(v[0], tid + 1, nt))
    elif op.kind == OP_ADD:
        lo, hi = _part(v[0], tid, nt), _part(v[0], tid + 1, nt)
        a, b, c = <real*>op.p[0], <real*>op.p[1], <real*>op.p[2]
        for i in range(lo, hi):
            a[i] = b[i] + c[i]
        if v[1] and hi > lo:
            _clamp_row(a + lo, hi - lo, 0, clo, chi)
    elif op.kind == OP_MEAN:
        _mean_planes(<real*>op.p[0], <real*>op.p[1], v[1], _part(v[0], tid, nt), _part(v[0], tid + 1, nt))
    elif op.kind == OP_COPY:
        for i in range(_part(v[0], tid, nt), _part(v[0], tid + 1, nt)):
            memcpy(<real*>op.p[1] + i * v[3], <real*>op.p[0] + i * v[2], v[1] * sizeof(real))


cdef void _run_job(void* ctx, int tid, int nt) noexcept nogil:
    """Thread tid's part of a plan's steps start .. end - 1."""
    cdef plan_job* job = <plan_job*>ctx
    cdef Py_ssize_t i
    cdef char* scratch = job.scratch + tid * job.scratch_size * (8 if job.double else 4)
    for i in range(job.start, job.end):
        if job.double:
            _run_op(&job.ops[i], tid, nt, <double*>scratch, job.scratch_size)
        else:
            _run_op(&job.ops[i], tid, nt, <float*>scratch, job.scratch_size)
        if job.ops[i].sync:
            sqnxt_barrier(nt)


cdef char* _address(object array, Py_ssize_t offset) except? NULL:
    if array is None:
        return NULL
    cdef size_t address = array.ctypes.data
    return <char*>address + offset * <Py_ssize_t>array.itemsize


cdef class Plan:
    """A forward pass compiled into a flat list of native steps over fixed buffers (built by
    runtime.runner.CompiledPass, each convolution's steps by functional.ConvPlan.native_steps):
    run() executes a range of them in one call without the GIL, on one thread or split over
    several (each step's planes, or a product's rows, in contiguous shares: every output element is
    computed by the same operations whatever the thread count). The plan holds a reference to
    every array it points into."""
    cdef plan_op* ops
    cdef Py_ssize_t n, cap
    cdef bint double
    cdef list arrays
    cdef object scratch
    cdef Py_ssize_t scratch_size

    def __cinit__(self, dtype):
        import numpy as np
        self.double = np.dtype(dtype) == np.float64
        if not self.double and np.dtype(dtype) != np.float32:
            raise ValueError(f"plans run float32 or float64, not {dtype}")
        self.n, self.cap, self.ops = 0, 0, NULL
        self.arrays = []
        self.scratch, self.scratch_size = None, 0

    def __dealloc__(self):
        free(self.ops)

    def __len__(self):
        return self.n

    def add(self, int kind, arrays, ints, double lo=-float("inf"), double hi=float("inf"),
            bint barrier=True):
        """Append a step: arrays (each an array, None, or (array, element offset)), its integers,
        clamp bounds; barrier=False lets the threads go on to the next step without waiting
        (it reads only what this thread wrote, in the same share)."""
        import numpy as np
        cdef plan_op* op
        cdef Py_ssize_t i, scratch = 0
        cdef dw_geom g
        cdef ph_geom pg
        cdef pool_geom pq
        cdef Py_ssize_t[::1] offs
        cdef Py_ssize_t* v
        if len(arrays) > MAX_P or len(ints) > MAX_V:
            raise ValueError("too many arrays or integers for one step")
        if self.n == self.cap:
            self.cap = max(16, 2 * self.cap)
            op = <plan_op*>realloc(self.ops, self.cap * sizeof(plan_op))
            if op == NULL:
                raise MemoryError()
            self.ops = op
        op = &self.ops[self.n]
        memset(op, 0, sizeof(plan_op))
        op.kind, op.lo, op.hi, op.barrier, op.sync = kind, lo, hi, barrier, True
        for i, item in enumerate(arrays):
            array, offset = item if isinstance(item, tuple) else (item, 0)
            if array is not None:
                if not array.flags.c_contiguous:
                    raise ValueError("a plan's arrays must be contiguous")
                self.arrays.append(array)
            op.p[i] = _address(array, offset)
        for i, value in enumerate(ints):
            op.v[i] = value
        v = op.v
        if kind == OP_DEPTHWISE:
            g = _dw_geometry(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14])
            offs = np.empty(g.kh * g.kw, np.intp)
            _dw_offsets(&g, &offs[0])
            self.arrays.append(offs.base)
            op.p[4] = <char*>&offs[0]
            scratch = g.scratch
        elif kind == OP_PHASED or kind == OP_PHASED_POOL:
            pg = _ph_geometry(v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12],
                              v[13], v[14])
            offs = np.empty(pg.c * pg.g.kh * pg.g.kw, np.intp)
            _ph_offsets(&pg, &offs[0])
            self.arrays.append(offs.base)
            op.p[4] = <char*>&offs[0]
            scratch = pg.scratch
            if kind == OP_PHASED_POOL:
                pq = _pool_geometry(&pg, v[15], v[16], v[17], v[18], v[19], v[20], v[21], v[22])
                scratch = _phased_pool_scratch(&pg, &pq)
        elif kind == OP_FLAT:
            scratch = _flat_scratch(v[1], v[3], v[4], v[5], v[6], v[7], v[9], v[10])
        elif kind == OP_WINO_IN:
            scratch = _wino_in_scratch(v[5], v[8], v[9])
        elif kind == OP_WINO_OUT:
            scratch = _wino_out_scratch(v[5], v[3], v[6])
        elif kind == OP_MAX_POOL:
            scratch = _pool_row(v[4], v[6], v[8])
        self.scratch_size = max(self.scratch_size, scratch)
        self.n += 1

    def kinds(self):
        """Each step's kind (OP_GEMM, ...), in order."""
        return [self.ops[i].kind for i in range(self.n)]

    def work(self, Py_ssize_t i):
        """Step i's size as check_splits weighs it: multiply-adds of a product, outputs (or
        inputs gathered) of another."""
        if not 0 <= i < self.n:
            raise IndexError(i)
        return _work(&self.ops[i])

    def truncate(self, Py_ssize_t n):
        """Drop the steps from n on (a step the caller could not finish adding)."""
        if not 0 <= n <= self.n:
            raise IndexError(n)
        self.n = n

    def set_barrier(self, Py_ssize_t i, bint barrier):
        """Whether the step after step i reads what other threads' shares of step i wrote (False:
        only its own share's, so the threads need not wait there when both steps are split)."""
        if not 0 <= i < self.n:
            raise IndexError(i)
        self.ops[i].barrier = barrier

    def check_splits(self, int threads):
        """Decide, for `threads` threads, which steps are split and where the threads wait.

        A step is split only if it is big enough for half of it to pay for a wait (set_split_sizes:
        a product of at least 2^20 multiply-adds, another step of at least 2^17 outputs);
        smaller ones thread 0 runs whole. A product that is split is run whole and split (one
        share after the other, on this thread) on what its buffers hold now, and run whole if its
        shares do not give the whole's bytes: BLAS may pick another kernel for a smaller product
        (OpenBLAS's small-matrix kernels go by the size). The threads then wait after a step
        unless the next one is run by the same thread on the same share: both whole, or both
        split where the builder said the next reads only its own share (barrier=False). The
        buffers should hold varied values (the runner fills them with random ones first); they
        are overwritten. Returns the number of steps split."""
        cdef Py_ssize_t i, size, split = 0
        cdef int t
        cdef plan_op* op
        cdef Py_ssize_t* v
        cdef size_t itemsize = 8 if self.double else 4
        cdef char* out
        cdef char* want
        if not has_blas():
            raise RuntimeError("plans need NumPy's BLAS entry points (set_blas)")
        for i in range(self.n):
            op, v = &self.ops[i], self.ops[i].v
            op.whole = threads < 2 or _work(op) < (_split_macs if op.kind in (OP_GEMM, OP_GEMV) else _split_elements)
            if op.whole or op.kind not in (OP_GEMM, OP_GEMV):
                split += not op.whole
                continue
            if op.kind == OP_GEMM:
                out, size = op.p[2], (v[8] - 1) * v[11] + (v[2] - 1) * v[7] + v[3]
            else:
                out, size = op.p[2], (v[5] - 1) * v[8] + (v[1] - 1) * v[4] + 1
            want = <char*>malloc(size * itemsize)
            if want == NULL:
                raise MemoryError()
            with nogil:
                op.whole = True
                self._run_one(op, 0, 1)
                op.whole = False
                memcpy(want, out, size * itemsize)
                memset(out, 0, size * itemsize)
                for t in range(threads):
                    self._run_one(op, t, threads)
                op.whole = memcmp(want, out, size * itemsize) != 0
            free(want)
            split += not op.whole
        for i in range(self.n):
            op = &self.ops[i]
            if i + 1 == self.n:
                op.sync = True
            elif op.whole and self.ops[i + 1].whole:
                op.sync = False
            else:
                op.sync = op.barrier or op.whole or self.ops[i + 1].whole
        return split

    cdef void _run_one(self, plan_op* op, int tid, int nt) noexcept nogil:
        if self.double:
            _run_op[double](op, tid, nt, NULL, 0)
        else:
            _run_op[float](op, tid, nt, NULL, 0)

    def run(self, Py_ssize_t start=0, Py_ssize_t end=-1, int threads=1):
        """Steps start .. end - 1 (end -1: to the last), on `threads` threads (fewer if another
        plan is running on the pool, or threads cannot start)."""
        import numpy as np
        cdef plan_job job
        if not has_blas():
            raise RuntimeError("plans need NumPy's BLAS entry points (set_blas)")
        threads = max(1, min(threads, 8))
        if self.scratch is None or len(self.scratch) < threads * max(self.scratch_size, 1):
            self.scratch = np.zeros(threads * max(self.scratch_size, 1), np.float64 if self.double else np.float32)
        job.ops, job.start, job.end = self.ops, start, self.n if end < 0 else end
        job.scratch, job.scratch_size, job.double = _address(self.scratch, 0), max(self.scratch_size, 1), self.double
        with nogil:
            if threads == 1 or sqnxt_pool_try_run(_run_job, &job, threads) != 0:
                _run_job(&job, 0, 1)
