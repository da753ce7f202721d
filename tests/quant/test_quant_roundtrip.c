/*
 * test_quant_roundtrip.c - the reference quantizer, per type:
 *   - quantize -> dequantize error on Gaussian data, relative to the signal
 *     RMS, under a bound derived from the bits per weight (see k_cases);
 *   - structured rows: all zeros (exact), constants, an outlier of 40,
 *     tiny values (1e-3, 1e-6, 1e-30 scale), a ramp;
 *   - stability: quantizing already-dequantized data must not drift;
 *   - against llama.cpp: on the reference file's `src` rows our error is at
 *     most 1.1x that of llama.cpp's own `T.q` (skipped when the reference
 *     data is absent);
 *   - unsupported types give NS_ERR_UNSUPPORTED, bad lengths
 *     NS_ERR_INVALID_ARG.
 */
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "ns_status.h"
#include "ns_test.h"
#include "ns_types.h"
#include "quant.h"

/*
 * Error bounds. A b-bit uniform quantizer with step D has RMS error D/sqrt(12).
 * For Gaussian data (sigma = 1) a block of 32 spans about +-2.1 sigma on
 * average (expected extreme of 32 normals), and 16-element groups about
 * +-1.8 sigma, so D ~ 4.2 / 2^b and the relative RMS error is about
 * 1.2 / 2^b: 4 bits ~ 0.076, 5 bits ~ 0.038, 8 bits ~ 0.0047 (Q8_0 uses
 * only 255 levels: 0.0048), 6 bits ~ 0.019, 3 bits ~ 0.15, 2 bits ~ 0.30.
 * Affine types (Q4_1, Q5_1, Q4_K, Q5_K, Q2_K) fit the range more tightly and
 * the error-minimising searches do better than this estimate; the
 * non-uniform IQ4 grid is close to 4-bit uniform. Floating formats: F16 has
 * an 11-bit significand, relative RMS 2^-11/sqrt(3) ~ 2.8e-4; BF16 has 8
 * bits, 2^-8/sqrt(3) ~ 2.3e-3. Each bound below is that estimate times about
 * 1.3 (slack for the scale rounding to fp16 and the sub-block scales'
 * own quantization); the measured values are printed by the test.
 */
typedef struct qcase {
    ns_type type;
    double max_rel_rms; /* bound on rms(deq - x) / rms(x) for N(0,1) data */
    int exact_requant;  /* quantize(dequantize(q)) reproduces the same floats */
} qcase;

static const qcase k_cases[] = {
    {NS_TYPE_F32, 0.0, 1},    {NS_TYPE_F16, 3.7e-4, 1},  {NS_TYPE_BF16, 3.0e-3, 1}, {NS_TYPE_Q4_0, 0.10, 1},
    {NS_TYPE_Q4_1, 0.10, 0},  {NS_TYPE_Q5_0, 0.05, 1},   {NS_TYPE_Q5_1, 0.05, 0},   {NS_TYPE_Q8_0, 0.0065, 1},
    {NS_TYPE_Q2_K, 0.39, 0},  {NS_TYPE_Q3_K, 0.20, 0},   {NS_TYPE_Q4_K, 0.10, 0},   {NS_TYPE_Q5_K, 0.05, 0},
    {NS_TYPE_Q6_K, 0.025, 0}, {NS_TYPE_IQ4_NL, 0.10, 0}, {NS_TYPE_IQ4_XS, 0.10, 0},
};
#define N_CASES (sizeof(k_cases) / sizeof(k_cases[0]))

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static double rnd_u(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return ((double)(g_rng >> 11) + 0.5) / 9007199254740992.0;
}

static float rnd_normal(void) {
    return (float)(sqrt(-2.0 * log(rnd_u())) * cos(6.283185307179586 * rnd_u()));
}

static double rms(const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        s += (double)x[i] * x[i];
    }
    return sqrt(s / (double)n);
}

static double rms_diff(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) {
        const double d = (double)a[i] - b[i];
        s += d * d;
    }
    return sqrt(s / (double)n);
}

/* Quantize x[0..n) as t and dequantize into out. */
static void roundtrip(ns_type t, const float *x, float *out, int64_t n, void *qbuf) {
    ASSERT_OK(ns_quantize_row(t, x, qbuf, n));
    ASSERT_OK(ns_dequantize_row(t, qbuf, out, n));
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(out[i])) {
            NS_FAIL("%s: non-finite output %g at %lld", ns_type_name(t), (double)out[i], (long long)i);
        }
    }
}

#define N 4096

static void test_type(const qcase *c, void *qbuf) {
    const ns_type t = c->type;
    const char *name = ns_type_name(t);
    static float x[N], y[N], z[N];

    /* Gaussian rows. */
    for (int i = 0; i < N; i++) {
        x[i] = rnd_normal();
    }
    roundtrip(t, x, y, N, qbuf);
    const double rel = rms_diff(x, y, N) / rms(x, N);
    printf("%-7s gaussian rel rms %.5f (bound %.5f)", name, rel, c->max_rel_rms);
    if (rel > c->max_rel_rms) {
        NS_FAIL("%s: relative RMS error %.5f above bound %.5f", name, rel, c->max_rel_rms);
    }
    if (t != NS_TYPE_F32) {
        ASSERT_TRUE(rel > 0); /* the bound is not vacuous */
    }

    /* Stability: requantizing dequantized data. */
    roundtrip(t, y, z, N, qbuf);
    const double drift = rms_diff(y, z, N) / rms(x, N);
    printf(", requant drift %.2e\n", drift);
    if (c->exact_requant) {
        int same = 1; /* value equality: +0 and -0 may swap with the scale's sign */
        for (int i = 0; i < N; i++) {
            same &= y[i] == z[i];
        }
        if (!same) {
            NS_FAIL("%s: quantize(dequantize(q)) changed the values (drift %.3g)", name, drift);
        }
    } else if (drift > 0.5 * rel) {
        NS_FAIL("%s: requantization drift %.5f exceeds half the first error %.5f", name, drift, rel);
    }

    /* Heavy-tailed (Student-t like) data: bound doubled. */
    for (int i = 0; i < N; i++) {
        const float g = rnd_normal();
        x[i] = g / (float)sqrt(0.2 + rnd_u());
    }
    roundtrip(t, x, y, N, qbuf);
    const double rel_t = rms_diff(x, y, N) / rms(x, N);
    if (rel_t > 2 * c->max_rel_rms) {
        NS_FAIL("%s: heavy-tailed relative RMS %.5f above %.5f", name, rel_t, 2 * c->max_rel_rms);
    }

    /* All zeros: exactly zero back. */
    memset(x, 0, sizeof(x));
    roundtrip(t, x, y, N, qbuf);
    for (int i = 0; i < N; i++) {
        if (y[i] != 0.0f) {
            NS_FAIL("%s: zero row gave %g at %d", name, (double)y[i], i);
        }
    }

    /* Outlier of 40 in unit Gaussian data: the outlier itself survives to
     * within one quantization step of its block (40 / 2^(b-1) for 2 bits). */
    for (int i = 0; i < N; i++) {
        x[i] = rnd_normal();
    }
    x[300] = 40.0f;
    roundtrip(t, x, y, N, qbuf);
    if (fabs(y[300] - 40.0) > 40.0 * 0.15) {
        NS_FAIL("%s: outlier 40 came back as %g", name, (double)y[300]);
    }
    /* Blocks away from the outlier keep the Gaussian accuracy. */
    const double rel_far = rms_diff(x + 1024, y + 1024, N - 1024) / rms(x + 1024, N - 1024);
    if (rel_far > c->max_rel_rms) {
        NS_FAIL("%s: error away from the outlier %.5f above %.5f", name, rel_far, c->max_rel_rms);
    }

    /* Scaled-down data: 1e-3 keeps the relative accuracy; at 1e-6 fp16
     * block scales approach their subnormal range (as in llama.cpp), so only
     * require no blow-up; at 1e-30 everything flushes to ~0. */
    const float scales[3] = {1e-3f, 1e-6f, 1e-30f};
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < N; i++) {
            x[i] = rnd_normal() * scales[s];
        }
        roundtrip(t, x, y, N, qbuf);
        const double r = rms_diff(x, y, N) / rms(x, N);
        const double bound = s == 0 ? c->max_rel_rms : s == 1 ? 1.0 : 1.0 + 1e-6;
        if (t == NS_TYPE_F32 || (s == 0 && r > bound) || (s > 0 && r > bound)) {
            if (!(t == NS_TYPE_F32 && r == 0)) {
                NS_FAIL("%s: scale %g relative RMS %.5f above %.5f", name, (double)scales[s], r, bound);
            }
        }
    }

    /* Constant positive row: affine types are near exact, symmetric ones
     * within their step. */
    for (int i = 0; i < N; i++) {
        x[i] = 0.75f;
    }
    roundtrip(t, x, y, N, qbuf);
    if (rms_diff(x, y, N) / 0.75 > c->max_rel_rms) {
        NS_FAIL("%s: constant row error %.5f", name, rms_diff(x, y, N) / 0.75);
    }

    /* Ramp over [-1, 1]. */
    for (int i = 0; i < N; i++) {
        x[i] = -1.0f + 2.0f * (float)(i % 256) / 255.0f;
    }
    roundtrip(t, x, y, N, qbuf);
    if (rms_diff(x, y, N) / rms(x, N) > c->max_rel_rms) {
        NS_FAIL("%s: ramp relative error %.5f", name, rms_diff(x, y, N) / rms(x, N));
    }
}

static void test_errors(void *qbuf) {
    float x[512] = {0}, y[512];
    const uint32_t unsupported[] = {NS_TYPE_IQ2_XXS,
                                    NS_TYPE_IQ2_XS,
                                    NS_TYPE_IQ3_XXS,
                                    NS_TYPE_IQ1_S,
                                    NS_TYPE_IQ3_S,
                                    NS_TYPE_IQ2_S,
                                    NS_TYPE_IQ1_M,
                                    NS_TYPE_TQ1_0,
                                    NS_TYPE_TQ2_0,
                                    NS_TYPE_MXFP4,
                                    NS_TYPE_I8,
                                    NS_TYPE_I32,
                                    NS_TYPE_F64,
                                    4,
                                    5,
                                    NS_TYPE_COUNT,
                                    1000};
    for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
        const ns_type t = (ns_type)unsupported[i];
        ASSERT_EQ(ns_dequantize_row(t, qbuf, y, 256), NS_ERR_UNSUPPORTED);
        ASSERT_EQ(ns_quantize_row(t, x, qbuf, 256), NS_ERR_UNSUPPORTED);
        ASSERT_EQ(ns_dequantize_tensor(t, qbuf, y, 2, 256), NS_ERR_UNSUPPORTED);
        ASSERT_TRUE(!ns_quant_supported(t));
    }
    for (size_t i = 0; i < N_CASES; i++) {
        const ns_type t = k_cases[i].type;
        ASSERT_TRUE(ns_quant_supported(t));
        const int64_t blck = ns_type_get(t)->blck_size;
        if (blck > 1) {
            ASSERT_EQ(ns_quantize_row(t, x, qbuf, blck + 1), NS_ERR_INVALID_ARG);
            ASSERT_EQ(ns_dequantize_row(t, qbuf, y, blck - 1), NS_ERR_INVALID_ARG);
        }
        ASSERT_EQ(ns_quantize_row(t, x, qbuf, -blck), NS_ERR_INVALID_ARG);
        ASSERT_EQ(ns_dequantize_row(t, NULL, y, blck), NS_ERR_INVALID_ARG);
        ASSERT_EQ(ns_dequantize_tensor(t, qbuf, y, -1, blck), NS_ERR_INVALID_ARG);
        ASSERT_OK(ns_dequantize_row(t, NULL, NULL, 0));
    }
}

/* Against llama.cpp's quantizer on the reference rows. */
static void test_vs_llama(void *qbuf) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/quant/quant-vectors.gguf", NS_REFERENCE_DIR);
    if (access(path, R_OK) != 0) {
        printf("reference file absent: skipping the comparison with llama.cpp\n");
        return;
    }
    ns_gguf *g = NULL;
    ns_err err = {0};
    if (ns_gguf_open(path, &g, &err) != NS_OK) {
        NS_FAIL("open %s: %s", path, ns_err_msg(&err));
    }
    const ns_gguf_tensor *src = ns_gguf_find_tensor(g, "src");
    ASSERT_TRUE(src != NULL);
    ASSERT_EQ(src->type, NS_TYPE_F32);
    const int64_t row_len = src->ne[0], n_rows = (int64_t)src->n_elements / row_len;
    const float *x = (const float *)(const void *)src->data;
    float *ours = malloc((size_t)src->n_elements * sizeof(float));
    ASSERT_TRUE(ours != NULL);
    for (size_t c = 0; c < N_CASES; c++) {
        const ns_type t = k_cases[c].type;
        if (t == NS_TYPE_F32) {
            continue;
        }
        /* File names are lower case except the K of K-quants ("q4_K.f32"). */
        char name[64];
        const char *tn = ns_type_name(t);
        const size_t tl = strlen(tn);
        for (size_t k = 0; k <= tl; k++) {
            name[k] = (char)tolower((unsigned char)tn[k]);
        }
        if (tl >= 2 && name[tl - 2] == '_' && name[tl - 1] == 'k') {
            name[tl - 1] = 'K';
        }
        strcat(name, ".f32");
        const ns_gguf_tensor *ref = ns_gguf_find_tensor(g, name);
        if (ref == NULL) {
            NS_FAIL("reference lacks %s", name);
        }
        ASSERT_EQ(ref->n_elements, src->n_elements);
        const float *llama = (const float *)(const void *)ref->data;
        ASSERT_OK(ns_quantize_tensor(t, x, qbuf, n_rows, row_len));
        ASSERT_OK(ns_dequantize_tensor(t, qbuf, ours, n_rows, row_len));
        double e_ours = 0, e_llama = 0, worst = 0;
        for (int64_t r = 0; r < n_rows; r++) {
            const double a = rms_diff(ours + r * row_len, x + r * row_len, row_len);
            const double b = rms_diff(llama + r * row_len, x + r * row_len, row_len);
            e_ours += a * a;
            e_llama += b * b;
            if (b > 0 && a / b > worst) {
                worst = a / b;
            } else if (b == 0 && a > 0) {
                NS_FAIL("%s row %lld: llama.cpp exact, ours err %g", name, (long long)r, a);
            }
        }
        const double ratio = e_llama > 0 ? sqrt(e_ours / e_llama) : 1.0;
        printf("%-7s vs llama.cpp: rms %.5g vs %.5g, ratio %.3f (worst row %.3f)\n", ns_type_name(t),
               sqrt(e_ours / (double)n_rows), sqrt(e_llama / (double)n_rows), ratio, worst);
        if (ratio > 1.1 || worst > 1.15) {
            NS_FAIL("%s: error ratio to llama.cpp %.3f (worst row %.3f)", ns_type_name(t), ratio, worst);
        }
    }
    free(ours);
    ns_gguf_close(&g);
}

int main(void) {
    void *qbuf = malloc(N * sizeof(float) * 2);
    ASSERT_TRUE(qbuf != NULL);
    test_errors(qbuf);
    for (size_t i = 0; i < N_CASES; i++) {
        test_type(&k_cases[i], qbuf);
    }
    test_vs_llama(qbuf);
    free(qbuf);
    printf("ok\n");
    return 0;
}
