/*
 * backend.h - the compute backend interface: a table of ops plus a context
 * pointer (ggml style). One shared forward pass (engine/forward.c) drives
 * every backend through these ops, so there is no per-backend copy of the
 * model logic.
 *
 * Data model. A backend is created for one model and owns, from creation on:
 *   - its view or copy of the weights (the CPU backend uses the mmapped GGUF
 *     in place; CUDA uploads). Weights are named by `const ns_tensor *` from
 *     the model (model.h); a backend may key its own copy on tensor->id.
 *   - the activation buffers listed in ns_act, each [max_tokens][width] f32,
 *     row-major with row stride ns_act_width() floats. They live on the
 *     backend's device; the forward pass names them by id, never by pointer.
 *   - the paged K/V storage for kv->n_pages pages, in the layout documented in
 *     kv_cache.h (f16).
 * Nothing is allocated after creation.
 *
 * A pass is: begin(ubatch) ... ops ... end(logits). `begin` uploads the
 * ubatch's tokens, positions, slots, page tables and logits rows; ops then
 * work on the first `n` rows of the buffers they name (n is passed
 * explicitly: n_tokens for the layers, n_logits for the head). Ops return
 * nothing: a backend that can fail inside an op (CUDA) latches the first
 * error and reports it from `end`. `end` waits for the work and copies the
 * [n_logits][n_vocab] f32 logits to host memory.
 *
 * Thread safety: a backend instance is used by one thread at a time (the
 * scheduler's); it may use its own worker threads inside ops.
 */
#ifndef NS_BACKEND_H
#define NS_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "batch.h"
#include "kv_cache.h"
#include "model.h"
#include "ns_status.h"

/* Activation buffers, [max_tokens][ns_act_width(act)] f32 each. */
typedef enum ns_act {
    NS_ACT_X = 0,  /* residual stream                       width n_embd */
    NS_ACT_XN,     /* normed input of a matmul              width max(n_embd, n_q) */
    NS_ACT_Q,      /* queries                               width n_q = n_head * head_dim */
    NS_ACT_K,      /* keys of the new tokens                width n_kv = n_head_kv * head_dim */
    NS_ACT_V,      /* values of the new tokens              width n_kv */
    NS_ACT_ATTN,   /* attention output (input of wo)        width n_q */
    NS_ACT_GATE,   /* ffn gate, then silu(gate) * up        width n_ff */
    NS_ACT_UP,     /* ffn up                                width n_ff */
    NS_ACT_LOGITS, /* logits rows                           width n_vocab */
    NS_ACT_COUNT
} ns_act;

/* Floats per row of activation buffer `act` for model hyperparameters hp. */
int32_t ns_act_width(const ns_hparams *hp, ns_act act);

/* Settings fixed at backend creation. */
typedef struct ns_backend_params {
    int32_t max_tokens; /* most tokens per pass (ubatch cap); sizes the activation buffers */
    ns_kv_params kv;    /* KV pool geometry (n_pages, page_size, max_seqs, max_seq_len) */
    int32_t n_threads;  /* CPU: worker threads (0 = number of online cores) */
    int32_t device;     /* CUDA: device ordinal */
} ns_backend_params;

typedef struct ns_backend_iface {
    const char *name; /* "cpu", "cuda" */

    /* Release everything the context owns, including ctx itself. */
    void (*destroy)(void *ctx);

    /* Detail of the last error (never NULL). */
    const char *(*errmsg)(void *ctx);

    /* Start a pass over `ub`, already prepared by ns_kv_cache_prepare.
     * NS_ERR_INVALID_ARG when ub->n_tokens > max_tokens. */
    ns_status (*begin)(void *ctx, const ns_ubatch *ub);

    /* X[i] = dequantized row ub->token[i] of tok_embd, for i < n. */
    void (*embed)(void *ctx, const ns_tensor *tok_embd, ns_act out, int32_t n);

    /* out[i] = in[i] / sqrt(mean(in[i]^2) + eps) * w, for i < n (w is F32,
     * width ne[0]). `in` may equal `out`. */
    void (*rmsnorm)(void *ctx, ns_act in, const ns_tensor *w, float eps, ns_act out, int32_t n);

    /* out[i][r] (+)= sum_k w[r][k] * in[i][k] for i < n, r < w->ne[1], over
     * k < w->ne[0]. With `accumulate` the product is added to out (residual
     * connections), otherwise out is overwritten. The CPU backend may quantize
     * `in` to the weight type's activation format first. */
    void (*matmul)(void *ctx, const ns_tensor *w, ns_act in, ns_act out, int32_t n, bool accumulate);

    /* io[i][r] += b[r] for i < n, r < b->ne[0] (b is F32). */
    void (*add_bias)(void *ctx, ns_act io, const ns_tensor *b, int32_t n);

    /* Rotate each of the n_heads head_dim-wide heads of io[i] in place by
     * position ub->pos[i], using the model's rope style, n_rot and inverse
     * frequencies (ns_model_rope_inv_freq). */
    void (*rope)(void *ctx, ns_act io, int32_t n_heads, int32_t n);

    /* Store K[i], V[i] (f32, converted to f16) of the n tokens into layer
     * `il`'s pools at each token's (page, slot), from ub->pages/slot/pos. */
    void (*kv_store)(void *ctx, int32_t il, ns_act k, ns_act v, int32_t n);

    /* Causal attention: for token i, head h (kv head h / (n_head/n_head_kv)),
     * out[i][h] = softmax_j(q[i][h] . k_j / sqrt(head_dim)) v_j over positions
     * j = 0..pos[i] of token i's own sequence, read from layer il's pools.
     * Run after kv_store of the same layer. */
    void (*attention)(void *ctx, int32_t il, ns_act q, ns_act out, int32_t n);

    /* gate[i][r] = silu(gate[i][r]) * up[i][r] for r < width, i < n. */
    void (*swiglu)(void *ctx, ns_act gate, ns_act up, int32_t width, int32_t n);

    /* out[j] = in[ub->logit_rows[j]] for j < ub->n_logits (rows of width
     * ns_act_width(in)); out != in. */
    void (*get_rows)(void *ctx, ns_act in, ns_act out);

    /* Finish the pass: wait for the device and copy LOGITS rows [n_logits]
     * [n_vocab] to `logits` (may be NULL to skip the copy). Returns the first
     * error latched during the pass. */
    ns_status (*end)(void *ctx, float *logits, int32_t n_logits);
} ns_backend_iface;

/* A backend instance: an op table and its context. Plain value; copy freely,
 * destroy once. */
typedef struct ns_backend {
    const ns_backend_iface *iface;
    void *ctx;
} ns_backend;

/* Destroy the backend's context and zero *b. NULL-safe (also for a zeroed b). */
void ns_backend_destroy(ns_backend *b);

/* "cpu", "cuda", or "none". */
const char *ns_backend_name(const ns_backend *b);

/* Create the CPU backend for `model` (engine/cpu/backend_cpu.c). Allocates
 * the activations, scratch and the KV pool (ns_kv_storage_bytes), and starts
 * n_threads - 1 worker threads. The model must outlive the backend. */
ns_status ns_backend_cpu_create(const ns_model *model, const ns_backend_params *p, ns_backend *out, ns_err *err);

/* Create the CUDA backend (kernels/, built only with CUDA). Same contract as
 * ns_backend_cpu_create; p->device picks the GPU. Builds without CUDA do not
 * define it: engine.c calls it only when NS_HAVE_CUDA is defined. */
ns_status ns_backend_cuda_create(const ns_model *model, const ns_backend_params *p, ns_backend *out, ns_err *err);

/* Run one forward pass of `model` over `ub` (already prepared with
 * ns_kv_cache_prepare) on backend `b`; write the logits of the rows with
 * want_logits to `logits` as [ub->n_logits][n_vocab] f32 (engine/forward.c).
 * The one forward pass for every architecture and backend. */
ns_status ns_forward(const ns_model *model, ns_backend *b, const ns_ubatch *ub, float *logits, ns_err *err);

#endif /* NS_BACKEND_H */
