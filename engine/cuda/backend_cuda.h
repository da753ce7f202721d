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
 * Only built with CUDA (kernels/CMakeLists.txt adds engine/cuda/ to
 * ns_engine and defines NS_HAVE_CUDA). Thread safety: as backend.h.
 */
#ifndef NS_BACKEND_CUDA_H
#define NS_BACKEND_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

typedef struct ns_backend_cuda_params {
    uint64_t arena_bytes;        /* the one device allocation; 0 = exactly what this configuration needs */
    int32_t n_resident;          /* resident layers, spread evenly (planner rule); -1 = all */
    int32_t n_slots;             /* staging slots when layers stream (2..8; 0 = 2) */
    bool embd_on_host;           /* token_embd stays in pinned host memory; rows gathered per pass (not with a
                                    tied output) */
    uint64_t gemm_dequant_bytes; /* fp16 weight-chunk scratch (0 = 64 MiB) */
    uint64_t cublas_ws_bytes;    /* cuBLAS workspace (0 = 32 MiB) */
    uint64_t attn_partial_bytes; /* split-K partials (0 = 16 MiB) */
} ns_backend_cuda_params;

/* Defaults: everything resident, arena sized exactly, 2 slots. */
void ns_backend_cuda_params_default(ns_backend_cuda_params *cp);

/* Placement from a planner result (planner.h): arena_bytes, n_resident,
 * n_slots, embd_on_host and the cuBLAS workspace size. The backend checks at
 * creation that its real needs (ns_backend_cuda_arena_bytes) fit the plan's
 * arena and fails with NS_ERR_CAPACITY otherwise. */
struct ns_plan;
void ns_backend_cuda_params_from_plan(const struct ns_plan *plan, ns_backend_cuda_params *cp);

/* Bytes of device arena the configuration needs (weights placed as `cp`
 * says, staging slots, KV pool, activations, scratch). 0 on overflow. Does
 * not touch the device. */
uint64_t ns_backend_cuda_arena_bytes(const ns_model *model, const ns_backend_params *p,
                                     const ns_backend_cuda_params *cp);

/* Create the CUDA backend with explicit placement. NS_ERR_CAPACITY when the
 * configuration does not fit cp->arena_bytes; NS_ERR_DEVICE when there is no
 * device or a CUDA call fails. The model must outlive the backend. */
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
