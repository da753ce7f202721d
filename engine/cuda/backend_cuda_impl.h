/*
 * backend_cuda_impl.h - internal helpers of the CUDA backend glue.
 * Thread safety: reentrant.
 */
#ifndef NS_BACKEND_CUDA_IMPL_H
#define NS_BACKEND_CUDA_IMPL_H

#include <stdbool.h>
#include <stdint.h>

/* Layer il is resident when n_resident of n_layer layers are (planner rule,
 * ns_plan_spread_resident); every layer when n_resident >= n_layer. */
bool ns__cuda_layer_resident(uint32_t il, uint32_t n_resident, uint32_t n_layer);

/* Field-by-field copy of a plan's placement (cuda_placement.c includes
 * planner.h; backend_cuda.c cannot, see there). */
struct ns_plan;
void ns__cuda_params_from_plan(const struct ns_plan *plan, uint64_t *arena_bytes, int32_t *n_resident, int32_t *n_slots,
                               bool *embd_on_host, uint64_t *cublas_ws_bytes);

#endif /* NS_BACKEND_CUDA_IMPL_H */
