/*
 * engine.h - a facade that opens everything a command or worker needs to run
 * a model: the model description, its tokenizer, a backend, the paged KV
 * cache and a scheduler, sized from a few parameters.
 *
 * With the CUDA backend and a VRAM budget, the sizes come from the planner
 * (planner.h): the facade plans the model under the budget, creates the
 * backend with exactly the plan's arena (ns_backend_cuda_create_ex with
 * ns_backend_cuda_params_from_plan), and sizes the KV cache and the
 * scheduler from the same plan, so admission is bounded by the plan's free
 * KV pages. docs/memory.md section 6 describes the rules.
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
#include "planner.h"
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
    int32_t max_tokens;  /* tokens per forward pass (0 = 512; with a VRAM budget: 0 = the planner's choice) */
    int32_t max_seqs;    /* concurrent sequences (0 = 16, with a VRAM budget: the plan's; <= max_tokens) */
    int32_t max_seq_len; /* context per sequence, the plan's ctx (0 = min(n_ctx_train, 4096), or 2048) */
    int32_t page_size;   /* KV page size (0 = 16) */
    int32_t n_pages;     /* KV pages (0 = enough for every sequence at full length; ignored with a VRAM
                            budget: the plan gives every spare byte to pages) */

    /* CUDA placement (issue 5). A vram_budget or a resident_layers > 0 is
     * rejected with backend CPU (NS_ERR_INVALID_ARG) and in builds without
     * CUDA (NS_ERR_UNSUPPORTED); with AUTO they apply when CUDA is picked
     * (a CPU fallback ignores them). resident_layers > 0 without a budget is
     * NS_ERR_INVALID_ARG. */
    uint64_t vram_budget;    /* bytes: upper bound on the device arena (the CUDA context's own memory is
                                outside it and reported by ns_engine_device). 0 = no budget: every layer
                                resident, arena sized exactly for max_tokens/max_seqs/max_seq_len, no planner */
    int32_t resident_layers; /* -1 = the planner's choice; N >= 0 forces N resident layers (spread evenly);
                                needs vram_budget. NOTE: a zero-initialised struct means 0 = "force 0" only
                                when vram_budget > 0; use ns_engine_params_default() to get -1 */
    const char *workload;    /* planner's cost-model hint: "summarize" (NULL), "label" or "single"; scaled down
                                to fit max_seq_len when its prompt + output is longer */
} ns_engine_params;

/* Device facts of an engine running on CUDA (ns_engine_device). */
typedef struct ns_engine_device {
    char name[128];            /* "NVIDIA H100 80GB HBM3" */
    uint64_t total_bytes;      /* device memory */
    uint64_t context_overhead; /* CUDA context + streams + cuBLAS, measured; outside the budget */
    bool overhead_exact;       /* measured with NVML (else total - free after the context) */
    uint64_t arena_bytes;      /* the one device allocation */
    uint64_t budget_bytes;     /* vram_budget, 0 when none was given */
} ns_engine_device;

/* Zero everything, then backend AUTO and resident_layers -1. */
void ns_engine_params_default(ns_engine_params *p);

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

/* The plan the engine was sized with (CUDA with a VRAM budget), else NULL. */
const ns_plan *ns_engine_plan(const ns_engine *e);

/* Device facts when the backend is CUDA (true), else false and *out zeroed. */
bool ns_engine_device_info(const ns_engine *e, ns_engine_device *out);

#endif /* NS_ENGINE_H */
