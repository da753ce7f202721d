/*
 * test_tokenizer.c - tokenizer behaviour beyond the reference files:
 * special-token parsing, BOS/EOS, capacity errors, end-of-generation ids,
 * pieces, and the streaming detokenizer (UTF-8 split across tokens, invalid
 * bytes). Uses the reference vocabularies; skips when they are absent.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "ns_status.h"
#include "ns_test.h"
#include "ns_util.h"
#include "tokenizer.h"

static ns_tokenizer *load_tok(const char *rel) {
    char path[1024];
    ns_test_reference(rel, path, sizeof(path));
    ns_gguf *g = NULL;
    ns_err err = {0};
    if (ns_gguf_open(path, &g, &err) != NS_OK) {
        NS_FAIL("open %s: %s", path, ns_err_msg(&err));
    }
    ns_tokenizer *t = NULL;
    if (ns_tokenizer_load(g, &t, &err) != NS_OK) {
        NS_FAIL("tokenizer %s: %s", path, ns_err_msg(&err));
    }
    ns_gguf_close(&g);
    return t;
}

static size_t enc(const ns_tokenizer *t, const char *s, bool add_special, bool parse_special, int32_t *ids,
                  size_t cap) {
    size_t n = 0;
    ns_err err = {0};
    ns_status st = ns_tokenizer_encode(t, s, strlen(s), add_special, parse_special, ids, cap, &n, &err);
    if (st != NS_OK) {
        NS_FAIL("encode '%s': %s", s, ns_err_msg(&err));
    }
    return n;
}

static bool has_id(const int32_t *ids, size_t n, int32_t id) {
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == id) {
            return true;
        }
    }
    return false;
}

/* Push ids one at a time; every chunk must be valid UTF-8; return the text. */
static size_t stream_decode(const ns_tokenizer *t, const int32_t *ids, size_t n, char *out, size_t cap) {
    ns_detok d;
    ns_detok_init(&d, t, false);
    size_t total = 0;
    size_t max_out = ns_detok_max_out(t);
    for (size_t i = 0; i < n; i++) {
        ASSERT_TRUE(total + max_out <= cap);
        size_t k = 0;
        ASSERT_OK(ns_detok_push(&d, ids[i], out + total, max_out, &k));
        ASSERT_TRUE(ns_utf8_valid(out + total, k));
        total += k;
    }
    size_t k = 0;
    ASSERT_OK(ns_detok_flush(&d, out + total, cap - total, &k));
    ASSERT_TRUE(ns_utf8_valid(out + total, k));
    total += k;
    return total;
}

static void test_qwen2(void) {
    ns_tokenizer *t = load_tok("vocab/ggml-vocab-qwen2.gguf");
    ASSERT_EQ(ns_tokenizer_kind(t), NS_TOK_BPE);
    ASSERT_STREQ(ns_tokenizer_pre(t), "qwen2");
    ASSERT_EQ(ns_tokenizer_n_vocab(t), 151936);
    ASSERT_TRUE(!ns_tokenizer_add_bos(t));
    int32_t ids[256];
    const char *chat = "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n";
    size_t n = enc(t, chat, true, true, ids, 256);
    ASSERT_EQ(ids[0], 151644);
    ASSERT_TRUE(has_id(ids, n, 151645));
    /* the same text without parse_special never yields the control ids */
    size_t n2 = enc(t, chat, true, false, ids, 256);
    ASSERT_TRUE(n2 > n);
    ASSERT_TRUE(!has_id(ids, n2, 151644) && !has_id(ids, n2, 151645));
    /* EOG: <|im_end|> (EOS) and <|endoftext|> */
    ASSERT_TRUE(ns_tokenizer_is_eog(t, 151645));
    ASSERT_TRUE(ns_tokenizer_is_eog(t, 151643));
    ASSERT_TRUE(!ns_tokenizer_is_eog(t, 151644));
    ASSERT_TRUE(!ns_tokenizer_is_eog(t, 9707));
    ASSERT_TRUE(!ns_tokenizer_is_eog(t, -1) && !ns_tokenizer_is_eog(t, 1 << 30));
    /* control pieces: text only with special */
    size_t len;
    const char *p = ns_tokenizer_piece(t, 151645, true, &len);
    ASSERT_EQ(len, 10);
    ASSERT_TRUE(memcmp(p, "<|im_end|>", 10) == 0);
    ns_tokenizer_piece(t, 151645, false, &len);
    ASSERT_EQ(len, 0);
    ASSERT_EQ(ns_tokenizer_find(t, "<|im_end|>", 10), 151645);
    ASSERT_EQ(ns_tokenizer_token_type(t, 151645), NS_TOKEN_CONTROL);

    /* capacity: the needed count comes back */
    const char *text = "The quick brown fox jumps over the lazy dog.";
    size_t full = enc(t, text, false, false, ids, 256);
    size_t need = 0;
    ASSERT_EQ(ns_tokenizer_encode(t, text, strlen(text), false, false, ids, 2, &need, NULL), NS_ERR_CAPACITY);
    ASSERT_EQ(need, full);
    ASSERT_EQ(ns_tokenizer_encode(t, text, strlen(text), false, false, NULL, 0, &need, NULL), NS_ERR_CAPACITY);
    ASSERT_EQ(need, full);
    ASSERT_EQ(ns_tokenizer_encode(t, "", 0, true, true, NULL, 0, &need, NULL), NS_OK);
    ASSERT_EQ(need, 0);

    /* streaming: multi-byte characters split across byte-level pieces */
    const char *multi = "caf\xc3\xa9 \xf0\x9f\x98\x81 \xe6\x88\x91\xe6\x83\xb3 \xe1\x9e\x80\xe1\x9e\xb6 done";
    n = enc(t, multi, false, false, ids, 256);
    char out[4096];
    size_t ol = stream_decode(t, ids, n, out, sizeof(out));
    ASSERT_EQ(ol, strlen(multi));
    ASSERT_TRUE(memcmp(out, multi, ol) == 0);

    /* invalid UTF-8 in: encode turns each bad byte into U+FFFD (as llama.cpp) */
    const char bad[] = "a\xff"
                       "b";
    n = enc(t, bad, false, false, ids, 256);
    ol = stream_decode(t, ids, n, out, sizeof(out));
    ASSERT_EQ(ol, 5);
    ASSERT_TRUE(memcmp(out,
                       "a\xef\xbf\xbd"
                       "b",
                       5) == 0);
    ns_tokenizer_free(&t);
    ns_tokenizer_free(&t); /* NULL-safe */
}

static void test_llama3(void) {
    ns_tokenizer *t = load_tok("vocab/ggml-vocab-llama-bpe.gguf");
    ASSERT_STREQ(ns_tokenizer_pre(t), "llama3");
    ASSERT_TRUE(ns_tokenizer_add_bos(t));
    ASSERT_EQ(ns_tokenizer_bos(t), 128000);
    ASSERT_EQ(ns_tokenizer_eos(t), 128001);
    int32_t ids[256];
    size_t n = enc(t, "Hello", true, false, ids, 256);
    ASSERT_EQ(n, 2);
    ASSERT_EQ(ids[0], 128000);
    ASSERT_EQ(ids[1], 9906);
    n = enc(t, "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>", false, true, ids, 256);
    ASSERT_EQ(ids[0], 128006);
    ASSERT_EQ(ids[2], 128007);
    ASSERT_EQ(ids[n - 1], 128009);
    ASSERT_TRUE(ns_tokenizer_is_eog(t, 128009)); /* <|eot_id|> */
    ASSERT_TRUE(ns_tokenizer_is_eog(t, 128001)); /* EOS */
    ASSERT_TRUE(!ns_tokenizer_is_eog(t, 128000));
    ASSERT_EQ(ns_tokenizer_eot(t), 128009);
    /* detokenize without special drops control tokens */
    char out[4096];
    size_t ol = stream_decode(t, ids, n, out, sizeof(out));
    ASSERT_EQ(ol, strlen("user\n\nHi"));
    ASSERT_TRUE(memcmp(out, "user\n\nHi", ol) == 0);
    size_t dl;
    ASSERT_OK(ns_tokenizer_decode(t, ids, n, true, out, sizeof(out), &dl));
    ASSERT_EQ(dl, strlen("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"));
    ASSERT_EQ(ns_tokenizer_decode(t, ids, n, true, out, 5, &dl), NS_ERR_CAPACITY);
    ASSERT_EQ(dl, strlen("<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"));
    ns_tokenizer_free(&t);
}

static void test_spm(void) {
    ns_tokenizer *t = load_tok("vocab/ggml-vocab-llama-spm.gguf");
    ASSERT_EQ(ns_tokenizer_kind(t), NS_TOK_SPM);
    ASSERT_TRUE(ns_tokenizer_add_bos(t) && !ns_tokenizer_add_eos(t));
    int32_t ids[256];
    /* BOS, and specials parsed with a space prefix after them */
    size_t n = enc(t, "<s>Hello</s>", true, true, ids, 256);
    ASSERT_EQ(ids[0], 1);
    ASSERT_EQ(ids[1], 1);
    ASSERT_EQ(ids[n - 1], 2);
    int32_t ids2[256];
    size_t n2 = enc(t, "Hello", false, false, ids2, 256);
    ASSERT_EQ(n, n2 + 3);
    ASSERT_TRUE(memcmp(ids + 2, ids2, n2 * sizeof(int32_t)) == 0);
    /* without parse_special "<s>" is plain text */
    n = enc(t, "<s>", false, false, ids, 256);
    ASSERT_TRUE(!has_id(ids, n, 1));
    ASSERT_TRUE(ns_tokenizer_is_eog(t, 2));
    ASSERT_TRUE(!ns_tokenizer_is_eog(t, 1));

    /* pieces: U+2581 -> space, byte tokens -> the byte */
    size_t len;
    const char *p = ns_tokenizer_piece(t, ids2[0], false, &len); /* "▁Hello" */
    ASSERT_EQ(len, 6);
    ASSERT_TRUE(memcmp(p, " Hello", 6) == 0);
    int32_t b_ff = ns_tokenizer_find(t, "<0xFF>", 6);
    ASSERT_TRUE(b_ff >= 0);
    ASSERT_EQ(ns_tokenizer_token_type(t, b_ff), NS_TOKEN_BYTE);
    char c;
    size_t cl;
    ASSERT_OK(ns_tokenizer_token_to_piece(t, b_ff, false, &c, 1, &cl));
    ASSERT_EQ(cl, 1);
    ASSERT_EQ((uint8_t)c, 0xff);
    ASSERT_EQ(ns_tokenizer_token_to_piece(t, 99999, false, &c, 1, &cl), NS_ERR_RANGE);

    /* 🦙 has no token: four byte tokens, streamed out as one character */
    n = enc(t, "\xf0\x9f\xa6\x99", false, false, ids, 256);
    ASSERT_TRUE(n >= 4);
    ns_detok d;
    ns_detok_init(&d, t, false);
    char out[4096];
    size_t total = 0, k;
    for (size_t i = 0; i < n; i++) {
        ASSERT_OK(ns_detok_push(&d, ids[i], out + total, sizeof(out) - total, &k));
        if (i + 1 < n) {
            ASSERT_TRUE(k == 0 || (k == 1 && out[total] == ' ')); /* only the prefix space before completion */
        }
        total += k;
    }
    ASSERT_EQ(total, 5);
    ASSERT_TRUE(memcmp(out, " \xf0\x9f\xa6\x99", 5) == 0);

    /* invalid and truncated bytes become U+FFFD; capacity errors leave state intact */
    int32_t b_f0 = ns_tokenizer_find(t, "<0xF0>", 6), b_9f = ns_tokenizer_find(t, "<0x9F>", 6);
    ns_detok_init(&d, t, false);
    ASSERT_OK(ns_detok_push(&d, b_ff, out, sizeof(out), &k));
    ASSERT_EQ(k, 3);
    ASSERT_TRUE(memcmp(out, "\xef\xbf\xbd", 3) == 0);
    ASSERT_OK(ns_detok_push(&d, b_f0, out, sizeof(out), &k));
    ASSERT_EQ(k, 0);
    ASSERT_OK(ns_detok_push(&d, b_9f, out, sizeof(out), &k));
    ASSERT_EQ(k, 0);
    /* 'H' (via a normal token) interrupts the sequence: FFFD then the text */
    ASSERT_EQ(ns_detok_push(&d, ids2[0], out, 2, &k), NS_ERR_CAPACITY);
    ASSERT_EQ(k, 9);
    ASSERT_OK(ns_detok_push(&d, ids2[0], out, sizeof(out), &k));
    ASSERT_EQ(k, 9);
    ASSERT_TRUE(memcmp(out, "\xef\xbf\xbd Hello", 9) == 0);
    ASSERT_OK(ns_detok_push(&d, b_f0, out, sizeof(out), &k));
    ASSERT_EQ(k, 0);
    ASSERT_OK(ns_detok_flush(&d, out, sizeof(out), &k));
    ASSERT_EQ(k, 3);
    ASSERT_OK(ns_detok_flush(&d, out, sizeof(out), &k));
    ASSERT_EQ(k, 0);
    ns_tokenizer_free(&t);
}

static void test_phi3(void) {
    /* Phi-3: </s> is user-defined (matched even without parse_special) and
     * eats the whitespace after it (llama.cpp's RSTRIP for this model). */
    ns_tokenizer *t = load_tok("vocab/ggml-vocab-phi-3.gguf");
    int32_t a[64], b[64], c[64];
    size_t na = enc(t, "a</s>  b", false, false, a, 64);
    size_t nb = enc(t, "a", false, false, b, 64);
    size_t nc = enc(t, "b", false, false, c, 64);
    ASSERT_EQ(na, nb + 1 + nc);
    ASSERT_TRUE(memcmp(a, b, nb * sizeof(int32_t)) == 0);
    ASSERT_EQ(a[nb], 2);
    ASSERT_TRUE(memcmp(a + nb + 1, c, nc * sizeof(int32_t)) == 0);
    ASSERT_TRUE(ns_tokenizer_is_eog(t, 32007)); /* <|end|> */
    ASSERT_TRUE(ns_tokenizer_is_eog(t, 32000)); /* <|endoftext|>, the EOS */
    ns_tokenizer_free(&t);
}

/* Random texts built from raw bytes, ASCII, multi-byte characters and pieces
 * of special tokens: encoding never fails, ids are in range, streamed text is
 * valid UTF-8, and for valid UTF-8 input the round trip is exact (SPM: a
 * literal U+2581 comes back as a space) unless user-defined tokens strip. */
static void test_random_roundtrip(const char *rel, bool lossless) {
    ns_tokenizer *t = load_tok(rel);
    static const char *const parts[] = {"a",
                                        "Z",
                                        " ",
                                        "  ",
                                        "\n",
                                        "\t",
                                        "'s",
                                        "9",
                                        "\xc3\xa9",
                                        "\xe6\x88\x91",
                                        "\xf0\x9f\xa6\x99",
                                        "<s>",
                                        "</s>",
                                        "<|im_end|>",
                                        "<|eot_id|>",
                                        "<0x0A>",
                                        "\xe2\x96\x81",
                                        ".",
                                        "<|"};
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char text[512];
    static int32_t ids[4096];
    static char out[65536], dec[65536];
    int n_checked = 0;
    for (int iter = 0; iter < 300; iter++) {
        size_t len = 0;
        bool valid = true;
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        int n_parts = (int)((x >> 40) % 40);
        for (int k = 0; k < n_parts; k++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            if ((x >> 60) == 0) {
                text[len++] = (char)(x >> 32); /* a raw byte, possibly invalid UTF-8 */
                valid = false;
            } else {
                const char *pp = parts[(x >> 33) % (sizeof(parts) / sizeof(parts[0]))];
                memcpy(text + len, pp, strlen(pp));
                len += strlen(pp);
            }
        }
        valid = valid && ns_utf8_valid(text, len);
        for (int ps = 0; ps < 2; ps++) {
            size_t n = 0;
            ASSERT_OK(ns_tokenizer_encode(t, text, len, ps == 0, ps == 1, ids, 4096, &n, NULL));
            for (size_t i = 0; i < n; i++) {
                ASSERT_TRUE(ids[i] >= 0 && ids[i] < ns_tokenizer_n_vocab(t));
            }
            size_t ol = stream_decode(t, ids, n, out, sizeof(out));
            (void)ol;
            /* (invalid bytes are not round-tripped: BPE makes them U+FFFD, and
             * SPM's lead-byte splitting can swallow the escaped space after one
             * into a byte-fallback character) */
            if (ps == 0 && lossless && valid) {
                n_checked++;
                size_t dl = 0;
                ASSERT_OK(ns_tokenizer_decode(t, ids, n, false, dec, sizeof(dec), &dl));
                const char *d = dec;
                if (ns_tokenizer_kind(t) == NS_TOK_SPM && len > 0) {
                    ASSERT_TRUE(dl > 0 && dec[0] == ' ');
                    d++;
                    dl--;
                }
                /* SPM cannot tell a literal U+2581 from an escaped space */
                char want[512];
                size_t wl = 0;
                for (size_t i = 0; i < len; i++) {
                    if (ns_tokenizer_kind(t) == NS_TOK_SPM && i + 2 < len && memcmp(text + i, "\xe2\x96\x81", 3) == 0) {
                        want[wl++] = ' ';
                        i += 2;
                    } else {
                        want[wl++] = text[i];
                    }
                }
                if (dl != wl || memcmp(d, want, wl) != 0) {
                    NS_FAIL("%s: round trip differs for iteration %d (len %zu -> %zu)", rel, iter, wl, dl);
                }
            }
        }
    }
    ASSERT_TRUE(!lossless || n_checked > 50);
    ns_tokenizer_free(&t);
}

static void test_bad_input(void) {
    ns_tokenizer *t = NULL;
    ns_err err = {0};
    ASSERT_EQ(ns_tokenizer_load(NULL, &t, &err), NS_ERR_INVALID_ARG);
    ASSERT_TRUE(t == NULL);
    /* a GGUF without tokenizer metadata */
    char path[1024];
    ns_test_reference("quant/quant-vectors.gguf", path, sizeof(path));
    ns_gguf *g = NULL;
    ASSERT_OK(ns_gguf_open(path, &g, &err));
    ASSERT_EQ(ns_tokenizer_load(g, &t, &err), NS_ERR_FORMAT);
    ASSERT_TRUE(t == NULL);
    ASSERT_TRUE(strstr(err.msg, "tokenizer.ggml.model") != NULL);
    ns_gguf_close(&g);
}

int main(void) {
    test_qwen2();
    test_llama3();
    test_spm();
    test_phi3();
    test_bad_input();
    test_random_roundtrip("vocab/ggml-vocab-llama-spm.gguf", true);
    test_random_roundtrip("vocab/ggml-vocab-phi-3.gguf", false); /* </s> is user-defined and strips */
    test_random_roundtrip("vocab/ggml-vocab-gpt-2.gguf", true);
    test_random_roundtrip("vocab/ggml-vocab-llama-bpe.gguf", true);
    test_random_roundtrip("vocab/ggml-vocab-qwen2.gguf", true);
    return 0;
}
