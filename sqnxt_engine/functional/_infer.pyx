# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""Inference kernels of the float runner (sqnxt_engine.functional.ConvPlan and max_pool2d):
the passes that NumPy cannot fuse, each done once per element while the data is in cache.

- bias_clamp: a product's epilogue, y = min(max(y + bias[c], lo), hi) in place (ReLU is
  (0, inf), ReLU6 (0, 6), no activation (-inf, inf)); bias_clamp_crop does the same while
  copying a product computed with spare columns (ConvPlan's "flat" scheme) into its output.
- depthwise: a depthwise convolution computed directly, with its epilogue.
- flat_columns: the flat scheme's padded gather of every tap (ConvPlan._fast_flat).
- winograd_input / winograd_output: the transforms around the products of a 1x3 or 3x1
  convolution computed by Winograd's F(4,3) (ConvPlan's "winograd" scheme).
- max_pool: windows clipped to the input (what padding with -inf gives).

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
from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memcpy, memset

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
    if real is float:
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


def bias_clamp(real[:, :, ::1] y, real[::1] bias, double lo, double hi):
    """In place on (N, C, HW): y = clamp(y + bias[c], lo, hi); bias may be None (zero)."""
    cdef Py_ssize_t n = y.shape[0], c = y.shape[1], hw = y.shape[2], p
    cdef bint has_bias = bias is not None
    cdef real* base = &y[0, 0, 0] if y.size else NULL
    cdef real* b = &bias[0] if has_bias else NULL
    if n * c * hw == 0:
        return
    for p in prange(n * c, nogil=True, num_threads=_threads, schedule="static"):
        _clamp_row(base + p * hw, hw, b[p % c] if has_bias else 0, <real>lo, <real>hi)


def bias_clamp_crop(real[:, :, :, ::1] src, real[:, :, :, :] out, real[::1] bias, double lo, double hi):
    """out[n, c, y, x] = clamp(src[n, c, y, x] + bias[c], lo, hi) for x < out's width: src may be
    wider (spare columns), and out may be a band of rows of a larger array (only its rows need
    be contiguous)."""
    cdef Py_ssize_t n = out.shape[0], c = out.shape[1], ho = out.shape[2], wo = out.shape[3]
    cdef Py_ssize_t p, r
    cdef bint has_bias = bias is not None
    cdef real* b = &bias[0] if has_bias else NULL
    cdef real* o
    cdef real bv
    if n * c * ho * wo == 0:
        return
    if src.shape[0] != n or src.shape[1] != c or src.shape[2] != ho or src.shape[3] < wo:
        raise ValueError("src does not cover out")
    if out.strides[3] != sizeof(real):
        raise ValueError("out's rows must be contiguous")
    for p in prange(n * c, nogil=True, num_threads=_threads, schedule="static"):
        bv = b[p % c] if has_bias else 0
        for r in range(ho):
            o = &out[p // c, p % c, r, 0]
            memcpy(o, &src[p // c, p % c, r, 0], wo * sizeof(real))
            _clamp_row(o, wo, bv, <real>lo, <real>hi)


def depthwise(real[:, :, :, ::1] x, real[:, :, ::1] weight, real[::1] bias, real[:, :, :, ::1] out,
              int sh, int sw, int dh, int dw, int pad_top, int pad_left, double lo, double hi):
    """out[n, c] = clamp(bias[c] + sum_ij weight[c, i, j] * x[n, c, y*sh - pad_top + i*dh,
    x*sw - pad_left + j*dw], lo, hi), zero outside x.

    Each plane is copied, zero-bordered, into sh*sw phase planes of row length wq: phase (py, px)
    holds the padded plane's rows py, py + sh, ... and columns px, px + sw, ... (one plane at
    stride 1). Output (r, q) of tap (i, j) then reads phase ((i*dh) % sh, (j*dw) % sw) at row
    r + (i*dh) // sh, column q + (j*dw) // sw, so each tap is one contiguous run of ho*wq elements
    at a fixed offset, strided or not (the flat trick of ConvPlan, with wq - wo spare columns per
    row that the epilogue drops). No loop tests bounds, the runs are long and vectorisable even
    on 7x7 planes, and the taps are summed in registers (_infer_simd.h)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t kh = weight.shape[1], kw = weight.shape[2]
    cdef Py_ssize_t ho = out.shape[2], wo = out.shape[3]
    cdef Py_ssize_t nph = sh * sw
    # every tap of every output and every input element lands inside the phase planes; the +1
    # row takes the last run's overhang
    cdef Py_ssize_t wq = max(wo + ((kw - 1) * dw) // sw, (pad_left + w + sw - 1) // sw)
    cdef Py_ssize_t hq = max(ho + ((kh - 1) * dh) // sh, (pad_top + h + sh - 1) // sh) + 1
    cdef Py_ssize_t plane = hq * wq, run = ho * wq
    # the taps run over whole vector blocks (_infer_simd.h); spare outputs past run read the slack
    cdef Py_ssize_t run_blocks = (run + SQNXT_BLOCK_FLOATS - 1) // SQNXT_BLOCK_FLOATS * SQNXT_BLOCK_FLOATS
    cdef Py_ssize_t slack = run_blocks - run
    cdef bint has_bias = bias is not None
    cdef Py_ssize_t p, ch, r, i, j, ix, px, yy
    cdef Py_ssize_t* offs
    cdef real* phases
    cdef real* acc
    cdef real* src
    cdef real* row
    cdef real* dst
    if n * c * ho * wo == 0:
        return
    offs = <Py_ssize_t*> malloc(kh * kw * sizeof(Py_ssize_t))
    if offs == NULL:
        raise MemoryError()
    for i in range(kh):
        for j in range(kw):
            offs[i * kw + j] = (((i * dh) % sh) * sw + (j * dw) % sw) * plane \
                + ((i * dh) // sh) * wq + (j * dw) // sw
    with nogil, parallel(num_threads=_threads):
        phases = <real*> malloc((nph * plane + slack + run_blocks) * sizeof(real))
        acc = phases + nph * plane + slack
        if phases != NULL:
            # every plane fills the same positions, so what is zero (the border) stays zero
            memset(phases, 0, (nph * plane + slack + run_blocks) * sizeof(real))
        for p in prange(n * c, schedule="static"):
            if phases == NULL:
                continue  # out of memory: practically unreachable (a few KB per thread)
            ch = p % c
            src = &x[0, 0, 0, 0] + p * h * w
            for r in range(h):
                yy = r + pad_top
                row = phases + (yy % sh) * sw * plane + (yy // sh) * wq
                if sw == 1:
                    memcpy(row + pad_left, src + r * w, w * sizeof(real))
                else:
                    for px in range(sw):  # the columns ix with (ix + pad_left) % sw == px
                        ix = (px - pad_left % sw + sw) % sw
                        _gather(row + px * plane + (ix + pad_left) // sw, src + r * w + ix, sw,
                                (w - ix + sw - 1) // sw)
            _taps(acc, phases, offs, &weight[0, 0, 0] + ch * kh * kw, kh * kw, run_blocks)
            dst = &out[0, 0, 0, 0] + p * ho * wo
            for r in range(ho):
                memcpy(dst + r * wo, acc + r * wq, wo * sizeof(real))
                _clamp_row(dst + r * wo, wo, bias[ch] if has_bias else 0, <real>lo, <real>hi)
        free(phases)
    free(offs)


def flat_columns(real[:, :, :, ::1] x, real[:, :, :, ::1] cols, int kh, int kw, int dh, int dw,
                 int pad_top, int pad_left, Py_ssize_t wp):
    """ConvPlan's flat scheme's gather in one pass: cols[n, c, i*kw + j, q] = the zero-padded
    plane of x[n, c] (pad_top rows above, pad_left columns left, row length wp, zero below and
    right as far as needed), flattened, at position i*dh*wp + j*dw + q, for q < cols.shape[3].
    Each plane is padded once into a per-thread scratch plane, then every tap is one block copy:
    what NumPy did as a padded copy and kh*kw slice assignments, without the Python calls."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t run = cols.shape[3], taps = kh * kw
    # the scratch plane holds every position a tap's run reads
    cdef Py_ssize_t size = max((kh - 1) * dh * wp + (kw - 1) * dw + run, (pad_top + h) * wp)
    cdef Py_ssize_t p, r, i, j
    cdef real* plane
    cdef real* dst
    if cols.shape[0] != n or cols.shape[1] != c or cols.shape[2] != taps:
        raise ValueError("cols must be (N, C, kh*kw, run) for x (N, C, H, W)")
    if pad_left + w > wp or pad_top < 0 or pad_left < 0:
        raise ValueError("the padded row length does not hold a row")
    if n * c * run == 0:
        return
    with nogil, parallel(num_threads=_threads):
        plane = <real*> malloc(size * sizeof(real))
        if plane != NULL:
            memset(plane, 0, size * sizeof(real))  # every plane fills the same positions
        for p in prange(n * c, schedule="static"):
            if plane == NULL:
                continue  # out of memory: practically unreachable (one plane per thread)
            for r in range(h):
                memcpy(plane + (pad_top + r) * wp + pad_left, &x[0, 0, 0, 0] + (p * h + r) * w,
                       w * sizeof(real))
            dst = &cols[0, 0, 0, 0] + p * taps * run
            for i in range(kh):
                for j in range(kw):
                    memcpy(dst + (i * kw + j) * run, plane + i * dh * wp + j * dw, run * sizeof(real))
        free(plane)


def max_pool(real[:, :, :, ::1] x, real[:, :, :, ::1] out, int kh, int kw, int sh, int sw,
             int pad_top, int pad_left):
    """out[n, c, y, q] = max of x[n, c, y*sh - pad_top + i, q*sw - pad_left + j] over the window's
    taps inside x (-inf when none is). Separable, as max_pool2d_reference: per output row, the
    elementwise max of the window's input rows (contiguous, vectorisable) into a scratch row,
    then the max over each window's columns of that row."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t ho = out.shape[2], wo = out.shape[3]
    cdef Py_ssize_t p, r, q, iy, ix, y0, y1, x0, x1
    cdef real* src
    cdef real* dst
    cdef real* row
    cdef real m
    cdef real ninf = -float("inf")
    if n * c * ho * wo == 0:
        return
    with nogil, parallel(num_threads=_threads):
        row = <real*> malloc(w * sizeof(real))
        for p in prange(n * c, schedule="static"):
            if row == NULL:
                continue  # out of memory: practically unreachable (one row per thread)
            src = &x[0, 0, 0, 0] + p * h * w
            dst = &out[0, 0, 0, 0] + p * ho * wo
            for r in range(ho):
                _window(r, sh, pad_top, kh, h, &y0, &y1)
                for ix in range(w):
                    row[ix] = ninf
                for iy in range(y0, y1):
                    _max_into(row, src + iy * w, w)
                for q in range(wo):
                    _window(q, sw, pad_left, kw, w, &x0, &x1)
                    m = ninf
                    for ix in range(x0, x1):
                        if row[ix] > m:
                            m = row[ix]
                    dst[r * wo + q] = m
        free(row)


cdef inline void _window(Py_ssize_t o, int s, int pad, int k, Py_ssize_t size,
                         Py_ssize_t* first, Py_ssize_t* end) noexcept nogil:
    """The input range [first, end) of output o's window, clipped to [0, size)."""
    first[0] = o * s - pad
    end[0] = first[0] + k
    if first[0] < 0:
        first[0] = 0
    if end[0] > size:
        end[0] = size


cdef inline void _max_into(real* y, const real* x, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        y[i] = x[i] if x[i] > y[i] else y[i]


def winograd_tiles(int kh, Py_ssize_t hp, Py_ssize_t wp):
    """(tiles, columns) per plane of Winograd F(4,3) on a zero-padded plane of hp rows of wp: a
    3x1 kernel (kh 3) has tiles of 4 output rows, one per column, so ceil((hp - 2) / 4) tile rows
    of wp columns; a 1x3 kernel (kh 1) has tiles of 4 consecutive outputs along the flattened
    plane (the flat scheme's trick: wp - wo spare outputs per row), ceil(hp * wp / 4) of them,
    one column each."""
    if kh == 3:
        return (hp - 2 + 3) // 4, (hp - 2 + 3) // 4 * wp
    return (hp * wp + 3) // 4, (hp * wp + 3) // 4


def winograd_input(real[:, :, :, ::1] x, real[:, :, ::1] v, int kh, int pad_top, int pad_left,
                   Py_ssize_t hp, Py_ssize_t wp):
    """v[xi, c, n*cols + col] = (B^T d)[xi] for every tile (col) of every plane x[n, c]
    zero-padded to hp rows of wp (pad_top above, pad_left left), d the tile's 6 inputs along the
    kernel's axis (kh 3: down a column, kh 1: along the flattened padded plane); cols as
    winograd_tiles says. Each plane is padded once into a per-thread scratch plane (kh 3: its rows
    dealt into 4 phase planes by row mod 4, so that all of a plane's tiles are one run of lanes)."""
    cdef Py_ssize_t n = x.shape[0], c = x.shape[1], h = x.shape[2], w = x.shape[3]
    cdef Py_ssize_t tiles, cols
    tiles, cols = winograd_tiles(kh, hp, wp)
    cdef Py_ssize_t nc = n * cols, vs = c * nc
    # kh 3: 4 phase planes of tiles + 1 rows (tap k of tile t is row t + k // 4 of phase k % 4);
    # kh 1: every element a tile reads, 4 * tiles + 2
    cdef Py_ssize_t ps = (tiles + 1) * wp
    cdef Py_ssize_t size = 4 * ps if kh == 3 else max(4 * tiles + 2, hp * wp)
    cdef Py_ssize_t p, r, yy
    cdef real* plane
    cdef real* src
    cdef real* dst
    if v.shape[0] != 6 or v.shape[1] != c or v.shape[2] != nc:
        raise ValueError("v must be (6, C, N * columns) for x (N, C, H, W)")
    if kh not in (1, 3) or pad_top < 0 or pad_left < 0 or pad_top + h > hp or pad_left + w > wp:
        raise ValueError("kh must be 1 or 3 and the padded plane must hold x")
    if nc * c == 0:
        return
    with nogil, parallel(num_threads=_threads):
        plane = <real*> malloc(size * sizeof(real))
        if plane != NULL:
            memset(plane, 0, size * sizeof(real))  # every plane fills the same positions
        for p in prange(n * c, schedule="static"):
            if plane == NULL:
                continue  # out of memory: practically unreachable (one plane per thread)
            # planes in the order of v's columns (channel, then image): v is written in sequence
            src = &x[0, 0, 0, 0] + ((p % n) * c + p // n) * h * w
            dst = &v[0, 0, 0] + p * cols
            if kh == 3:
                for r in range(h):
                    yy = pad_top + r
                    memcpy(plane + (yy % 4) * ps + (yy // 4) * wp + pad_left, src + r * w, w * sizeof(real))
                _wino_in_lanes(dst, vs, plane, ps, wp, cols)
            else:
                for r in range(h):
                    memcpy(plane + (pad_top + r) * wp + pad_left, src + r * w, w * sizeof(real))
                _wino_in_run(dst, vs, plane, tiles)
        free(plane)


def winograd_output(real[:, :, ::1] m, real[:, :, :, ::1] out, real[::1] bias, double lo, double hi,
                    int kh, Py_ssize_t wp):
    """out[n, o] = clamp(bias[o] + A^T m over each tile of plane (n, o), lo, hi): the inverse of
    winograd_input's layout for an output of ho rows of wo (kh 3: wo = wp, plane hp = ho + 2;
    kh 1: hp = ho, the wp - wo spare columns of each row dropped). m is (6, O, N*cols)."""
    cdef Py_ssize_t n = out.shape[0], o = out.shape[1], ho = out.shape[2], wo = out.shape[3]
    cdef Py_ssize_t tiles, cols
    tiles, cols = winograd_tiles(kh, ho + 2 if kh == 3 else ho, wp)
    cdef Py_ssize_t nc = n * cols, ms = o * nc
    cdef Py_ssize_t size = 4 * tiles if kh == 1 else 4 * cols
    cdef Py_ssize_t p, r
    cdef bint has_bias = bias is not None
    cdef real bv
    cdef real* scratch
    cdef real* src
    cdef real* dst
    if m.shape[0] != 6 or m.shape[1] != o or m.shape[2] != nc:
        raise ValueError("m must be (6, O, N * columns) for out (N, O, ho, wo)")
    if kh not in (1, 3) or (kh == 3 and wo != wp) or (kh == 1 and wo > wp):
        raise ValueError("kh must be 1 or 3, and wo = wp (kh 3) or wo <= wp (kh 1)")
    if nc * o == 0 or ho * wo == 0:
        return
    with nogil, parallel(num_threads=_threads):
        scratch = <real*> malloc(size * sizeof(real))
        for p in prange(n * o, schedule="static"):
            if scratch == NULL:
                continue  # out of memory: practically unreachable (a few rows per thread)
            # planes in the order of m's columns (channel, then image): m is read in sequence
            bv = bias[p // n] if has_bias else 0
            src = &m[0, 0, 0] + p * cols
            dst = &out[0, 0, 0, 0] + ((p % n) * o + p // n) * ho * wo
            if kh == 3:  # into 4 phase planes (row j of every tile), then each row to its place
                _wino_out_lanes(scratch, cols, src, ms, cols, bv, <real>lo, <real>hi)
                for r in range(ho):
                    memcpy(dst + r * wo, scratch + (r % 4) * cols + (r // 4) * wo, wo * sizeof(real))
            else:
                _wino_out_run(scratch, src, ms, tiles, bv, <real>lo, <real>hi)
                for r in range(ho):
                    memcpy(dst + r * wo, scratch + r * wp, wo * sizeof(real))
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
