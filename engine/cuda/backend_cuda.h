/*
 * backend_cuda.h - CUDA backend options beyond backend.h's common contract:
 * the exact arena size and weight streaming (issue 5).
 *
 * ns_backend_cuda_create (declared in backend.h) keeps every weight resident
 * and sizes the one device arena exactly. ns_backend_cuda_create_ex takes the
 * arena size (the VRAM budget, or a plan's arena_bytes) and which layers stay
 * resident; the other layers live in pinned host memory and stream through
 * K staging slots on the copy stream every forward pass.
 *
 * The arena's size and layout come from ns_arena_layout_compute
 * (arena_layout.h), the function the planner sizes its plans with, so a
 * plan's arena_bytes is exactly what the backend allocates for it.
 *
 * The parameter and sizing functions (params_default, params_from_plan,
 * backend_params_from_plan, arena_config, arena_layout, arena_bytes) are
 * pure host code in engine/cuda_arena.c and exist in every build; the rest
 * (create_ex, info, device_used) only with CUDA (kernels/CMakeLists.txt adds
 * engine/cuda/ to ns_engine and defines NS_HAVE_CUDA).
 * Thread safety: as backend.h; the pure functions are reentrant.
 */
#ifndef NS_BACKEND_CUDA_H
#define NS_BACKEND_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena_layout.h"
#include "backend.h"

typedef struct ns_backend_cuda_params {
    uint64_t arena_bytes;        /* the one device allocation; 0 = exactly what this configuration needs */
    int32_t n_resident;          /* resident layers, spread evenly (planner rule); -1 = all */
    int32_t n_slots;             /* staging slots when layers stream (2..8; 0 = 2) */
    bool embd_on_host;           /* token_embd stays in pinned host memory; rows gathered per pass (not with a
                                    tied output) */
    uint64_t gemm_dequant_bytes; /* fp16 weight-chunk scratch (0 = max(64 MiB, 64 rows of the widest K)) */
    uint64_t cublas_ws_bytes;    /* cuBLAS workspace (0 = 32 MiB) */
    uint64_t attn_partial_bytes; /* split-K partials (0 = 16 MiB) */
} ns_backend_cuda_params;

/* Defaults: everything resident, arena sized exactly, 2 slots. */
void ns_backend_cuda_params_default(ns_backend_cuda_params *cp);

/* Placement from a planner result (planner.h): arena_bytes, n_resident,
 * n_slots, embd_on_host and the scratch sizes of plan->arena_cfg. */
struct ns_plan;
void ns_backend_cuda_params_from_plan(const struct ns_plan *plan, ns_backend_cuda_params *cp);

/* The backend parameters of a plan: max_tokens, KV pages, page size and
 * max_seq_len from plan->arena_cfg. kv.max_seqs is `max_seqs` when > 0, else
 * plan->max_seqs, capped at max_tokens and the page count (admission is by
 * free pages either way). n_threads and device are left as they are.
 * NS_ERR_INVALID_ARG when the plan's numbers do not fit int32_t. */
ns_status ns_backend_params_from_plan(const struct ns_plan *plan, int32_t max_seqs, ns_backend_params *p);

/* The arena configuration (arena_layout.h) of backend parameters `p` and
 * placement `cp` for a model of n_layer layers. With a plan's parameters
 * this reproduces plan->arena_cfg. */
void ns_backend_cuda_arena_config(const ns_backend_params *p, const ns_backend_cuda_params *cp, int32_t n_layer,
                                  ns_arena_config *out);

/* The exact arena layout ns_backend_cuda_create_ex carves for this
 * configuration: ns_arena_layout_compute over the model's own tensors
 * (ns_model_sizes_from_model). Does not touch the device. NS_ERR_INVALID_ARG
 * or NS_ERR_RANGE (message in `err`, may be NULL) on a bad configuration. */
ns_status ns_backend_cuda_arena_layout(const ns_model *model, const ns_backend_params *p,
                                       const ns_backend_cuda_params *cp, ns_arena_layout *out, ns_err *err);

/* Total of ns_backend_cuda_arena_layout: the bytes of the one device
 * allocation this configuration needs. 0 on a bad configuration. */
uint64_t ns_backend_cuda_arena_bytes(const ns_model *model, const ns_backend_params *p,
                                     const ns_backend_cuda_params *cp);

/* Create the CUDA backend with explicit placement: one cudaMalloc of
 * cp->arena_bytes (0: exactly ns_backend_cuda_arena_bytes), carved as
 * ns_backend_cuda_arena_layout says. NS_ERR_CAPACITY when the configuration
 * does not fit cp->arena_bytes; NS_ERR_DEVICE when there is no device or a
 * CUDA call fails; NS_ERR_STATE when what it carved differs from the layout
 * (a bug: the layout and the carving code disagree). The model must outlive
 * the backend. */
ns_status ns_backend_cuda_create_ex(const ns_model *model, const ns_backend_params *p, const ns_backend_cuda_params *cp,
                                    ns_backend *out, ns_err *err);

/* Device facts of a CUDA backend (NULL for other backends): context overhead,
 * arena size, device name. The struct is ns_cuda_info from kernels/ns_cuda.h. */
struct ns_cuda_info;
const struct ns_cuda_info *ns_backend_cuda_info(const ns_backend *b);

/* Device memory in use on the backend's device right now (total - free,
 * every process), for budget checks. NS_ERR_INVALID_ARG for other backends. */
ns_status ns_backend_cuda_device_used(const ns_backend *b, uint64_t *used);

#endif /* NS_BACKEND_CUDA_H */
