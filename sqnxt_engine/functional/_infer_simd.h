/* The inner loops of _infer.pyx (beside this file) that decide its speed, in C so that each can be
 * compiled once per instruction set. On x86-64 with GCC 12 or later every loop is built three
 * times, for AVX-512 (x86-64-v4), AVX2 with FMA (x86-64-v3) and the baseline (x86-64: SSE2), and
 * sqnxt_simd_select() points the module at one set (a "clone"): the best the CPU has when the module
 * loads, or the one named by SQNXT_SIMD / set_simd (_infer.pyx) to measure each on one machine. The
 * package is built with plain -O3 (SSE2), so without this the loops would run 4 floats wide on CPUs
 * that do 16. Other compilers and architectures get one portable set.
 *
 * Each clone uses the vector width its instruction set has: the depthwise taps are written with
 * GCC's vector extension, and a vector type wider than the target's registers is lowered piecewise
 * through the stack (a 64-byte type in the AVX2 clone was: every tap's weight broadcast by sixteen
 * stores, the accumulators spilled, slower than NumPy). So the AVX-512 clone holds 2 accumulators
 * of 64 bytes, the AVX2 clone 4 of 32, the baseline 8 of 16: the same 128-byte block of outputs.
 *
 * Floating point: the AVX2 and AVX-512 clones contract a * b + c into one fused multiply-add (GCC's
 * default for GNU C), the baseline has none, so results can differ from the NumPy reference and
 * between clones in the last bit; the tests compare each clone within tolerance, as for every
 * compiled path. No other reassociation: each output sums its taps in order t = 0, 1, ..., as the
 * reference does.
 */
#ifndef SQNXT_INFER_SIMD_H
#define SQNXT_INFER_SIMD_H

#include <Python.h>  /* Py_ssize_t, as the Cython declarations use */
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12
#define SQNXT_X86_CLONES 1
#endif

/* Outputs the block loop computes per iteration: 128 bytes (32 floats, 16 doubles) in every
 * clone. _infer.depthwise pads its runs to a multiple of SQNXT_BLOCK_FLOATS so no scalar tail runs. */
#define SQNXT_BLOCK_BYTES 128
#define SQNXT_BLOCK_FLOATS (SQNXT_BLOCK_BYTES / 4)

/* dst[q] = sum over t < ntaps of w[t] * base[offs[t] + q], for q < n.
 *
 * A depthwise convolution laid out so that every tap is one contiguous run (see _infer.depthwise).
 * Outputs go in blocks of SQNXT_BLOCK_BYTES held in NACC vector registers while all taps are
 * added: one load per tap and vector instead of the load, load and store of accumulating tap by
 * tap into memory. Written with GCC's vector extension: left to itself, GCC unrolls the tap loop
 * and jams it into a scalar loop over the block. VEC is the clone's unaligned vector type. */
#if defined(__GNUC__)
#define SQNXT_TAPS_BLOCKS(REAL, VEC)                                                            \
    {                                                                                           \
        enum { lanes = sizeof(VEC) / sizeof(REAL), nacc = SQNXT_BLOCK_BYTES / sizeof(VEC) };    \
        for (; q + nacc * lanes <= n; q += nacc * lanes) {                                      \
            VEC a[nacc];                                                                        \
            int k;                                                                              \
            _Pragma("GCC unroll 8") for (k = 0; k < nacc; k++) a[k] = (VEC){0};                 \
            for (t = 0; t < ntaps; t++) {                                                       \
                const REAL *s = base + offs[t] + q;                                             \
                const REAL wt = w[t];                                                           \
                _Pragma("GCC unroll 8") for (k = 0; k < nacc; k++)                              \
                    a[k] += wt * *(const VEC *)(s + k * lanes);                                 \
            }                                                                                   \
            _Pragma("GCC unroll 8") for (k = 0; k < nacc; k++)                                  \
                *(VEC *)(dst + q + k * lanes) = a[k];                                           \
        }                                                                                       \
    }
#else
#define SQNXT_TAPS_BLOCKS(REAL, VEC) /* no vector extension: the scalar loop does every output */
#endif

/* Winograd F(4,3) (Lavin and Gray, arXiv 1509.09308; _infer.winograd_input / winograd_output):
 * a 3-tap correlation over 4 outputs is (A^T [(G g) * (B^T d)]) from the 6 inputs d, with 6
 * multiplies instead of 12. Below: B^T d (input) and A^T m (output, with the product's epilogue),
 * over many tiles at once. "lanes": the tiles sit side by side in memory (a 3x1 kernel's tiles of
 * 4 rows, one per column, the plane's rows split into 4 phase planes ps apart by row mod 4: tap k
 * of tile q at s[(k % 4)*ps + (k / 4)*ks + q], ks a row; the output likewise into 4 phase planes
 * js apart); "run": the tiles follow each other along a flattened row (a 1x3 kernel's tiles of 4
 * columns: tap k of tile q at s[4q + k]). The phases make every tile of a plane one contiguous
 * run of lanes, long vectors even on 7x7 planes. Each
 * loop is plain C that GCC vectorises in each clone (the run loops through its permutes of
 * 4-element groups), in a function of its own whose every row is a restrict parameter: with the
 * rows as offsets of one pointer GCC gave up on the alias checks and left the input transforms
 * scalar in every clone. Output row xi of the transform goes to v + xi*vs. */
#define SQNXT_WINO_IN(REAL, d0, d1, d2, d3, d4, d5, q)                                                \
    {                                                                                           \
        const REAL t0 = d0, t1 = d1, t2 = d2, t3 = d3, t4 = d4, t5 = d5;                        \
        v0[q] = 4 * t0 - 5 * t2 + t4;                                                           \
        v1[q] = (t3 + t4) - 4 * (t1 + t2);                                                      \
        v2[q] = (t4 - t3) + 4 * (t1 - t2);                                                      \
        v3[q] = (t4 - t2) + 2 * (t3 - t1);                                                      \
        v4[q] = (t4 - t2) - 2 * (t3 - t1);                                                      \
        v5[q] = 4 * t1 - 5 * t3 + t5;                                                           \
    }

#define SQNXT_DEFINE_WINO_IN(NAME, ATTR, REAL)                                                  \
    ATTR static void NAME##_lanes6(REAL *restrict v0, REAL *restrict v1, REAL *restrict v2,     \
                                   REAL *restrict v3, REAL *restrict v4, REAL *restrict v5,     \
                                   const REAL *restrict s0, const REAL *restrict s1,            \
                                   const REAL *restrict s2, const REAL *restrict s3,            \
                                   const REAL *restrict s4, const REAL *restrict s5,            \
                                   Py_ssize_t n)                                                \
    {                                                                                           \
        Py_ssize_t q;                                                                           \
        for (q = 0; q < n; q++)                                                                 \
            SQNXT_WINO_IN(REAL, s0[q], s1[q], s2[q], s3[q], s4[q], s5[q], q)                    \
    }                                                                                           \
    ATTR static void NAME##_lanes(REAL *v, Py_ssize_t vs, const REAL *s, Py_ssize_t ps,         \
                                  Py_ssize_t ks, Py_ssize_t n)                                  \
    {                                                                                           \
        NAME##_lanes6(v, v + vs, v + 2 * vs, v + 3 * vs, v + 4 * vs, v + 5 * vs,                \
                      s, s + ps, s + 2 * ps, s + 3 * ps, s + ks, s + ps + ks, n);               \
    }                                                                                           \
    ATTR static void NAME##_run6(REAL *restrict v0, REAL *restrict v1, REAL *restrict v2,       \
                                 REAL *restrict v3, REAL *restrict v4, REAL *restrict v5,       \
                                 const REAL *restrict s, Py_ssize_t n)                          \
    {                                                                                           \
        Py_ssize_t q;                                                                           \
        for (q = 0; q < n; q++)                                                                 \
            SQNXT_WINO_IN(REAL, s[4 * q], s[4 * q + 1], s[4 * q + 2], s[4 * q + 3],             \
                          s[4 * q + 4], s[4 * q + 5], q)                                        \
    }                                                                                           \
    ATTR static void NAME##_run(REAL *v, Py_ssize_t vs, const REAL *s, Py_ssize_t n)            \
    {                                                                                           \
        NAME##_run6(v, v + vs, v + 2 * vs, v + 3 * vs, v + 4 * vs, v + 5 * vs, s, n);           \
    }

/* y = A^T m, then bias b and the clamp (lo, hi): out row j of tile q is y_j. */
#define SQNXT_WINO_OUT(REAL, q, STORE)                                                          \
    {                                                                                           \
        const REAL a1 = m1[q] + m2[q], a2 = m1[q] - m2[q];                                      \
        const REAL a3 = m3[q] + m4[q], a4 = m3[q] - m4[q];                                      \
        REAL y0 = m0[q] + a1 + a3 + b, y1 = a2 + 2 * a4 + b;                                    \
        REAL y2 = a1 + 4 * a3 + b, y3 = a2 + 8 * a4 + m5[q] + b;                                \
        y0 = y0 > lo ? y0 : lo; y0 = y0 < hi ? y0 : hi;                                         \
        y1 = y1 > lo ? y1 : lo; y1 = y1 < hi ? y1 : hi;                                         \
        y2 = y2 > lo ? y2 : lo; y2 = y2 < hi ? y2 : hi;                                         \
        y3 = y3 > lo ? y3 : lo; y3 = y3 < hi ? y3 : hi;                                         \
        STORE                                                                                   \
    }

#define SQNXT_DEFINE_WINO_OUT(NAME, ATTR, REAL)                                                 \
    ATTR static void NAME##_lanes6(REAL *restrict d0, REAL *restrict d1, REAL *restrict d2,     \
                                   REAL *restrict d3, const REAL *restrict m0,                  \
                                   const REAL *restrict m1, const REAL *restrict m2,            \
                                   const REAL *restrict m3, const REAL *restrict m4,            \
                                   const REAL *restrict m5, Py_ssize_t n, REAL b, REAL lo,      \
                                   REAL hi)                                                     \
    {                                                                                           \
        Py_ssize_t q;                                                                           \
        for (q = 0; q < n; q++)                                                                 \
            SQNXT_WINO_OUT(REAL, q, d0[q] = y0; d1[q] = y1; d2[q] = y2; d3[q] = y3;)            \
    }                                                                                           \
    ATTR static void NAME##_lanes(REAL *dst, Py_ssize_t js, const REAL *m, Py_ssize_t ms,       \
                                  Py_ssize_t n, REAL b, REAL lo, REAL hi)                       \
    {                                                                                           \
        NAME##_lanes6(dst, dst + js, dst + 2 * js, dst + 3 * js, m, m + ms, m + 2 * ms,         \
                      m + 3 * ms, m + 4 * ms, m + 5 * ms, n, b, lo, hi);                        \
    }                                                                                           \
    ATTR static void NAME##_run6(REAL *restrict dst, const REAL *restrict m0,                   \
                                 const REAL *restrict m1, const REAL *restrict m2,              \
                                 const REAL *restrict m3, const REAL *restrict m4,              \
                                 const REAL *restrict m5, Py_ssize_t n, REAL b, REAL lo,        \
                                 REAL hi)                                                       \
    {                                                                                           \
        Py_ssize_t q;                                                                           \
        for (q = 0; q < n; q++)                                                                 \
            SQNXT_WINO_OUT(REAL, q, dst[4 * q] = y0; dst[4 * q + 1] = y1; dst[4 * q + 2] = y2;  \
                           dst[4 * q + 3] = y3;)                                                \
    }                                                                                           \
    ATTR static void NAME##_run(REAL *dst, const REAL *m, Py_ssize_t ms, Py_ssize_t n, REAL b,  \
                                REAL lo, REAL hi)                                               \
    {                                                                                           \
        NAME##_run6(dst, m, m + ms, m + 2 * ms, m + 3 * ms, m + 4 * ms, m + 5 * ms, n, b, lo,   \
                    hi);                                                                        \
    }

/* A pointwise (1x1) convolution computed directly, for layers too small for BLAS to reach its
 * rate (_infer.pointwise): y[o][p] = clamp(bias[o] + sum_k w[k][o] x[k][p]) for o < ob
 * (<= SQNXT_PW_OB output channels, one register block), p < n. w[o * wr + k] is output o's
 * weight of input k (SQNXT_PW_OB rows, zero past ob); x's rows are xs apart, y's ys apart. SQNXT_PW_OB x 3 vectors of outputs are
 * held in registers while all c inputs are added (12 of AVX2's and SSE's 16 registers, of
 * AVX-512's 32), then a vector at a time, then the last few outputs with the block's channels
 * in step (one vector op per input channel and output); the bias is the accumulators' start, the
 * clamp a pass over the block's rows while they are in L1. VEC as for the taps. */
#define SQNXT_PW_OB 4
#if defined(__GNUC__)
#define SQNXT_PW_BLOCKS(REAL, VEC, NV)                                                          \
    for (; q + NV * lanes <= n; q += NV * lanes) {                                              \
        VEC a[SQNXT_PW_OB][NV];                                                                 \
        _Pragma("GCC unroll 4") for (o = 0; o < SQNXT_PW_OB; o++)                               \
            _Pragma("GCC unroll 4") for (j = 0; j < NV; j++) a[o][j] = (VEC){0} + bias[o];      \
        for (k = 0; k < c; k++) {                                                               \
            const REAL *xk = x + k * xs + q;                                                    \
            VEC v[NV];                                                                          \
            _Pragma("GCC unroll 4") for (j = 0; j < NV; j++) v[j] = *(const VEC *)(xk + j * lanes); \
            _Pragma("GCC unroll 4") for (o = 0; o < SQNXT_PW_OB; o++) {                         \
                const REAL wo = w[o * wr + k];                                                  \
                _Pragma("GCC unroll 4") for (j = 0; j < NV; j++) a[o][j] += wo * v[j];          \
            }                                                                                   \
        }                                                                                       \
        for (o = 0; o < ob; o++)                                                                \
            _Pragma("GCC unroll 4") for (j = 0; j < NV; j++)                                    \
                *(VEC *)(y + o * ys + q + j * lanes) = a[o][j];                                 \
    }
#define SQNXT_PW_VECTORS(REAL, VEC)                                                             \
    {                                                                                           \
        enum { lanes = sizeof(VEC) / sizeof(REAL) };                                            \
        SQNXT_PW_BLOCKS(REAL, VEC, 3)                                                           \
        SQNXT_PW_BLOCKS(REAL, VEC, 1)                                                           \
    }
#else
#define SQNXT_PW_VECTORS(REAL, VEC)
#endif

#define SQNXT_DEFINE_PW(NAME, ATTR, REAL, VEC, CLAMP)                                           \
    ATTR static void NAME(REAL *restrict y, Py_ssize_t ys, Py_ssize_t ob,                       \
                          const REAL *restrict x, Py_ssize_t xs, Py_ssize_t c, Py_ssize_t n,    \
                          const REAL *restrict w, Py_ssize_t wr, const REAL *restrict bias,     \
                          REAL lo, REAL hi)                                                     \
    {                                                                                           \
        Py_ssize_t q = 0, k;                                                                    \
        int o, j;                                                                               \
        (void)j;                                                                                \
        SQNXT_PW_VECTORS(REAL, VEC)                                                             \
        for (; q < n; q += 16) { /* the last outputs, up to 16 at once, all channels in step */ \
            REAL acc[16][SQNXT_PW_OB];                                                          \
            const Py_ssize_t nt = n - q < 16 ? n - q : 16;                                      \
            Py_ssize_t t;                                                                       \
            for (t = 0; t < nt; t++)                                                            \
                for (o = 0; o < SQNXT_PW_OB; o++) acc[t][o] = bias[o];                          \
            for (k = 0; k < c; k++)                                                             \
                for (t = 0; t < nt; t++) {                                                      \
                    const REAL xv = x[k * xs + q + t];                                          \
                    for (o = 0; o < SQNXT_PW_OB; o++) acc[t][o] += w[o * wr + k] * xv;         \
                }                                                                               \
            for (o = 0; o < ob; o++)                                                            \
                for (t = 0; t < nt; t++) y[o * ys + q + t] = acc[t][o];                         \
        }                                                                                       \
        for (o = 0; o < ob; o++) CLAMP(y + o * ys, n, 0, lo, hi);                               \
    }

/* A convolution with few input channels (a stem) computed directly from phase planes
 * (_infer.phased_conv): acc[o * as + q] = sum over t < ntaps of w[b][t][o % SQNXT_PH_OB] *
 * base[offs[t] + q] for o < nb * SQNXT_PH_OB (b = o / SQNXT_PH_OB), q < n rounded up to whole
 * blocks of NV vectors (so the rows of acc are as >= that apart, and base has that much slack
 * after its last run; SQNXT_PH_RUN, a multiple of every clone's block, rounds both). Only the
 * outputs asked for are computed, give or take one block: rounding n itself to SQNXT_PH_RUN cost
 * the 7x7 stem of sqnxt23v5 4% of its time. As the depthwise taps, but each tap's run of inputs
 * is loaded once for a block of output channels: OBS channels x NV vectors of outputs are held
 * in registers while every tap is added (one load per vector and tap, one broadcast weight per
 * channel and tap). The taps of one
 * NV-vector stretch (at most a few hundred vectors) stay in L1 while every channel block is done,
 * so nothing like im2col's copy of the taps is made. w is laid out [b][t][SQNXT_PH_OB], zero past
 * the last channel. OBS and NV are the clone's (SQNXT_DEFINE_CLONE's last two arguments): 8 x 2,
 * 16 accumulators of AVX-512's 32 registers; 4 x 3, 12 of AVX2's and SSE's 16 (enough to cover
 * the multiply-add's latency on two pipes, with room for the loaded vectors and a weight).
 * SQNXT_PH_RUN is a multiple of every clone's NV vectors, in float and double (32, 24, 12; 16,
 * 12, 6). */
#define SQNXT_PH_OB 8
#define SQNXT_PH_RUN 96
#if defined(__GNUC__)
#define SQNXT_PH_BLOCKS(REAL, VEC, OBS, NV)                                                     \
    {                                                                                           \
        enum { lanes = sizeof(VEC) / sizeof(REAL) };                                            \
        Py_ssize_t q, b, t;                                                                     \
        int o, j, s;                                                                            \
        for (q = 0; q < n; q += NV * lanes)                                                     \
            for (b = 0; b < nb; b++)                                                            \
                for (s = 0; s < SQNXT_PH_OB; s += OBS) {                                        \
                    const REAL *wb = w + b * ntaps * SQNXT_PH_OB + s;                           \
                    VEC a[OBS][NV];                                                             \
                    _Pragma("GCC unroll 8") for (o = 0; o < OBS; o++)                           \
                        _Pragma("GCC unroll 4") for (j = 0; j < NV; j++) a[o][j] = (VEC){0};    \
                    for (t = 0; t < ntaps; t++) {                                               \
                        const REAL *x = base + offs[t] + q;                                     \
                        const REAL *wt = wb + t * SQNXT_PH_OB;                                  \
                        VEC v[NV];                                                              \
                        _Pragma("GCC unroll 4") for (j = 0; j < NV; j++)                        \
                            v[j] = *(const VEC *)(x + j * lanes);                               \
                        _Pragma("GCC unroll 8") for (o = 0; o < OBS; o++) {                     \
                            const REAL wo = wt[o];                                              \
                            _Pragma("GCC unroll 4") for (j = 0; j < NV; j++) a[o][j] += wo * v[j]; \
                        }                                                                       \
                    }                                                                           \
                    _Pragma("GCC unroll 8") for (o = 0; o < OBS; o++)                           \
                        _Pragma("GCC unroll 4") for (j = 0; j < NV; j++)                        \
                            *(VEC *)(acc + (b * SQNXT_PH_OB + s + o) * as + q + j * lanes) = a[o][j]; \
                }                                                                               \
    }
#else
#define SQNXT_PH_BLOCKS(REAL, VEC, OBS, NV) /* no vector extension: the scalar loop below */     \
    {                                                                                           \
        Py_ssize_t q, o, t;                                                                     \
        for (o = 0; o < nb * SQNXT_PH_OB; o++)                                                  \
            for (q = 0; q < n; q++) {                                                           \
                REAL a = 0;                                                                     \
                for (t = 0; t < ntaps; t++)                                                     \
                    a += w[((o / SQNXT_PH_OB) * ntaps + t) * SQNXT_PH_OB + o % SQNXT_PH_OB] *   \
                         base[offs[t] + q];                                                     \
                acc[o * as + q] = a;                                                            \
            }                                                                                   \
    }
#endif

#define SQNXT_DEFINE_PHASED(NAME, ATTR, REAL, VEC, OBS, NV)                                     \
    ATTR static void NAME(REAL *restrict acc, Py_ssize_t as, Py_ssize_t nb,                     \
                          const REAL *restrict base, const Py_ssize_t *restrict offs,           \
                          const REAL *restrict w, Py_ssize_t ntaps, Py_ssize_t n)               \
    SQNXT_PH_BLOCKS(REAL, VEC, OBS, NV)

/* The loops of one clone: NAME_SUFFIX for each, compiled with ATTR (a target attribute or
 * nothing), F32 / F64 its vector types. */
#define SQNXT_DEFINE_CLONE(SUFFIX, ATTR, F32, F64, PH_OBS, PH_NV)                               \
    SQNXT_DEFINE_TAPS(sqnxt_taps_f32_##SUFFIX, ATTR, float, F32)                                \
    SQNXT_DEFINE_TAPS(sqnxt_taps_f64_##SUFFIX, ATTR, double, F64)                               \
    SQNXT_DEFINE_CLAMP(sqnxt_clamp_f32_##SUFFIX, ATTR, float)                                   \
    SQNXT_DEFINE_CLAMP(sqnxt_clamp_f64_##SUFFIX, ATTR, double)                                  \
    SQNXT_DEFINE_CROP(sqnxt_crop_f32_##SUFFIX, ATTR, float)                                     \
    SQNXT_DEFINE_CROP(sqnxt_crop_f64_##SUFFIX, ATTR, double)                                    \
    SQNXT_DEFINE_GATHER(sqnxt_gather_f32_##SUFFIX, ATTR, float)                                 \
    SQNXT_DEFINE_GATHER(sqnxt_gather_f64_##SUFFIX, ATTR, double)                                 \
    SQNXT_DEFINE_WINO_IN(sqnxt_wino_in_f32_##SUFFIX, ATTR, float)                               \
    SQNXT_DEFINE_WINO_IN(sqnxt_wino_in_f64_##SUFFIX, ATTR, double)                              \
    SQNXT_DEFINE_WINO_OUT(sqnxt_wino_out_f32_##SUFFIX, ATTR, float)                             \
    SQNXT_DEFINE_WINO_OUT(sqnxt_wino_out_f64_##SUFFIX, ATTR, double)                            \
    SQNXT_DEFINE_PW(sqnxt_pw_f32_##SUFFIX, ATTR, float, F32, sqnxt_clamp_f32_##SUFFIX)          \
    SQNXT_DEFINE_PW(sqnxt_pw_f64_##SUFFIX, ATTR, double, F64, sqnxt_clamp_f64_##SUFFIX)          \
    SQNXT_DEFINE_PHASED(sqnxt_phased_f32_##SUFFIX, ATTR, float, F32, PH_OBS, PH_NV)             \
    SQNXT_DEFINE_PHASED(sqnxt_phased_f64_##SUFFIX, ATTR, double, F64, PH_OBS, PH_NV)             \
    SQNXT_DEFINE_MAXCOLS(sqnxt_maxcols_f32_##SUFFIX, ATTR, float)                                \
    SQNXT_DEFINE_MAXROWS(sqnxt_maxrows_f32_##SUFFIX, ATTR, float)                                \
    SQNXT_DEFINE_MAXROWS(sqnxt_maxrows_f64_##SUFFIX, ATTR, double)                               \
    SQNXT_DEFINE_MAXCOLS(sqnxt_maxcols_f64_##SUFFIX, ATTR, double)                               \
    SQNXT_DEFINE_DWI(sqnxt_dwi_f32_##SUFFIX, ATTR, float, F32)                                  \
    SQNXT_DEFINE_DWI(sqnxt_dwi_f64_##SUFFIX, ATTR, double, F64)

/* the vector blocks, then the outputs after the last whole block one at a time */
#define SQNXT_DEFINE_TAPS(NAME, ATTR, REAL, VEC)                                                \
    ATTR static void NAME(REAL *restrict dst, const REAL *restrict base,                        \
                          const Py_ssize_t *restrict offs, const REAL *restrict w,              \
                          Py_ssize_t ntaps, Py_ssize_t n)                                       \
    {                                                                                           \
        Py_ssize_t q = 0, t;                                                                    \
        SQNXT_TAPS_BLOCKS(REAL, VEC)                                                            \
        for (; q < n; q++) {                                                                    \
            REAL a = 0;                                                                         \
            for (t = 0; t < ntaps; t++) a += w[t] * base[offs[t] + q];                          \
            dst[q] = a;                                                                         \
        }                                                                                       \
    }

/* y[i] = min(max(y[i] + b, lo), hi): a product's epilogue (bias, then ReLU or ReLU6). */
#define SQNXT_DEFINE_CLAMP(NAME, ATTR, REAL)                                                    \
    ATTR static void NAME(REAL *restrict y, Py_ssize_t n, REAL b, REAL lo, REAL hi)             \
    {                                                                                           \
        Py_ssize_t i;                                                                           \
        for (i = 0; i < n; i++) {                                                               \
            REAL v = y[i] + b;                                                                  \
            v = v > lo ? v : lo;                                                                \
            y[i] = v < hi ? v : hi;                                                             \
        }                                                                                       \
    }

/* dst[r * ds + q] = min(max(src[r * ss + q] + b, lo), hi) for r < rows, q < n: sums computed with
 * spare columns (ss >= n) copied into their output rows with the epilogue, in one call per plane
 * or band rather than two per row. */
#define SQNXT_DEFINE_CROP(NAME, ATTR, REAL)                                                     \
    ATTR static void NAME(REAL *restrict dst, Py_ssize_t ds, const REAL *restrict src,          \
                          Py_ssize_t ss, Py_ssize_t rows, Py_ssize_t n, REAL b, REAL lo, REAL hi) \
    {                                                                                           \
        Py_ssize_t r, q;                                                                        \
        for (r = 0; r < rows; r++)                                                              \
            for (q = 0; q < n; q++) {                                                           \
                REAL v = src[r * ss + q] + b;                                                   \
                v = v > lo ? v : lo;                                                            \
                dst[r * ds + q] = v < hi ? v : hi;                                              \
            }                                                                                   \
    }

/* dst[k] = src[k * stride] for k < n: one column phase of a row (strided depthwise layers). */
#define SQNXT_DEFINE_GATHER(NAME, ATTR, REAL)                                                   \
    ATTR static void NAME(REAL *restrict dst, const REAL *restrict src, Py_ssize_t stride,      \
                          Py_ssize_t n)                                                         \
    {                                                                                           \
        Py_ssize_t k;                                                                           \
        if (stride == 2) /* the common case, as a constant stride the compiler can vectorise */ \
            for (k = 0; k < n; k++) dst[k] = src[2 * k];                                        \
        else                                                                                    \
            for (k = 0; k < n; k++) dst[k] = src[k * stride];                                   \
    }

/* dst[q] = max over r < rows of src[r * ss + q], for q < n (rows >= 1): a max pooling's window
 * rows reduced into one row, before its columns (below). */
#define SQNXT_DEFINE_MAXROWS(NAME, ATTR, REAL)                                                  \
    ATTR static void NAME(REAL *restrict dst, const REAL *restrict src, Py_ssize_t ss,          \
                          Py_ssize_t rows, Py_ssize_t n)                                        \
    {                                                                                           \
        Py_ssize_t q, r;                                                                        \
        for (q = 0; q < n; q++) dst[q] = src[q];                                                \
        for (r = 1; r < rows; r++)                                                              \
            for (q = 0; q < n; q++) {                                                           \
                const REAL v = src[r * ss + q];                                                 \
                dst[q] = v > dst[q] ? v : dst[q];                                               \
            }                                                                                   \
    }

/* dst[q] = max over j < k of row[q * stride + j], for q < n: the columns of a max pooling's
 * windows over a row already reduced over the window's rows (_infer.max_pool; the row holds -inf
 * where the window leaves the input). One pass over dst per tap j, so that the loop over q is the
 * inner one and vectorises (stride 1 and 2 as constants, through permutes at stride 2). */
#define SQNXT_DEFINE_MAXCOLS(NAME, ATTR, REAL)                                                  \
    ATTR static void NAME(REAL *restrict dst, const REAL *restrict row, Py_ssize_t n,           \
                          Py_ssize_t k, Py_ssize_t stride)                                      \
    {                                                                                           \
        Py_ssize_t q, j;                                                                        \
        if (stride == 2) {                                                                      \
            for (q = 0; q < n; q++) dst[q] = row[2 * q];                                        \
            for (j = 1; j < k; j++)                                                             \
                for (q = 0; q < n; q++) {                                                       \
                    const REAL v = row[2 * q + j];                                              \
                    dst[q] = v > dst[q] ? v : dst[q];                                           \
                }                                                                               \
        } else if (stride == 1) {                                                               \
            for (q = 0; q < n; q++) dst[q] = row[q];                                            \
            for (j = 1; j < k; j++)                                                             \
                for (q = 0; q < n; q++) {                                                       \
                    const REAL v = row[q + j];                                                  \
                    dst[q] = v > dst[q] ? v : dst[q];                                           \
                }                                                                               \
        } else {                                                                                \
            for (q = 0; q < n; q++) dst[q] = row[q * stride];                                   \
            for (j = 1; j < k; j++)                                                             \
                for (q = 0; q < n; q++) {                                                       \
                    const REAL v = row[q * stride + j];                                         \
                    dst[q] = v > dst[q] ? v : dst[q];                                           \
                }                                                                               \
        }                                                                                       \
    }

/* A depthwise convolution with the channels in the vector lanes (_infer.depthwise's interleaved
 * form, for small planes): planes c < nch of one image, x[c][h][w] -> out[c][ho][wo] =
 * clamp(bias[c] + sum over taps t = (i, j) of w[c * ntaps + t] * x[c][y*sh - top + i*dh][q*sw -
 * left + j*dw], lo, hi), the taps outside x left out. A block of as many channels as the clone's
 * vector has lanes is transposed into buf as [pixel][channel] (ONNX Runtime's NCHWc layout, made
 * here per layer), so that each tap of an output pixel is one vector load and one multiply-add;
 * the sums are transposed back with the bias and clamp. Transposes go 4 channels x 4 pixels at a
 * time through shuffles (sqnxt_tr4), the rest one element at a time. The input is not padded:
 * each output row sums the rows of taps inside x, and its columns whose taps all fall inside x
 * (most of them) go SQNXT_DWI_PX at a time, the others one at a time with their taps clipped.
 * No spare columns and no run padded to a vector: on a 7x7 plane the phase-plane form computes
 * 96 outputs for 49. Taps summed in order t = 0, 1, ... as everywhere. geo: h, w, kh, kw, sh, sw,
 * dh, dw, top, left, ho, wo. buf: SQNXT_DWI_SCRATCH(h * w, ho * wo, ntaps) elements. */
#define SQNXT_DWI_LANES 16   /* the widest clone's lanes (float32 on AVX-512): the scratch's unit */
#define SQNXT_DWI_PX 4       /* output pixels a register block computes */
#define SQNXT_DWI_SCRATCH(p, po, ntaps) (((p) + (po) + (ntaps) + 1) * SQNXT_DWI_LANES)

#if defined(__GNUC__)
typedef float sqnxt_v4f __attribute__((vector_size(16), aligned(4)));
typedef int sqnxt_v4i __attribute__((vector_size(16)));

/* d[k * ds + m] = s[m * ss + k] for k, m < 4: a 4x4 block transposed by two rounds of shuffles. */
static inline void sqnxt_tr4(float *d, Py_ssize_t ds, const float *s, Py_ssize_t ss)
{
    const sqnxt_v4f a = *(const sqnxt_v4f *)s, b = *(const sqnxt_v4f *)(s + ss);
    const sqnxt_v4f c = *(const sqnxt_v4f *)(s + 2 * ss), e = *(const sqnxt_v4f *)(s + 3 * ss);
    const sqnxt_v4f t0 = __builtin_shuffle(a, b, (sqnxt_v4i){0, 4, 1, 5});
    const sqnxt_v4f t1 = __builtin_shuffle(a, b, (sqnxt_v4i){2, 6, 3, 7});
    const sqnxt_v4f t2 = __builtin_shuffle(c, e, (sqnxt_v4i){0, 4, 1, 5});
    const sqnxt_v4f t3 = __builtin_shuffle(c, e, (sqnxt_v4i){2, 6, 3, 7});
    *(sqnxt_v4f *)d = __builtin_shuffle(t0, t2, (sqnxt_v4i){0, 1, 4, 5});
    *(sqnxt_v4f *)(d + ds) = __builtin_shuffle(t0, t2, (sqnxt_v4i){2, 3, 6, 7});
    *(sqnxt_v4f *)(d + 2 * ds) = __builtin_shuffle(t1, t3, (sqnxt_v4i){0, 1, 4, 5});
    *(sqnxt_v4f *)(d + 3 * ds) = __builtin_shuffle(t1, t3, (sqnxt_v4i){2, 3, 6, 7});
}
#define SQNXT_DWI_TR4(REAL) (sizeof(REAL) == 4)
#define SQNXT_TR4(d, ds, s, ss) sqnxt_tr4((float *)(d), ds, (const float *)(s), ss)
#else
#define SQNXT_DWI_TR4(REAL) 0
#define SQNXT_TR4(d, ds, s, ss)
#endif

/* The output pixels (r, q) for q0 <= q < q1 of a row whose taps rows i0 <= i < i1 lie inside x;
 * FULL: every tap column inside x, SQNXT_DWI_PX pixels at a time; else each pixel's columns
 * clipped. */
#if defined(__GNUC__)
#define SQNXT_DWI_FULL(REAL, VEC)                                                               \
    for (; q + SQNXT_DWI_PX <= q1; q += SQNXT_DWI_PX) {                                         \
        VEC a[SQNXT_DWI_PX];                                                                    \
        _Pragma("GCC unroll 4") for (k = 0; k < SQNXT_DWI_PX; k++) a[k] = (VEC){0};             \
        for (i = i0; i < i1; i++)                                                               \
            for (j = 0; j < kw; j++) {                                                          \
                const VEC wt = wv[i * kw + j];                                                  \
                const REAL *s = in + ((y0 + i * dh) * wd + q * sw - left + j * dw) * L;         \
                _Pragma("GCC unroll 4") for (k = 0; k < SQNXT_DWI_PX; k++)                      \
                    a[k] += wt * *(const VEC *)(s + k * sw * L);                                \
            }                                                                                   \
        _Pragma("GCC unroll 4") for (k = 0; k < SQNXT_DWI_PX; k++)                              \
            *(VEC *)(ob + (r * wo + q + k) * L) = a[k];                                         \
    }
#else
#define SQNXT_DWI_FULL(REAL, VEC)
#endif
#define SQNXT_DWI_CLIPPED(REAL, VEC)                                                            \
    for (; q < q1; q++) {                                                                       \
        const Py_ssize_t x0 = q * sw - left;                                                    \
        Py_ssize_t j0 = 0, j1 = kw;                                                             \
        VEC a = (VEC){0};                                                                       \
        while (j0 < kw && x0 + j0 * dw < 0) j0++;                                               \
        while (j1 > j0 && x0 + (j1 - 1) * dw >= wd) j1--;                                       \
        for (i = i0; i < i1; i++)                                                               \
            for (j = j0; j < j1; j++)                                                           \
                a += wv[i * kw + j] * *(const VEC *)(in + ((y0 + i * dh) * wd + x0 + j * dw) * L); \
        *(VEC *)(ob + (r * wo + q) * L) = a;                                                    \
    }

#define SQNXT_DEFINE_DWI(NAME, ATTR, REAL, VEC)                                                 \
    ATTR static void NAME(REAL *restrict out, const REAL *restrict x, const REAL *restrict w,   \
                          const REAL *restrict bias, Py_ssize_t nch, const Py_ssize_t *geo,     \
                          REAL lo, REAL hi, REAL *restrict buf)                                 \
    {                                                                                           \
        enum { L = sizeof(VEC) / sizeof(REAL) };                                                \
        const Py_ssize_t h = geo[0], wd = geo[1], kh = geo[2], kw = geo[3], sh = geo[4];        \
        const Py_ssize_t sw = geo[5], dh = geo[6], dw = geo[7], top = geo[8], left = geo[9];    \
        const Py_ssize_t ho = geo[10], wo = geo[11], ntaps = kh * kw, np = h * wd, npo = ho * wo; \
        /* the columns whose taps all fall inside x: x0 = q*sw - left >= 0, x0 + (kw-1)*dw < wd */ \
        Py_ssize_t qa = (left + sw - 1) / sw, qb = wd - 1 - (kw - 1) * dw + left;               \
        REAL *in = buf, *ob = buf + np * L, *wl = ob + npo * L;                                 \
        const VEC *wv = (const VEC *)wl;                                                        \
        Py_ssize_t cb, ch, p, r, q, q1, i, j, t, k;                                             \
        qb = qb < 0 ? 0 : qb / sw + 1;                                                          \
        qa = qa < wo ? qa : wo;                                                                 \
        qb = qb < qa ? qa : (qb < wo ? qb : wo);                                                \
        for (cb = 0; cb < nch; cb += L) {                                                       \
            const Py_ssize_t nc = nch - cb < L ? nch - cb : L;                                  \
            const REAL *src = x + cb * np;                                                      \
            if (nc < L) /* the lanes past the last channel: zero, their outputs not stored */  \
                memset(in, 0, np * L * sizeof(REAL));                                           \
            p = 0;                                                                              \
            if (SQNXT_DWI_TR4(REAL) && nc % 4 == 0)                                             \
                for (; p + 4 <= np; p += 4)                                                     \
                    for (ch = 0; ch < nc; ch += 4) SQNXT_TR4(in + p * L + ch, L, src + ch * np + p, np); \
            for (ch = 0; ch < nc; ch++)                                                         \
                for (q = p; q < np; q++) in[q * L + ch] = src[ch * np + q];                     \
            for (t = 0; t < ntaps; t++)                                                         \
                for (ch = 0; ch < L; ch++) wl[t * L + ch] = ch < nc ? w[(cb + ch) * ntaps + t] : 0; \
            for (r = 0; r < ho; r++) {                                                          \
                const Py_ssize_t y0 = r * sh - top;                                             \
                Py_ssize_t i0 = 0, i1 = kh;                                                     \
                while (i0 < kh && y0 + i0 * dh < 0) i0++;                                       \
                while (i1 > i0 && y0 + (i1 - 1) * dh >= h) i1--;                                \
                q = 0, q1 = qa;                                                                 \
                SQNXT_DWI_CLIPPED(REAL, VEC)                                                    \
                q1 = qb;                                                                        \
                SQNXT_DWI_FULL(REAL, VEC)                                                       \
                q1 = wo;                                                                        \
                SQNXT_DWI_CLIPPED(REAL, VEC)                                                    \
            }                                                                                   \
            /* back to [channel][pixel], as ob's [pixel][channel] blocks transposed */          \
            p = 0;                                                                              \
            if (SQNXT_DWI_TR4(REAL) && nc % 4 == 0)                                             \
                for (; p + 4 <= npo; p += 4)                                                    \
                    for (ch = 0; ch < nc; ch += 4) SQNXT_TR4(out + (cb + ch) * npo + p, npo, ob + p * L + ch, L); \
            for (ch = 0; ch < nc; ch++) {                                                       \
                REAL *dst = out + (cb + ch) * npo;                                              \
                const REAL b = bias ? bias[cb + ch] : 0;                                        \
                for (q = p; q < npo; q++) dst[q] = ob[q * L + ch];                              \
                for (q = 0; q < npo; q++) {                                                     \
                    REAL v = dst[q] + b;                                                        \
                    v = v > lo ? v : lo;                                                        \
                    dst[q] = v < hi ? v : hi;                                                   \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }

/* One clone's entry points, what _infer.pyx calls through. */
typedef struct {
    const char *name;
    void (*taps_f32)(float *, const float *, const Py_ssize_t *, const float *, Py_ssize_t, Py_ssize_t);
    void (*taps_f64)(double *, const double *, const Py_ssize_t *, const double *, Py_ssize_t, Py_ssize_t);
    void (*clamp_f32)(float *, Py_ssize_t, float, float, float);
    void (*clamp_f64)(double *, Py_ssize_t, double, double, double);
    void (*gather_f32)(float *, const float *, Py_ssize_t, Py_ssize_t);
    void (*gather_f64)(double *, const double *, Py_ssize_t, Py_ssize_t);
    void (*wino_in_lanes_f32)(float *, Py_ssize_t, const float *, Py_ssize_t, Py_ssize_t, Py_ssize_t);
    void (*wino_in_lanes_f64)(double *, Py_ssize_t, const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t);
    void (*wino_in_run_f32)(float *, Py_ssize_t, const float *, Py_ssize_t);
    void (*wino_in_run_f64)(double *, Py_ssize_t, const double *, Py_ssize_t);
    void (*wino_out_lanes_f32)(float *, Py_ssize_t, const float *, Py_ssize_t, Py_ssize_t, float, float, float);
    void (*wino_out_lanes_f64)(double *, Py_ssize_t, const double *, Py_ssize_t, Py_ssize_t, double, double, double);
    void (*wino_out_run_f32)(float *, const float *, Py_ssize_t, Py_ssize_t, float, float, float);
    void (*wino_out_run_f64)(double *, const double *, Py_ssize_t, Py_ssize_t, double, double, double);
    void (*pw_f32)(float *, Py_ssize_t, Py_ssize_t, const float *, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                   const float *, Py_ssize_t, const float *, float, float);
    void (*pw_f64)(double *, Py_ssize_t, Py_ssize_t, const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t,
                   const double *, Py_ssize_t, const double *, double, double);
    void (*phased_f32)(float *, Py_ssize_t, Py_ssize_t, const float *, const Py_ssize_t *, const float *,
                       Py_ssize_t, Py_ssize_t);
    void (*phased_f64)(double *, Py_ssize_t, Py_ssize_t, const double *, const Py_ssize_t *, const double *,
                       Py_ssize_t, Py_ssize_t);
    void (*maxcols_f32)(float *, const float *, Py_ssize_t, Py_ssize_t, Py_ssize_t);
    void (*maxcols_f64)(double *, const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t);
    void (*dwi_f32)(float *, const float *, const float *, const float *, Py_ssize_t, const Py_ssize_t *,
                    float, float, float *);
    void (*dwi_f64)(double *, const double *, const double *, const double *, Py_ssize_t, const Py_ssize_t *,
                    double, double, double *);
    void (*crop_f32)(float *, Py_ssize_t, const float *, Py_ssize_t, Py_ssize_t, Py_ssize_t, float, float, float);
    void (*crop_f64)(double *, Py_ssize_t, const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t, double, double,
                     double);
    void (*maxrows_f32)(float *, const float *, Py_ssize_t, Py_ssize_t, Py_ssize_t);
    void (*maxrows_f64)(double *, const double *, Py_ssize_t, Py_ssize_t, Py_ssize_t);
} sqnxt_simd_clone;

#define SQNXT_CLONE_ENTRY(NAME, SUFFIX)                                                         \
    {NAME, sqnxt_taps_f32_##SUFFIX, sqnxt_taps_f64_##SUFFIX, sqnxt_clamp_f32_##SUFFIX,          \
     sqnxt_clamp_f64_##SUFFIX, sqnxt_gather_f32_##SUFFIX, sqnxt_gather_f64_##SUFFIX,            \
     sqnxt_wino_in_f32_##SUFFIX##_lanes, sqnxt_wino_in_f64_##SUFFIX##_lanes,                     \
     sqnxt_wino_in_f32_##SUFFIX##_run, sqnxt_wino_in_f64_##SUFFIX##_run,                         \
     sqnxt_wino_out_f32_##SUFFIX##_lanes, sqnxt_wino_out_f64_##SUFFIX##_lanes,                   \
     sqnxt_wino_out_f32_##SUFFIX##_run, sqnxt_wino_out_f64_##SUFFIX##_run,                       \
     sqnxt_pw_f32_##SUFFIX, sqnxt_pw_f64_##SUFFIX, sqnxt_phased_f32_##SUFFIX,                    \
     sqnxt_phased_f64_##SUFFIX, sqnxt_maxcols_f32_##SUFFIX, sqnxt_maxcols_f64_##SUFFIX, \
     sqnxt_dwi_f32_##SUFFIX, sqnxt_dwi_f64_##SUFFIX, sqnxt_crop_f32_##SUFFIX, sqnxt_crop_f64_##SUFFIX, \
     sqnxt_maxrows_f32_##SUFFIX, sqnxt_maxrows_f64_##SUFFIX}

#if defined(SQNXT_X86_CLONES)
typedef float sqnxt_f32x16 __attribute__((vector_size(64), aligned(4)));
typedef double sqnxt_f64x8 __attribute__((vector_size(64), aligned(8)));
typedef float sqnxt_f32x8 __attribute__((vector_size(32), aligned(4)));
typedef double sqnxt_f64x4 __attribute__((vector_size(32), aligned(8)));
typedef float sqnxt_f32x4 __attribute__((vector_size(16), aligned(4)));
typedef double sqnxt_f64x2 __attribute__((vector_size(16), aligned(8)));
SQNXT_DEFINE_CLONE(v4, __attribute__((target("arch=x86-64-v4"))), sqnxt_f32x16, sqnxt_f64x8, 8, 2)
SQNXT_DEFINE_CLONE(v3, __attribute__((target("arch=x86-64-v3"))), sqnxt_f32x8, sqnxt_f64x4, 4, 3)
SQNXT_DEFINE_CLONE(base, , sqnxt_f32x4, sqnxt_f64x2, 4, 3)
/* best first; an entry runs where sqnxt_simd_supported says so */
static const sqnxt_simd_clone sqnxt_simd_clones[] = {
    SQNXT_CLONE_ENTRY("avx512", v4), SQNXT_CLONE_ENTRY("avx2", v3), SQNXT_CLONE_ENTRY("baseline", base)};

static int sqnxt_simd_supported(int i)
{
    __builtin_cpu_init();
    if (i == 0) return __builtin_cpu_supports("x86-64-v4");
    if (i == 1) return __builtin_cpu_supports("x86-64-v3");
    return 1;
}
#else
#if defined(__GNUC__)
typedef float sqnxt_f32xp __attribute__((vector_size(16), aligned(4)));
typedef double sqnxt_f64xp __attribute__((vector_size(16), aligned(8)));
#else
typedef float sqnxt_f32xp;
typedef double sqnxt_f64xp;
#endif
SQNXT_DEFINE_CLONE(portable, , sqnxt_f32xp, sqnxt_f64xp, 4, 3)
static const sqnxt_simd_clone sqnxt_simd_clones[] = {SQNXT_CLONE_ENTRY("portable", portable)};
static int sqnxt_simd_supported(int i) { (void)i; return 1; }
#endif

#define SQNXT_SIMD_NCLONES ((int)(sizeof(sqnxt_simd_clones) / sizeof(sqnxt_simd_clones[0])))

/* the clone in use: the best supported one until sqnxt_simd_select picks another */
static const sqnxt_simd_clone *sqnxt_simd = NULL;

static const char *sqnxt_simd_name(int i) { return i >= 0 && i < SQNXT_SIMD_NCLONES ? sqnxt_simd_clones[i].name : NULL; }

/* Use clone i: 0 if done, -1 if there is no clone i, -2 if this CPU cannot run it. */
static int sqnxt_simd_select(int i)
{
    if (i < 0 || i >= SQNXT_SIMD_NCLONES) return -1;
    if (!sqnxt_simd_supported(i)) return -2;
    sqnxt_simd = &sqnxt_simd_clones[i];
    return 0;
}

/* The best clone this CPU runs (the last is always supported). */
static int sqnxt_simd_best(void)
{
    int i = 0;
    while (!sqnxt_simd_supported(i)) i++;
    return i;
}

static inline void sqnxt_taps_f32(float *d, const float *b, const Py_ssize_t *o, const float *w, Py_ssize_t t, Py_ssize_t n) { sqnxt_simd->taps_f32(d, b, o, w, t, n); }
static inline void sqnxt_taps_f64(double *d, const double *b, const Py_ssize_t *o, const double *w, Py_ssize_t t, Py_ssize_t n) { sqnxt_simd->taps_f64(d, b, o, w, t, n); }
static inline void sqnxt_clamp_f32(float *y, Py_ssize_t n, float b, float lo, float hi) { sqnxt_simd->clamp_f32(y, n, b, lo, hi); }
static inline void sqnxt_clamp_f64(double *y, Py_ssize_t n, double b, double lo, double hi) { sqnxt_simd->clamp_f64(y, n, b, lo, hi); }
static inline void sqnxt_gather_f32(float *d, const float *s, Py_ssize_t st, Py_ssize_t n) { sqnxt_simd->gather_f32(d, s, st, n); }
static inline void sqnxt_gather_f64(double *d, const double *s, Py_ssize_t st, Py_ssize_t n) { sqnxt_simd->gather_f64(d, s, st, n); }
static inline void sqnxt_wino_in_lanes_f32(float *v, Py_ssize_t vs, const float *s, Py_ssize_t ps, Py_ssize_t ks, Py_ssize_t n) { sqnxt_simd->wino_in_lanes_f32(v, vs, s, ps, ks, n); }
static inline void sqnxt_wino_in_lanes_f64(double *v, Py_ssize_t vs, const double *s, Py_ssize_t ps, Py_ssize_t ks, Py_ssize_t n) { sqnxt_simd->wino_in_lanes_f64(v, vs, s, ps, ks, n); }
static inline void sqnxt_wino_in_run_f32(float *v, Py_ssize_t vs, const float *s, Py_ssize_t n) { sqnxt_simd->wino_in_run_f32(v, vs, s, n); }
static inline void sqnxt_wino_in_run_f64(double *v, Py_ssize_t vs, const double *s, Py_ssize_t n) { sqnxt_simd->wino_in_run_f64(v, vs, s, n); }
static inline void sqnxt_wino_out_lanes_f32(float *d, Py_ssize_t js, const float *m, Py_ssize_t ms, Py_ssize_t n, float b, float lo, float hi) { sqnxt_simd->wino_out_lanes_f32(d, js, m, ms, n, b, lo, hi); }
static inline void sqnxt_wino_out_lanes_f64(double *d, Py_ssize_t js, const double *m, Py_ssize_t ms, Py_ssize_t n, double b, double lo, double hi) { sqnxt_simd->wino_out_lanes_f64(d, js, m, ms, n, b, lo, hi); }
static inline void sqnxt_wino_out_run_f32(float *d, const float *m, Py_ssize_t ms, Py_ssize_t n, float b, float lo, float hi) { sqnxt_simd->wino_out_run_f32(d, m, ms, n, b, lo, hi); }
static inline void sqnxt_pw_f32(float *y, Py_ssize_t ys, Py_ssize_t ob, const float *x, Py_ssize_t xs, Py_ssize_t c, Py_ssize_t n, const float *w, Py_ssize_t wr, const float *b, float lo, float hi) { sqnxt_simd->pw_f32(y, ys, ob, x, xs, c, n, w, wr, b, lo, hi); }
static inline void sqnxt_pw_f64(double *y, Py_ssize_t ys, Py_ssize_t ob, const double *x, Py_ssize_t xs, Py_ssize_t c, Py_ssize_t n, const double *w, Py_ssize_t wr, const double *b, double lo, double hi) { sqnxt_simd->pw_f64(y, ys, ob, x, xs, c, n, w, wr, b, lo, hi); }
static inline void sqnxt_phased_f32(float *a, Py_ssize_t as, Py_ssize_t nb, const float *b, const Py_ssize_t *o, const float *w, Py_ssize_t t, Py_ssize_t n) { sqnxt_simd->phased_f32(a, as, nb, b, o, w, t, n); }
static inline void sqnxt_phased_f64(double *a, Py_ssize_t as, Py_ssize_t nb, const double *b, const Py_ssize_t *o, const double *w, Py_ssize_t t, Py_ssize_t n) { sqnxt_simd->phased_f64(a, as, nb, b, o, w, t, n); }
static inline void sqnxt_maxcols_f32(float *d, const float *r, Py_ssize_t n, Py_ssize_t k, Py_ssize_t s) { sqnxt_simd->maxcols_f32(d, r, n, k, s); }
static inline void sqnxt_maxcols_f64(double *d, const double *r, Py_ssize_t n, Py_ssize_t k, Py_ssize_t s) { sqnxt_simd->maxcols_f64(d, r, n, k, s); }
static inline void sqnxt_dwi_f32(float *o, const float *x, const float *w, const float *b, Py_ssize_t n, const Py_ssize_t *g, float lo, float hi, float *buf) { sqnxt_simd->dwi_f32(o, x, w, b, n, g, lo, hi, buf); }
static inline void sqnxt_dwi_f64(double *o, const double *x, const double *w, const double *b, Py_ssize_t n, const Py_ssize_t *g, double lo, double hi, double *buf) { sqnxt_simd->dwi_f64(o, x, w, b, n, g, lo, hi, buf); }
static inline void sqnxt_crop_f32(float *d, Py_ssize_t ds, const float *s, Py_ssize_t ss, Py_ssize_t r, Py_ssize_t n, float b, float lo, float hi) { sqnxt_simd->crop_f32(d, ds, s, ss, r, n, b, lo, hi); }
static inline void sqnxt_crop_f64(double *d, Py_ssize_t ds, const double *s, Py_ssize_t ss, Py_ssize_t r, Py_ssize_t n, double b, double lo, double hi) { sqnxt_simd->crop_f64(d, ds, s, ss, r, n, b, lo, hi); }
static inline void sqnxt_maxrows_f32(float *d, const float *s, Py_ssize_t ss, Py_ssize_t r, Py_ssize_t n) { sqnxt_simd->maxrows_f32(d, s, ss, r, n); }
static inline void sqnxt_maxrows_f64(double *d, const double *s, Py_ssize_t ss, Py_ssize_t r, Py_ssize_t n) { sqnxt_simd->maxrows_f64(d, s, ss, r, n); }
static inline void sqnxt_wino_out_run_f64(double *d, const double *m, Py_ssize_t ms, Py_ssize_t n, double b, double lo, double hi) { sqnxt_simd->wino_out_run_f64(d, m, ms, n, b, lo, hi); }

#endif
