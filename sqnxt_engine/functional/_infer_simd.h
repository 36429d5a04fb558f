/* The inner loops of _infer.pyx (beside this file) that decide its speed, in C so that each can be compiled
 * more than once: GCC's target_clones builds an AVX-512, an AVX2 (x86-64-v3) and a baseline copy
 * and picks one when the module loads, by what the CPU has. The package is built with plain -O3
 * (the baseline is SSE2 on x86-64), so without this the loops would run 4 floats wide on CPUs that
 * do 16. Other compilers and architectures get the one portable copy.
 *
 * Floating point: the clones may contract a * b + c into one fused multiply-add (GCC's default for
 * GNU C), so results can differ from the NumPy reference in the last bit; the tests compare within
 * tolerance, as for every compiled path. No other reassociation: each output sums its taps in
 * order t = 0, 1, ..., as the reference does.
 */
#ifndef SQNXT_INFER_SIMD_H
#define SQNXT_INFER_SIMD_H

#include <Python.h>  /* Py_ssize_t, as the Cython declarations use */

/* target_clones dispatches through an ifunc, which needs glibc */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && __GNUC__ >= 12 && defined(__GLIBC__)
#define SQNXT_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SQNXT_CLONES
#endif

/* dst[q] = sum over t < ntaps of w[t] * base[offs[t] + q], for q < n.
 *
 * A depthwise convolution laid out so that every tap is one contiguous run (see _infer.depthwise).
 * Outputs go in blocks of two 64-byte vectors held in registers while all taps are added: one
 * load per tap and output instead of the load, load and store of accumulating tap by tap into
 * memory. Written with GCC's vector extension (GCC and Clang): left to itself, GCC unrolls the
 * tap loop and jams it into a scalar loop over the block. VEC is the unaligned vector type. */
#if defined(__GNUC__)
typedef float sqnxt_vf32 __attribute__((vector_size(64), aligned(4)));
typedef double sqnxt_vf64 __attribute__((vector_size(64), aligned(8)));
#define SQNXT_TAPS_BLOCKS(REAL, VEC)                                                            \
    {                                                                                           \
        const Py_ssize_t lanes = sizeof(VEC) / sizeof(REAL);                                    \
        for (; q + 2 * lanes <= n; q += 2 * lanes) {                                            \
            VEC a0 = {0}, a1 = {0};                                                             \
            for (t = 0; t < ntaps; t++) {                                                       \
                const REAL *s = base + offs[t] + q;                                             \
                a0 += w[t] * *(const VEC *)s;                                                   \
                a1 += w[t] * *(const VEC *)(s + lanes);                                         \
            }                                                                                   \
            *(VEC *)(dst + q) = a0;                                                             \
            *(VEC *)(dst + q + lanes) = a1;                                                     \
        }                                                                                       \
    }
#else
#define SQNXT_TAPS_BLOCKS(REAL, VEC) /* no vector extension: the scalar loop does every output */
#endif
/* the vector blocks, then the outputs after the last whole block one at a time */
#define SQNXT_DEFINE_TAPS(NAME, REAL, VEC)                                                      \
    SQNXT_CLONES static void NAME(REAL *restrict dst, const REAL *restrict base,                \
                                  const Py_ssize_t *restrict offs, const REAL *restrict w,      \
                                  Py_ssize_t ntaps, Py_ssize_t n)                               \
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
#define SQNXT_DEFINE_CLAMP(NAME, REAL)                                                          \
    SQNXT_CLONES static void NAME(REAL *restrict y, Py_ssize_t n, REAL b, REAL lo, REAL hi)       \
    {                                                                                           \
        Py_ssize_t i;                                                                            \
        for (i = 0; i < n; i++) {                                                               \
            REAL v = y[i] + b;                                                                  \
            v = v > lo ? v : lo;                                                                \
            y[i] = v < hi ? v : hi;                                                             \
        }                                                                                       \
    }

/* dst[k] = src[k * stride] for k < n: one column phase of a row (strided depthwise layers). */
#define SQNXT_DEFINE_GATHER(NAME, REAL)                                                         \
    SQNXT_CLONES static void NAME(REAL *restrict dst, const REAL *restrict src, Py_ssize_t stride, \
                                  Py_ssize_t n)                                                 \
    {                                                                                           \
        Py_ssize_t k;                                                                           \
        if (stride == 2) /* the common case, as a constant stride the compiler can vectorise */ \
            for (k = 0; k < n; k++) dst[k] = src[2 * k];                                        \
        else                                                                                    \
            for (k = 0; k < n; k++) dst[k] = src[k * stride];                                   \
    }

SQNXT_DEFINE_TAPS(sqnxt_taps_f32, float, sqnxt_vf32)
SQNXT_DEFINE_TAPS(sqnxt_taps_f64, double, sqnxt_vf64)
SQNXT_DEFINE_CLAMP(sqnxt_clamp_f32, float)
SQNXT_DEFINE_CLAMP(sqnxt_clamp_f64, double)
SQNXT_DEFINE_GATHER(sqnxt_gather_f32, float)
SQNXT_DEFINE_GATHER(sqnxt_gather_f64, double)

#endif
