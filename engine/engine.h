/*
 * engine.h - a facade that opens everything a command or worker needs to run
 * a model: the model description, its tokenizer, a backend, the paged KV
 * cache and a scheduler, sized from a few parameters.
 *
 * Ownership: ns_engine owns all of them; accessors return borrowed pointers
 * valid until ns_engine_free.
 * Thread safety: one thread drives an engine at a time.
 */
#ifndef NS_ENGINE_H
#define NS_ENGINE_H

#include <stdint.h>

#include "backend.h"
#include "kv_cache.h"
#include "model.h"
#include "ns_status.h"
#include "scheduler.h"
#include "tokenizer.h"

typedef enum ns_backend_kind {
    NS_BACKEND_AUTO = 0, /* CUDA when built and a device is present, else CPU */
    NS_BACKEND_CPU = 1,
    NS_BACKEND_CUDA = 2
} ns_backend_kind;

typedef struct ns_engine_params {
    const char *model_path;
    ns_backend_kind backend;
    int32_t n_threads;   /* CPU threads (0 = all cores) */
    int32_t device;      /* CUDA device ordinal */
    int32_t max_tokens;  /* tokens per forward pass (0 = 512) */
    int32_t max_seqs;    /* concurrent sequences (0 = 16; <= max_tokens) */
    int32_t max_seq_len; /* context per sequence (0 = min(n_ctx_train, 4096), or 2048 when unknown) */
    int32_t page_size;   /* KV page size (0 = 16) */
    int32_t n_pages;     /* KV pages (0 = enough for every sequence at full length) */
} ns_engine_params;

typedef struct ns_engine ns_engine;

/* Parse "cpu", "cuda" or "auto"; false on anything else. */
bool ns_backend_kind_parse(const char *s, ns_backend_kind *out);

/* Open the model and build everything. NS_ERR_UNSUPPORTED for `cuda` in a
 * build without CUDA. */
ns_status ns_engine_create(const ns_engine_params *p, ns_engine **out, ns_err *err);

/* Free everything (the scheduler first, cancelling what it still holds);
 * sets *e to NULL. NULL-safe. */
void ns_engine_free(ns_engine **e);

const ns_model *ns_engine_model(const ns_engine *e);
const ns_tokenizer *ns_engine_tokenizer(const ns_engine *e);
ns_backend *ns_engine_backend(ns_engine *e);
ns_kv_cache *ns_engine_kv(ns_engine *e);
ns_sched *ns_engine_sched(ns_engine *e);
const ns_backend_params *ns_engine_backend_params(const ns_engine *e);

#endif /* NS_ENGINE_H */
