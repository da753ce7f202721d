/*
 * ns_cuda_impl.cuh - the ns_cuda handle's definition and the checking
 * helpers shared by the kernel files. Internal to kernels/.
 *
 * Ownership: struct ns_cuda owns its streams, events, cuBLAS handle and the
 * one device allocation (arena_base); every other device pointer in it points
 * into that arena. Thread safety: one thread at a time per handle.
 */
#ifndef NS_CUDA_IMPL_CUH
#define NS_CUDA_IMPL_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "ns_cuda.h"

typedef struct ns_cuda_slot {
    void *d_ptr;         /* slot_bytes of device memory in the arena */
    cudaEvent_t ready;   /* recorded on the copy stream after the upload */
    cudaEvent_t free_ev; /* recorded on the compute stream after the last reader */
    bool free_recorded;  /* free_ev has been recorded at least once */
} ns_cuda_slot;

struct ns_cuda {
    ns_cuda_info info;
    cudaStream_t compute; /* every kernel */
    cudaStream_t copy;    /* staging uploads */
    cublasHandle_t blas;
    void *arena_base; /* the one cudaMalloc */
    ns_arena arena;   /* borrowed over arena_base */

    /* scratch, reserved once (ns_cuda_reserve_scratch) */
    bool scratch_ready;
    ns_cuda_scratch_cfg scratch;
    void *d_gemm_w16; /* gemm_dequant_bytes: fp16 chunk of W rows */
    size_t gemm_w16_bytes;
    void *d_x16;        /* [max_tokens][max_k] fp16 activations for the GEMM path */
    void *d_blas_ws;    /* cuBLAS workspace */
    float *d_attn_part; /* split-K partials: [..][head_dim + 2] floats */
    size_t attn_part_bytes;
    void *d_embd_rows;   /* [max_tokens][embd_row_bytes] gathered embedding rows */
    void *h_embd_rows;   /* pinned host twin of d_embd_rows */
    int32_t *d_embd_ids; /* [max_tokens] 0..n-1 */
    int32_t *h_embd_ids; /* pinned host twin */

    /* staging slots */
    int n_slots;
    size_t slot_bytes;
    ns_cuda_slot slots[NS_CUDA_MAX_SLOTS];

    ns_err err;
};

/* Record a CUDA failure on the handle: NS_ERR_DEVICE, "<call>: <cuda error>
 * (file:line)". */
ns_status ns__cuda_fail(ns_cuda *c, cudaError_t e, const char *what, const char *file, int line);
ns_status ns__cublas_fail(ns_cuda *c, cublasStatus_t s, const char *what, const char *file, int line);

#define NS_CU(c, call)                                                                                                 \
    do {                                                                                                               \
        cudaError_t ns__e = (call);                                                                                    \
        if (ns__e != cudaSuccess) {                                                                                    \
            return ns__cuda_fail((c), ns__e, #call, __FILE__, __LINE__);                                               \
        }                                                                                                              \
    } while (0)

#define NS_CUBLAS(c, call)                                                                                             \
    do {                                                                                                               \
        cublasStatus_t ns__s = (call);                                                                                 \
        if (ns__s != CUBLAS_STATUS_SUCCESS) {                                                                          \
            return ns__cublas_fail((c), ns__s, #call, __FILE__, __LINE__);                                             \
        }                                                                                                              \
    } while (0)

/* After a <<<>>> launch: configuration errors are reported at once. */
#define NS_CU_LAUNCHED(c) NS_CU((c), cudaGetLastError())

/* Argument checks on the host side of every op. */
#define NS_CU_ARG(c, cond)                                                                                             \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            return ns__err_set(&(c)->err, NS_ERR_INVALID_ARG, "cuda: %s: bad argument: %s", __func__, #cond);          \
        }                                                                                                              \
    } while (0)

static inline unsigned ns__cdiv(int64_t a, int64_t b) {
    return (unsigned)((a + b - 1) / b);
}

/* Warp-wide sum / max (all 32 lanes participate). */
__device__ __forceinline__ float ns__warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}
__device__ __forceinline__ float ns__warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) {
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    }
    return v;
}

/* Internal entry points shared between files. */
ns_status ns__cuda_matvec(ns_cuda *c, ns_type type, const void *d_w, int64_t N, int64_t K, const float *d_x,
                          int64_t ldx, int M, float *d_y, int64_t ldy, bool accumulate);
ns_status ns__cuda_dequant_f16(ns_cuda *c, ns_type type, const void *d_w, int64_t K, int64_t row0, int64_t n_rows,
                               void *d_out16);

#endif /* NS_CUDA_IMPL_CUH */
