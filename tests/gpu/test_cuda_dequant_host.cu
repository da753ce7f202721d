/*
 * test_cuda_dequant_host.cu - the CUDA kernels' per-type dequantizers
 * (kernels/ns_dequant.cuh, the only code through which every weight kernel
 * reads weights) run on the HOST against llama.cpp's dequantization in
 * ../shared/reference/quant/quant-vectors.gguf, bit for bit, for every
 * supported type, through the same 8-element groups the kernels use. Also
 * checks the float types' tail masking for a K that is not a multiple of 8.
 * Needs no GPU (label unit); skips when the reference data is absent.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "gguf.h"
#include "ns_test.h"
#include "ns_types.h"
}

#include "ns_dequant.cuh"

static const ns_gguf *g_g;
static int g_checked;

template <int T> static void check_type(const char *name) {
    char qn[64], fn[64];
    snprintf(qn, sizeof qn, "%s.q", name);
    snprintf(fn, sizeof fn, "%s.f32", name);
    const ns_gguf_tensor *q = ns_gguf_find_tensor(g_g, qn);
    const ns_gguf_tensor *f = ns_gguf_find_tensor(g_g, fn);
    if (q == NULL || f == NULL) {
        NS_FAIL("reference tensors %s / %s missing", qn, fn);
    }
    ASSERT_EQ(q->type, T);
    const int64_t K = q->ne[0], rows = q->ne[1];
    const int64_t row_bytes = ns__row_bytes<T>(K);
    ASSERT_EQ((uint64_t)(row_bytes * rows), q->nbytes);
    const float *ref = (const float *)f->data;
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t e = 0; e < K; e += 8) {
            float y[8];
            ns__dq<T>::run(q->data + r * row_bytes, e, K, y);
            for (int i = 0; i < 8; i++) {
                const float want = ref[r * K + e + i];
                if (memcmp(&y[i], &want, 4) != 0) {
                    NS_FAIL("%s row %lld elem %lld: got %.9g want %.9g", name, (long long)r, (long long)(e + i),
                            (double)y[i], (double)want);
                }
            }
        }
    }
    g_checked++;
    printf("%-7s %lld x %lld bit-exact\n", name, (long long)rows, (long long)K);
}

/* F32 rows of K = 172 (stories260K's FFN): the 8-groups past K read as 0 and
 * never touch memory past the row (the row is placed at the end of a buffer
 * whose tail is poisoned with NaN). */
static void check_tail(void) {
    float buf[176];
    for (int i = 0; i < 176; i++) {
        buf[i] = i < 172 ? (float)i * 0.5f : NAN;
    }
    for (int e = 0; e < 172; e += 8) {
        float y[8];
        ns__dq<NS_TYPE_F32>::run((const uint8_t *)buf, e, 172, y);
        for (int i = 0; i < 8; i++) {
            const float want = e + i < 172 ? (float)(e + i) * 0.5f : 0.0f;
            ASSERT_TRUE(y[i] == want);
        }
    }
}

int main(void) {
    char path[1024];
    ns_test_reference("quant/quant-vectors.gguf", path, sizeof path);
    ns_gguf *g = NULL;
    ns_err err;
    memset(&err, 0, sizeof err);
    if (ns_gguf_open(path, &g, &err) != NS_OK) {
        NS_FAIL("open %s: %s", path, ns_err_msg(&err));
    }
    g_g = g;
    check_type<NS_TYPE_F16>("f16");
    check_type<NS_TYPE_BF16>("bf16");
    check_type<NS_TYPE_Q4_0>("q4_0");
    check_type<NS_TYPE_Q4_1>("q4_1");
    check_type<NS_TYPE_Q5_0>("q5_0");
    check_type<NS_TYPE_Q5_1>("q5_1");
    check_type<NS_TYPE_Q8_0>("q8_0");
    check_type<NS_TYPE_Q2_K>("q2_K");
    check_type<NS_TYPE_Q3_K>("q3_K");
    check_type<NS_TYPE_Q4_K>("q4_K");
    check_type<NS_TYPE_Q5_K>("q5_K");
    check_type<NS_TYPE_Q6_K>("q6_K");
    check_type<NS_TYPE_IQ4_NL>("iq4_nl");
    check_type<NS_TYPE_IQ4_XS>("iq4_xs");
    check_tail();
    ASSERT_EQ(g_checked, 14);
    ns_gguf_close(&g);
    printf("ok\n");
    return 0;
}
