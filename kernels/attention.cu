/*
 * attention.cu - the paged KV cache on the device: storing new K/V as f16 at
 * each token's (page, slot), and causal attention over a sequence's own
 * pages with GQA and split-K flash-decoding.
 *
 * Attention kernel: one block of 4 warps per (key split, head, token). Each
 * warp walks every 4th key of its split; per key, the lanes hold dims lane,
 * lane+32, ... of q, accumulate q.k with a warp reduction, and update an
 * online softmax (running max m, sum l, unnormalised acc). The 4 warps then
 * merge in shared memory. With one split the block writes the normalised
 * output; with several it writes (m, l, acc) partials that k_attn_merge
 * combines. Keys of token t are positions 0..tok_pos[t] of its sequence;
 * position j lives in page page_table[row][j / page_size], slot j %
 * page_size. Page ids outside the pool are skipped, never dereferenced.
 *
 * The split count is chosen on the host: enough blocks to fill the device
 * when few (token, head) pairs exist (decode), 1 for prefill-sized batches,
 * at least 64 keys per split, and never more partials than the reserved
 * scratch holds. Thread safety: per handle, see ns_cuda.h.
 */
#include <cuda_fp16.h>

#include "ns_cuda_impl.cuh"

#define NS__ATTN_WARPS 4
#define NS__ATTN_DPL 8 /* dims per lane: head_dim <= 256 */

__global__ void k_kv_store(ns_cuda_kv_view kv, const int32_t *__restrict__ tok_seq, const int32_t *__restrict__ tok_pos,
                           const int32_t *__restrict__ page_table, int max_pages, const float *__restrict__ k,
                           int64_t k_stride, const float *__restrict__ v, int64_t v_stride, int n_head_kv,
                           int head_dim) {
    const int t = blockIdx.x;
    const int pos = tok_pos[t];
    const int pi = pos / kv.page_size;
    if (pos < 0 || pi >= max_pages) {
        return;
    }
    const int page = page_table[(int64_t)tok_seq[t] * max_pages + pi];
    if (page < 0 || page >= kv.n_pages) {
        return;
    }
    const int64_t base = (int64_t)page * kv.page_stride + (int64_t)(pos % kv.page_size) * kv.token_stride;
    for (int i = threadIdx.x; i < n_head_kv * head_dim; i += blockDim.x) {
        const int h = i / head_dim, d = i % head_dim;
        const int64_t off = base + (int64_t)h * kv.head_stride + d;
        kv.k[off] = __half_as_ushort(__float2half_rn(k[(int64_t)t * k_stride + i]));
        kv.v[off] = __half_as_ushort(__float2half_rn(v[(int64_t)t * v_stride + i]));
    }
}

__global__ void __launch_bounds__(NS__ATTN_WARPS * 32)
    k_attn(ns_cuda_kv_view kv, const int32_t *__restrict__ tok_seq, const int32_t *__restrict__ tok_pos,
           const int32_t *__restrict__ page_table, int max_pages, const float *__restrict__ q, int64_t q_stride,
           float *__restrict__ out, int64_t out_stride, float *__restrict__ part, int n_head, int group, int D,
           float scale, int chunk) {
    __shared__ float sm_m[NS__ATTN_WARPS], sm_l[NS__ATTN_WARPS];
    __shared__ float sm_acc[NS__ATTN_WARPS][NS__ATTN_DPL * 32];
    const int split = blockIdx.x, h = blockIdx.y, t = blockIdx.z;
    const int n_split = gridDim.x;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int kvh = h / group;
    const int n_keys = tok_pos[t] + 1;
    const int64_t row = (int64_t)tok_seq[t] * max_pages;
    const int j0 = split * chunk;
    const int j1 = min(j0 + chunk, n_keys);

    float qv[NS__ATTN_DPL], acc[NS__ATTN_DPL];
    const float *qp = q + (int64_t)t * q_stride + (int64_t)h * D;
#pragma unroll
    for (int i = 0; i < NS__ATTN_DPL; i++) {
        const int d = lane + 32 * i;
        qv[i] = d < D ? qp[d] * scale : 0.0f;
        acc[i] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int j = j0 + warp; j < j1; j += NS__ATTN_WARPS) {
        const int page = page_table[row + j / kv.page_size];
        if (page < 0 || page >= kv.n_pages) {
            continue; /* uniform across the warp: j is */
        }
        const int64_t off = (int64_t)page * kv.page_stride + (int64_t)(j % kv.page_size) * kv.token_stride +
                            (int64_t)kvh * kv.head_stride;
        const __half *kp = (const __half *)kv.k + off;
        const __half *vp = (const __half *)kv.v + off;
        float s = 0.0f;
#pragma unroll
        for (int i = 0; i < NS__ATTN_DPL; i++) {
            const int d = lane + 32 * i;
            if (d < D) {
                s += qv[i] * __half2float(kp[d]);
            }
        }
        s = ns__warp_sum(s);
        const float m_new = fmaxf(m, s);
        const float corr = __expf(m - m_new); /* m = -inf on the first key: 0 */
        const float p = __expf(s - m_new);
        l = l * corr + p;
#pragma unroll
        for (int i = 0; i < NS__ATTN_DPL; i++) {
            const int d = lane + 32 * i;
            acc[i] = acc[i] * corr + (d < D ? p * __half2float(vp[d]) : 0.0f);
        }
        m = m_new;
    }
    if (lane == 0) {
        sm_m[warp] = m;
        sm_l[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < NS__ATTN_DPL; i++) {
        sm_acc[warp][lane + 32 * i] = acc[i];
    }
    __syncthreads();

    float M = -INFINITY;
    for (int w = 0; w < NS__ATTN_WARPS; w++) {
        M = fmaxf(M, sm_m[w]);
    }
    float L = 0.0f;
    float wexp[NS__ATTN_WARPS];
    for (int w = 0; w < NS__ATTN_WARPS; w++) {
        wexp[w] = sm_l[w] > 0.0f ? __expf(sm_m[w] - M) : 0.0f; /* warps without keys count 0 */
        L += sm_l[w] * wexp[w];
    }
    if (n_split == 1) {
        float *op = out + (int64_t)t * out_stride + (int64_t)h * D;
        const float inv = L > 0.0f ? 1.0f / L : 0.0f;
        for (int d = threadIdx.x; d < D; d += blockDim.x) {
            float a = 0.0f;
            for (int w = 0; w < NS__ATTN_WARPS; w++) {
                a += sm_acc[w][d] * wexp[w];
            }
            op[d] = a * inv;
        }
    } else {
        float *pp = part + (((int64_t)t * n_head + h) * n_split + split) * (D + 2);
        if (threadIdx.x == 0) {
            pp[0] = M;
            pp[1] = L;
        }
        for (int d = threadIdx.x; d < D; d += blockDim.x) {
            float a = 0.0f;
            for (int w = 0; w < NS__ATTN_WARPS; w++) {
                a += sm_acc[w][d] * wexp[w];
            }
            pp[2 + d] = a;
        }
    }
}

/* out[t][h] = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M), over splits with l_s > 0. */
__global__ void k_attn_merge(const float *__restrict__ part, int n_split, int n_head, int D, float *__restrict__ out,
                             int64_t out_stride) {
    const int h = blockIdx.x, t = blockIdx.y;
    const float *pp = part + ((int64_t)t * n_head + h) * n_split * (D + 2);
    float M = -INFINITY;
    for (int s = 0; s < n_split; s++) {
        if (pp[s * (D + 2) + 1] > 0.0f) {
            M = fmaxf(M, pp[s * (D + 2)]);
        }
    }
    float L = 0.0f;
    for (int s = 0; s < n_split; s++) {
        const float ls = pp[s * (D + 2) + 1];
        if (ls > 0.0f) {
            L += ls * __expf(pp[s * (D + 2)] - M);
        }
    }
    const float inv = L > 0.0f ? 1.0f / L : 0.0f;
    float *op = out + (int64_t)t * out_stride + (int64_t)h * D;
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float a = 0.0f;
        for (int s = 0; s < n_split; s++) {
            const float ls = pp[s * (D + 2) + 1];
            if (ls > 0.0f) {
                a += pp[s * (D + 2) + 2 + d] * __expf(pp[s * (D + 2)] - M);
            }
        }
        op[d] = a * inv;
    }
}

static bool kv_view_ok(const ns_cuda_kv_view *kv) {
    return kv != NULL && kv->k != NULL && kv->v != NULL && kv->page_size > 0 && kv->n_pages > 0 &&
           kv->page_stride > 0 && kv->token_stride > 0 && kv->head_stride > 0;
}

ns_status ns_cuda_kv_store(ns_cuda *c, const ns_cuda_kv_view *kv, const ns_cuda_attn_batch *b, const float *d_k,
                           int64_t k_stride, const float *d_v, int64_t v_stride, int n_head_kv, int head_dim) {
    NS_CU_ARG(c, kv_view_ok(kv) && b != NULL && b->n_tokens >= 0 && b->max_pages > 0);
    NS_CU_ARG(c, n_head_kv > 0 && head_dim > 0 && k_stride >= (int64_t)n_head_kv * head_dim &&
                     v_stride >= (int64_t)n_head_kv * head_dim);
    if (b->n_tokens == 0) {
        return NS_OK;
    }
    k_kv_store<<<(unsigned)b->n_tokens, 128, 0, c->compute>>>(*kv, b->tok_seq, b->tok_pos, b->page_table, b->max_pages,
                                                              d_k, k_stride, d_v, v_stride, n_head_kv, head_dim);
    NS_CU_LAUNCHED(c);
    return NS_OK;
}

ns_status ns_cuda_attention(ns_cuda *c, const ns_cuda_kv_view *kv, const ns_cuda_attn_batch *b, const float *d_q,
                            int64_t q_stride, float *d_out, int64_t out_stride, int n_head, int n_head_kv, int head_dim,
                            float scale) {
    NS_CU_ARG(c, kv_view_ok(kv) && b != NULL && b->n_tokens >= 0 && b->n_tokens <= 65535 && b->max_pages > 0);
    NS_CU_ARG(c, n_head > 0 && n_head <= 65535 && n_head_kv > 0 && n_head % n_head_kv == 0);
    NS_CU_ARG(c, head_dim > 0 && head_dim <= NS__ATTN_DPL * 32 && b->max_pos >= 0);
    NS_CU_ARG(c, q_stride >= (int64_t)n_head * head_dim && out_stride >= (int64_t)n_head * head_dim);
    if (b->n_tokens == 0) {
        return NS_OK;
    }
    const int64_t max_keys = (int64_t)b->max_pos + 1;
    const int64_t pairs = (int64_t)b->n_tokens * n_head;
    /* Splits: aim for ~4 blocks per SM, >= 64 keys each, within the scratch. */
    int64_t n_split = 1;
    const int64_t want_blocks = 4 * (int64_t)(c->info.sm_count > 0 ? c->info.sm_count : 80);
    if (pairs < want_blocks && c->d_attn_part != NULL) {
        n_split = (want_blocks + pairs - 1) / pairs;
        const int64_t by_len = (max_keys + 63) / 64;
        const int64_t by_mem = (int64_t)(c->attn_part_bytes / ((size_t)pairs * (size_t)(head_dim + 2) * sizeof(float)));
        n_split = n_split < by_len ? n_split : by_len;
        n_split = n_split < by_mem ? n_split : by_mem;
        n_split = n_split < 65535 ? n_split : 65535;
        if (n_split < 1) {
            n_split = 1;
        }
    }
    const int chunk = (int)((max_keys + n_split - 1) / n_split);
    const dim3 grid((unsigned)n_split, (unsigned)n_head, (unsigned)b->n_tokens);
    k_attn<<<grid, NS__ATTN_WARPS * 32, 0, c->compute>>>(*kv, b->tok_seq, b->tok_pos, b->page_table, b->max_pages, d_q,
                                                         q_stride, d_out, out_stride, c->d_attn_part, n_head,
                                                         n_head / n_head_kv, head_dim, scale, chunk);
    NS_CU_LAUNCHED(c);
    if (n_split > 1) {
        const dim3 g2((unsigned)n_head, (unsigned)b->n_tokens);
        k_attn_merge<<<g2, 128, 0, c->compute>>>(c->d_attn_part, (int)n_split, n_head, head_dim, d_out, out_stride);
        NS_CU_LAUNCHED(c);
    }
    return NS_OK;
}
