/*
 * test_synth.c - `synth`'s type mixes follow llama.cpp's rules, and every file
 * it writes reads back with finite, well-scaled weights in every tensor.
 */
#include <math.h>

#include "gguf.h"
#include "ns_test.h"
#include "quant.h"
#include "synth.h"

static ns_type ty(const ns_synth_shape *s, ns_synth_ftype ft, const char *name) {
    return ns_synth_tensor_type(s, ft, name, name[0] == 'b' && strstr(name, "ffn_down") ? s->n_ff : s->n_embd);
}

static void test_mixes(void) {
    const ns_synth_shape *l7 = ns_synth_shape_find("llama2-7b");
    const ns_synth_shape *l70 = ns_synth_shape_find("llama2-70b");
    const ns_synth_shape *l3 = ns_synth_shape_find("llama3-8b");
    char name[64];
    ASSERT_TRUE(l7 != NULL && l70 != NULL && l3 != NULL);
    ASSERT_TRUE(ns_synth_shape_find("no-such-shape") == NULL);
    /* Q4_K_M: attn_v / ffn_down get Q6_K where use_more_bits(i, n). n = 32:
     * i < 4, i >= 28, or (i - 4) % 3 == 2. */
    for (int i = 0; i < 32; i++) {
        bool more = i < 4 || i >= 28 || (i - 4) % 3 == 2;
        snprintf(name, sizeof name, "blk.%d.attn_v.weight", i);
        ASSERT_EQ(ty(l7, NS_FTYPE_Q4_K_M, name), more ? NS_TYPE_Q6_K : NS_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.ffn_down.weight", i);
        ASSERT_EQ(ty(l7, NS_FTYPE_Q4_K_M, name), more ? NS_TYPE_Q6_K : NS_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.attn_q.weight", i);
        ASSERT_EQ(ty(l7, NS_FTYPE_Q4_K_M, name), NS_TYPE_Q4_K);
        snprintf(name, sizeof name, "blk.%d.attn_norm.weight", i);
        ASSERT_EQ(ty(l7, NS_FTYPE_Q4_K_M, name), NS_TYPE_F32);
    }
    ASSERT_EQ(ty(l7, NS_FTYPE_Q4_K_M, "output.weight"), NS_TYPE_Q6_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q4_K_M, "token_embd.weight"), NS_TYPE_Q4_K);
    /* Q3_K_M */
    ASSERT_EQ(ty(l7, NS_FTYPE_Q3_K_M, "blk.1.attn_v.weight"), NS_TYPE_Q5_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q3_K_M, "blk.2.attn_v.weight"), NS_TYPE_Q4_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q3_K_M, "blk.1.ffn_down.weight"), NS_TYPE_Q5_K); /* 1 < 32/16 */
    ASSERT_EQ(ty(l7, NS_FTYPE_Q3_K_M, "blk.2.ffn_down.weight"), NS_TYPE_Q4_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q3_K_M, "blk.5.attn_output.weight"), NS_TYPE_Q4_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q3_K_M, "blk.5.ffn_up.weight"), NS_TYPE_Q3_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q3_K_M, "output.weight"), NS_TYPE_Q6_K);
    /* Q2_K: attn_v is Q4_K when n_head / n_head_kv >= 4 (llama3-8b: 32/8), else Q3_K. */
    ASSERT_EQ(ty(l3, NS_FTYPE_Q2_K, "blk.3.attn_v.weight"), NS_TYPE_Q4_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q2_K, "blk.3.attn_v.weight"), NS_TYPE_Q3_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q2_K, "blk.3.ffn_down.weight"), NS_TYPE_Q3_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q2_K, "blk.3.attn_output.weight"), NS_TYPE_Q3_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q2_K, "blk.3.ffn_gate.weight"), NS_TYPE_Q2_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q2_K, "output.weight"), NS_TYPE_Q6_K);
    /* 70B: attn_v at Q5_K where the mix would give Q3_K or Q4_K. */
    ASSERT_EQ(ty(l70, NS_FTYPE_Q4_K_M, "blk.40.attn_v.weight"), NS_TYPE_Q5_K);
    ASSERT_EQ(ty(l70, NS_FTYPE_Q4_K_M, "blk.0.attn_v.weight"), NS_TYPE_Q6_K);
    ASSERT_EQ(ty(l70, NS_FTYPE_Q2_K, "blk.40.attn_v.weight"), NS_TYPE_Q5_K);
    /* Rows that do not fit the 256-block fall back as llama.cpp does. */
    ASSERT_EQ(ns_synth_tensor_type(l7, NS_FTYPE_Q4_K_M, "blk.0.attn_q.weight", 64), NS_TYPE_Q5_0);
    ASSERT_EQ(ns_synth_tensor_type(l7, NS_FTYPE_Q4_K_M, "output.weight", 64), NS_TYPE_Q8_0);
    ASSERT_EQ(ns_synth_tensor_type(l7, NS_FTYPE_Q2_K, "blk.0.ffn_up.weight", 96), NS_TYPE_IQ4_NL);
    /* Other ftypes */
    ASSERT_EQ(ty(l7, NS_FTYPE_Q8_0, "output.weight"), NS_TYPE_Q8_0);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q4_0, "output.weight"), NS_TYPE_Q6_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_F16, "blk.0.attn_q.weight"), NS_TYPE_F16);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q5_K_M, "blk.0.attn_v.weight"), NS_TYPE_Q6_K);
    ASSERT_EQ(ty(l7, NS_FTYPE_Q5_K_M, "blk.5.attn_v.weight"), NS_TYPE_Q5_K);
}

/* Write the tiny shape in every ftype; read it back; every weight finite and
 * each matrix's standard deviation near 1/sqrt(row length). */
static void test_files(const char *dir) {
    static const char *const fts[] = {"f32", "f16", "q4_0", "q8_0", "q2_k", "q3_k_m", "q4_k_m", "q5_k_m", "q6_k"};
    const ns_synth_shape *tiny = ns_synth_shape_find("tiny");
    for (size_t f = 0; f < sizeof fts / sizeof fts[0]; f++) {
        ns_synth_opts o;
        char path[512];
        ns_gguf *g = NULL;
        ns_err err = {0};
        uint32_t u;
        memset(&o, 0, sizeof o);
        o.shape = tiny;
        o.seed = 7;
        ASSERT_TRUE(ns_synth_ftype_parse(fts[f], &o.ftype));
        snprintf(path, sizeof path, "%s/tiny-%s.gguf", dir, fts[f]);
        if (ns_synth_write(path, &o, &err) != NS_OK) {
            NS_FAIL("synth %s: %s", fts[f], ns_err_msg(&err));
        }
        if (ns_gguf_open(path, &g, &err) != NS_OK) {
            NS_FAIL("open %s: %s", path, ns_err_msg(&err));
        }
        ASSERT_OK(ns_gguf_get_u32(g, "llama.block_count", &u));
        ASSERT_EQ(u, tiny->n_layer);
        ASSERT_OK(ns_gguf_get_u32(g, "general.file_type", &u));
        ASSERT_EQ(u, o.ftype);
        ASSERT_EQ(ns_gguf_find_kv(g, "tokenizer.ggml.tokens")->arr_n, tiny->n_vocab);
        ASSERT_EQ(ns_gguf_n_tensors(g), 3 + 9 * tiny->n_layer);
        for (uint64_t i = 0; i < ns_gguf_n_tensors(g); i++) {
            const ns_gguf_tensor *t = ns_gguf_tensor_at(g, i);
            size_t n = (size_t)t->n_elements;
            float *v = malloc(n * sizeof *v);
            double sum = 0, sq = 0, sd, want;
            ASSERT_TRUE(v != NULL);
            ASSERT_OK(ns_dequantize_tensor(t->type, t->data, v, (int64_t)(n / (size_t)t->ne[0]), t->ne[0]));
            for (size_t k = 0; k < n; k++) {
                if (!isfinite(v[k])) {
                    NS_FAIL("%s %s: non-finite weight at %zu", fts[f], t->name, k);
                }
                sum += v[k];
                sq += (double)v[k] * v[k];
            }
            sd = sqrt(sq / (double)n - (sum / (double)n) * (sum / (double)n));
            want = 1.0 / sqrt((double)t->ne[0]);
            if (t->n_dims == 1) {
                ASSERT_NEAR(sum / (double)n, 1.0, 1e-6); /* norms are ones */
            } else if (sd < 0.5 * want || sd > 2.0 * want) {
                NS_FAIL("%s %s (%s): weight sd %.4g, want about %.4g", fts[f], t->name, ns_type_name(t->type), sd,
                        want);
            }
            free(v);
        }
        ns_gguf_close(&g);
        remove(path);
    }
}

int main(void) {
    char dir[] = "/tmp/ns_test_synth_XXXXXX";
    if (mkdtemp(dir) == NULL) {
        NS_FAIL("mkdtemp");
    }
    test_mixes();
    test_files(dir);
    rmdir(dir);
    printf("test_synth: ok\n");
    return 0;
}
