/*
 * cuda_placement.c - which layers the CUDA backend keeps resident: the
 * planner's rule, reached through a file that includes planner.h alone
 * (planner.h and backend.h both define NS_ACT_* enumerators).
 * Thread safety: reentrant.
 */
#include "backend_cuda_impl.h"
#include "planner.h"

bool ns__cuda_layer_resident(uint32_t il, uint32_t n_resident, uint32_t n_layer) {
    if (n_resident >= n_layer) {
        return true;
    }
    return ns_plan_spread_resident(il, n_resident, n_layer);
}
