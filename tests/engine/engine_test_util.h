/*
 * engine_test_util.h - helpers shared by the engine tests: read the reference
 * JSON token lists, read files, and run a model over a token list.
 */
#ifndef NS_ENGINE_TEST_UTIL_H
#define NS_ENGINE_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "kv_cache.h"
#include "model.h"
#include "ns_test.h"

/* Whole file into a malloc'd buffer (NUL-terminated); exits on failure. */
static inline char *et_read_file(const char *path, size_t *len) {
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
    buf[n] = 0;
    fclose(f);
    if (len != NULL) {
        *len = (size_t)n;
    }
    return buf;
}

/* Parse the integer array after "key": in a JSON text; returns count. */
static inline int et_json_ints(const char *json, const char *key, int32_t *out, int cap) {
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (p == NULL) {
        return -1;
    }
    p = strchr(p, '[');
    if (p == NULL) {
        return -1;
    }
    p++;
    int n = 0;
    while (*p && *p != ']') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) {
            p++;
            continue;
        }
        if (n < cap) {
            out[n] = (int32_t)v;
        }
        n++;
        p = end;
    }
    return n;
}

/* Relative RMS difference ||a - b|| / ||b|| over n floats. */
static inline double et_rel_rms(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static inline int32_t et_argmax(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++) {
        if (x[i] > x[best]) {
            best = i;
        }
    }
    return best;
}

/* A model, a CPU backend and a KV cache sized for tests. */
typedef struct et_engine {
    ns_model *model;
    ns_backend be;
    ns_kv_cache *kv;
    ns_arena arena;
    ns_ubatch ub;
    float *logits; /* [max_tokens][n_vocab] */
    int32_t n_vocab;
} et_engine;

ns_status ns__backend_cpu_create_ex(const ns_model *model, const ns_backend_params *p, bool allow_simd, ns_backend *out,
                                    ns_err *err);

static inline void et_engine_open(et_engine *e, const char *path, int32_t max_tokens, int32_t max_seqs,
                                  int32_t max_seq_len, int32_t n_threads, bool simd) {
    memset(e, 0, sizeof(*e));
    ns_err err = {0};
    if (ns_model_load(path, &e->model, &err) != NS_OK) {
        NS_FAIL("load %s: %s", path, ns_err_msg(&err));
    }
    ns_backend_params bp = {0};
    bp.max_tokens = max_tokens;
    bp.kv.page_size = 16;
    bp.kv.max_seqs = max_seqs;
    bp.kv.max_seq_len = max_seq_len;
    bp.kv.n_pages = max_seqs * ((max_seq_len + 15) / 16);
    bp.n_threads = n_threads;
    if (ns__backend_cpu_create_ex(e->model, &bp, simd, &e->be, &err) != NS_OK) {
        NS_FAIL("backend: %s", ns_err_msg(&err));
    }
    ASSERT_OK(ns_kv_cache_create(&bp.kv, &e->kv, &err));
    int32_t max_pages = (max_seq_len + 15) / 16;
    ASSERT_OK(ns_arena_init(&e->arena, ns_ubatch_bytes(max_tokens, max_pages)));
    ASSERT_OK(ns_ubatch_init(&e->ub, &e->arena, max_tokens, max_pages));
    e->n_vocab = ns_model_hparams(e->model)->n_vocab;
    e->logits = malloc((size_t)max_tokens * (size_t)e->n_vocab * sizeof(float));
}

static inline void et_engine_close(et_engine *e) {
    free(e->logits);
    ns_arena_free(&e->arena);
    ns_kv_cache_free(&e->kv);
    ns_backend_destroy(&e->be);
    ns_model_free(&e->model);
}

/* Run the prepared ubatch; logits land in e->logits. */
static inline void et_engine_run(et_engine *e) {
    ns_err err = {0};
    if (ns_kv_cache_prepare(e->kv, &e->ub, &err) != NS_OK) {
        NS_FAIL("prepare: %s", ns_err_msg(&err));
    }
    if (ns_forward(e->model, &e->be, &e->ub, e->logits, &err) != NS_OK) {
        NS_FAIL("forward: %s", ns_err_msg(&err));
    }
}

#endif /* NS_ENGINE_TEST_UTIL_H */
