/*
 * sampling.cu - on-device greedy sampling: argmax over each logits row
 * (lowest index wins ties, as the CPU sampler's greedy path). Temperature,
 * top-k/top-p/min-p and penalties run in the CPU sampler (engine/sampler.h)
 * on logits copied to pinned host memory; see docs/cuda.md.
 * Thread safety: per handle, see ns_cuda.h.
 */
#include "ns_cuda_impl.cuh"

#define NS__ARGMAX_THREADS 256

/* (value, index) pair order: larger value first, then smaller index. NaN
 * never wins (comparisons with NaN are false). */
__device__ __forceinline__ bool ns__better(float v, int64_t i, float bv, int64_t bi) {
    return v > bv || (v == bv && i < bi);
}

__global__ void k_argmax(const float *__restrict__ logits, int64_t n_vocab, int32_t *__restrict__ out) {
    __shared__ float sv[NS__ARGMAX_THREADS / 32];
    __shared__ int64_t si[NS__ARGMAX_THREADS / 32];
    const float *row = logits + (int64_t)blockIdx.x * n_vocab;
    float bv = -INFINITY;
    int64_t bi = n_vocab; /* sentinel: loses every tie */
    for (int64_t i = threadIdx.x; i < n_vocab; i += blockDim.x) {
        if (ns__better(row[i], i, bv, bi)) {
            bv = row[i];
            bi = i;
        }
    }
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int64_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (ns__better(ov, oi, bv, bi)) {
            bv = ov;
            bi = oi;
        }
    }
    if ((threadIdx.x & 31) == 0) {
        sv[threadIdx.x / 32] = bv;
        si[threadIdx.x / 32] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < NS__ARGMAX_THREADS / 32; w++) {
            if (ns__better(sv[w], si[w], bv, bi)) {
                bv = sv[w];
                bi = si[w];
            }
        }
        out[blockIdx.x] = bi < n_vocab ? (int32_t)bi : 0; /* all -inf/NaN: token 0 */
    }
}

ns_status ns_cuda_argmax(ns_cuda *c, const float *d_logits, int n_rows, int64_t n_vocab, int32_t *d_out) {
    NS_CU_ARG(c, n_rows >= 0 && n_vocab > 0 && n_vocab <= INT32_MAX);
    if (n_rows == 0) {
        return NS_OK;
    }
    k_argmax<<<(unsigned)n_rows, NS__ARGMAX_THREADS, 0, c->compute>>>(d_logits, n_vocab, d_out);
    NS_CU_LAUNCHED(c);
    return NS_OK;
}
