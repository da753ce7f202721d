/*
 * gemm.cu - ns_cuda_matmul: y[M][N] (+)= x[M][K] . W^T for every weight type.
 *
 * M <= NS_CUDA_MATVEC_MAX_M: the fused dequantize-and-dot kernel (matvec.cu).
 * Larger M (prefill, decode over many sequences) runs on tensor cores:
 *   1. x is converted to fp16 into the reserved [max_tokens][max_k] buffer
 *      (compact rows of K), max_tokens rows at a time;
 *   2. W is dequantized to fp16 a chunk of rows at a time into the fixed
 *      gemm_dequant_bytes scratch (rows_per_chunk = scratch / (2K) >= 64);
 *   3. cublasGemmEx (fp16 x fp16, fp32 accumulate and output) writes the
 *      chunk's columns of y directly (ldc = ldy; beta = 1 accumulates).
 * F16 weights skip step 2; F32 weights use an fp32 GEMM on x as it is (no
 * TF32: the handle keeps CUBLAS_DEFAULT_MATH), so F32 models stay exact.
 * The scratch is reused chunk after chunk on the one compute stream, so
 * stream order alone makes the reuse safe.
 *
 * Column-major view used for cuBLAS: y^T (N x M, ld ldy) = W^T (W is K x N,
 * ld K) . x^T (K x M, ld K or ldx).  Thread safety: per handle.
 */
#include <cuda_fp16.h>

#include "ns_cuda_impl.cuh"

/* y[r][k] = half(x[r][k]) for r < rows, k < K; x rows ldx apart, y compact. */
__global__ void k_f32_to_f16_rows(const float *__restrict__ x, int64_t ldx, int64_t K, int64_t rows,
                                  __half *__restrict__ y) {
    const int64_t n = rows * K;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        y[i] = __float2half_rn(x[(i / K) * ldx + i % K]);
    }
}

static ns_status gemm_f16(ns_cuda *c, const void *d_w16, int64_t n_rows, int64_t K, const __half *x16, int M,
                          float *d_y_cols, int64_t ldy, bool accumulate) {
    const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    NS_CUBLAS(c, cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)n_rows, M, (int)K, &alpha, d_w16, CUDA_R_16F,
                              (int)K, x16, CUDA_R_16F, (int)K, &beta, d_y_cols, CUDA_R_32F, (int)ldy,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return NS_OK;
}

static ns_status matmul_gemm(ns_cuda *c, ns_type type, const void *d_w, int64_t N, int64_t K, const float *d_x,
                             int64_t ldx, int M, float *d_y, int64_t ldy, bool accumulate) {
    if (N > INT32_MAX || K > INT32_MAX || ldx > INT32_MAX || ldy > INT32_MAX) {
        return ns__err_set(&c->err, NS_ERR_RANGE, "cuda: matmul dimensions exceed cuBLAS int range");
    }
    if (type == NS_TYPE_F32) {
        const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
        NS_CUBLAS(c, cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, M, (int)K, &alpha, d_w, CUDA_R_32F, (int)K,
                                  d_x, CUDA_R_32F, (int)ldx, &beta, d_y, CUDA_R_32F, (int)ldy, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
        return NS_OK;
    }
    if (!c->scratch_ready) {
        return ns__err_set(&c->err, NS_ERR_STATE, "cuda: matmul needs ns_cuda_reserve_scratch first");
    }
    if (K > c->scratch.max_k) {
        return ns__err_set(&c->err, NS_ERR_CAPACITY, "cuda: matmul K=%lld exceeds the reserved max_k=%lld",
                           (long long)K, (long long)c->scratch.max_k);
    }
    const int64_t rows_per_chunk = (int64_t)(c->gemm_w16_bytes / ((size_t)K * 2)); /* >= 64, checked at reserve */
    for (int m0 = 0; m0 < M; m0 += c->scratch.max_tokens) {
        const int mc = M - m0 < c->scratch.max_tokens ? M - m0 : c->scratch.max_tokens;
        __half *x16 = (__half *)c->d_x16;
        const int64_t blocks = ((int64_t)mc * K + 255) / 256;
        k_f32_to_f16_rows<<<(unsigned)(blocks < 4096 ? blocks : 4096), 256, 0, c->compute>>>(d_x + (int64_t)m0 * ldx,
                                                                                             ldx, K, mc, x16);
        NS_CU_LAUNCHED(c);
        float *y = d_y + (int64_t)m0 * ldy;
        if (type == NS_TYPE_F16) {
            NS_TRY(gemm_f16(c, d_w, N, K, x16, mc, y, ldy, accumulate));
            continue;
        }
        for (int64_t n0 = 0; n0 < N; n0 += rows_per_chunk) {
            const int64_t nc = N - n0 < rows_per_chunk ? N - n0 : rows_per_chunk;
            NS_TRY(ns__cuda_dequant_f16(c, type, d_w, K, n0, nc, c->d_gemm_w16));
            NS_TRY(gemm_f16(c, c->d_gemm_w16, nc, K, x16, mc, y + n0, ldy, accumulate));
        }
    }
    return NS_OK;
}

ns_status ns_cuda_matmul_path(ns_cuda *c, ns_type type, const void *d_w, int64_t N, int64_t K, const float *d_x,
                              int64_t ldx, int M, float *d_y, int64_t ldy, bool accumulate, int path) {
    const ns_type_traits *tr = ns_type_get((uint32_t)type);
    NS_CU_ARG(c, tr != NULL && ns_cuda_type_supported(type) && K > 0 && K % tr->blck_size == 0 && N > 0 && M >= 0);
    NS_CU_ARG(c, ldx >= K && ldy >= N && path >= 0 && path <= 2 && (const void *)d_x != (const void *)d_y);
    if (M == 0) {
        return NS_OK;
    }
    if (path == 1 || (path == 0 && M <= NS_CUDA_MATVEC_MAX_M)) {
        for (int m0 = 0; m0 < M; m0 += NS_CUDA_MATVEC_MAX_M) {
            const int mc = M - m0 < NS_CUDA_MATVEC_MAX_M ? M - m0 : NS_CUDA_MATVEC_MAX_M;
            NS_TRY(ns__cuda_matvec(c, type, d_w, N, K, d_x + (int64_t)m0 * ldx, ldx, mc, d_y + (int64_t)m0 * ldy, ldy,
                                   accumulate));
        }
        return NS_OK;
    }
    return matmul_gemm(c, type, d_w, N, K, d_x, ldx, M, d_y, ldy, accumulate);
}

ns_status ns_cuda_matmul(ns_cuda *c, ns_type type, const void *d_w, int64_t N, int64_t K, const float *d_x, int64_t ldx,
                         int M, float *d_y, int64_t ldy, bool accumulate) {
    return ns_cuda_matmul_path(c, type, d_w, N, K, d_x, ldx, M, d_y, ldy, accumulate, 0);
}
