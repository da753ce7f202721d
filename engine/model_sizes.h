/*
 * model_sizes.h - byte and parameter accounting of a model, per layer, from a
 * GGUF tensor table. The planner (planner.h) works from this alone, so it can
 * plan a 40 GB model without loading a byte of weights.
 *
 * Tensors are grouped by name: "blk.N.*" belongs to layer N; "token_embd.*",
 * "output.*" and "output_norm.*" are the globals; anything else (rope_freqs,
 * ...) is counted in `other_bytes`. A model without "output.weight" ties its
 * head to token_embd.
 *
 * Device bytes: on the device every tensor starts on an NS_MSIZE_ALIGN byte
 * boundary, so a group's device size is the sum of its tensors' sizes each
 * rounded up (ns_msize_dev_bytes). Resident weights and staging slots are
 * sized with these numbers; the CUDA backend must lay tensors out the same
 * way (in table order, each at the next aligned offset).
 *
 * Ownership: ns_model_sizes owns its `layers` array; release it with
 * ns_model_sizes_free. Nothing else points into the GGUF handle, which may be
 * closed right after the call. Thread safety: plain data; no shared state.
 */
#ifndef NS_MODEL_SIZES_H
#define NS_MODEL_SIZES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "ns_status.h"
#include "ns_types.h"

/* Device alignment of every tensor and every arena component (cudaMalloc
 * guarantees 256). */
#define NS_MSIZE_ALIGN 256u

/* Upper bound on block_count accepted from a file (sanity, not a real limit). */
#define NS_MSIZE_MAX_LAYERS 4096u

typedef struct ns_msize_hparams {
    char arch[32];        /* general.architecture ("llama", "qwen2"...) */
    uint32_t n_layer;     /* <arch>.block_count */
    uint32_t n_embd;      /* <arch>.embedding_length */
    uint32_t n_ff;        /* <arch>.feed_forward_length (largest, if per-layer) */
    uint32_t n_head;      /* <arch>.attention.head_count */
    uint32_t n_head_kv;   /* <arch>.attention.head_count_kv (default n_head) */
    uint32_t head_dim_k;  /* <arch>.attention.key_length (default n_embd / n_head) */
    uint32_t head_dim_v;  /* <arch>.attention.value_length (default head_dim_k) */
    uint32_t n_ctx_train; /* <arch>.context_length (0 if absent) */
    uint32_t n_vocab;     /* tokenizer.ggml.tokens length, else token_embd ne[1] (from a loaded model:
                             token_embd ne[1]) */
    uint32_t n_rot;       /* <arch>.rope.dimension_count (default head_dim_k) */
} ns_msize_hparams;

typedef struct ns_layer_size {
    uint64_t bytes;            /* sum of tensor bytes as stored in the file */
    uint64_t dev_bytes;        /* sum of NS_MSIZE_ALIGN-rounded tensor bytes */
    uint64_t matmul_params;    /* elements of the layer's 2-D weights: FLOPs per token = 2x */
    uint64_t max_matrix_elems; /* largest 2-D weight in the layer */
} ns_layer_size;

typedef struct ns_model_sizes {
    ns_msize_hparams hp;
    ns_layer_size *layers; /* [hp.n_layer], owned */

    uint64_t embd_bytes;     /* token_embd.weight, file bytes */
    uint64_t embd_dev_bytes; /* same, aligned */
    uint64_t embd_row_bytes; /* one row (n_embd elements) of token_embd as stored */
    ns_type embd_type;

    bool output_tied;        /* no output.weight: the head is token_embd */
    uint64_t head_bytes;     /* bytes of the matrix the head multiplies by (output or token_embd) */
    uint64_t head_dev_bytes; /* same, aligned */
    uint64_t head_row_bytes; /* one vocab row of it */
    uint64_t head_params;    /* n_embd * n_vocab */
    ns_type head_type;
    uint64_t output_norm_bytes; /* output_norm.* (file bytes) */

    uint64_t globals_dev_bytes; /* always-resident small globals: output_norm.* + other tensors, aligned */
    uint64_t other_bytes;       /* tensors outside layers and the named globals (file bytes) */

    uint64_t total_bytes;         /* every tensor, file bytes */
    uint64_t max_layer_dev_bytes; /* largest layer, aligned */
    uint64_t max_matrix_elems;    /* largest 2-D weight among layers and head */
    uint64_t kv_bytes_per_token;  /* f16 K+V of one token over all layers */
} ns_model_sizes;

/* Round `n` up to NS_MSIZE_ALIGN (saturating at UINT64_MAX rounded down). */
uint64_t ns_msize_align(uint64_t n);

/* Bytes of one f16 K+V token over all layers:
 * n_layer * n_head_kv * (head_dim_k + head_dim_v) * 2. */
uint64_t ns_msize_kv_bytes_per_token(const ns_msize_hparams *hp);

/* Read the hyper-parameters from GGUF metadata (see the field comments for
 * the keys). Fails with NS_ERR_FORMAT (message names the key) when a required
 * key is missing or the values are inconsistent, NS_ERR_UNSUPPORTED when
 * general.architecture is absent. */
ns_status ns_model_hparams_from_gguf(const ns_gguf *g, ns_msize_hparams *out, ns_err *err);

/* Account `n` tensors against `hp` (the tensor table of a GGUF, or one built
 * by hand in a test). Only name, n_dims, ne, type and nbytes are read; nbytes
 * 0 means "compute from ne and type". NS_ERR_FORMAT when a "blk.N." index is
 * out of range or not a number, when token_embd.weight is missing, or when a
 * layer has no tensors. On success `out` owns a fresh layers array; on
 * failure `out` is zeroed. */
ns_status ns_model_sizes_build(const ns_msize_hparams *hp, const ns_gguf_tensor *tensors, size_t n, ns_model_sizes *out,
                               ns_err *err);

/* hparams_from_gguf + build over the file's tensor table. */
ns_status ns_model_sizes_from_gguf(const ns_gguf *g, ns_model_sizes *out, ns_err *err);

/* The accounting of a loaded model (model.h): its hyper-parameters and the
 * tensors it uses (ns_model_tensor), which are exactly what a backend
 * uploads. Tensors of the GGUF that the model ignores are not counted. The
 * engine and `nightshift plan` use this, so a plan describes the CUDA
 * backend's arena byte for byte (arena_layout.h). Same errors as build. */
struct ns_model;
ns_status ns_model_sizes_from_model(const struct ns_model *m, ns_model_sizes *out, ns_err *err);

/* Layer of a tensor by name: N for "blk.N.*", -1 for a tensor outside the
 * layers, -2 for a malformed index. The one grouping rule of the planner and
 * of the CUDA backend's streaming packages. */
int64_t ns_msize_layer_index(const char *name);

/* Release the layers array and zero `ms`. NULL-safe. */
void ns_model_sizes_free(ns_model_sizes *ms);

#endif /* NS_MODEL_SIZES_H */
