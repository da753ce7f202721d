/*
 * cuda_placement.c - which layers the CUDA backend keeps resident: the
 * planner's rule, reached through a file that includes planner.h alone
 * (planner.h and backend.h both define NS_ACT_* enumerators), and the
 * translation of a plan into the backend's placement parameters.
 * Thread safety: reentrant.
 */
#include <string.h>

#include "backend_cuda_impl.h"
#include "planner.h"

bool ns__cuda_layer_resident(uint32_t il, uint32_t n_resident, uint32_t n_layer) {
    if (n_resident >= n_layer) {
        return true;
    }
    return ns_plan_spread_resident(il, n_resident, n_layer);
}

void ns__cuda_params_from_plan(const ns_plan *plan, uint64_t *arena_bytes, int32_t *n_resident, int32_t *n_slots,
                               bool *embd_on_host, uint64_t *cublas_ws_bytes) {
    *arena_bytes = plan->arena_bytes;
    *n_resident = plan->n_resident >= plan->n_layer ? -1 : (int32_t)plan->n_resident;
    *n_slots = plan->n_slots >= 2 ? (int32_t)plan->n_slots : 2;
    *embd_on_host = plan->embd_on_host;
    *cublas_ws_bytes = plan->comp_bytes[NS_PLAN_WORKSPACE];
}
