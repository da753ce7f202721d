/*
 * rope.cu - rotary position embedding, in place, NORM (adjacent pairs) and
 * NEOX (i, i + n_rot/2) layouts, with optional per-pair frequency factors
 * (rope_freqs, Llama 3) and linear scaling (freq_scale = 1 / factor).
 *
 * theta_i = pos * inv_freq[i]; the host computes inv_freq[i] = freq_scale *
 * base^(-2i/n_rot) / factors[i] once (ns_model_rope_inv_freq), the same
 * table the CPU backend uses, as in ggml's rope with ext_factor = 0 and
 * attn_factor = 1. One thread per rotated pair.
 * Thread safety: per handle, see ns_cuda.h.
 */
#include "ns_cuda_impl.cuh"

__global__ void k_rope(float *x, int n_head, int head_dim, int64_t row_stride, const int32_t *__restrict__ pos,
                       int mode, int n_rot, const float *__restrict__ inv_freq) {
    const int t = blockIdx.y;
    const int half = n_rot / 2;
    const int idx = blockIdx.x * blockDim.x + threadIdx.x; /* (head, pair) */
    if (idx >= n_head * half) {
        return;
    }
    const int h = idx / half;
    const int i = idx % half;
    const float theta = (float)pos[t] * inv_freq[i];
    float s, co;
    sincosf(theta, &s, &co);
    float *v = x + (int64_t)t * row_stride + (int64_t)h * head_dim;
    const int a = mode == NS_CUDA_ROPE_NEOX ? i : 2 * i;
    const int b = mode == NS_CUDA_ROPE_NEOX ? i + half : 2 * i + 1;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * co - x1 * s;
    v[b] = x0 * s + x1 * co;
}

ns_status ns_cuda_rope(ns_cuda *c, float *d_x, int n_tokens, int n_head, int head_dim, int64_t row_stride,
                       const int32_t *d_pos, ns_cuda_rope_mode mode, int n_rot, const float *d_inv_freq) {
    NS_CU_ARG(c, n_tokens >= 0 && n_tokens <= 65535 && n_head > 0 && head_dim > 0);
    NS_CU_ARG(c, n_rot > 0 && n_rot % 2 == 0 && n_rot <= head_dim && row_stride >= (int64_t)n_head * head_dim);
    NS_CU_ARG(c, mode == NS_CUDA_ROPE_NORM || mode == NS_CUDA_ROPE_NEOX);
    NS_CU_ARG(c, d_inv_freq != NULL && d_pos != NULL);
    if (n_tokens == 0) {
        return NS_OK;
    }
    const int pairs = n_head * (n_rot / 2);
    const int threads = 128;
    const dim3 grid(ns__cdiv(pairs, threads), (unsigned)n_tokens);
    k_rope<<<grid, threads, 0, c->compute>>>(d_x, n_head, head_dim, row_stride, d_pos, (int)mode, n_rot, d_inv_freq);
    NS_CU_LAUNCHED(c);
    return NS_OK;
}
