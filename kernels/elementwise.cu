/*
 * elementwise.cu - the small element-wise ops of the forward pass: bias add
 * (Qwen2's QKV bias), SwiGLU, residual add, row gather (rows whose logits
 * are wanted) and float32 -> fp16 conversion of GEMM inputs.
 *
 * Grid-stride loops over int64 indices; every kernel tolerates out aliasing
 * an input (each element is read before it is written by the same thread).
 * Thread safety: per handle, see ns_cuda.h.
 */
#include <cuda_fp16.h>

#include "ns_cuda_impl.cuh"

#define NS__EW_THREADS 256

static unsigned ew_blocks(int64_t n) {
    const int64_t b = (n + NS__EW_THREADS - 1) / NS__EW_THREADS;
    return (unsigned)(b < 65535 * 8 ? (b > 0 ? b : 1) : 65535 * 8);
}

__global__ void k_add_bias(float *x, int64_t ld_x, const float *__restrict__ b, int64_t n, int64_t total) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        x[(i / n) * ld_x + i % n] += b[i % n];
    }
}

__global__ void k_swiglu(const float *gate, const float *up, float *out, int64_t total) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        const float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

__global__ void k_add(const float *a, const float *b, float *out, int64_t total) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += (int64_t)gridDim.x * blockDim.x) {
        out[i] = a[i] + b[i];
    }
}

__global__ void k_gather_rows(const float *__restrict__ src, int64_t ld_src, const int32_t *__restrict__ rows,
                              int64_t n, float *__restrict__ dst, int64_t ld_dst) {
    const float *s = src + (int64_t)rows[blockIdx.y] * ld_src;
    float *d = dst + (int64_t)blockIdx.y * ld_dst;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        d[i] = s[i];
    }
}

ns_status ns_cuda_add_bias(ns_cuda *c, float *d_x, int64_t ld_x, const float *d_b, int n_rows, int64_t n) {
    NS_CU_ARG(c, n_rows >= 0 && n > 0 && ld_x >= n);
    const int64_t total = (int64_t)n_rows * n;
    if (total == 0) {
        return NS_OK;
    }
    k_add_bias<<<ew_blocks(total), NS__EW_THREADS, 0, c->compute>>>(d_x, ld_x, d_b, n, total);
    NS_CU_LAUNCHED(c);
    return NS_OK;
}

ns_status ns_cuda_swiglu(ns_cuda *c, const float *d_gate, const float *d_up, float *d_out, int64_t n_elems) {
    NS_CU_ARG(c, n_elems >= 0);
    if (n_elems == 0) {
        return NS_OK;
    }
    k_swiglu<<<ew_blocks(n_elems), NS__EW_THREADS, 0, c->compute>>>(d_gate, d_up, d_out, n_elems);
    NS_CU_LAUNCHED(c);
    return NS_OK;
}

ns_status ns_cuda_add(ns_cuda *c, const float *d_a, const float *d_b, float *d_out, int64_t n_elems) {
    NS_CU_ARG(c, n_elems >= 0);
    if (n_elems == 0) {
        return NS_OK;
    }
    k_add<<<ew_blocks(n_elems), NS__EW_THREADS, 0, c->compute>>>(d_a, d_b, d_out, n_elems);
    NS_CU_LAUNCHED(c);
    return NS_OK;
}

ns_status ns_cuda_gather_rows(ns_cuda *c, const float *d_src, int64_t ld_src, const int32_t *d_rows, int n_out,
                              int64_t n, float *d_dst, int64_t ld_dst) {
    NS_CU_ARG(c, n_out >= 0 && n_out <= 65535 && n > 0 && ld_src >= n && ld_dst >= n && d_src != d_dst);
    if (n_out == 0) {
        return NS_OK;
    }
    const dim3 grid(ns__cdiv(n, NS__EW_THREADS) < 64 ? ns__cdiv(n, NS__EW_THREADS) : 64, (unsigned)n_out);
    k_gather_rows<<<grid, NS__EW_THREADS, 0, c->compute>>>(d_src, ld_src, d_rows, n, d_dst, ld_dst);
    NS_CU_LAUNCHED(c);
    return NS_OK;
}
