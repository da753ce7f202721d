/*
 * ns_cuda.h - the C boundary of nightshift's CUDA kernels (the .cu files in kernels/).
 *
 * One ns_cuda handle owns one device: its streams (compute and copy), a
 * cuBLAS handle, and the ONE device arena, a single cudaMalloc made in
 * ns_cuda_create. Every device buffer (weights, KV pool, activations, cuBLAS
 * workspace, matmul scratch, staging slots, sampling buffers) is carved from
 * that arena with ns_cuda_alloc; nothing calls cudaMalloc afterwards. Pinned
 * host memory (cudaHostAlloc / cudaHostRegister) is separate and does not
 * count against the device budget.
 *
 * Conventions:
 * - Pointers named d_* are device addresses inside the arena; h_* are host.
 * - Activations are float32, row-major: x[n_rows][n]. A weight matrix is
 *   GGUF's [N][K]: N rows of K elements, each row stored in the weight type's
 *   blocks (ns_type_row_size(type, K) bytes per row).
 * - Every op enqueues on the handle's compute stream and returns at once; a
 *   fault inside a kernel surfaces at the next ns_cuda_sync (or any call that
 *   synchronises). Every CUDA call is checked; a failure returns
 *   NS_ERR_DEVICE (or NS_ERR_CAPACITY when the arena is full) and leaves the
 *   message on the handle (ns_cuda_errmsg).
 * - No cuda_runtime.h here: this header is plain C11.
 *
 * Thread safety: a handle is used by one thread at a time. Different handles
 * (devices) are independent; there is no global mutable state.
 */
#ifndef NS_CUDA_H
#define NS_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The common headers are C: give them C linkage when a .cu file includes us. */
#ifdef __cplusplus
extern "C" {
#endif

#include "ns_arena.h"
#include "ns_status.h"
#include "ns_types.h"
#include "ns_util.h"

typedef struct ns_cuda ns_cuda;

/* ---- devices and the handle ------------------------------------------------ */

/* Number of usable CUDA devices; 0 (and NS_OK) when there is no driver or no
 * device, so callers can skip cleanly. Never creates a context. */
int ns_cuda_device_count(void);

typedef struct ns_cuda_info {
    int device;                /* CUDA ordinal */
    char name[128];            /* "NVIDIA H100 80GB HBM3" */
    int cc_major, cc_minor;    /* compute capability */
    int sm_count;              /* multiprocessors */
    uint64_t total_bytes;      /* device memory */
    uint64_t free_before_ctx;  /* free bytes before our context existed (NVML); 0 when unknown */
    uint64_t free_after_ctx;   /* free bytes after context + streams + cuBLAS handle, before the arena */
    uint64_t context_overhead; /* free_before_ctx - free_after_ctx; 0 when unknown */
    bool overhead_exact;       /* false: NVML was unavailable, overhead is total - free_after_ctx */
    uint64_t arena_bytes;      /* the one device allocation */
} ns_cuda_info;

/* Create a handle on `device`: context, compute + copy streams, cuBLAS, and
 * one cudaMalloc of `arena_bytes` (the budget minus nothing: the context
 * overhead is measured and reported separately in ns_cuda_info). On failure
 * *out is NULL and `err` (may be NULL) gets the message. */
ns_status ns_cuda_create(ns_cuda **out, int device, size_t arena_bytes, ns_err *err);

/* Synchronise and free everything the handle owns. NULL-safe; sets *c NULL. */
void ns_cuda_destroy(ns_cuda **c);

const ns_cuda_info *ns_cuda_get_info(const ns_cuda *c);

/* "status: message" of the last error on the handle. */
const char *ns_cuda_errmsg(const ns_cuda *c);
const ns_err *ns_cuda_err(const ns_cuda *c);

/* The device arena (base is a device address: never dereference on host). */
ns_arena *ns_cuda_arena(ns_cuda *c);

/* Sub-allocate from the arena. NULL plus NS_ERR_CAPACITY on the handle when
 * it is full. `align` is a power of two (>= 256 is used for anything a
 * kernel vector-loads). */
void *ns_cuda_alloc(ns_cuda *c, size_t bytes, size_t align);

/* Wait for both streams; returns any asynchronous kernel fault. */
ns_status ns_cuda_sync(ns_cuda *c);

/* Device memory in use by the whole device right now (total - free), for the
 * budget test. */
ns_status ns_cuda_device_used(ns_cuda *c, uint64_t *used);

/* ---- copies ----------------------------------------------------------------- */

/* Asynchronous copies on the compute stream (host memory should be pinned
 * for real asynchrony; pageable memory works but blocks). */
ns_status ns_cuda_h2d(ns_cuda *c, void *d_dst, const void *h_src, size_t bytes);
ns_status ns_cuda_d2h(ns_cuda *c, void *h_dst, const void *d_src, size_t bytes);
ns_status ns_cuda_d2d(ns_cuda *c, void *d_dst, const void *d_src, size_t bytes);
ns_status ns_cuda_memset(ns_cuda *c, void *d_dst, int value, size_t bytes);

/* Pinned host memory. ns_cuda_host_alloc: cudaHostAlloc (portable); free with
 * ns_cuda_host_free. ns_cuda_host_register pins an existing range (e.g. the
 * mmapped GGUF; `read_only` uses cudaHostRegisterReadOnly for PROT_READ maps);
 * undo with ns_cuda_host_unregister. */
ns_status ns_cuda_host_alloc(ns_cuda *c, size_t bytes, void **h_out);
void ns_cuda_host_free(ns_cuda *c, void *h);
ns_status ns_cuda_host_register(ns_cuda *c, void *h, size_t bytes, bool read_only);
void ns_cuda_host_unregister(ns_cuda *c, void *h);

/* ---- scratch reserved once from the arena --------------------------------- */

/* Sizes of the working buffers the ops below need. All of them are taken
 * from the arena by ns_cuda_reserve_scratch, once. */
typedef struct ns_cuda_scratch_cfg {
    int max_tokens;            /* largest number of activation rows per op (the ubatch) */
    int64_t max_k;             /* largest inner dimension of any matmul */
    size_t gemm_dequant_bytes; /* fp16 weight-chunk scratch for large-batch matmul; 0 = default (64 MiB) */
    size_t cublas_ws_bytes;    /* cublasSetWorkspace size; 0 = default (32 MiB) */
    size_t attn_partial_bytes; /* split-K flash-decoding partials; 0 = default (16 MiB) */
    size_t embd_row_bytes;     /* largest token-embedding row in bytes, for host-side gathering; 0 = none */
} ns_cuda_scratch_cfg;

/* Bytes ns_cuda_reserve_scratch will take for `cfg` (alignment included), for
 * the planner's arena arithmetic. 0 on overflow. */
size_t ns_cuda_scratch_bytes(const ns_cuda_scratch_cfg *cfg);

/* Carve the scratch buffers from the arena and hand the cuBLAS workspace to
 * cuBLAS. Call once, after ns_cuda_create. */
ns_status ns_cuda_reserve_scratch(ns_cuda *c, const ns_cuda_scratch_cfg *cfg);

/* ---- ops (all enqueue on the compute stream) ------------------------------- */

/* Is `type` supported by ns_cuda_matmul / ns_cuda_embed / ns_cuda_dequant? */
bool ns_cuda_type_supported(ns_type type);

/* out[t][0..n_embd) = dequantized row d_tokens[t] of `table` ([n_vocab][n_embd]
 * of `type`). Token ids outside [0, n_vocab) produce zero rows (callers
 * validate ids; the kernel never reads out of bounds). */
ns_status ns_cuda_embed(ns_cuda *c, ns_type type, const void *d_table, int64_t n_vocab, int64_t n_embd,
                        const int32_t *d_tokens, int n_tokens, float *d_out);

/* The token embedding table stays in host memory: gather the needed rows on
 * the host into pinned staging, copy them up, dequantize. `h_tokens` are
 * host ids, validated against n_vocab (NS_ERR_RANGE). Needs embd_row_bytes
 * in the scratch config. */
ns_status ns_cuda_embed_host(ns_cuda *c, ns_type type, const void *h_table, int64_t n_vocab, int64_t n_embd,
                             const int32_t *h_tokens, int n_tokens, float *d_out);

/* Dequantize rows [row0, row0+n_rows) of a [N][K] matrix into float32 out
 * ([n_rows][K]); for tests and debugging. */
ns_status ns_cuda_dequant(ns_cuda *c, ns_type type, const void *d_w, int64_t K, int64_t row0, int64_t n_rows,
                          float *d_out);

/* out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w, for r < n_rows, over the
 * first n floats of each row; rows are ld_x / ld_out floats apart (>= n).
 * w: [n] f32. out may alias x (then ld_out must equal ld_x). */
ns_status ns_cuda_rms_norm(ns_cuda *c, const float *d_x, int64_t ld_x, const float *d_w, float *d_out, int64_t ld_out,
                           int n_rows, int64_t n, float eps);

typedef enum ns_cuda_rope_mode { NS_CUDA_ROPE_NORM = 0, NS_CUDA_ROPE_NEOX = 2 } ns_cuda_rope_mode;

/* Rotary embedding in place on x[n_tokens][n_head][head_dim] (row stride
 * `row_stride` floats between tokens). Pair i (0 <= i < n_rot/2) rotates by
 * theta = pos * inv_freq[i], where the caller precomputes inv_freq[i] =
 * freq_scale * base^(-2i/n_rot) / rope_freqs[i] on the host
 * (ns_model_rope_inv_freq, so CPU and CUDA use the same table). NORM rotates
 * (2i, 2i+1), NEOX rotates (i, i + n_rot/2). Dimensions >= n_rot are left
 * alone. d_pos: [n_tokens] positions; d_inv_freq: [n_rot/2] device floats. */
ns_status ns_cuda_rope(ns_cuda *c, float *d_x, int n_tokens, int n_head, int head_dim, int64_t row_stride,
                       const int32_t *d_pos, ns_cuda_rope_mode mode, int n_rot, const float *d_inv_freq);

/* x[r][i] += b[i] for r < n_rows, i < n; rows are ld_x floats apart. */
ns_status ns_cuda_add_bias(ns_cuda *c, float *d_x, int64_t ld_x, const float *d_b, int n_rows, int64_t n);

/* out[i] = silu(gate[i]) * up[i] over n_elems. out may alias gate or up. */
ns_status ns_cuda_swiglu(ns_cuda *c, const float *d_gate, const float *d_up, float *d_out, int64_t n_elems);

/* out[i] = a[i] + b[i] over n_elems (residual). out may alias a or b. */
ns_status ns_cuda_add(ns_cuda *c, const float *d_a, const float *d_b, float *d_out, int64_t n_elems);

/* dst[j][0..n) = src[d_rows[j]][0..n) for j < n_out; rows are ld_src /
 * ld_dst floats apart. Picks the rows whose logits are wanted before the
 * final norm and lm_head. dst must not overlap src. */
ns_status ns_cuda_gather_rows(ns_cuda *c, const float *d_src, int64_t ld_src, const int32_t *d_rows, int n_out,
                              int64_t n, float *d_dst, int64_t ld_dst);

/* y[m][n] (+)= sum_k x[m][k] * W[n][k] for m < M, n < N, k < K; W = [N][K]
 * of `type` (any ns_cuda_type_supported type); x rows are ldx >= K floats
 * apart, y rows ldy >= N. With `accumulate` the product is added to y
 * (residual connections), else y is overwritten.
 * M <= 8 uses the fused dequantize-and-dot kernel (each weight byte read once
 * for all M rows); larger M dequantizes row chunks of W into the fp16
 * scratch and runs cublasGemmEx on tensor cores (F32 weights use an fp32
 * GEMM). The GEMM path needs ns_cuda_reserve_scratch with max_k >= K.
 * y must not overlap x. */
ns_status ns_cuda_matmul(ns_cuda *c, ns_type type, const void *d_w, int64_t N, int64_t K, const float *d_x, int64_t ldx,
                         int M, float *d_y, int64_t ldy, bool accumulate);

/* Batch size at or below which ns_cuda_matmul uses the fused kernel. */
#define NS_CUDA_MATVEC_MAX_M 8

/* ns_cuda_matmul with a forced path, for tests comparing both:
 * 0 = auto, 1 = fused (any M, in chunks of 8), 2 = GEMM. */
ns_status ns_cuda_matmul_path(ns_cuda *c, ns_type type, const void *d_w, int64_t N, int64_t K, const float *d_x,
                              int64_t ldx, int M, float *d_y, int64_t ldy, bool accumulate, int path);

/* ---- paged KV cache and attention ------------------------------------------ */

/* Where one layer's K and V live in the paged pool (f16). Element (page p,
 * slot s, kv head h, dim d) of K is k[p*page_stride + s*token_stride +
 * h*head_stride + d]; V likewise. Strides are in elements. */
typedef struct ns_cuda_kv_view {
    uint16_t *k;          /* f16 bits */
    uint16_t *v;          /* f16 bits */
    int64_t page_stride;  /* elements between pages */
    int64_t token_stride; /* elements between token slots in a page */
    int64_t head_stride;  /* elements between kv heads in a slot */
    int page_size;        /* tokens per page */
    int n_pages;          /* pages in the pool: page ids outside [0, n_pages) are never dereferenced */
} ns_cuda_kv_view;

/* Which tokens of the ubatch belong to which sequence. All arrays are device
 * memory. Token t belongs to page-table row tok_seq[t], sits at position
 * tok_pos[t], and attends to keys 0..tok_pos[t] of its own sequence (causal),
 * whose pages are page_table[tok_seq[t]*max_pages + i]. */
typedef struct ns_cuda_attn_batch {
    const int32_t *tok_seq;    /* [n_tokens] page-table row of each token */
    const int32_t *tok_pos;    /* [n_tokens] position of each token */
    const int32_t *page_table; /* [n_seq_rows][max_pages] physical page ids */
    int max_pages;             /* columns of page_table */
    int n_tokens;
    int max_pos; /* max over tokens of tok_pos[t] (host-known bound; sizes the split) */
} ns_cuda_attn_batch;

/* Convert k[t], v[t] (float [n_tokens][n_head_kv*head_dim], row strides in
 * floats) to f16 and write them at each token's position in its pages. */
ns_status ns_cuda_kv_store(ns_cuda *c, const ns_cuda_kv_view *kv, const ns_cuda_attn_batch *b, const float *d_k,
                           int64_t k_stride, const float *d_v, int64_t v_stride, int n_head_kv, int head_dim);

/* out[t][h][:] = softmax(q[t][h] . K^T * scale) . V over keys 0..tok_pos[t] of
 * token t's sequence, with kv head h / (n_head / n_head_kv) (GQA). q rows are
 * q_stride floats apart, out rows out_stride. 1 <= head_dim <= 256. Online
 * softmax over the sequence's pages (no score matrix); when there are few
 * (token, head) pairs the keys are split into chunks processed by separate
 * blocks (flash-decoding) and merged, within the reserved partial scratch.
 * Run after ns_cuda_kv_store of the same tokens. */
ns_status ns_cuda_attention(ns_cuda *c, const ns_cuda_kv_view *kv, const ns_cuda_attn_batch *b, const float *d_q,
                            int64_t q_stride, float *d_out, int64_t out_stride, int n_head, int n_head_kv, int head_dim,
                            float scale);

/* ---- sampling ---------------------------------------------------------------- */

/* d_out[r] = argmax of logits[r][0..n_vocab) (lowest index on ties). */
ns_status ns_cuda_argmax(ns_cuda *c, const float *d_logits, int n_rows, int64_t n_vocab, int32_t *d_out);

/* ---- weight streaming (staging slots on the copy stream) ------------------- */

/* Up to this many staging slots per handle. */
#define NS_CUDA_MAX_SLOTS 8

/* Carve `n_slots` (2..NS_CUDA_MAX_SLOTS) staging slots of `slot_bytes` each
 * from the arena, with their events. Call once. */
ns_status ns_cuda_staging_init(ns_cuda *c, int n_slots, size_t slot_bytes);

/* Device address of slot `slot`. */
void *ns_cuda_staging_ptr(ns_cuda *c, int slot);

/* Enqueue on the copy stream: wait until the compute stream released the
 * slot (the layer that used it finished), then copy `n` pinned host ranges
 * into the slot at the given offsets, then mark the slot ready.
 * Protocol: call ns_cuda_staging_release for the slot's previous user BEFORE
 * uploading into it (host order): the copy waits on the latest release
 * event recorded at the time of this call. */
typedef struct ns_cuda_copy_span {
    const void *h_src;
    size_t dst_offset;
    size_t bytes;
} ns_cuda_copy_span;
ns_status ns_cuda_staging_upload(ns_cuda *c, int slot, const ns_cuda_copy_span *spans, int n_spans);

/* Compute stream waits until the slot's upload is complete. */
ns_status ns_cuda_staging_acquire(ns_cuda *c, int slot);

/* Compute stream marks the slot free once everything enqueued so far (the
 * layer that read it) has run. */
ns_status ns_cuda_staging_release(ns_cuda *c, int slot);

/* ---- measurements for the planner and bench -------------------------------- */

typedef struct ns_cuda_measurements {
    double h2d_bytes_per_s; /* pinned host -> device, >= 1 GiB copied */
    double d2d_bytes_per_s; /* device -> device copy: counts read + write bytes */
    double gemm_flops;      /* fp16 cublasGemmEx, f32 accumulate */
    int gemm_n;             /* the n of the n^3 GEMM actually run (8192, less if the arena is small) */
    double seconds;         /* wall time of the whole measurement */
} ns_cuda_measurements;

/* Measure PCIe H2D (cudaHostAlloc source, `h2d_bytes` >= 1 GiB total in
 * chunks), HBM D2D bandwidth and fp16 GEMM peak. Uses the free part of the
 * arena temporarily (restored on return) and a temporary pinned buffer; needs
 * about 900 MiB free in the arena for the 8192^3 GEMM (n halves, down to
 * 2048, when less is free; gemm_n says which ran). */
ns_status ns_cuda_measure(ns_cuda *c, size_t h2d_bytes, ns_cuda_measurements *out);

#ifdef __cplusplus
}
#endif

#endif /* NS_CUDA_H */
