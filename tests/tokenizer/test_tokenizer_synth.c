/*
 * test_tokenizer_synth.c - tokenizers built from small synthetic GGUF files
 * (written with gguf_write.h), so the algorithms' corner cases and the load
 * errors are checked without the reference data: SPM score order and the
 * leftmost tie-break, byte fallback to <0xXX> and to <unk>, user-defined
 * tokens, add_space_prefix, byte-level BPE merge ranks, unknown
 * pre-tokenizers, and malformed metadata.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf_write.h"
#include "ns_status.h"
#include "ns_test.h"
#include "tokenizer.h"

static char g_path[512];

typedef struct vocab_spec {
    const char *model;
    const char *pre; /* NULL: absent */
    const char *const *tokens;
    const float *scores;  /* NULL: absent */
    const int32_t *types; /* NULL: absent */
    uint64_t n_types;     /* length written for types (to test mismatches) */
    uint64_t n;
    const char *const *merges; /* NULL: absent */
    uint64_t n_merges;
    int add_space_prefix; /* -1 absent, else bool */
    int add_bos;          /* -1 absent, else bool */
} vocab_spec;

static void write_vocab(const vocab_spec *v) {
    ns_gguf_writer *w = NULL;
    ns_err err = {0};
    ASSERT_OK(ns_gguf_writer_new(&w));
    ASSERT_OK(ns_gguf_writer_set_str(w, "general.architecture", "llama", 5));
    ASSERT_OK(ns_gguf_writer_set_str(w, "tokenizer.ggml.model", v->model, strlen(v->model)));
    if (v->pre) {
        ASSERT_OK(ns_gguf_writer_set_str(w, "tokenizer.ggml.pre", v->pre, strlen(v->pre)));
    }
    ASSERT_OK(ns_gguf_writer_set_arr_str(w, "tokenizer.ggml.tokens", v->tokens, NULL, v->n));
    if (v->scores) {
        ASSERT_OK(ns_gguf_writer_set_arr(w, "tokenizer.ggml.scores", NS_GGUF_FLOAT32, v->scores, v->n));
    }
    if (v->types) {
        ASSERT_OK(ns_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", NS_GGUF_INT32, v->types, v->n_types));
    }
    if (v->merges) {
        ASSERT_OK(ns_gguf_writer_set_arr_str(w, "tokenizer.ggml.merges", v->merges, NULL, v->n_merges));
    }
    if (v->add_space_prefix >= 0) {
        ASSERT_OK(ns_gguf_writer_set_bool(w, "tokenizer.ggml.add_space_prefix", v->add_space_prefix != 0));
    }
    if (v->add_bos >= 0) {
        ASSERT_OK(ns_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos != 0));
    }
    ASSERT_OK(ns_gguf_writer_begin(w, g_path, &err));
    ASSERT_OK(ns_gguf_writer_finish(w, &err));
    ns_gguf_writer_free(&w);
}

static ns_status load(const vocab_spec *v, ns_tokenizer **t, ns_err *err) {
    write_vocab(v);
    ns_gguf *g = NULL;
    ASSERT_OK(ns_gguf_open(g_path, &g, err));
    ns_status st = ns_tokenizer_load(g, t, err);
    ns_gguf_close(&g);
    return st;
}

static void expect_ids(const ns_tokenizer *t, const char *text, bool add_special, bool parse_special,
                       const int32_t *want, size_t n_want) {
    int32_t ids[64];
    size_t n = 0;
    ASSERT_OK(ns_tokenizer_encode(t, text, strlen(text), add_special, parse_special, ids, 64, &n, NULL));
    bool ok = n == n_want && memcmp(ids, want, n * sizeof(int32_t)) == 0;
    if (!ok) {
        fprintf(stderr, "'%s': got", text);
        for (size_t i = 0; i < n; i++) {
            fprintf(stderr, " %d", ids[i]);
        }
        fprintf(stderr, "\n");
        NS_FAIL("unexpected tokenization of '%s'", text);
    }
}

#define IDS(...) ((const int32_t[]){__VA_ARGS__}), (sizeof((const int32_t[]){__VA_ARGS__}) / sizeof(int32_t))

static void test_spm(void) {
    /*                            0        1      2       3           4    5    6     7             8 */
    static const char *toks[] = {"<unk>",
                                 "<s>",
                                 "</s>",
                                 "\xe2\x96\x81",
                                 "a",
                                 "b",
                                 "ab",
                                 "\xe2\x96\x81"
                                 "ab",
                                 "<0x41>",
                                 "<|x|>",
                                 "aa",
                                 ""};
    /*                            8         9        10    11 */
    static const float scores[] = {0, 0, 0, -5, -5, -5, -1, -0.5f, 0, 0, -2, 0};
    static const int32_t types[] = {2, 3, 3, 1, 1, 1, 1, 1, 6, 4, 1, 1};
    vocab_spec v = {"llama", NULL, toks, scores, types, 12, 12, NULL, 0, -1, -1};
    ns_tokenizer *t = NULL;
    ns_err err = {0};
    ASSERT_OK(load(&v, &t, &err));
    ASSERT_EQ(ns_tokenizer_kind(t), NS_TOK_SPM);
    ASSERT_EQ(ns_tokenizer_bos(t), 1);
    ASSERT_EQ(ns_tokenizer_eos(t), 2);
    /* "▁ab": ab (-1) merges first, then ▁ab (-0.5) */
    expect_ids(t, "ab", false, false, IDS(7));
    expect_ids(t, "ab", true, false, IDS(1, 7));
    /* byte fallback: A has <0x41>; c has no byte token -> <unk> */
    expect_ids(t, "abA", false, false, IDS(7, 8));
    expect_ids(t, "c", false, false, IDS(3, 0));
    /* equal scores: the leftmost pair merges first */
    expect_ids(t, "aaa", false, false, IDS(3, 10, 4));
    /* user-defined tokens are matched without parse_special, and a space
     * prefix follows them */
    expect_ids(t, "ab<|x|>ab", false, false, IDS(7, 9, 7));
    /* control tokens only with parse_special */
    expect_ids(t, "</s>", false, true, IDS(2));
    /* the empty token got llama.cpp's placeholder name */
    size_t len;
    ASSERT_STREQ(ns_tokenizer_token_text(t, 11, &len), "[EMPTY_11]");
    ASSERT_EQ(ns_tokenizer_find(t, "[EMPTY_11]", 10), 11);
    ns_tokenizer_free(&t);

    /* add_space_prefix = false */
    v.add_space_prefix = 0;
    ASSERT_OK(load(&v, &t, &err));
    expect_ids(t, "ab", false, false, IDS(6));
    ns_tokenizer_free(&t);

    /* add_bos_token = false */
    v.add_space_prefix = -1;
    v.add_bos = 0;
    ASSERT_OK(load(&v, &t, &err));
    expect_ids(t, "ab", true, false, IDS(7));
    ns_tokenizer_free(&t);

    /* token_type of the wrong length */
    v.add_bos = -1;
    v.n_types = 5;
    ASSERT_EQ(load(&v, &t, &err), NS_ERR_FORMAT);
    ASSERT_TRUE(t == NULL && strstr(err.msg, "token_type") != NULL);

    /* one token: the default BOS (1) does not exist, but add_bos defaults true */
    static const char *one[] = {"<unk>"};
    vocab_spec v1 = {"llama", NULL, one, NULL, NULL, 0, 1, NULL, 0, -1, -1};
    ASSERT_EQ(load(&v1, &t, &err), NS_ERR_FORMAT);
    v1.add_bos = 0;
    ASSERT_OK(load(&v1, &t, &err));
    ASSERT_EQ(ns_tokenizer_bos(t), -1);
    ns_tokenizer_free(&t);

    /* other tokenizer models are refused */
    vocab_spec vb = {"bert", NULL, toks, NULL, NULL, 0, 12, NULL, 0, -1, -1};
    ASSERT_EQ(load(&vb, &t, &err), NS_ERR_UNSUPPORTED);
    ASSERT_TRUE(strstr(err.msg, "bert") != NULL);
}

static void test_bpe(void) {
    /* byte-level: space is "Ġ" (U+0120) */
    static const char *toks[] = {"a",
                                 "b",
                                 "ab",
                                 "\xc4\xa0",
                                 "\xc4\xa0"
                                 "a",
                                 "<|end|>",
                                 "c"};
    static const int32_t types[] = {1, 1, 1, 1, 1, 3, 1};
    static const char *merges[] = {"a b", "\xc4\xa0 a", "bad-merge-without-space"};
    vocab_spec v = {"gpt2", "gpt-2", toks, NULL, types, 7, 7, merges, 3, -1, -1};
    ns_tokenizer *t = NULL;
    ns_err err = {0};
    ASSERT_OK(load(&v, &t, &err));
    ASSERT_STREQ(ns_tokenizer_pre(t), "gpt2");
    ASSERT_TRUE(!ns_tokenizer_add_bos(t));
    /* "ab" | " ab": in " ab", a+b (rank 0) beats Ġ+a (rank 1) */
    expect_ids(t, "ab ab", false, false, IDS(2, 3, 2));
    /* " a": Ġ+a */
    expect_ids(t, " a", false, false, IDS(4));
    /* a byte with no token disappears (as llama.cpp) */
    expect_ids(t, "ad", false, false, IDS(0));
    /* <|end|> is EOG by its text, and a control token */
    ASSERT_TRUE(ns_tokenizer_is_eog(t, 5));
    expect_ids(t, "<|end|>", false, true, IDS(5));
    size_t len;
    const char *p = ns_tokenizer_piece(t, 4, false, &len);
    ASSERT_EQ(len, 2);
    ASSERT_TRUE(memcmp(p, " a", 2) == 0);
    ns_tokenizer_free(&t);

    /* an unknown pre-tokenizer name falls back to the default regexes */
    v.pre = "something-new";
    ASSERT_OK(load(&v, &t, &err));
    ASSERT_STREQ(ns_tokenizer_pre(t), "default");
    expect_ids(t, "ab ab", false, false, IDS(2, 3, 2));
    ns_tokenizer_free(&t);
    /* llama3 pre-tokenizer: add_bos defaults to true (BOS id 11 does not exist) */
    v.pre = "llama-bpe";
    ASSERT_EQ(load(&v, &t, &err), NS_ERR_FORMAT);
    /* no merges */
    v.pre = "gpt-2";
    v.merges = NULL;
    ASSERT_EQ(load(&v, &t, &err), NS_ERR_FORMAT);
    ASSERT_TRUE(strstr(err.msg, "merges") != NULL);
}

int main(void) {
    snprintf(g_path, sizeof(g_path), "%s/tests/test_tokenizer_synth.%d.gguf", NS_BINARY_DIR, (int)getpid());
    test_spm();
    test_bpe();
    unlink(g_path);
    return 0;
}
