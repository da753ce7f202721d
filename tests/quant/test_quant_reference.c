/*
 * test_quant_reference.c - bit-exact dequantization against llama.cpp.
 *
 * ../shared/reference/quant/quant-vectors.gguf holds, for each type T,
 * `T.q` (16 x 512 blocks from llama.cpp's quantizer) and `T.f32` (llama.cpp's
 * dequantization of them). ns_dequantize_tensor must reproduce every float
 * bit for bit. Every type the reference README lists must be present.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "ns_status.h"
#include "ns_test.h"
#include "quant.h"

static const char *const k_expected[] = {"f16",  "bf16", "q4_0", "q4_1", "q5_0", "q5_1",   "q8_0",
                                         "q2_K", "q3_K", "q4_K", "q5_K", "q6_K", "iq4_nl", "iq4_xs"};

/* Check one "T.q" tensor against "T.f32"; returns the number of differing floats. */
static long check_type(const ns_gguf *g, const ns_gguf_tensor *tq, const char *tname) {
    char fname[128];
    snprintf(fname, sizeof(fname), "%s.f32", tname);
    const ns_gguf_tensor *tf = ns_gguf_find_tensor(g, fname);
    if (tf == NULL) {
        NS_FAIL("%s: tensor %s missing", tname, fname);
    }
    ASSERT_EQ(tf->type, NS_TYPE_F32);
    ASSERT_EQ(tf->n_elements, tq->n_elements);
    ns_type want;
    ASSERT_TRUE(ns_type_from_name(tname, &want));
    ASSERT_EQ(tq->type, want);

    const int64_t row_len = tq->ne[0];
    const int64_t n_rows = (int64_t)tq->n_elements / row_len;
    float *out = malloc((size_t)tq->n_elements * sizeof(float));
    ASSERT_TRUE(out != NULL);
    ASSERT_OK(ns_dequantize_tensor(tq->type, tq->data, out, n_rows, row_len));

    long n_bad = 0;
    for (int64_t i = 0; i < (int64_t)tq->n_elements; i++) {
        float want_f;
        memcpy(&want_f, tf->data + 4 * i, 4);
        if (memcmp(&out[i], &want_f, 4) != 0) {
            if (n_bad == 0) {
                uint32_t a, b;
                memcpy(&a, &out[i], 4);
                memcpy(&b, &want_f, 4);
                fprintf(stderr, "%s: first mismatch at row %lld col %lld: got %.9g (0x%08x), want %.9g (0x%08x)\n",
                        tname, (long long)(i / row_len), (long long)(i % row_len), (double)out[i], a, (double)want_f,
                        b);
            }
            n_bad++;
        }
    }
    free(out);
    printf("%-7s %lld x %lld: %s (%ld mismatches)\n", tname, (long long)n_rows, (long long)row_len,
           n_bad == 0 ? "bit-exact" : "MISMATCH", n_bad);
    return n_bad;
}

int main(void) {
    char path[1024];
    ns_test_reference("quant/quant-vectors.gguf", path, sizeof(path));
    ns_gguf *g = NULL;
    ns_err err = {0};
    if (ns_gguf_open(path, &g, &err) != NS_OK) {
        NS_FAIL("open %s: %s", path, ns_err_msg(&err));
    }

    /* Every listed type must be present. */
    for (size_t k = 0; k < sizeof(k_expected) / sizeof(k_expected[0]); k++) {
        char name[64];
        snprintf(name, sizeof(name), "%s.q", k_expected[k]);
        if (ns_gguf_find_tensor(g, name) == NULL) {
            NS_FAIL("reference file lacks %s", name);
        }
    }

    /* Check every "T.q" in the file (the listed ones and any others). */
    long total_bad = 0;
    int n_types = 0;
    for (uint64_t i = 0; i < ns_gguf_n_tensors(g); i++) {
        const ns_gguf_tensor *t = ns_gguf_tensor_at(g, i);
        const size_t len = strlen(t->name);
        if (len < 3 || strcmp(t->name + len - 2, ".q") != 0) {
            continue;
        }
        char tname[64];
        snprintf(tname, sizeof(tname), "%.*s", (int)(len - 2), t->name);
        total_bad += check_type(g, t, tname);
        n_types++;
    }
    ns_gguf_close(&g);
    ASSERT_TRUE(g == NULL);
    ASSERT_TRUE(n_types >= (int)(sizeof(k_expected) / sizeof(k_expected[0])));
    if (total_bad != 0) {
        NS_FAIL("%ld floats differ from llama.cpp's dequantization", total_bad);
    }
    printf("all %d types bit-exact\n", n_types);
    return 0;
}
