/*
 * test_vec_dot.c - CPU dot-product kernels (engine/cpu/vec_dot.h) and the
 * float row helpers (engine/cpu/vec_f32.h).
 *
 * For every weight type and several row lengths (odd block counts included):
 *   - the SIMD activation quantizer writes the same bytes as the scalar one;
 *   - every SIMD kernel this CPU runs matches the scalar reference within a
 *     float-summation-order bound;
 *   - the scalar kernel matches dot(dequantized weights, dequantized
 *     activations) computed in double;
 * on weights from the quantizer and on random raw blocks (every bit
 * pattern, random scales). Also: fp16 conversions against the CPU's F16C
 * (all 65536 halves, and specials/random floats the other way), the float
 * helpers, and ns_cpu_act_row_size. Prints a small speed comparison.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fp16.h"
#include "ns_test.h"
#include "ns_types.h"
#include "quant.h"
#include "quant_blocks.h"
#include "cpu/vec_dot.h"
#include "cpu/vec_f32.h"

static uint64_t g_rng = 0x243f6a8885a308d3ull;

static uint64_t rnd64(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static double rnd_u(void) {
    return ((double)(rnd64() >> 11) + 0.5) / 9007199254740992.0;
}

static float rnd_normal(void) {
    return (float)(sqrt(-2.0 * log(rnd_u())) * cos(6.283185307179586 * rnd_u()));
}

static const ns_type k_types[] = {NS_TYPE_F32,  NS_TYPE_F16,  NS_TYPE_BF16, NS_TYPE_Q4_0,   NS_TYPE_Q4_1,
                                  NS_TYPE_Q5_0, NS_TYPE_Q5_1, NS_TYPE_Q8_0, NS_TYPE_IQ4_NL, NS_TYPE_Q2_K,
                                  NS_TYPE_Q3_K, NS_TYPE_Q4_K, NS_TYPE_Q5_K, NS_TYPE_Q6_K,   NS_TYPE_IQ4_XS};
#define N_TYPES (sizeof(k_types) / sizeof(k_types[0]))

static void put_f16(uint8_t *p, float v) {
    const uint16_t h = ns_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

/* Random raw blocks: random bytes, then every fp16 scale field set to a
 * sane random value (so no NaN/Inf). Float types get random floats. */
static void random_blocks(ns_type t, uint8_t *w, int64_t n, const float *floats) {
    const ns_type_traits *tr = ns_type_get(t);
    if (tr->blck_size == 1) {
        ASSERT_OK(ns_quantize_row(t, floats, w, n));
        return;
    }
    const size_t bytes = ns_type_row_size(t, n);
    for (size_t i = 0; i < bytes; i++) {
        w[i] = (uint8_t)rnd64();
    }
    for (int64_t b = 0; b < n / tr->blck_size; b++) {
        uint8_t *blk = w + (size_t)b * tr->type_size;
        const float d = (float)(0.001 + 0.02 * rnd_u()), m = (float)(0.05 * (rnd_u() - 0.5));
        switch (t) {
        case NS_TYPE_Q4_1:
        case NS_TYPE_Q5_1:
            put_f16(blk, d);
            put_f16(blk + 2, m);
            break;
        case NS_TYPE_Q4_K:
        case NS_TYPE_Q5_K:
            put_f16(blk, d);
            put_f16(blk + 2, fabsf(m));
            break;
        case NS_TYPE_Q2_K:
            put_f16(blk + offsetof(ns_block_q2_K, d), d);
            put_f16(blk + offsetof(ns_block_q2_K, dmin), fabsf(m));
            break;
        case NS_TYPE_Q3_K:
            put_f16(blk + offsetof(ns_block_q3_K, d), d);
            break;
        case NS_TYPE_Q6_K:
            put_f16(blk + offsetof(ns_block_q6_K, d), d);
            break;
        default: /* Q4_0, Q5_0, Q8_0, IQ4_NL, IQ4_XS: d first */
            put_f16(blk, d);
            break;
        }
    }
}

/* Sum over Q8_1 blocks of |m_w * s_a|: the offset term, whose activation
 * sum is stored in fp16 (relative error up to 2^-11). */
static double offset_term_abs(ns_type t, const uint8_t *w, const uint8_t *a, int64_t n) {
    if (t != NS_TYPE_Q4_1 && t != NS_TYPE_Q5_1) {
        return 0;
    }
    double sum = 0;
    const size_t wsz = ns_type_get(t)->type_size;
    for (int64_t b = 0; b < n / 32; b++) {
        uint16_t m, s;
        memcpy(&m, w + (size_t)b * wsz + 2, 2);
        memcpy(&s, a + (size_t)b * sizeof(ns_block_q8_1) + 2, 2);
        sum += fabs((double)ns_fp16_to_fp32(m) * ns_fp16_to_fp32(s));
    }
    return sum;
}

static int g_checks;

static void check_row(ns_type t, int64_t n, const uint8_t *w, const float *act, float *wdeq, float *adeq, uint8_t *qa,
                      uint8_t *qa2, const char *what) {
    const char *name = ns_type_name(t);
    const ns_vec_dot_traits *ref = ns_cpu_vec_dot_get_scalar(t);
    ASSERT_TRUE(ref != NULL);
    const size_t act_bytes = ns_cpu_act_row_size(t, n);
    ASSERT_EQ(act_bytes, ns_type_row_size(ref->act_type, n));

    ref->from_float(act, qa, n);
    float s_ref = 0;
    ref->vec_dot(n, &s_ref, w, qa);

    /* Scalar kernel vs double dot of the dequantized operands. */
    ASSERT_OK(ns_dequantize_row(t, w, wdeq, n));
    ASSERT_OK(ns_dequantize_row(ref->act_type, qa, adeq, n));
    double exact = 0, mag = 0;
    for (int64_t i = 0; i < n; i++) {
        exact += (double)wdeq[i] * adeq[i];
        mag += fabs((double)wdeq[i] * adeq[i]);
    }
    const double tol_ref = 2e-6 * mag + 1e-3 * offset_term_abs(t, w, qa, n) + 1e-30;
    if (!(fabs((double)s_ref - exact) <= tol_ref)) {
        NS_FAIL("%s n=%lld %s: scalar dot %.9g vs exact %.9g (diff %.3g, tol %.3g)", name, (long long)n, what,
                (double)s_ref, exact, fabs((double)s_ref - exact), tol_ref);
    }

    /* Every SIMD variant vs the scalar reference. */
    for (int isa = NS_CPU_ISA_SCALAR + 1; isa < NS_CPU_ISA_COUNT; isa++) {
        const ns_vec_dot_traits *v = ns_cpu_vec_dot_get_isa(t, (ns_cpu_isa)isa);
        if (v == NULL) {
            continue;
        }
        ASSERT_EQ(v->act_type, ref->act_type);
        v->from_float(act, qa2, n);
        if (memcmp(qa, qa2, act_bytes) != 0) {
            size_t k = 0;
            while (qa[k] == qa2[k]) {
                k++;
            }
            NS_FAIL("%s n=%lld: %s activation quantizer differs from scalar at byte %zu (%d vs %d)", name, (long long)n,
                    ns_cpu_isa_name((ns_cpu_isa)isa), k, qa2[k], qa[k]);
        }
        float s = 0;
        v->vec_dot(n, &s, w, qa);
        const double tol = 2e-6 * mag + 1e-30;
        if (!(fabs((double)s - s_ref) <= tol)) {
            NS_FAIL("%s n=%lld %s: %s dot %.9g vs scalar %.9g (diff %.3g, tol %.3g)", name, (long long)n, what,
                    ns_cpu_isa_name((ns_cpu_isa)isa), (double)s, (double)s_ref, fabs((double)s - s_ref), tol);
        }
    }
    /* The dispatcher returns a working table too. */
    const ns_vec_dot_traits *best = ns_cpu_vec_dot_get(t);
    ASSERT_TRUE(best != NULL);
    float s_best = 0;
    best->vec_dot(n, &s_best, w, qa);
    ASSERT_TRUE(fabs((double)s_best - s_ref) <= 2e-6 * mag + 1e-30);
    g_checks++;
}

static void test_dots(void) {
    enum { NMAX = 4096 + 256 };
    static float wf[NMAX], act[NMAX], wdeq[NMAX], adeq[NMAX];
    static uint8_t w[NMAX * 4], qa[NMAX * 4], qa2[NMAX * 4];
    const int64_t lens_32[] = {32, 96, 160, 512, 4096};
    const int64_t lens_256[] = {256, 768, 4096, 4352};
    const int64_t lens_1[] = {1, 7, 8, 33, 100, 4096};
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const ns_type t = k_types[ti];
        const uint32_t blck = ns_type_get(t)->blck_size;
        const ns_vec_dot_traits *ref = ns_cpu_vec_dot_get_scalar(t);
        const uint32_t act_blck = ns_type_get(ref->act_type)->blck_size;
        const int64_t *lens = blck == 1 ? lens_1 : act_blck == 32 ? lens_32 : lens_256;
        const size_t n_lens = blck == 1 ? 6 : act_blck == 32 ? 5 : 4;
        for (size_t li = 0; li < n_lens; li++) {
            const int64_t n = lens[li];
            for (int rep = 0; rep < 3; rep++) {
                for (int64_t i = 0; i < n; i++) {
                    wf[i] = rnd_normal() * (rep == 2 ? 1e-3f : 1.0f);
                    act[i] = rnd_normal() * (rep == 1 ? 30.0f : 1.0f);
                }
                if (rep == 1) {
                    wf[n / 2] = 40.0f;
                    act[n / 3] = -500.0f;
                }
                ASSERT_OK(ns_quantize_row(t, wf, w, n));
                check_row(t, n, w, act, wdeq, adeq, qa, qa2, "quantized");
                random_blocks(t, w, n, wf);
                check_row(t, n, w, act, wdeq, adeq, qa, qa2, "random blocks");
            }
        }
        /* An all-zero activation row dots to exactly 0. */
        memset(act, 0, sizeof(act));
        const int64_t n = blck == 1 ? 64 : 256;
        ASSERT_OK(ns_quantize_row(t, wf, w, n));
        ref->from_float(act, qa, n);
        float s = 1;
        ns_cpu_vec_dot_get(t)->vec_dot(n, &s, w, qa);
        ASSERT_TRUE(s == 0.0f);
    }
    printf("vec_dot: %d row checks passed (best isa: %s)\n", g_checks, ns_cpu_isa_name(ns_cpu_isa_best()));
}

static void test_traits(void) {
    ASSERT_EQ(ns_cpu_act_row_size(NS_TYPE_Q4_K, 4096), 16 * 292);
    ASSERT_EQ(ns_cpu_act_row_size(NS_TYPE_Q4_0, 4096), 128 * 34);
    ASSERT_EQ(ns_cpu_act_row_size(NS_TYPE_Q5_1, 4096), 128 * 36);
    ASSERT_EQ(ns_cpu_act_row_size(NS_TYPE_F16, 100), 400);
    ASSERT_EQ(ns_cpu_act_row_size(NS_TYPE_Q4_K, 100), 0);
    ASSERT_EQ(ns_cpu_act_row_size(NS_TYPE_IQ2_XXS, 256), 0);
    const uint32_t no_dot[] = {NS_TYPE_IQ2_XXS, NS_TYPE_TQ1_0, NS_TYPE_MXFP4, NS_TYPE_Q8_K, NS_TYPE_Q8_1, 4, 999};
    for (size_t i = 0; i < sizeof(no_dot) / sizeof(no_dot[0]); i++) {
        ASSERT_TRUE(ns_cpu_vec_dot_get((ns_type)no_dot[i]) == NULL);
        ASSERT_TRUE(ns_cpu_vec_dot_get_scalar((ns_type)no_dot[i]) == NULL);
        ASSERT_TRUE(ns_cpu_vec_dot_get_isa((ns_type)no_dot[i], NS_CPU_ISA_AVX2) == NULL);
    }
    for (size_t ti = 0; ti < N_TYPES; ti++) {
        const ns_vec_dot_traits *t = ns_cpu_vec_dot_get_scalar(k_types[ti]);
        ASSERT_TRUE(t != NULL && t->from_float != NULL && t->vec_dot != NULL);
        const ns_type at = t->act_type;
        ASSERT_TRUE(at == NS_TYPE_F32 || at == NS_TYPE_Q8_0 || at == NS_TYPE_Q8_1 || at == NS_TYPE_Q8_K);
    }
    ASSERT_EQ(ns_cpu_vec_dot_get_scalar(NS_TYPE_Q4_K)->act_type, NS_TYPE_Q8_K);
    ASSERT_EQ(ns_cpu_vec_dot_get_scalar(NS_TYPE_IQ4_XS)->act_type, NS_TYPE_Q8_K);
    ASSERT_EQ(ns_cpu_vec_dot_get_scalar(NS_TYPE_Q4_1)->act_type, NS_TYPE_Q8_1);
    ASSERT_EQ(ns_cpu_vec_dot_get_scalar(NS_TYPE_IQ4_NL)->act_type, NS_TYPE_Q8_0);
}

/* fp16.h against the CPU's F16C instructions (via the SIMD row helpers). */
static void test_fp16_hw(void) {
    if (ns_cpu_isa_best() < NS_CPU_ISA_AVX2) {
        printf("fp16: no F16C here, hardware comparison skipped\n");
        return;
    }
    static uint16_t h[65536], h2[65536];
    static float f[65536], f2[65536];
    for (int i = 0; i < 65536; i++) {
        h[i] = (uint16_t)i;
    }
    ns_cpu_f16_to_f32_isa(f, h, 65536, true);
    for (int i = 0; i < 65536; i++) {
        const float mine = ns_fp16_to_fp32(h[i]);
        if (memcmp(&mine, &f[i], 4) != 0) {
            NS_FAIL("fp16 0x%04x: ns_fp16_to_fp32 %.9g vs F16C %.9g", i, (double)mine, (double)f[i]);
        }
    }
    /* float -> half: specials, every rounding boundary region, random bits. */
    int k = 0;
    const float specials[] = {0.0f,         -0.0f,         65504.0f, 65519.99f,  65520.0f,  65536.0f,      1e10f,
                              INFINITY,     -INFINITY,     NAN,      5.96e-8f,   2.98e-8f,  2.9802322e-8f, 1e-8f,
                              6.097555e-5f, 6.1035156e-5f, 1.0f,     1.0004883f, 1.0009766f};
    for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]); i++) {
        f[k++] = specials[i];
    }
    while (k < 65536) {
        uint32_t u = (uint32_t)rnd64();
        if (k % 2) { /* concentrate on the half range, incl. exact ties */
            u = (u & 0x80000000u) | ((uint32_t)(0x33000000u + (rnd64() % 0x15000000u)) & 0x7fffffffu);
            if (k % 4 == 1) {
                u = (u & ~0x1fffu) | 0x1000u; /* a tie at the fp16 rounding point */
            }
        }
        memcpy(&f[k++], &u, 4);
    }
    ns_cpu_f32_to_f16_isa(h2, f, 65536, true);
    for (int i = 0; i < 65536; i++) {
        const uint16_t mine = ns_fp32_to_fp16(f[i]);
        if (mine != h2[i]) {
            uint32_t u;
            memcpy(&u, &f[i], 4);
            NS_FAIL("float 0x%08x (%.9g): ns_fp32_to_fp16 0x%04x vs F16C 0x%04x", u, (double)f[i], mine, h2[i]);
        }
    }
    /* Scalar row helpers give the same bits. */
    ns_cpu_f32_to_f16_isa(h, f, 65536, false);
    ASSERT_TRUE(memcmp(h, h2, sizeof(h)) == 0);
    ns_cpu_f16_to_f32_isa(f2, h2, 65536, false);
    ns_cpu_f16_to_f32_isa(f, h2, 65536, true);
    ASSERT_TRUE(memcmp(f, f2, sizeof(f)) == 0);
    printf("fp16: conversions match F16C (65536 halves, 65536 floats)\n");
}

static void test_f32_helpers(void) {
    enum { NN = 1031 };
    static float a[NN], b[NN], y1[NN], y2[NN];
    static uint16_t h[NN];
    for (int i = 0; i < NN; i++) {
        a[i] = rnd_normal();
        b[i] = rnd_normal();
        h[i] = ns_fp32_to_fp16(rnd_normal());
    }
    const int64_t lens[] = {0, 1, 7, 8, 31, 32, 33, 64, 100, 1031};
    for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
        const int64_t n = lens[li];
        double exact = 0, exact_h = 0, mag = 0, mag_h = 0;
        for (int64_t i = 0; i < n; i++) {
            exact += (double)a[i] * b[i];
            mag += fabs((double)a[i] * b[i]);
            exact_h += (double)ns_fp16_to_fp32(h[i]) * b[i];
            mag_h += fabs((double)ns_fp16_to_fp32(h[i]) * b[i]);
        }
        for (int simd = 0; simd < 2; simd++) {
            ASSERT_NEAR(ns_cpu_dot_f32_isa(a, b, n, simd), exact, 1e-6 * mag + 1e-30);
            ASSERT_NEAR(ns_cpu_dot_f16_f32_isa(h, b, n, simd), exact_h, 1e-6 * mag_h + 1e-30);
        }
        ASSERT_NEAR(ns_cpu_dot_f32(a, b, n), exact, 1e-6 * mag + 1e-30);
        ASSERT_NEAR(ns_cpu_dot_f16_f32(h, b, n), exact_h, 1e-6 * mag_h + 1e-30);

        memcpy(y1, b, sizeof(b));
        memcpy(y2, b, sizeof(b));
        ns_cpu_axpy_f32_isa(y1, 0.37f, a, n, false);
        ns_cpu_axpy_f32(y2, 0.37f, a, n);
        for (int64_t i = 0; i < NN; i++) {
            const double want = i < n ? (double)b[i] + 0.37 * (double)a[i] : b[i];
            ASSERT_NEAR(y1[i], want, 1e-6 * (fabs(b[i]) + fabs(a[i])));
            ASSERT_NEAR(y2[i], want, 1e-6 * (fabs(b[i]) + fabs(a[i])));
        }
        memcpy(y1, b, sizeof(b));
        memcpy(y2, b, sizeof(b));
        ns_cpu_axpy_f16_isa(y1, -1.5f, h, n, false);
        ns_cpu_axpy_f16(y2, -1.5f, h, n);
        for (int64_t i = 0; i < NN; i++) {
            const double hv = ns_fp16_to_fp32(h[i]);
            const double want = i < n ? (double)b[i] - 1.5 * hv : b[i];
            ASSERT_NEAR(y1[i], want, 1e-6 * (fabs(b[i]) + 1.5 * fabs(hv)));
            ASSERT_NEAR(y2[i], want, 1e-6 * (fabs(b[i]) + 1.5 * fabs(hv)));
        }
        memcpy(y1, a, sizeof(a));
        memcpy(y2, a, sizeof(a));
        ns_cpu_scale_f32_isa(y1, 0.125f, n, false);
        ns_cpu_scale_f32(y2, 0.125f, n);
        ASSERT_TRUE(memcmp(y1, y2, sizeof(y1)) == 0);
        for (int64_t i = 0; i < NN; i++) {
            ASSERT_TRUE(y1[i] == (i < n ? a[i] * 0.125f : a[i]));
        }
    }
    printf("f32 helpers ok\n");
}

/* Thread CPU time: the build machine is shared, so wall time is noisy. */
static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Not a test: rough single-thread throughput of the hot kernels. */
static void bench(void) {
    enum { K = 4096, ROWS = 256 };
    const ns_type types[] = {NS_TYPE_Q4_K, NS_TYPE_Q8_0, NS_TYPE_Q6_K, NS_TYPE_Q4_0};
    float *x = malloc(K * sizeof(float));
    uint8_t *w = malloc((size_t)ROWS * K * 2);
    uint8_t *qa = malloc(K * 2);
    ASSERT_TRUE(x && w && qa);
    for (int i = 0; i < K; i++) {
        x[i] = rnd_normal();
    }
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        const ns_type t = types[ti];
        const size_t rb = ns_type_row_size(t, K);
        for (int r = 0; r < ROWS; r++) {
            random_blocks(t, w + (size_t)r * rb, K, x);
        }
        printf("bench %-5s %dx%d:", ns_type_name(t), ROWS, K);
        for (int isa = 0; isa < NS_CPU_ISA_COUNT; isa++) {
            const ns_vec_dot_traits *v = ns_cpu_vec_dot_get_isa(t, (ns_cpu_isa)isa);
            if (v == NULL) {
                continue;
            }
            v->from_float(x, qa, K);
            float s, sink = 0;
            const int iters = isa == 0 ? 1 : 4;
            double dt = 1e30;
            for (int trial = 0; trial < 5; trial++) { /* best of 5 */
                const double t0 = now_s();
                for (int it = 0; it < iters; it++) {
                    for (int r = 0; r < ROWS; r++) {
                        v->vec_dot(K, &s, w + (size_t)r * rb, qa);
                        sink += s;
                    }
                }
                const double el = now_s() - t0;
                dt = el < dt ? el : dt;
            }
            printf("  %s %.2f GB/s of weights%s", ns_cpu_isa_name((ns_cpu_isa)isa),
                   (double)rb * ROWS * iters / dt / 1e9, sink == 12345.678f ? "!" : "");
        }
        printf("\n");
    }
    free(x);
    free(w);
    free(qa);
}

int main(void) {
    test_traits();
    test_fp16_hw();
    test_f32_helpers();
    test_dots();
    bench();
    printf("ok\n");
    return 0;
}
