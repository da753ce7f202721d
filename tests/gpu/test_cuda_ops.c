/*
 * test_cuda_ops.c - every CUDA op against a plain C reference on random
 * inputs, by normalised MSE (sum (got - ref)^2 / sum ref^2) with a threshold
 * per op and path:
 *   - matmul for all 15 weight types (quantized with engine/quant.h, the
 *     reference dequantized with it too), shapes including stories260K's
 *     172-wide FFN, batches 1, 7, 64 and 512, strided inputs, overwrite and
 *     accumulate, both the fused path and the GEMM path;
 *   - embedding from quantized rows (device table and host-gathered rows);
 *   - RMSNorm, RoPE (NORM and NEOX, partial n_rot, frequency factors), bias,
 *     SwiGLU, residual add, row gather, argmax;
 *   - paged KV store + attention: GQA, shuffled pages, 64 sequences of
 *     different lengths decoding, a prefill chunk, head_dim 64 and 48 (tail).
 * Label gpu: exits 77 when no CUDA device is present. The memory-use check
 * at the end verifies the device never exceeded context + arena.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp16.h"
#include "ns_cuda.h"
#include "ns_test.h"
#include "quant.h"

static ns_cuda *g_c;
static uint64_t g_rng = 0x9E3779B97F4A7C15ull;

static float frand(void) { /* uniform [-1, 1) */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (float)((g_rng >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) {
        x[i] = frand() * scale;
    }
}

static double nmse(const float *got, const float *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = (double)got[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    return den > 0 ? num / den : num;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n > 0 ? n : 1);
    if (p == NULL) {
        NS_FAIL("out of memory");
    }
    return p;
}

static void *dev(size_t n) {
    void *p = ns_cuda_alloc(g_c, n, 256);
    if (p == NULL) {
        NS_FAIL("arena: %s", ns_cuda_errmsg(g_c));
    }
    return p;
}

static void *up(const void *h, size_t n) {
    void *d = dev(n);
    ASSERT_OK(ns_cuda_h2d(g_c, d, h, n));
    return d;
}

static void down(void *h, const void *d, size_t n) {
    ASSERT_OK(ns_cuda_d2h(g_c, h, d, n));
    if (ns_cuda_sync(g_c) != NS_OK) {
        NS_FAIL("sync: %s", ns_cuda_errmsg(g_c));
    }
}

#define CHECK_OP(expr)                                                                                                 \
    do {                                                                                                               \
        if ((expr) != NS_OK) {                                                                                         \
            NS_FAIL("%s: %s", #expr, ns_cuda_errmsg(g_c));                                                             \
        }                                                                                                              \
    } while (0)

static void check_nmse(const char *what, const float *got, const float *ref, size_t n, double bar) {
    const double e = nmse(got, ref, n);
    if (!(e <= bar)) { /* also catches NaN */
        NS_FAIL("%s: nmse %.3g > %.3g", what, e, bar);
    }
}

/* ---- matmul ------------------------------------------------------------------ */

static const ns_type g_types[] = {NS_TYPE_F32,  NS_TYPE_F16,  NS_TYPE_BF16, NS_TYPE_Q4_0,   NS_TYPE_Q4_1,
                                  NS_TYPE_Q5_0, NS_TYPE_Q5_1, NS_TYPE_Q8_0, NS_TYPE_Q2_K,   NS_TYPE_Q3_K,
                                  NS_TYPE_Q4_K, NS_TYPE_Q5_K, NS_TYPE_Q6_K, NS_TYPE_IQ4_NL, NS_TYPE_IQ4_XS};

static void test_matmul_case(ns_type t, int64_t N, int64_t K, int M, int path, bool acc) {
    const size_t mark = ns_arena_mark(ns_cuda_arena(g_c));
    const size_t row_bytes = ns_type_row_size(t, K);
    const int64_t ldx = K + 8, ldy = N + 4;
    float *w = xmalloc((size_t)(N * K) * 4), *wref = xmalloc((size_t)(N * K) * 4);
    uint8_t *wq = xmalloc(row_bytes * (size_t)N);
    float *x = xmalloc((size_t)M * (size_t)ldx * 4);
    float *y = xmalloc((size_t)M * (size_t)ldy * 4), *yref = xmalloc((size_t)M * (size_t)ldy * 4);
    fill(w, (size_t)(N * K), 1.0f);
    fill(x, (size_t)M * (size_t)ldx, 1.0f);
    fill(y, (size_t)M * (size_t)ldy, 1.0f);
    ASSERT_OK(ns_quantize_tensor(t, w, wq, N, K));
    ASSERT_OK(ns_dequantize_tensor(t, wq, wref, N, K));
    memcpy(yref, y, (size_t)M * (size_t)ldy * 4);
    for (int m = 0; m < M; m++) {
        for (int64_t n = 0; n < N; n++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++) {
                s += (double)x[m * ldx + k] * (double)wref[n * K + k];
            }
            yref[m * ldy + n] = (float)(acc ? yref[m * ldy + n] + s : s);
        }
    }
    void *dw = up(wq, row_bytes * (size_t)N);
    float *dx = up(x, (size_t)M * (size_t)ldx * 4);
    float *dy = up(y, (size_t)M * (size_t)ldy * 4);
    CHECK_OP(ns_cuda_matmul_path(g_c, t, dw, N, K, dx, ldx, M, dy, ldy, acc, path));
    down(y, dy, (size_t)M * (size_t)ldy * 4);
    /* padding columns past N must be untouched */
    for (int m = 0; m < M; m++) {
        for (int64_t n = N; n < ldy; n++) {
            ASSERT_TRUE(y[m * ldy + n] == yref[m * ldy + n]);
        }
    }
    const bool gemm = path == 2 || (path == 0 && M > NS_CUDA_MATVEC_MAX_M);
    /* fused path: exact weights, float accumulation; GEMM: fp16 weights and
     * activations (F32 weights: fp32 GEMM) */
    const double bar = !gemm || t == NS_TYPE_F32 ? 1e-9 : 2e-5;
    char what[128];
    snprintf(what, sizeof what, "matmul %s N=%lld K=%lld M=%d path=%d acc=%d", ns_type_name(t), (long long)N,
             (long long)K, M, path, acc);
    check_nmse(what, y, yref, (size_t)M * (size_t)ldy, bar);
    free(w);
    free(wref);
    free(wq);
    free(x);
    free(y);
    free(yref);
    ns_arena_reset_to(ns_cuda_arena(g_c), mark);
}

static void test_matmul(void) {
    const int batches[] = {1, 7, 64, 512};
    for (size_t ti = 0; ti < sizeof g_types / sizeof g_types[0]; ti++) {
        const ns_type t = g_types[ti];
        const int64_t blk = ns_type_get(t)->blck_size;
        const int64_t K1 = blk == 256 ? 512 : 256;
        for (size_t bi = 0; bi < 4; bi++) {
            test_matmul_case(t, 172, K1, batches[bi], 0, false); /* 172 output rows: odd tiling */
            test_matmul_case(t, 64, K1, batches[bi], 0, true);
        }
        if (blk == 1) {
            test_matmul_case(t, 64, 172, 1, 0, false); /* 172-wide input: tail masking */
            test_matmul_case(t, 64, 172, 64, 0, false);
        }
        test_matmul_case(t, 96, K1 * 3, 64, 1, false); /* fused path in chunks of 8; K spans tiles */
        test_matmul_case(t, 96, K1, 3, 2, true);       /* GEMM path at tiny M */
        printf("matmul %-7s ok\n", ns_type_name(t));
    }
}

/* ---- embedding --------------------------------------------------------------- */

static void test_embed(void) {
    const ns_type types[] = {NS_TYPE_F32, NS_TYPE_F16, NS_TYPE_Q4_K, NS_TYPE_Q6_K, NS_TYPE_Q8_0, NS_TYPE_IQ4_XS};
    const int64_t n_vocab = 300, n_embd = 512;
    int32_t tok[7] = {0, 299, 5, 5, 150, -1, 300};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const size_t mark = ns_arena_mark(ns_cuda_arena(g_c));
        const ns_type t = types[ti];
        const size_t rb = ns_type_row_size(t, n_embd);
        float *w = xmalloc((size_t)(n_vocab * n_embd) * 4);
        uint8_t *wq = xmalloc(rb * (size_t)n_vocab);
        float *ref = xmalloc(7 * (size_t)n_embd * 4), *got = xmalloc(7 * (size_t)n_embd * 4);
        fill(w, (size_t)(n_vocab * n_embd), 1.0f);
        ASSERT_OK(ns_quantize_tensor(t, w, wq, n_vocab, n_embd));
        for (int i = 0; i < 7; i++) {
            if (tok[i] >= 0 && tok[i] < n_vocab) {
                ASSERT_OK(ns_dequantize_row(t, wq + rb * (size_t)tok[i], ref + i * n_embd, n_embd));
            } else {
                memset(ref + i * n_embd, 0, (size_t)n_embd * 4);
            }
        }
        void *dw = up(wq, rb * (size_t)n_vocab);
        int32_t *dt = up(tok, sizeof tok);
        float *dout = dev(7 * (size_t)n_embd * 4);
        CHECK_OP(ns_cuda_embed(g_c, t, dw, n_vocab, n_embd, dt, 7, dout));
        down(got, dout, 7 * (size_t)n_embd * 4);
        ASSERT_TRUE(memcmp(got, ref, 7 * (size_t)n_embd * 4) == 0 || nmse(got, ref, 7 * (size_t)n_embd) < 1e-14);
        /* host-gathered rows (valid ids only: the host path rejects others) */
        memset(got, 0, 5 * (size_t)n_embd * 4);
        CHECK_OP(ns_cuda_embed_host(g_c, t, wq, n_vocab, n_embd, tok, 5, dout));
        down(got, dout, 5 * (size_t)n_embd * 4);
        check_nmse("embed_host", got, ref, 5 * (size_t)n_embd, 1e-14);
        ASSERT_EQ(ns_cuda_embed_host(g_c, t, wq, n_vocab, n_embd, tok, 7, dout), NS_ERR_RANGE);
        free(w);
        free(wq);
        free(ref);
        free(got);
        ns_arena_reset_to(ns_cuda_arena(g_c), mark);
    }
    printf("embed ok\n");
}

/* ---- small ops ----------------------------------------------------------------- */

static void test_rmsnorm(void) {
    const int64_t ns[] = {172, 4096};
    for (int ni = 0; ni < 2; ni++) {
        const size_t mark = ns_arena_mark(ns_cuda_arena(g_c));
        const int64_t n = ns[ni], ldx = n + 3, ldo = n + 17;
        const int rows = 7;
        float *x = xmalloc((size_t)(rows * ldx) * 4), *w = xmalloc((size_t)n * 4);
        float *ref = xmalloc((size_t)(rows * ldo) * 4), *got = xmalloc((size_t)(rows * ldo) * 4);
        fill(x, (size_t)(rows * ldx), 3.0f);
        fill(w, (size_t)n, 1.0f);
        memset(ref, 0, (size_t)(rows * ldo) * 4);
        for (int r = 0; r < rows; r++) {
            double ss = 0;
            for (int64_t i = 0; i < n; i++) {
                ss += (double)x[r * ldx + i] * x[r * ldx + i];
            }
            const double s = 1.0 / sqrt(ss / (double)n + 1e-5);
            for (int64_t i = 0; i < n; i++) {
                ref[r * ldo + i] = (float)(x[r * ldx + i] * s * w[i]);
            }
        }
        float *dx = up(x, (size_t)(rows * ldx) * 4), *dw = up(w, (size_t)n * 4);
        float *dout = up(ref, (size_t)(rows * ldo) * 4); /* padding keeps the reference's zeros */
        ASSERT_OK(ns_cuda_memset(g_c, dout, 0, (size_t)(rows * ldo) * 4));
        CHECK_OP(ns_cuda_rms_norm(g_c, dx, ldx, dw, dout, ldo, rows, n, 1e-5f));
        down(got, dout, (size_t)(rows * ldo) * 4);
        check_nmse("rmsnorm", got, ref, (size_t)(rows * ldo), 1e-11);
        /* in place */
        CHECK_OP(ns_cuda_rms_norm(g_c, dx, ldx, dw, dx, ldx, rows, n, 1e-5f));
        down(x, dx, (size_t)(rows * ldx) * 4);
        for (int r = 0; r < rows; r++) {
            check_nmse("rmsnorm in place", x + r * ldx, ref + r * ldo, (size_t)n, 1e-11);
        }
        free(x);
        free(w);
        free(ref);
        free(got);
        ns_arena_reset_to(ns_cuda_arena(g_c), mark);
    }
    printf("rmsnorm ok\n");
}

static void test_rope(void) {
    for (int mode = 0; mode < 2; mode++) {
        const size_t mark = ns_arena_mark(ns_cuda_arena(g_c));
        const int n_tok = 7, n_head = 4, hd = 64, n_rot = 48;
        const int64_t ld = n_head * hd + 5;
        float *x = xmalloc((size_t)(n_tok * ld) * 4), *ref = xmalloc((size_t)(n_tok * ld) * 4);
        float inv[24];
        int32_t pos[7] = {0, 1, 2, 17, 100, 1000, 4095};
        fill(x, (size_t)(n_tok * ld), 1.0f);
        memcpy(ref, x, (size_t)(n_tok * ld) * 4);
        for (int i = 0; i < n_rot / 2; i++) {
            const float factor = 1.0f + (float)i * 0.25f; /* rope_freqs-like */
            inv[i] = 0.5f * powf(10000.0f, -2.0f * (float)i / (float)n_rot) / factor;
        }
        for (int t = 0; t < n_tok; t++) {
            for (int h = 0; h < n_head; h++) {
                float *v = ref + t * ld + h * hd;
                for (int i = 0; i < n_rot / 2; i++) {
                    const double th = (double)((float)pos[t] * inv[i]);
                    const int a = mode ? i : 2 * i, b = mode ? i + n_rot / 2 : 2 * i + 1;
                    const double x0 = v[a], x1 = v[b];
                    v[a] = (float)(x0 * cos(th) - x1 * sin(th));
                    v[b] = (float)(x0 * sin(th) + x1 * cos(th));
                }
            }
        }
        float *dx = up(x, (size_t)(n_tok * ld) * 4);
        int32_t *dp = up(pos, sizeof pos);
        float *di = up(inv, sizeof inv);
        CHECK_OP(
            ns_cuda_rope(g_c, dx, n_tok, n_head, hd, ld, dp, mode ? NS_CUDA_ROPE_NEOX : NS_CUDA_ROPE_NORM, n_rot, di));
        down(x, dx, (size_t)(n_tok * ld) * 4);
        check_nmse(mode ? "rope neox" : "rope norm", x, ref, (size_t)(n_tok * ld), 1e-10);
        free(x);
        free(ref);
        ns_arena_reset_to(ns_cuda_arena(g_c), mark);
    }
    printf("rope ok\n");
}

static void test_elementwise(void) {
    const size_t mark = ns_arena_mark(ns_cuda_arena(g_c));
    const int rows = 7;
    const int64_t n = 172, ld = 180;
    const size_t tot = (size_t)(rows * ld);
    float *a = xmalloc(tot * 4), *b = xmalloc(tot * 4), *bias = xmalloc((size_t)n * 4);
    float *ref = xmalloc(tot * 4), *got = xmalloc(tot * 4);
    fill(a, tot, 4.0f);
    fill(b, tot, 4.0f);
    fill(bias, (size_t)n, 1.0f);
    float *da = up(a, tot * 4), *db = up(b, tot * 4), *dbias = up(bias, (size_t)n * 4), *dout = dev(tot * 4);

    /* bias on strided rows: padding untouched */
    memcpy(ref, a, tot * 4);
    for (int r = 0; r < rows; r++) {
        for (int64_t i = 0; i < n; i++) {
            ref[r * ld + i] += bias[i];
        }
    }
    CHECK_OP(ns_cuda_add_bias(g_c, da, ld, dbias, rows, n));
    down(got, da, tot * 4);
    check_nmse("add_bias", got, ref, tot, 1e-14);
    ASSERT_OK(ns_cuda_h2d(g_c, da, a, tot * 4));

    for (size_t i = 0; i < tot; i++) {
        ref[i] = (float)((double)a[i] / (1.0 + exp(-(double)a[i])) * b[i]);
    }
    CHECK_OP(ns_cuda_swiglu(g_c, da, db, dout, (int64_t)tot));
    down(got, dout, tot * 4);
    check_nmse("swiglu", got, ref, tot, 1e-11);

    for (size_t i = 0; i < tot; i++) {
        ref[i] = a[i] + b[i];
    }
    CHECK_OP(ns_cuda_add(g_c, da, db, da, (int64_t)tot)); /* aliasing out == a */
    down(got, da, tot * 4);
    check_nmse("add", got, ref, tot, 1e-14);

    int32_t rows_idx[3] = {6, 0, 3};
    int32_t *dr = up(rows_idx, sizeof rows_idx);
    CHECK_OP(ns_cuda_gather_rows(g_c, db, ld, dr, 3, n, dout, n));
    down(got, dout, 3 * (size_t)n * 4);
    for (int j = 0; j < 3; j++) {
        ASSERT_TRUE(memcmp(got + j * n, b + rows_idx[j] * ld, (size_t)n * 4) == 0);
    }

    /* argmax: ties go to the lowest index */
    const int64_t V = 1000;
    float *lg = xmalloc(3 * (size_t)V * 4);
    fill(lg, 3 * (size_t)V, 1.0f);
    lg[0 * V + 500] = 5.0f;
    lg[1 * V + 7] = 9.0f;
    lg[1 * V + 900] = 9.0f;
    lg[2 * V + 999] = 2.0f;
    float *dl = up(lg, 3 * (size_t)V * 4);
    int32_t *dam = dev(3 * 4), am[3];
    CHECK_OP(ns_cuda_argmax(g_c, dl, 3, V, dam));
    down(am, dam, sizeof am);
    ASSERT_EQ(am[0], 500);
    ASSERT_EQ(am[1], 7);
    ASSERT_EQ(am[2], 999);
    free(lg);
    free(a);
    free(b);
    free(bias);
    free(ref);
    free(got);
    ns_arena_reset_to(ns_cuda_arena(g_c), mark);
    printf("elementwise, gather, argmax ok\n");
}

/* ---- attention ------------------------------------------------------------------- */

/* Store K/V for every position of n_seq sequences of the given lengths,
 * then attend with `n_q` query tokens (seq, pos) and compare with a float
 * reference over f16-rounded K/V. */
static void attention_case(int hd, int n_head, int n_kv, int n_seq, const int *len, int n_q, const int *q_seq,
                           const int *q_pos, const char *what) {
    const size_t mark = ns_arena_mark(ns_cuda_arena(g_c));
    const int page = 16;
    int max_len = 0, total = 0;
    for (int s = 0; s < n_seq; s++) {
        max_len = len[s] > max_len ? len[s] : max_len;
        total += len[s];
    }
    const int max_pages = (max_len + page - 1) / page;
    const int n_pages = n_seq * max_pages + 3;
    /* a shuffled page assignment */
    int32_t *perm = xmalloc((size_t)n_pages * 4), *table = xmalloc((size_t)(n_seq * max_pages) * 4);
    for (int i = 0; i < n_pages; i++) {
        perm[i] = i;
    }
    for (int i = n_pages - 1; i > 0; i--) {
        const int j = (int)((frand() * 0.5f + 0.5f) * (float)i);
        const int32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    for (int i = 0; i < n_seq * max_pages; i++) {
        table[i] = perm[i];
    }
    const int kvw = n_kv * hd;
    /* keys/values of every stored position, f16-rounded for the reference */
    float *k = xmalloc((size_t)total * (size_t)kvw * 4), *v = xmalloc((size_t)total * (size_t)kvw * 4);
    fill(k, (size_t)total * (size_t)kvw, 1.0f);
    fill(v, (size_t)total * (size_t)kvw, 1.0f);
    int32_t *st_seq = xmalloc((size_t)total * 4), *st_pos = xmalloc((size_t)total * 4);
    int32_t *first = xmalloc((size_t)n_seq * 4);
    for (int s = 0, t = 0; s < n_seq; s++) {
        first[s] = t;
        for (int p = 0; p < len[s]; p++, t++) {
            st_seq[t] = s;
            st_pos[t] = p;
        }
    }
    for (size_t i = 0; i < (size_t)total * (size_t)kvw; i++) {
        k[i] = ns_fp16_to_fp32(ns_fp32_to_fp16(k[i]));
        v[i] = ns_fp16_to_fp32(ns_fp32_to_fp16(v[i]));
    }
    const size_t pool = (size_t)n_pages * (size_t)n_kv * page * hd * 2;
    ns_cuda_kv_view kv;
    kv.k = dev(pool);
    kv.v = dev(pool);
    kv.head_stride = (int64_t)page * hd; /* kv_cache.h layout */
    kv.page_stride = (int64_t)n_kv * kv.head_stride;
    kv.token_stride = hd;
    kv.page_size = page;
    kv.n_pages = n_pages;
    ns_cuda_attn_batch sb;
    sb.tok_seq = up(st_seq, (size_t)total * 4);
    sb.tok_pos = up(st_pos, (size_t)total * 4);
    sb.page_table = up(table, (size_t)(n_seq * max_pages) * 4);
    sb.max_pages = max_pages;
    sb.n_tokens = total;
    sb.max_pos = max_len - 1;
    float *dk = up(k, (size_t)total * (size_t)kvw * 4), *dv = up(v, (size_t)total * (size_t)kvw * 4);
    CHECK_OP(ns_cuda_kv_store(g_c, &kv, &sb, dk, kvw, dv, kvw, n_kv, hd));

    const int qw = n_head * hd;
    float *q = xmalloc((size_t)n_q * (size_t)qw * 4), *ref = xmalloc((size_t)n_q * (size_t)qw * 4);
    float *got = xmalloc((size_t)n_q * (size_t)qw * 4);
    fill(q, (size_t)n_q * (size_t)qw, 2.0f);
    const float scale = 1.0f / sqrtf((float)hd);
    int qmax = 0;
    double *sc = xmalloc((size_t)max_len * sizeof(double));
    for (int t = 0; t < n_q; t++) {
        qmax = q_pos[t] > qmax ? q_pos[t] : qmax;
        for (int h = 0; h < n_head; h++) {
            const int kh = h / (n_head / n_kv);
            const float *qv = q + (size_t)t * qw + (size_t)h * hd;
            double mx = -1e300, sum = 0;
            for (int j = 0; j <= q_pos[t]; j++) {
                const float *kk = k + ((size_t)(first[q_seq[t]] + j) * kvw) + (size_t)kh * hd;
                double s = 0;
                for (int d = 0; d < hd; d++) {
                    s += (double)qv[d] * kk[d];
                }
                sc[j] = s * scale;
                mx = sc[j] > mx ? sc[j] : mx;
            }
            for (int j = 0; j <= q_pos[t]; j++) {
                sc[j] = exp(sc[j] - mx);
                sum += sc[j];
            }
            for (int d = 0; d < hd; d++) {
                double o = 0;
                for (int j = 0; j <= q_pos[t]; j++) {
                    o += sc[j] * v[((size_t)(first[q_seq[t]] + j) * kvw) + (size_t)kh * hd + d];
                }
                ref[(size_t)t * qw + (size_t)h * hd + d] = (float)(o / sum);
            }
        }
    }
    int32_t *qs = xmalloc((size_t)n_q * 4), *qp = xmalloc((size_t)n_q * 4);
    for (int t = 0; t < n_q; t++) {
        qs[t] = q_seq[t];
        qp[t] = q_pos[t];
    }
    ns_cuda_attn_batch qb = sb;
    qb.tok_seq = up(qs, (size_t)n_q * 4);
    qb.tok_pos = up(qp, (size_t)n_q * 4);
    qb.n_tokens = n_q;
    qb.max_pos = qmax;
    float *dq = up(q, (size_t)n_q * (size_t)qw * 4), *dout = dev((size_t)n_q * (size_t)qw * 4);
    CHECK_OP(ns_cuda_attention(g_c, &kv, &qb, dq, qw, dout, qw, n_head, n_kv, hd, scale));
    down(got, dout, (size_t)n_q * (size_t)qw * 4);
    check_nmse(what, got, ref, (size_t)n_q * (size_t)qw, 1e-9);
    printf("attention %s ok\n", what);
    free(perm);
    free(table);
    free(k);
    free(v);
    free(st_seq);
    free(st_pos);
    free(first);
    free(q);
    free(ref);
    free(got);
    free(sc);
    free(qs);
    free(qp);
    ns_arena_reset_to(ns_cuda_arena(g_c), mark);
}

static void test_attention(void) {
    /* decode: 64 sequences of different lengths, one query each at the end */
    int len[64], qs[64], qp[64];
    for (int s = 0; s < 64; s++) {
        len[s] = 1 + (s * 37) % 700;
        qs[s] = s;
        qp[s] = len[s] - 1;
    }
    attention_case(64, 8, 2, 64, len, 64, qs, qp, "decode 64 seqs hd64 gqa4");
    /* one sequence alone: the split count changes, the result must not */
    attention_case(64, 8, 2, 1, &len[63], 1, &qs[0], &qp[63], "decode 1 seq hd64");
    /* prefill: every position of two sequences as queries */
    int plen[2] = {100, 37};
    int pqs[137], pqp[137];
    for (int t = 0; t < 137; t++) {
        pqs[t] = t < 100 ? 0 : 1;
        pqp[t] = t < 100 ? t : t - 100;
    }
    attention_case(48, 6, 3, 2, plen, 137, pqs, pqp, "prefill hd48 gqa2");
    attention_case(128, 4, 4, 2, plen, 137, pqs, pqp, "prefill hd128 mha");
}

int main(void) {
    if (ns_cuda_device_count() <= 0) {
        NS_SKIP("no CUDA device");
    }
    ns_err err;
    memset(&err, 0, sizeof err);
    const size_t arena = (size_t)1 << 30;
    if (ns_cuda_create(&g_c, 0, arena, &err) != NS_OK) {
        NS_FAIL("ns_cuda_create: %s", ns_err_msg(&err));
    }
    const ns_cuda_info *info = ns_cuda_get_info(g_c);
    printf("device %s (cc %d.%d, %d SMs): context overhead %.1f MiB (%s), arena %.1f MiB\n", info->name, info->cc_major,
           info->cc_minor, info->sm_count, (double)info->context_overhead / 1048576.0,
           info->overhead_exact ? "NVML" : "total - free", (double)info->arena_bytes / 1048576.0);
    ns_cuda_scratch_cfg sc;
    memset(&sc, 0, sizeof sc);
    sc.max_tokens = 512;
    sc.max_k = 4096;
    sc.gemm_dequant_bytes = (size_t)4096 * 2 * 64; /* small: forces several row chunks */
    sc.embd_row_bytes = 512 * 4;
    CHECK_OP(ns_cuda_reserve_scratch(g_c, &sc));

    test_matmul();
    test_embed();
    test_rmsnorm();
    test_rope();
    test_elementwise();
    test_attention();

    /* device memory in use never exceeded what existed before us + context + arena */
    uint64_t used = 0;
    ASSERT_OK(ns_cuda_device_used(g_c, &used));
    if (info->overhead_exact) {
        const uint64_t before = info->total_bytes - info->free_before_ctx;
        ASSERT_TRUE(used <= before + info->context_overhead + info->arena_bytes + ((uint64_t)64 << 20));
    }
    printf("device used %.1f MiB\n", (double)used / 1048576.0);
    ns_cuda_destroy(&g_c);
    ns_cuda_destroy(&g_c); /* NULL-safe */
    printf("ok\n");
    return 0;
}
