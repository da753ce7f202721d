/*
 * engine_cli.h - small helpers shared by the engine commands (generate,
 * logits, perplexity, bench): number parsing, whole-file reads, tokenizing a
 * text into a malloc'd id array, the CUDA placement options (--vram-budget,
 * --resident-layers, --workload) and the device line printed on stderr.
 * Header-only, file-local (static) functions.
 */
#ifndef NS_CLI_ENGINE_CLI_H
#define NS_CLI_ENGINE_CLI_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "ns_util.h"
#include "tokenizer.h"

/* Help text of the placement options, for usage(). */
#define CLI_PLACEMENT_HELP                                                                                             \
    "  --vram-budget SIZE       CUDA: exact upper bound on device memory after the context, e.g. 11.5GiB;\n"           \
    "                           layers that do not fit stream from pinned host memory (see nightshift plan)\n"         \
    "  --resident-layers N      CUDA with --vram-budget: force N resident layers (default: the planner's)\n"           \
    "  --workload NAME          planner hint with --vram-budget: summarize, label or single\n"

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

/* One of the shared placement options, with its value `v` (may be NULL):
 * --vram-budget SIZE, --resident-layers N, --workload NAME. Returns false
 * when `a` is none of them (or has no value); else stores it in `ep` and
 * sets *ok to whether the value parsed. Call ns_engine_params_default (or
 * set resident_layers = -1) first. */
static inline bool cli_placement_opt(const char *a, const char *v, ns_engine_params *ep, bool *ok) {
    if (v == NULL) {
        return false;
    }
    if (strcmp(a, "--vram-budget") == 0) {
        *ok = ns_parse_size(v, &ep->vram_budget) == NS_OK && ep->vram_budget > 0;
    } else if (strcmp(a, "--resident-layers") == 0) {
        *ok = cli_parse_i32(v, 0, 1 << 20, &ep->resident_layers);
    } else if (strcmp(a, "--workload") == 0) {
        *ok = strcmp(v, "summarize") == 0 || strcmp(v, "label") == 0 || strcmp(v, "single") == 0;
        ep->workload = v;
    } else {
        return false;
    }
    return true;
}

/* Usage errors of the placement options (after parsing): they need the CUDA
 * backend, and --resident-layers needs --vram-budget. Prints and returns 2,
 * or returns 0. */
static inline int cli_placement_check(const char *cmd, const ns_engine_params *ep) {
    const bool placed = ep->vram_budget > 0 || ep->resident_layers >= 0;
    if (placed && ep->backend == NS_BACKEND_CPU) {
        fprintf(stderr, "%s: --vram-budget and --resident-layers apply to the CUDA backend, not --backend cpu\n", cmd);
        return 2;
    }
    if (ep->resident_layers >= 0 && ep->vram_budget == 0) {
        fprintf(stderr, "%s: --resident-layers needs --vram-budget\n", cmd);
        return 2;
    }
    return 0;
}

/* On CUDA, one stderr line: the device, the CUDA context's own memory
 * (outside the budget), the arena and the budget, and the plan's placement. */
static inline void cli_print_device(const char *cmd, const ns_engine *eng) {
    ns_engine_device d;
    if (!ns_engine_device_info(eng, &d)) {
        return;
    }
    char o[32], ar[32], b[32];
    fprintf(stderr, "%s: cuda %s: context overhead %s (%s, outside the budget); arena %s", cmd, d.name,
            ns_format_size(d.context_overhead, o, sizeof o), d.overhead_exact ? "NVML" : "total - free",
            ns_format_size(d.arena_bytes, ar, sizeof ar));
    if (d.budget_bytes > 0) {
        fprintf(stderr, " of budget %s", ns_format_size(d.budget_bytes, b, sizeof b));
    }
    const ns_plan *pl = ns_engine_plan(eng);
    if (pl != NULL) {
        fprintf(stderr, "; %u/%u layers resident, %u staging slots, %llu KV pages (%llu tokens), %u tokens per pass",
                pl->n_resident, pl->n_layer, pl->n_slots, (unsigned long long)pl->kv_blocks,
                (unsigned long long)pl->kv_capacity_tokens, pl->max_step_tokens);
    }
    fprintf(stderr, "\n");
}

#endif /* NS_CLI_ENGINE_CLI_H */
