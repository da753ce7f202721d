/*
 * norm.cu - RMSNorm over rows: out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w.
 *
 * One block per row; the sum of squares is accumulated in float per thread,
 * reduced across warps in shared memory. Used for the attention/FFN norms and
 * the final norm before lm_head. Thread safety: per handle, see ns_cuda.h.
 */
#include "ns_cuda_impl.cuh"

#define NS__NORM_THREADS 256

__global__ void k_rms_norm(const float *x, int64_t ld_x, const float *__restrict__ w, float *out, int64_t ld_out,
                           int64_t n, float eps) {
    __shared__ float partial[NS__NORM_THREADS / 32];
    const float *xr = x + (int64_t)blockIdx.x * ld_x;
    float *orow = out + (int64_t)blockIdx.x * ld_out;
    float ss = 0.0f;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        ss += xr[i] * xr[i];
    }
    ss = ns__warp_sum(ss);
    if ((threadIdx.x & 31) == 0) {
        partial[threadIdx.x / 32] = ss;
    }
    __syncthreads();
    float total = 0.0f;
    for (int i = 0; i < NS__NORM_THREADS / 32; i++) {
        total += partial[i];
    }
    const float scale = rsqrtf(total / (float)n + eps);
    /* every thread has read what it needs from x before anyone writes out
     * (the barrier above), so out may alias x */
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
        orow[i] = xr[i] * scale * w[i];
    }
}

ns_status ns_cuda_rms_norm(ns_cuda *c, const float *d_x, int64_t ld_x, const float *d_w, float *d_out, int64_t ld_out,
                           int n_rows, int64_t n, float eps) {
    NS_CU_ARG(c, n_rows >= 0 && n > 0 && eps >= 0.0f && ld_x >= n && ld_out >= n);
    NS_CU_ARG(c, d_x != d_out || ld_x == ld_out);
    if (n_rows == 0) {
        return NS_OK;
    }
    k_rms_norm<<<(unsigned)n_rows, NS__NORM_THREADS, 0, c->compute>>>(d_x, ld_x, d_w, d_out, ld_out, n, eps);
    NS_CU_LAUNCHED(c);
    return NS_OK;
}
