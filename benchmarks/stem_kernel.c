/* The phased stem kernel's arithmetic rate alone, beside the other register layout a direct
 * convolution could use (docs/inference-speed.md, fifth round).
 *
 * The engine's kernel (_infer_simd.h, SQNXT_DEFINE_PHASED) holds 8 output channels x 2 vectors of
 * consecutive outputs in registers and broadcasts a weight per channel and tap (AVX-512; 4 x 3
 * in AVX2). onnxruntime's NCHWc convolutions hold outputs with the channels in the lanes: a few
 * output positions x 4 vectors of 16 channels, an input value broadcast per position and tap,
 * four weight vectors loaded per tap. This program times both on sqnxt23v5_w1's stem geometry
 * (3 input channels, 7x7 taps at stride 2 from 2x2 phase planes 113 wide, 64 output channels,
 * a band of 9 rows, 1,017 outputs) with the data in cache, so that only the instruction mix is
 * measured: if the layouts differ, the stem's register layout is worth changing; if not, what the
 * stem loses inside a pass is elsewhere (the band's epilogue, memory).
 *
 *   gcc -O3 -I"$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')" \
 *       -Isqnxt_engine/functional benchmarks/stem_kernel.c -o /tmp/stem_kernel && /tmp/stem_kernel
 *
 * Prints GMAC/s, best of 300 calls, three times each, for the AVX-512 clone (if the CPU runs it)
 * and the AVX2 clone, and the channels-in-lanes layout built for each. */
#include "_infer_simd.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { C = 3, K = 7, O = 64, WQ = 113, HQ = 114, NPH = 4, N = 9 * WQ, NTAPS = C * K * K };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* acc[q * O + o] = sum over taps of w[t * O + o] * base[offs[t] + q], q < n rounded up to P:
 * P positions x F vectors of L channels in registers, O / (F * L) groups of channels one after
 * the other (AVX-512: 6 x 4 = 24 of its 32 registers, one group; AVX2: 3 x 4 = 12 of its 16, two
 * groups of 32 channels). */
#define CHANNEL_LANES(NAME, ATTR, VEC, L, P, F)                                                 \
    ATTR static void NAME(float *restrict acc, const float *restrict base,                      \
                          const Py_ssize_t *restrict offs, const float *restrict w, Py_ssize_t n) \
    {                                                                                           \
        Py_ssize_t q, t;                                                                        \
        int p, f, g;                                                                            \
        for (g = 0; g < O; g += F * L)                                                          \
            for (q = 0; q < n; q += P) {                                                        \
                VEC a[P][F];                                                                    \
                _Pragma("GCC unroll 8") for (p = 0; p < P; p++)                                 \
                    _Pragma("GCC unroll 8") for (f = 0; f < F; f++) a[p][f] = (VEC){0};         \
                for (t = 0; t < NTAPS; t++) {                                                   \
                    const float *x = base + offs[t] + q;                                        \
                    VEC wv[F];                                                                  \
                    _Pragma("GCC unroll 8") for (f = 0; f < F; f++)                             \
                        wv[f] = *(const VEC *)(w + t * O + g + f * L);                          \
                    _Pragma("GCC unroll 8") for (p = 0; p < P; p++) {                           \
                        const float xv = x[p];                                                  \
                        _Pragma("GCC unroll 8") for (f = 0; f < F; f++) a[p][f] += xv * wv[f];  \
                    }                                                                           \
                }                                                                               \
                _Pragma("GCC unroll 8") for (p = 0; p < P; p++)                                 \
                    _Pragma("GCC unroll 8") for (f = 0; f < F; f++)                             \
                        *(VEC *)(acc + (q + p) * O + g + f * L) = a[p][f];                      \
            }                                                                                   \
    }
CHANNEL_LANES(lanes_v4, __attribute__((target("arch=x86-64-v4"))), sqnxt_f32x16, 16, 6, 4)
CHANNEL_LANES(lanes_v3, __attribute__((target("arch=x86-64-v3"))), sqnxt_f32x8, 8, 3, 4)

typedef void (*engine_kernel)(float *, Py_ssize_t, Py_ssize_t, const float *, const Py_ssize_t *,
                              const float *, Py_ssize_t, Py_ssize_t);
typedef void (*lanes_kernel)(float *, const float *, const Py_ssize_t *, const float *, Py_ssize_t);

static double best_rate(engine_kernel e, lanes_kernel l, float *acc, const float *base,
                        const Py_ssize_t *offs, const float *w)
{
    double best = 1e30;
    for (int r = 0; r < 300; r++) {
        double t0 = now();
        if (e) e(acc, 1024, O / SQNXT_PH_OB, base, offs, w, NTAPS, N);
        else l(acc, base, offs, w, N);
        double d = now() - t0;
        if (d < best) best = d;
    }
    return (double)O * NTAPS * N / best * 1e-9;
}

int main(void)
{
    float *base = aligned_alloc(64, sizeof(float) * C * NPH * WQ * HQ + 4096);
    float *w = aligned_alloc(64, sizeof(float) * NTAPS * O);
    float *acc = aligned_alloc(64, sizeof(float) * O * 1088);
    Py_ssize_t offs[NTAPS];
    for (int i = 0; i < C * NPH * WQ * HQ + 1024; i++) base[i] = (float)(i % 13) * 0.1f;
    for (int i = 0; i < NTAPS * O; i++) w[i] = (float)(i % 7) * 0.01f;
    for (int c = 0; c < C; c++)   /* tap (c, i, j) of a stride-2 kernel: phase (i % 2, j % 2) */
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++)
                offs[(c * K + i) * K + j] = (c * NPH + (i % 2) * 2 + j % 2) * WQ * HQ + (i / 2) * WQ + j / 2;
    __builtin_cpu_init();
    for (int rep = 0; rep < 3; rep++) {
        if (__builtin_cpu_supports("x86-64-v4"))
            printf("avx512: engine (8 channels x 2 vectors) %.1f GMAC/s, channels in lanes (6 x 4) %.1f\n",
                   best_rate(sqnxt_phased_f32_v4, NULL, acc, base, offs, w),
                   best_rate(NULL, lanes_v4, acc, base, offs, w));
        if (__builtin_cpu_supports("x86-64-v3"))
            printf("avx2:   engine (4 channels x 3 vectors) %.1f GMAC/s, channels in lanes (3 x 4, twice) %.1f\n",
                   best_rate(sqnxt_phased_f32_v3, NULL, acc, base, offs, w),
                   best_rate(NULL, lanes_v3, acc, base, offs, w));
    }
    return 0;
}
