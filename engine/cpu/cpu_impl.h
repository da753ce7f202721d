/*
 * cpu_impl.h - internal: the CPU backend's context and its kernels, shared by
 * backend_cpu.c and ops_*.c. Not a public header.
 *
 * Ownership: ns__cpu_ctx owns its thread pool, activation buffers, per-thread
 * scratch and the KV pools, all allocated at creation.
 * Thread safety: one pass at a time; ops fan out over the thread pool.
 */
#ifndef NS_CPU_IMPL_H
#define NS_CPU_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "threadpool.h"

/* Small vector kernels, chosen once per backend from the CPU's features
 * (AVX2+FMA+F16C when present, else portable C). */
typedef struct ns__cpu_kernels {
    float (*dot_f32)(const float *a, const float *b, int32_t n);
    float (*dot_f32_f16)(const float *a, const uint16_t *b, int32_t n); /* sum a[i] * half(b[i]) */
    void (*axpy_f16)(float *y, float a, const uint16_t *x, int32_t n);  /* y += a * half(x) */
    void (*f32_to_f16)(uint16_t *dst, const float *src, int32_t n);
    bool simd; /* the AVX2 set was chosen */
} ns__cpu_kernels;

/* Fill k with the best kernels this CPU supports (portable ones when
 * allow_simd is false: tests compare the two). */
void ns__cpu_kernels_init(ns__cpu_kernels *k, bool allow_simd);

/* How a matmul computes rows for one weight type. */
typedef struct ns__cpu_matmul_kind {
    bool use_vec_dot;      /* quantize activations to act_type and call vec_dot */
    ns_type act_type;      /* activation format for vec_dot */
    size_t act_row_stride; /* bytes per quantized activation row (max width) */
    void (*from_float)(const float *x, void *y, int64_t n);
    void (*vec_dot)(int n, float *s, const void *w, const void *a);
} ns__cpu_matmul_kind;

/* Most matmuls fused into one deferred op (Q, K, V). */
#define NS__MM_MAX 3

typedef struct ns__cpu_ctx {
    const ns_model *model;
    const ns_hparams *hp;
    ns_backend_params p;
    ns_threadpool *tp;
    int32_t n_threads;
    ns__cpu_kernels k;
    ns_err err;

    float *act[NS_ACT_COUNT]; /* [max_tokens][act_w[a]] */
    int32_t act_w[NS_ACT_COUNT];

    uint16_t *k_pool;      /* [n_layer][n_pages][n_head_kv][page_size][head_dim] f16 */
    uint16_t *v_pool;      /* same layout */
    size_t kv_layer_elems; /* elements per layer per pool */

    float *rope_inv_freq; /* [n_rot / 2] */

    /* Per-thread scratch: attention scores [max_seq_len] and a dequantized
     * weight tile [NS__TILE_ROWS][max row length] floats. */
    float *scratch; /* [n_threads][scratch_floats] */
    size_t scratch_floats;
    size_t max_k; /* longest weight row (elements) */

    bool simd;          /* SIMD kernels allowed (false: portable reference kernels) */
    void *qact;         /* [max_tokens][qact_stride] activations in a vec_dot format */
    size_t qact_stride; /* bytes per row: the largest activation row any weight needs */
    /* What qact holds: rows [0, qact_n) of act qact_src in format qact_type.
     * Any op that writes qact_src clears qact_valid. */
    bool qact_valid;
    ns_act qact_src;
    ns_type qact_type;
    int32_t qact_n;

    /* Deferred matmuls: consecutive matmuls reading the same input (Q/K/V,
     * gate/up) are queued and run as one threaded op with one barrier;
     * any other op flushes the queue first (ns__cpu_flush). */
    struct {
        const ns_tensor *w[NS__MM_MAX];
        ns_act out[NS__MM_MAX];
        bool accumulate[NS__MM_MAX];
        int32_t count;
        ns_act in;
        int32_t n;
    } mmq;

    const ns_ubatch *ub; /* current pass */
} ns__cpu_ctx;

/* Rows of W per GEMM tile and tokens per tile (a multiple of the gemm
 * micro-kernels' 4-token blocks). A tile is one thread-pool item. */
#define NS__TILE_ROWS 16
#define NS__TILE_TOKENS 64

static inline float *ns__cpu_act(ns__cpu_ctx *c, ns_act a, int32_t row) {
    return c->act[a] + (size_t)row * (size_t)c->act_w[a];
}

static inline float *ns__cpu_scratch(ns__cpu_ctx *c, int32_t ith) {
    return c->scratch + (size_t)ith * c->scratch_floats;
}

/* Ops, each a full multithreaded op over the first n rows (ops_*.c). */

/* Queue out (+)= in W; runs at the next ns__cpu_flush or when the queue
 * cannot take it (different input, full, or a hazard). */
void ns__cpu_op_matmul(ns__cpu_ctx *c, const ns_tensor *w, ns_act in, ns_act out, int32_t n, bool accumulate);
/* Run the queued matmuls (no-op when none). Every non-matmul op calls it
 * first. */
void ns__cpu_flush(ns__cpu_ctx *c);
/* When the queue holds exactly gate -> `gate` and up -> `up` (same shape,
 * no accumulate) over n rows, run them with swiglu fused and return true;
 * otherwise return false and do nothing. */
bool ns__cpu_matmul_swiglu(ns__cpu_ctx *c, ns_act gate, ns_act up, int32_t width, int32_t n);
void ns__cpu_op_attention(ns__cpu_ctx *c, int32_t il, ns_act q, ns_act out, int32_t n);
void ns__cpu_op_kv_store(ns__cpu_ctx *c, int32_t il, ns_act k, ns_act v, int32_t n);
void ns__cpu_op_rmsnorm(ns__cpu_ctx *c, ns_act in, const ns_tensor *w, float eps, ns_act out, int32_t n);
void ns__cpu_op_rope(ns__cpu_ctx *c, ns_act io, int32_t n_heads, int32_t n);
void ns__cpu_op_swiglu(ns__cpu_ctx *c, ns_act gate, ns_act up, int32_t width, int32_t n);
void ns__cpu_op_embed(ns__cpu_ctx *c, const ns_tensor *tok_embd, ns_act out, int32_t n);

/* Bytes of one activation row for weight tensor w in its vec_dot format, or 0
 * when w uses the in-place f32 / f16 / dequantize path (ops_matmul.c). */
size_t ns__cpu_matmul_act_row_size(const ns__cpu_ctx *c, const ns_tensor *w);

/* Mark activation `a` as rewritten (drops a cached quantized copy). */
static inline void ns__cpu_act_written(ns__cpu_ctx *c, ns_act a) {
    if (c->qact_src == a) {
        c->qact_valid = false;
    }
}

#endif /* NS_CPU_IMPL_H */
