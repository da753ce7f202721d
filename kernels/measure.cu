/*
 * measure.cu - the physical limits the planner and `nightshift bench` need,
 * measured on this device: pinned host -> device copy bandwidth, device ->
 * device copy bandwidth (HBM), and fp16 tensor-core GEMM throughput.
 *
 * Device buffers come from the free tail of the arena and are given back on
 * return (arena mark/reset), so the measurement obeys the one-arena rule.
 * The pinned host source is a temporary cudaHostAlloc. Each figure is the
 * best of a few timed repetitions (events on the compute stream), after one
 * warm-up. Thread safety: per handle, see ns_cuda.h.
 */
#include <string.h>

#include <cuda_fp16.h>

#include "ns_cuda_impl.cuh"

#define NS__MEAS_REPS 3

/* Time `reps` runs of fn on the compute stream; best time in seconds. */
template <typename F> static ns_status time_best(ns_cuda *c, F &&fn, double *best) {
    cudaEvent_t e0 = NULL, e1 = NULL;
    ns_status st = NS_OK;
    *best = 0.0;
    if (cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess) {
        st = ns__err_set(&c->err, NS_ERR_DEVICE, "cuda: measure: cudaEventCreate failed");
        goto done;
    }
    for (int r = 0; r <= NS__MEAS_REPS; r++) { /* r == 0 is the warm-up */
        float ms = 0.0f;
        cudaError_t e = cudaEventRecord(e0, c->compute);
        if (e == cudaSuccess) {
            st = fn();
            if (st != NS_OK) {
                goto done;
            }
            e = cudaEventRecord(e1, c->compute);
        }
        if (e == cudaSuccess) {
            e = cudaEventSynchronize(e1);
        }
        if (e == cudaSuccess) {
            e = cudaEventElapsedTime(&ms, e0, e1);
        }
        if (e != cudaSuccess) {
            st = ns__cuda_fail(c, e, "measure timing", __FILE__, __LINE__);
            goto done;
        }
        if (r > 0 && (*best == 0.0 || ms * 1e-3 < *best)) {
            *best = ms * 1e-3;
        }
    }
done:
    if (e0 != NULL) {
        cudaEventDestroy(e0);
    }
    if (e1 != NULL) {
        cudaEventDestroy(e1);
    }
    return st;
}

__global__ void k_fill_half(__half *p, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        p[i] = __float2half_rn((float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f);
    }
}

static ns_status measure_inner(ns_cuda *c, size_t h2d_bytes, void *h_buf, ns_cuda_measurements *out) {
    const size_t chunk = (size_t)256 << 20;
    const size_t avail = ns_arena_remaining(&c->arena);
    double t = 0.0;

    /* H2D: h2d_bytes in 256 MiB copies from pinned memory into one device buffer. */
    size_t dev_chunk = chunk < avail / 2 ? chunk : avail / 2;
    dev_chunk &= ~(size_t)255;
    if (dev_chunk < ((size_t)16 << 20)) {
        return ns__err_set(&c->err, NS_ERR_CAPACITY, "cuda: measure needs at least 32 MiB free in the arena");
    }
    void *d_a = ns_cuda_alloc(c, dev_chunk, 256);
    void *d_b = ns_cuda_alloc(c, dev_chunk, 256);
    if (d_a == NULL || d_b == NULL) {
        return c->err.status;
    }
    NS_TRY(time_best(
        c,
        [&]() -> ns_status {
            for (size_t off = 0; off < h2d_bytes; off += dev_chunk) {
                const size_t n = h2d_bytes - off < dev_chunk ? h2d_bytes - off : dev_chunk;
                NS_CU(c, cudaMemcpyAsync(d_a, (const uint8_t *)h_buf + off, n, cudaMemcpyHostToDevice, c->compute));
            }
            return NS_OK;
        },
        &t));
    out->h2d_bytes_per_s = (double)h2d_bytes / t;

    /* D2D: 8 copies of dev_chunk; each moves 2 * dev_chunk bytes through HBM. */
    NS_TRY(time_best(
        c,
        [&]() -> ns_status {
            for (int i = 0; i < 8; i++) {
                NS_CU(c, cudaMemcpyAsync(i % 2 ? d_a : d_b, i % 2 ? d_b : d_a, dev_chunk, cudaMemcpyDeviceToDevice,
                                         c->compute));
            }
            return NS_OK;
        },
        &t));
    out->d2d_bytes_per_s = 16.0 * (double)dev_chunk / t;

    /* GEMM: the largest n in {8192, 4096, 2048} whose three fp16 n x n
     * matrices fit in what is left; fp32 output would double C, so C is
     * fp16 too (compute fp32). */
    int n = 8192;
    while (n >= 2048 && (size_t)3 * n * n * 2 + 3 * 256 > ns_arena_remaining(&c->arena)) {
        n /= 2;
    }
    if (n < 2048) {
        return ns__err_set(&c->err, NS_ERR_CAPACITY, "cuda: measure: arena too small for a 2048^3 GEMM");
    }
    const size_t mat = (size_t)n * n * 2;
    __half *A = (__half *)ns_cuda_alloc(c, mat, 256);
    __half *B = (__half *)ns_cuda_alloc(c, mat, 256);
    __half *C = (__half *)ns_cuda_alloc(c, mat, 256);
    if (A == NULL || B == NULL || C == NULL) {
        return c->err.status;
    }
    k_fill_half<<<1024, 256, 0, c->compute>>>(A, (int64_t)n * n);
    k_fill_half<<<1024, 256, 0, c->compute>>>(B, (int64_t)n * n);
    NS_CU_LAUNCHED(c);
    const float alpha = 1.0f, beta = 0.0f;
    NS_TRY(time_best(
        c,
        [&]() -> ns_status {
            NS_CUBLAS(c, cublasGemmEx(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, A, CUDA_R_16F, n, B,
                                      CUDA_R_16F, n, &beta, C, CUDA_R_16F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
            return NS_OK;
        },
        &t));
    out->gemm_flops = 2.0 * (double)n * n * n / t;
    out->gemm_n = n;
    return NS_OK;
}

ns_status ns_cuda_measure(ns_cuda *c, size_t h2d_bytes, ns_cuda_measurements *out) {
    void *h_buf = NULL;
    const size_t mark = ns_arena_mark(&c->arena);
    const double t0 = ns_time_s();
    ns_status st;
    memset(out, 0, sizeof *out);
    NS_CU_ARG(c, h2d_bytes > 0);
    NS_CU(c, cudaHostAlloc(&h_buf, h2d_bytes, cudaHostAllocDefault));
    memset(h_buf, 1, h2d_bytes); /* touch every page before timing */
    st = measure_inner(c, h2d_bytes, h_buf, out);
    cudaStreamSynchronize(c->compute);
    cudaFreeHost(h_buf);
    ns_arena_reset_to(&c->arena, mark);
    out->seconds = ns_time_s() - t0;
    return st;
}
