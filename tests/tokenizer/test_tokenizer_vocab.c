/*
 * test_tokenizer_vocab.c - tokenizers against llama.cpp's reference outputs.
 *
 * For each vocabulary in ../shared/reference/vocab/ every text of X.gguf.inp
 * (separated by "\n__ggml_vocab_test__\n") must tokenize, without BOS/EOS
 * and without special-token parsing, to exactly the ids of the matching line
 * of X.gguf.out. Then every model's reference prompt (models/X.TAG.json) must
 * tokenize, with BOS as the metadata says, to its prompt_tokens.
 * Detokenizing each result must give back the text (for valid UTF-8 texts
 * whose tokenizer does not normalize them).
 */
#include <dirent.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "ns_status.h"
#include "ns_test.h"
#include "tokenizer.h"

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        NS_FAIL("cannot open %s", path);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        NS_FAIL("cannot read %s", path);
    }
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static ns_tokenizer *load_tok(const char *path) {
    ns_gguf *g = NULL;
    ns_err err = {0};
    ns_status st = ns_gguf_open(path, &g, &err);
    if (st != NS_OK) {
        NS_FAIL("open %s: %s", path, ns_err_msg(&err));
    }
    ns_tokenizer *t = NULL;
    st = ns_tokenizer_load(g, &t, &err);
    if (st != NS_OK) {
        NS_FAIL("tokenizer %s: %s", path, ns_err_msg(&err));
    }
    ns_gguf_close(&g); /* the tokenizer must not depend on the file */
    return t;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, " %d", ids[i]);
    }
    fprintf(stderr, "\n");
}

/* Returns the number of mismatching texts. */
static int check_vocab(const char *name) {
    char rel[256], path[1024], inp_path[1100], out_path[1100];
    snprintf(rel, sizeof(rel), "vocab/%s", name);
    ns_test_reference(rel, path, sizeof(path));
    snprintf(inp_path, sizeof(inp_path), "%s.inp", path);
    snprintf(out_path, sizeof(out_path), "%s.out", path);
    ns_tokenizer *t = load_tok(path);

    size_t inp_len, out_len;
    char *inp = read_file(inp_path, &inp_len);
    char *outs = read_file(out_path, &out_len);
    const char *sep = "\n__ggml_vocab_test__\n";
    size_t sep_len = strlen(sep);

    int fails = 0, n_texts = 0;
    char *text = inp;
    char *line = outs;
    int32_t *ids = malloc(1 << 20);
    int32_t *want = malloc(1 << 20);
    char *dec = malloc(1 << 20);
    for (;;) {
        char *end = strstr(text, sep);
        if (end == NULL) {
            break;
        }
        size_t tlen = (size_t)(end - text);
        /* expected line */
        char *nl = strchr(line, '\n');
        if (nl == NULL) {
            NS_FAIL("%s: .out has fewer lines than texts", name);
        }
        *nl = '\0';
        size_t n_want = 0;
        for (char *p = line; *p;) {
            char *q;
            long v = strtol(p, &q, 10);
            if (q == p) {
                break;
            }
            want[n_want++] = (int32_t)v;
            p = q;
        }
        line = nl + 1;

        size_t n = 0;
        ns_err err = {0};
        ns_status st = ns_tokenizer_encode(t, text, tlen, false, false, ids, 1 << 18, &n, &err);
        ASSERT_OK(st);
        bool ok = n == n_want && memcmp(ids, want, n * sizeof(int32_t)) == 0;
        if (!ok) {
            fprintf(stderr, "%s: text %d mismatch: '%.*s'\n", name, n_texts, (int)tlen, text);
            print_ids("want", want, n_want);
            print_ids("got ", ids, n);
            fails++;
        } else {
            /* round trip: pieces concatenated give back the text (SPM adds one
             * leading space) */
            size_t dn;
            ASSERT_OK(ns_tokenizer_decode(t, ids, n, false, dec, 1 << 20, &dn));
            const char *d = dec;
            if (ns_tokenizer_kind(t) == NS_TOK_SPM && dn > 0 && tlen > 0) {
                ASSERT_EQ(dec[0], ' ');
                d++;
                dn--;
            }
            if (dn != tlen || memcmp(d, text, tlen) != 0) {
                fprintf(stderr, "%s: text %d does not round-trip: '%.*s' -> '%.*s'\n", name, n_texts, (int)tlen, text,
                        (int)dn, d);
                fails++;
            }
        }
        n_texts++;
        text = end + sep_len;
    }
    ASSERT_TRUE(n_texts >= 40);
    fprintf(stderr, "%s: %d texts, %d failures\n", name, n_texts, fails);
    free(ids);
    free(want);
    free(dec);
    free(inp);
    free(outs);
    ns_tokenizer_free(&t);
    ASSERT_TRUE(t == NULL);
    return fails;
}

static int check_models(void) {
    char dir[1024];
    ns_test_reference("models", dir, sizeof(dir));
    DIR *d = opendir(dir);
    ASSERT_TRUE(d != NULL);
    struct dirent *e;
    int fails = 0, n_checked = 0;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0) {
            continue;
        }
        char jpath[2400], gpath[2400];
        snprintf(jpath, sizeof(jpath), "%s/%s", dir, e->d_name);
        /* MODEL.TAG.json -> MODEL.gguf */
        char base[1024];
        snprintf(base, sizeof(base), "%s", e->d_name);
        char *dot = strrchr(base, '.');
        *dot = '\0';
        dot = strrchr(base, '.');
        ASSERT_TRUE(dot != NULL);
        *dot = '\0';
        snprintf(gpath, sizeof(gpath), "%s/%s.gguf", dir, base);

        json_error_t jerr;
        json_t *j = json_load_file(jpath, 0, &jerr);
        ASSERT_TRUE(j != NULL);
        const char *prompt = json_string_value(json_object_get(j, "prompt"));
        json_t *want = json_object_get(j, "prompt_tokens");
        ASSERT_TRUE(prompt != NULL && json_is_array(want));
        ns_tokenizer *t = load_tok(gpath);
        int32_t ids[4096];
        size_t n = 0;
        ASSERT_OK(ns_tokenizer_encode(t, prompt, strlen(prompt), true, false, ids, 4096, &n, NULL));
        bool ok = n == json_array_size(want);
        for (size_t i = 0; ok && i < n; i++) {
            ok = ids[i] == (int32_t)json_integer_value(json_array_get(want, i));
        }
        if (!ok) {
            fprintf(stderr, "%s: prompt tokens differ\n", e->d_name);
            print_ids("got", ids, n);
            fails++;
        }
        n_checked++;
        ns_tokenizer_free(&t);
        json_decref(j);
    }
    closedir(d);
    fprintf(stderr, "models: %d prompts checked, %d failures\n", n_checked, fails);
    ASSERT_TRUE(n_checked >= 10);
    return fails;
}

int main(void) {
    static const char *const vocabs[] = {"ggml-vocab-llama-spm.gguf", "ggml-vocab-phi-3.gguf", "ggml-vocab-gpt-2.gguf",
                                         "ggml-vocab-llama-bpe.gguf", "ggml-vocab-qwen2.gguf"};
    int fails = 0;
    for (size_t i = 0; i < sizeof(vocabs) / sizeof(vocabs[0]); i++) {
        fails += check_vocab(vocabs[i]);
    }
    fails += check_models();
    ASSERT_EQ(fails, 0);
    return 0;
}
