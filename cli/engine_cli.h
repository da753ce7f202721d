/*
 * engine_cli.h - small helpers shared by the engine commands (generate,
 * logits, perplexity, bench): number parsing, whole-file reads, tokenizing a
 * text into a malloc'd id array. Header-only, file-local (static) functions.
 */
#ifndef NS_CLI_ENGINE_CLI_H
#define NS_CLI_ENGINE_CLI_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

static inline bool cli_parse_i32(const char *s, int32_t lo, int32_t hi, int32_t *out) {
    if (s == NULL || *s == 0) {
        return false;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != 0 || v < lo || v > hi) {
        return false;
    }
    *out = (int32_t)v;
    return true;
}

static inline bool cli_parse_f32(const char *s, float *out) {
    if (s == NULL || *s == 0) {
        return false;
    }
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno != 0 || *end != 0 || v != v) {
        return false;
    }
    *out = v;
    return true;
}

static inline bool cli_parse_u64(const char *s, uint64_t *out) {
    if (s == NULL || *s == 0 || *s == '-') {
        return false;
    }
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != 0) {
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

/* Whole file (or stdin for "-") into a malloc'd NUL-terminated buffer. */
static inline char *cli_read_file(const char *path, size_t *len) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    while (buf != NULL) {
        if (n == cap) {
            char *p = realloc(buf, cap * 2 + 1);
            if (p == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t k = fread(buf + n, 1, cap - n, f);
        n += k;
        if (k == 0) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    if (f != stdin) {
        fclose(f);
    }
    if (buf != NULL) {
        buf[n] = 0;
        *len = n;
    }
    return buf;
}

/* Tokenize text[0..len) into a malloc'd array (*out, *n). */
static inline ns_status cli_tokenize(const ns_tokenizer *tok, const char *text, size_t len, bool add_special,
                                     bool parse_special, int32_t **out, int32_t *n, ns_err *err) {
    size_t cap = len + 16, got = 0;
    *out = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        int32_t *ids = malloc(cap * sizeof(int32_t));
        if (ids == NULL) {
            return ns__err_set(err, NS_ERR_NOMEM, "out of memory");
        }
        ns_status st = ns_tokenizer_encode(tok, text, len, add_special, parse_special, ids, cap, &got, err);
        if (st == NS_OK) {
            if (got > INT32_MAX) {
                free(ids);
                return ns__err_set(err, NS_ERR_RANGE, "text too long");
            }
            *out = ids;
            *n = (int32_t)got;
            return NS_OK;
        }
        free(ids);
        if (st != NS_ERR_CAPACITY) {
            return st;
        }
        cap = got;
    }
    return ns__err_set(err, NS_ERR_CAPACITY, "tokenize: size changed");
}

/* Parse "1,2,3" into a malloc'd array. */
static inline bool cli_parse_ids(const char *s, int32_t **out, int32_t *n) {
    size_t cap = 1;
    for (const char *p = s; *p; p++) {
        cap += *p == ',';
    }
    int32_t *ids = malloc(cap * sizeof(int32_t));
    if (ids == NULL) {
        return false;
    }
    int32_t k = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno != 0 || v < 0 || v > INT32_MAX || (*end != ',' && *end != 0)) {
            free(ids);
            return false;
        }
        ids[k++] = (int32_t)v;
        p = *end == ',' ? end + 1 : end;
    }
    if (k == 0) {
        free(ids);
        return false;
    }
    *out = ids;
    *n = k;
    return true;
}

#endif /* NS_CLI_ENGINE_CLI_H */
