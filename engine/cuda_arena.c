/*
 * cuda_arena.c - the pure (no CUDA) half of the CUDA backend's contract in
 * cuda/backend_cuda.h: its placement parameters, how they follow from a
 * plan, and the exact arena layout a configuration needs. Built in every
 * configuration, so the arena arithmetic is unit-tested on machines without
 * CUDA (tests/planner/test_arena_match.c); engine/cuda/backend_cuda.c
 * creates and carves the arena from the same layout.
 * Thread safety: reentrant.
 */
#include <string.h>

#include "arena_layout.h"
#include "backend.h"
#include "cuda/backend_cuda.h"
#include "planner.h"

/* The first activation buffers of the layout are backend.h's ns_act, in order. */
_Static_assert((int)NS_ACTBUF_TOKENS == (int)NS_ACT_COUNT, "arena_layout.h activations must mirror backend.h ns_act");
_Static_assert((int)NS_ACTBUF_LOGITS == (int)NS_ACT_LOGITS && (int)NS_ACTBUF_GATE == (int)NS_ACT_GATE,
               "arena_layout.h activations must mirror backend.h ns_act");

void ns_backend_cuda_params_default(ns_backend_cuda_params *cp) {
    memset(cp, 0, sizeof *cp);
    cp->n_resident = -1;
    cp->n_slots = 2;
}

void ns_backend_cuda_params_from_plan(const ns_plan *plan, ns_backend_cuda_params *cp) {
    const ns_arena_config *a = &plan->arena_cfg;
    ns_backend_cuda_params_default(cp);
    cp->arena_bytes = plan->arena_bytes;
    cp->n_resident = a->n_resident >= plan->n_layer ? -1 : (int32_t)a->n_resident;
    cp->n_slots = a->n_slots >= 2 ? (int32_t)a->n_slots : 2;
    cp->embd_on_host = a->embd_on_host;
    cp->gemm_dequant_bytes = a->gemm_dequant_bytes;
    cp->cublas_ws_bytes = a->cublas_ws_bytes;
    cp->attn_partial_bytes = a->attn_partial_bytes;
}

ns_status ns_backend_params_from_plan(const ns_plan *plan, int32_t max_seqs, ns_backend_params *p) {
    const ns_arena_config *a = &plan->arena_cfg;
    if (a->max_tokens == 0 || a->max_tokens > INT32_MAX || a->n_pages == 0 || a->n_pages > INT32_MAX ||
        a->page_size == 0 || a->page_size > INT32_MAX || a->max_seq_len == 0 || a->max_seq_len > INT32_MAX) {
        return NS_ERR_INVALID_ARG;
    }
    p->max_tokens = (int32_t)a->max_tokens;
    p->kv.n_pages = (int32_t)a->n_pages;
    p->kv.page_size = (int32_t)a->page_size;
    p->kv.max_seq_len = (int32_t)a->max_seq_len;
    /* Sequence slots: admission is bounded by free pages, so any count works;
     * each running sequence holds at least one page and one token per pass. */
    int64_t s = max_seqs > 0 ? max_seqs : (int64_t)plan->max_seqs;
    s = s > p->max_tokens ? p->max_tokens : s;
    s = s > (int64_t)a->n_pages ? (int64_t)a->n_pages : s;
    p->kv.max_seqs = (int32_t)(s > 0 ? s : 1);
    return NS_OK;
}

void ns_backend_cuda_arena_config(const ns_backend_params *p, const ns_backend_cuda_params *cp, int32_t n_layer,
                                  ns_arena_config *out) {
    memset(out, 0, sizeof *out);
    out->max_tokens = p->max_tokens > 0 ? (uint32_t)p->max_tokens : 0;
    out->n_pages = p->kv.n_pages > 0 ? (uint64_t)p->kv.n_pages : 0;
    out->page_size = p->kv.page_size > 0 ? (uint32_t)p->kv.page_size : 0;
    out->max_seq_len = p->kv.max_seq_len > 0 ? (uint32_t)p->kv.max_seq_len : 0;
    out->n_resident = cp->n_resident < 0 || cp->n_resident > n_layer ? (uint32_t)n_layer : (uint32_t)cp->n_resident;
    out->n_slots = cp->n_slots > 0 ? (uint32_t)cp->n_slots : 2;
    out->embd_on_host = cp->embd_on_host;
    out->gemm_dequant_bytes = cp->gemm_dequant_bytes;
    out->cublas_ws_bytes = cp->cublas_ws_bytes;
    out->attn_partial_bytes = cp->attn_partial_bytes;
}

ns_status ns_backend_cuda_arena_layout(const ns_model *model, const ns_backend_params *p,
                                       const ns_backend_cuda_params *cp, ns_arena_layout *out, ns_err *err) {
    ns_model_sizes ms;
    ns_arena_config a;
    memset(out, 0, sizeof *out);
    NS_TRY(ns_model_sizes_from_model(model, &ms, err));
    ns_backend_cuda_arena_config(p, cp, ns_model_hparams(model)->n_layer, &a);
    ns_status st = ns_arena_layout_compute(&ms, &a, out);
    ns_model_sizes_free(&ms);
    if (st != NS_OK) {
        return ns__err_set(err, st,
                           "cuda: no arena layout for max_tokens %d, %d pages of %d, max_seq_len %d, %d slots, "
                           "GEMM scratch %llu bytes",
                           p->max_tokens, p->kv.n_pages, p->kv.page_size, p->kv.max_seq_len, cp->n_slots,
                           (unsigned long long)cp->gemm_dequant_bytes);
    }
    return NS_OK;
}

uint64_t ns_backend_cuda_arena_bytes(const ns_model *model, const ns_backend_params *p,
                                     const ns_backend_cuda_params *cp) {
    ns_arena_layout l;
    return ns_backend_cuda_arena_layout(model, p, cp, &l, NULL) == NS_OK ? l.total : 0;
}
