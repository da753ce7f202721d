/*
 * matvec.cu - small-batch matmul (M <= 8 activation rows): fused
 * dequantize-and-dot, y[m][n] = sum_k W[n][k] * x[m][k].
 *
 * Layout of the work: a block of 8 warps owns 16 consecutive rows of W (two
 * per warp). K is walked in tiles of 1024 elements; for each tile the block
 * stages x[0..M)[tile] in shared memory once, then each warp streams its two
 * weight rows through ns__dq<T>::run, lane l taking elements l*8 .. l*8+7 of
 * every 256-element stretch, so a warp's weight loads are contiguous and
 * every weight byte is read from memory once for all M activation rows.
 * Accumulation is float32 per lane, reduced across the warp at the end.
 *
 * The weight is dequantized exactly (as the reference dequantizer does) and
 * multiplied in float; activations are not quantized. An int8/dp4a variant
 * would halve the shared-memory traffic; see docs/cuda.md.
 * Thread safety: per handle, see ns_cuda.h.
 */
#include "ns_cuda_impl.cuh"
#include "ns_dequant.cuh"

#define NS__MV_WARPS 8
#define NS__MV_ROWS_PER_WARP 2
#define NS__MV_ROWS (NS__MV_WARPS * NS__MV_ROWS_PER_WARP)
#define NS__MV_TILE 1024 /* elements of K per shared-memory tile; a multiple of 256 */

template <int T, int M>
__global__ void __launch_bounds__(NS__MV_WARPS * 32)
    k_matvec(const uint8_t *__restrict__ w, int64_t N, int64_t K, int64_t row_bytes, const float *__restrict__ x,
             int64_t ldx, float *__restrict__ y, int64_t ldy, bool accumulate) {
    __shared__ __align__(16) float xs[M][NS__MV_TILE];
    const int warp = threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    const int64_t row0 = (int64_t)blockIdx.x * NS__MV_ROWS + (int64_t)warp * NS__MV_ROWS_PER_WARP;

    float acc[NS__MV_ROWS_PER_WARP][M];
    for (int r = 0; r < NS__MV_ROWS_PER_WARP; r++) {
        for (int m = 0; m < M; m++) {
            acc[r][m] = 0.0f;
        }
    }

    for (int64_t k0 = 0; k0 < K; k0 += NS__MV_TILE) {
        const int tile = (int)(K - k0 < NS__MV_TILE ? K - k0 : NS__MV_TILE);
        __syncthreads(); /* the previous tile is no longer being read */
        for (int i = threadIdx.x; i < M * NS__MV_TILE; i += blockDim.x) {
            const int m = i / NS__MV_TILE, j = i % NS__MV_TILE;
            xs[m][j] = j < tile ? x[(int64_t)m * ldx + k0 + j] : 0.0f;
        }
        __syncthreads();
        for (int e = lane * 8; e < tile; e += 32 * 8) {
            for (int r = 0; r < NS__MV_ROWS_PER_WARP; r++) {
                const int64_t n = row0 + r;
                if (n >= N) {
                    break;
                }
                float wv[8];
                ns__dq<T>::run(w + n * row_bytes, k0 + e, K, wv);
                for (int m = 0; m < M; m++) {
                    const float4 a = *(const float4 *)&xs[m][e];
                    const float4 b = *(const float4 *)&xs[m][e + 4];
                    acc[r][m] += wv[0] * a.x + wv[1] * a.y + wv[2] * a.z + wv[3] * a.w + wv[4] * b.x + wv[5] * b.y +
                                 wv[6] * b.z + wv[7] * b.w;
                }
            }
        }
    }

    for (int r = 0; r < NS__MV_ROWS_PER_WARP; r++) {
        const int64_t n = row0 + r;
        for (int m = 0; m < M; m++) {
            const float s = ns__warp_sum(acc[r][m]);
            if (lane == 0 && n < N) {
                float *yp = y + (int64_t)m * ldy + n;
                *yp = accumulate ? *yp + s : s;
            }
        }
    }
}

template <int T>
static void launch_matvec(cudaStream_t s, const uint8_t *w, int64_t N, int64_t K, const float *x, int64_t ldx, int M,
                          float *y, int64_t ldy, bool acc) {
    const int64_t row_bytes = ns__row_bytes<T>(K);
    const unsigned blocks = ns__cdiv(N, NS__MV_ROWS);
    const int threads = NS__MV_WARPS * 32;
    switch (M) {
    case 1:
        k_matvec<T, 1><<<blocks, threads, 0, s>>>(w, N, K, row_bytes, x, ldx, y, ldy, acc);
        break;
    case 2:
        k_matvec<T, 2><<<blocks, threads, 0, s>>>(w, N, K, row_bytes, x, ldx, y, ldy, acc);
        break;
    case 3:
        k_matvec<T, 3><<<blocks, threads, 0, s>>>(w, N, K, row_bytes, x, ldx, y, ldy, acc);
        break;
    case 4:
        k_matvec<T, 4><<<blocks, threads, 0, s>>>(w, N, K, row_bytes, x, ldx, y, ldy, acc);
        break;
    case 5:
        k_matvec<T, 5><<<blocks, threads, 0, s>>>(w, N, K, row_bytes, x, ldx, y, ldy, acc);
        break;
    case 6:
        k_matvec<T, 6><<<blocks, threads, 0, s>>>(w, N, K, row_bytes, x, ldx, y, ldy, acc);
        break;
    case 7:
        k_matvec<T, 7><<<blocks, threads, 0, s>>>(w, N, K, row_bytes, x, ldx, y, ldy, acc);
        break;
    default:
        k_matvec<T, 8><<<blocks, threads, 0, s>>>(w, N, K, row_bytes, x, ldx, y, ldy, acc);
        break;
    }
}

ns_status ns__cuda_matvec(ns_cuda *c, ns_type type, const void *d_w, int64_t N, int64_t K, const float *d_x,
                          int64_t ldx, int M, float *d_y, int64_t ldy, bool accumulate) {
    const ns_type_traits *tr = ns_type_get((uint32_t)type);
    NS_CU_ARG(c, tr != NULL && ns_cuda_type_supported(type) && K > 0 && K % tr->blck_size == 0);
    NS_CU_ARG(c, N > 0 && M >= 1 && M <= NS_CUDA_MATVEC_MAX_M && (uint64_t)ns__cdiv(N, NS__MV_ROWS) < (1u << 31));
    ns__dispatch_type(type, [&](auto tag) {
        constexpr int T = decltype(tag)::value;
        launch_matvec<T>(c->compute, (const uint8_t *)d_w, N, K, d_x, ldx, M, d_y, ldy, accumulate);
    });
    NS_CU_LAUNCHED(c);
    return NS_OK;
}
