/*
 * test_cpu_gemm.c - the rows x tokens micro-kernels (vec_dot.h `gemm`) and
 * the item-counted thread pool (cpu/threadpool.h).
 *
 * For every weight type whose best kernel table has a gemm, over several row
 * lengths, on quantizer-made and random raw weight blocks:
 *   - gemm(r, t) matches the scalar vec_dot reference within the
 *     float-summation-order bound test_vec_dot uses (2e-6 * sum |w a|);
 *   - gemm(r, t) is bit-identical whatever the blocking: computed alone
 *     (nr = nt = 1), inside the full R x T call, and with the activation rows
 *     shifted so t sits at every position of a 4-token block. This is what
 *     keeps matmuls batch invariant.
 * Thread pool: ns_threadpool_run_items runs every item exactly once for
 * 1..4 threads and item counts 0..300, back to back (workers spinning and
 * sleeping), and passes a stable per-thread index.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fp16.h"
#include "ns_test.h"
#include "ns_types.h"
#include "quant.h"
#include "quant_blocks.h"
#include "cpu/threadpool.h"
#include "cpu/vec_dot.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

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

static void put_f16(uint8_t *p, float v) {
    const uint16_t h = ns_fp32_to_fp16(v);
    memcpy(p, &h, 2);
}

/* Random raw blocks with sane fp16 scales (every quant bit pattern). */
static void random_raw_row(ns_type t, uint8_t *w, int64_t n) {
    const ns_type_traits *tr = ns_type_get(t);
    const size_t bytes = ns_type_row_size(t, n);
    for (size_t i = 0; i < bytes; i++) {
        w[i] = (uint8_t)rnd64();
    }
    for (int64_t b = 0; b < n / tr->blck_size; b++) {
        uint8_t *blk = w + (size_t)b * tr->type_size;
        const float d = (float)(0.001 + 0.02 * rnd_u()), m = (float)(0.05 * rnd_u());
        switch (t) {
        case NS_TYPE_Q4_K:
        case NS_TYPE_Q5_K:
            put_f16(blk, d);
            put_f16(blk + 2, m);
            break;
        case NS_TYPE_Q6_K:
            put_f16(blk + offsetof(ns_block_q6_K, d), d);
            break;
        default:
            put_f16(blk, d);
            break;
        }
    }
}

#define R 7
#define T 11
#define PAD 3 /* extra activation rows in front, to shift token positions */

static void check_type(ns_type t, int64_t n, bool raw) {
    const ns_vec_dot_traits *best = ns_cpu_vec_dot_get(t);
    const ns_vec_dot_traits *ref = ns_cpu_vec_dot_get_scalar(t);
    ASSERT_TRUE(best != NULL && ref != NULL && best->gemm != NULL);
    const char *name = ns_type_get(t)->name;
    const size_t w_stride = ns_type_row_size(t, n);
    const size_t a_stride = ns_cpu_act_row_size(t, n);
    ASSERT_TRUE(w_stride > 0 && a_stride > 0);
    uint8_t *w = malloc(w_stride * R);
    uint8_t *a = malloc(a_stride * (T + PAD));
    float *x = malloc(sizeof(float) * (size_t)n);
    float *wdeq = malloc(sizeof(float) * (size_t)n * R);
    float *adeq = malloc(sizeof(float) * (size_t)n * (T + PAD));
    float s_full[T][R], s_one, s_shift[T + PAD][R];
    ASSERT_TRUE(w && a && x && wdeq && adeq);
    for (int r = 0; r < R; r++) {
        if (raw) {
            random_raw_row(t, w + r * w_stride, n);
        } else {
            for (int64_t i = 0; i < n; i++) {
                x[i] = rnd_normal() * (float)(0.02 + 0.1 * rnd_u());
            }
            ASSERT_OK(ns_quantize_row(t, x, w + r * w_stride, n));
        }
        ASSERT_OK(ns_dequantize_row(t, w + r * w_stride, wdeq + (size_t)r * n, n));
    }
    for (int k = 0; k < T + PAD; k++) {
        const float scale = (float)(0.1 + 3.0 * rnd_u());
        for (int64_t i = 0; i < n; i++) {
            x[i] = rnd_normal() * scale;
        }
        best->from_float(x, a + k * a_stride, n);
        ASSERT_OK(ns_dequantize_row(best->act_type, a + k * a_stride, adeq + (size_t)k * n, n));
    }
    const uint8_t *a0 = a + PAD * a_stride; /* tokens 0..T-1 */
    best->gemm(n, w, w_stride, R, a0, a_stride, T, &s_full[0][0], R);
    for (int tt = 0; tt < T; tt++) {
        for (int r = 0; r < R; r++) {
            float s_ref;
            ref->vec_dot(n, &s_ref, w + r * w_stride, a0 + tt * a_stride);
            double mag = 0;
            for (int64_t i = 0; i < n; i++) {
                mag += fabs((double)wdeq[(size_t)r * n + i] * adeq[(size_t)(tt + PAD) * n + i]);
            }
            const double tol = 2e-6 * mag + 1e-30;
            if (!(fabs((double)s_full[tt][r] - s_ref) <= tol)) {
                NS_FAIL("%s n=%lld %s r=%d t=%d: gemm %.9g vs scalar %.9g (diff %.3g, tol %.3g)", name, (long long)n,
                        raw ? "raw" : "quantized", r, tt, (double)s_full[tt][r], (double)s_ref,
                        fabs((double)s_full[tt][r] - s_ref), tol);
            }
            best->gemm(n, w + r * w_stride, w_stride, 1, a0 + tt * a_stride, a_stride, 1, &s_one, 1);
            if (memcmp(&s_one, &s_full[tt][r], sizeof(float)) != 0) {
                NS_FAIL("%s n=%lld r=%d t=%d: alone %.9g != in block %.9g", name, (long long)n, r, tt, (double)s_one,
                        (double)s_full[tt][r]);
            }
        }
    }
    /* Shift the token block start by 1..PAD: token tt is then at position
     * (tt + shift) % 4 of its 4-token block. */
    for (int shift = 1; shift <= PAD; shift++) {
        best->gemm(n, w, w_stride, R, a0 - shift * a_stride, a_stride, T + shift, &s_shift[0][0], R);
        for (int tt = 0; tt < T; tt++) {
            if (memcmp(s_shift[tt + shift], s_full[tt], sizeof(s_full[tt])) != 0) {
                NS_FAIL("%s n=%lld t=%d: result depends on the token's place in the block (shift %d)", name,
                        (long long)n, tt, shift);
            }
        }
    }
    free(w);
    free(a);
    free(x);
    free(wdeq);
    free(adeq);
}

static void test_gemm(void) {
    static const ns_type types[] = {NS_TYPE_Q4_0, NS_TYPE_Q4_1, NS_TYPE_Q5_0,   NS_TYPE_Q5_1,
                                    NS_TYPE_Q8_0, NS_TYPE_Q2_K, NS_TYPE_Q3_K,   NS_TYPE_Q4_K,
                                    NS_TYPE_Q5_K, NS_TYPE_Q6_K, NS_TYPE_IQ4_NL, NS_TYPE_IQ4_XS};
    static const int64_t lens[] = {256, 768, 2048, 5632};
    int n_checked = 0;
    for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
        const ns_vec_dot_traits *best = ns_cpu_vec_dot_get(types[ti]);
        if (best == NULL || best->gemm == NULL) {
            continue;
        }
        for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
            check_type(types[ti], lens[li], false);
            check_type(types[ti], lens[li], true);
        }
        printf("gemm %-6s (%s): matches scalar vec_dot, blocking-invariant bits\n", ns_type_get(types[ti])->name,
               ns_cpu_isa_name(ns_cpu_isa_best()));
        n_checked++;
    }
    if (n_checked == 0) {
        printf("gemm: no micro-kernels on this CPU (%s); nothing to compare\n", ns_cpu_isa_name(ns_cpu_isa_best()));
    }
}

/* ---- thread pool ---------------------------------------------------------- */

#define MAX_ITEMS 300

typedef struct items_args {
    atomic_int hits[MAX_ITEMS];
    atomic_int bad_ith;
    int32_t nth;
    atomic_int busy[8]; /* per-thread index: never used by two threads at once */
} items_args;

static void item_fn(void *p, int32_t ith, int32_t item) {
    items_args *a = p;
    if (ith < 0 || ith >= a->nth || atomic_fetch_add(&a->busy[ith], 1) != 0) {
        atomic_fetch_add(&a->bad_ith, 1);
    }
    atomic_fetch_add(&a->hits[item], 1);
    if (item % 37 == 0) {
        usleep(50); /* uneven items */
    }
    if (ith >= 0 && ith < a->nth) {
        atomic_fetch_sub(&a->busy[ith], 1);
    }
}

static void test_run_items(void) {
    static items_args a;
    for (int32_t nt = 1; nt <= 4; nt++) {
        ns_threadpool *tp = NULL;
        ASSERT_OK(ns_threadpool_create(nt, &tp));
        a.nth = nt;
        for (int32_t n = 0; n <= MAX_ITEMS; n += (n < 10 ? 1 : 29)) {
            for (int rep = 0; rep < 20; rep++) {
                for (int i = 0; i < MAX_ITEMS; i++) {
                    atomic_store(&a.hits[i], 0);
                }
                ns_threadpool_run_items(tp, item_fn, &a, n);
                for (int i = 0; i < MAX_ITEMS; i++) {
                    ASSERT_EQ(atomic_load(&a.hits[i]), i < n ? 1 : 0);
                }
            }
            if (n == 5) {
                usleep(20000); /* let the workers fall asleep once */
            }
        }
        ASSERT_EQ(atomic_load(&a.bad_ith), 0);
        ns_threadpool_free(&tp);
    }
    printf("threadpool: run_items runs every item once, 1-4 threads\n");
}

int main(void) {
    test_run_items();
    test_gemm();
    return 0;
}
