/*
 * dequant.cu - row dequantization kernels: the embedding lookup straight
 * from quantized rows (device- or host-resident table), dequantization to
 * float32 (tests) and to fp16 (the chunk scratch of the large-batch GEMM).
 *
 * Each thread produces 8 consecutive elements through ns__dq<T>::run, so a
 * warp covers 256 consecutive elements of a row: its loads of the row's
 * blocks are contiguous. Thread safety: per handle, see ns_cuda.h.
 */
#include "ns_cuda_impl.cuh"
#include "ns_dequant.cuh"

#include <string.h>

/* out[t][:] = row ids[t] of table, or zeros when the id is out of range. */
template <int T>
__global__ void k_embed(const uint8_t *__restrict__ table, int64_t n_vocab, int64_t n_embd, int64_t row_bytes,
                        const int32_t *__restrict__ ids, float *__restrict__ out) {
    const int t = blockIdx.y;
    const int32_t id = ids[t];
    float *o = out + (int64_t)t * n_embd;
    for (int64_t e = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) * 8; e < n_embd;
         e += (int64_t)gridDim.x * blockDim.x * 8) {
        float y[8];
        if (id >= 0 && id < n_vocab) {
            ns__dq<T>::run(table + (int64_t)id * row_bytes, e, n_embd, y);
        } else {
            for (int i = 0; i < 8; i++) {
                y[i] = 0.0f;
            }
        }
        for (int i = 0; i < 8 && e + i < n_embd; i++) {
            o[e + i] = y[i];
        }
    }
}

/* out[r][:] (float or half) = rows row0.. of W. One thread per 8 elements. */
template <int T, typename O>
__global__ void k_dequant_rows(const uint8_t *__restrict__ w, int64_t K, int64_t row_bytes, int64_t row0,
                               int64_t n_rows, O *__restrict__ out) {
    const int64_t groups = (K + 7) / 8;
    const int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (g >= groups * n_rows) {
        return;
    }
    const int64_t r = g / groups;
    const int64_t e = (g % groups) * 8;
    float y[8];
    ns__dq<T>::run(w + (row0 + r) * row_bytes, e, K, y);
    O *o = out + r * K;
    for (int i = 0; i < 8 && e + i < K; i++) {
        if constexpr (sizeof(O) == 2) {
            o[e + i] = __float2half_rn(y[i]);
        } else {
            o[e + i] = y[i];
        }
    }
}

bool ns_cuda_type_supported(ns_type type) {
    switch (type) {
#define NS__SUP(name)                                                                                                  \
    case NS_TYPE_##name:                                                                                               \
        return true;
        NS__FOR_EACH_WEIGHT_TYPE(NS__SUP)
#undef NS__SUP
    default:
        return false;
    }
}

static bool row_shape_ok(ns_type type, int64_t K) {
    const ns_type_traits *tr = ns_type_get((uint32_t)type);
    return tr != NULL && K > 0 && K % tr->blck_size == 0 && ns_cuda_type_supported(type);
}

ns_status ns_cuda_embed(ns_cuda *c, ns_type type, const void *d_table, int64_t n_vocab, int64_t n_embd,
                        const int32_t *d_tokens, int n_tokens, float *d_out) {
    NS_CU_ARG(c, row_shape_ok(type, n_embd) && n_vocab > 0 && n_tokens >= 0 && n_tokens <= 65535);
    if (n_tokens == 0) {
        return NS_OK;
    }
    const int64_t row_bytes = (int64_t)ns_type_row_size(type, n_embd);
    const int threads = 128;
    const dim3 grid(ns__cdiv((n_embd + 7) / 8, threads), (unsigned)n_tokens);
    ns__dispatch_type(type, [&](auto tag) {
        constexpr int T = decltype(tag)::value;
        k_embed<T>
            <<<grid, threads, 0, c->compute>>>((const uint8_t *)d_table, n_vocab, n_embd, row_bytes, d_tokens, d_out);
    });
    NS_CU_LAUNCHED(c);
    return NS_OK;
}

ns_status ns_cuda_embed_host(ns_cuda *c, ns_type type, const void *h_table, int64_t n_vocab, int64_t n_embd,
                             const int32_t *h_tokens, int n_tokens, float *d_out) {
    NS_CU_ARG(c, row_shape_ok(type, n_embd) && n_vocab > 0 && n_tokens >= 0);
    const size_t row_bytes = ns_type_row_size(type, n_embd);
    if (!c->scratch_ready || c->h_embd_rows == NULL || n_tokens > c->scratch.max_tokens ||
        row_bytes > c->scratch.embd_row_bytes) {
        return ns__err_set(&c->err, NS_ERR_CAPACITY,
                           "cuda: embed_host: %d tokens of %zu-byte rows exceed the reserved gather buffer", n_tokens,
                           row_bytes);
    }
    if (n_tokens == 0) {
        return NS_OK;
    }
    /* The pinned gather buffer may still feed an earlier copy: wait for the
     * compute stream before overwriting it (embedding runs once per step). */
    NS_CU(c, cudaStreamSynchronize(c->compute));
    for (int t = 0; t < n_tokens; t++) {
        if (h_tokens[t] < 0 || h_tokens[t] >= n_vocab) {
            return ns__err_set(&c->err, NS_ERR_RANGE, "cuda: token id %d out of range [0, %lld)", h_tokens[t],
                               (long long)n_vocab);
        }
        memcpy((uint8_t *)c->h_embd_rows + (size_t)t * row_bytes,
               (const uint8_t *)h_table + (size_t)h_tokens[t] * row_bytes, row_bytes);
    }
    NS_CU(c, cudaMemcpyAsync(c->d_embd_rows, c->h_embd_rows, (size_t)n_tokens * row_bytes, cudaMemcpyHostToDevice,
                             c->compute));
    /* Rows are now 0..n-1 of a compact table; d_embd_ids holds 0..max_tokens-1. */
    return ns_cuda_embed(c, type, c->d_embd_rows, n_tokens, n_embd, c->d_embd_ids, n_tokens, d_out);
}

ns_status ns_cuda_dequant(ns_cuda *c, ns_type type, const void *d_w, int64_t K, int64_t row0, int64_t n_rows,
                          float *d_out) {
    NS_CU_ARG(c, row_shape_ok(type, K) && row0 >= 0 && n_rows >= 0);
    if (n_rows == 0) {
        return NS_OK;
    }
    const int64_t row_bytes = (int64_t)ns_type_row_size(type, K);
    const int threads = 256;
    const unsigned blocks = ns__cdiv((K + 7) / 8 * n_rows, threads);
    ns__dispatch_type(type, [&](auto tag) {
        constexpr int T = decltype(tag)::value;
        k_dequant_rows<T, float>
            <<<blocks, threads, 0, c->compute>>>((const uint8_t *)d_w, K, row_bytes, row0, n_rows, d_out);
    });
    NS_CU_LAUNCHED(c);
    return NS_OK;
}

ns_status ns__cuda_dequant_f16(ns_cuda *c, ns_type type, const void *d_w, int64_t K, int64_t row0, int64_t n_rows,
                               void *d_out16) {
    NS_CU_ARG(c, row_shape_ok(type, K) && row0 >= 0 && n_rows >= 0);
    if (n_rows == 0) {
        return NS_OK;
    }
    const int64_t row_bytes = (int64_t)ns_type_row_size(type, K);
    const int threads = 256;
    const unsigned blocks = ns__cdiv((K + 7) / 8 * n_rows, threads);
    ns__dispatch_type(type, [&](auto tag) {
        constexpr int T = decltype(tag)::value;
        k_dequant_rows<T, __half>
            <<<blocks, threads, 0, c->compute>>>((const uint8_t *)d_w, K, row_bytes, row0, n_rows, (__half *)d_out16);
    });
    NS_CU_LAUNCHED(c);
    return NS_OK;
}
