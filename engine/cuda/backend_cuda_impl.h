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

#endif /* NS_BACKEND_CUDA_IMPL_H */
