/*
 * model.h - the model description shared by every backend: hyperparameters,
 * architecture traits and weight tensors, read from a GGUF file.
 *
 * One loader covers every supported architecture through a small table
 * (engine/arch.c): tensor names, RoPE style, which biases exist, whether the
 * output matrix may be tied to the token embedding. There is one forward pass
 * (engine/forward.c) for all of them; it calls backend ops (backend.h).
 *
 * Supported architectures:
 *   llama  - Llama 2/3, Mistral, TinyLlama: GQA, optional `rope_freqs` tensor
 *            (Llama 3 per-dimension frequency factors), linear RoPE scaling,
 *            output tied to token_embd when output.weight is absent, head_dim
 *            from `llama.attention.key_length`. RoPE style NORM.
 *   qwen2  - as llama plus Q/K/V biases; RoPE style NEOX.
 *
 * Ownership: an ns_model owns the ns_gguf handle it opened (or borrows one
 * passed to ns_model_load_gguf) and a table of ns_tensor descriptors. Tensor
 * data pointers are views into the mmapped file: the CPU backend computes on
 * them in place; other backends copy what they need.
 * Thread safety: a loaded model is immutable; concurrent reads are safe.
 */
#ifndef NS_MODEL_H
#define NS_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "ns_status.h"
#include "ns_types.h"

typedef enum ns_arch { NS_ARCH_LLAMA = 0, NS_ARCH_QWEN2 = 1, NS_ARCH_COUNT } ns_arch;

/* RoPE pairing, as in llama.cpp. NORM rotates adjacent pairs (x[2i], x[2i+1]);
 * NEOX rotates (x[i], x[i + head_dim/2]). Both use theta_i = pos *
 * freq_scale * base^(-2i/n_rot) / freq_factor[i] (freq_factor = 1 without a
 * rope_freqs tensor). */
typedef enum ns_rope_style { NS_ROPE_NORM = 0, NS_ROPE_NEOX = 1 } ns_rope_style;

/* A weight tensor: a view into the GGUF mapping. Matrices follow ggml's
 * convention: ne[0] is the row length (input features), ne[1] the number of
 * rows (output features); row r starts at data + r * row_bytes. Vectors have
 * ne[1] == 1. */
typedef struct ns_tensor {
    const char *name;    /* GGUF tensor name (owned by the gguf handle) */
    ns_type type;        /* storage type (F32, F16, Q4_K, ...) */
    int64_t ne[2];       /* [0] = row length, [1] = rows */
    size_t row_bytes;    /* bytes per row in `type` */
    size_t nbytes;       /* row_bytes * ne[1] */
    const uint8_t *data; /* host view into the mapping (read-only) */
    int32_t id;          /* index in the model's tensor table: backends key their own copies on it */
} ns_tensor;

/* The weights of one transformer block. Shapes are (ne[0], ne[1]) with
 * n_q = n_head * head_dim and n_kv = n_head_kv * head_dim. */
typedef struct ns_layer {
    const ns_tensor *attn_norm; /* (n_embd) */
    const ns_tensor *wq;        /* (n_embd, n_q) */
    const ns_tensor *wk;        /* (n_embd, n_kv) */
    const ns_tensor *wv;        /* (n_embd, n_kv) */
    const ns_tensor *wo;        /* (n_q, n_embd) */
    const ns_tensor *bq;        /* (n_q) or NULL */
    const ns_tensor *bk;        /* (n_kv) or NULL */
    const ns_tensor *bv;        /* (n_kv) or NULL */
    const ns_tensor *ffn_norm;  /* (n_embd) */
    const ns_tensor *w_gate;    /* (n_embd, n_ff) */
    const ns_tensor *w_up;      /* (n_embd, n_ff) */
    const ns_tensor *w_down;    /* (n_ff, n_embd) */
} ns_layer;

typedef struct ns_hparams {
    ns_arch arch;
    char arch_name[32];       /* general.architecture */
    int32_t n_vocab;          /* rows of token_embd */
    int32_t n_ctx_train;      /* <arch>.context_length (0 when absent) */
    int32_t n_embd;           /* <arch>.embedding_length */
    int32_t n_layer;          /* <arch>.block_count */
    int32_t n_head;           /* <arch>.attention.head_count */
    int32_t n_head_kv;        /* <arch>.attention.head_count_kv (default n_head) */
    int32_t head_dim;         /* <arch>.attention.key_length (default n_embd / n_head); K and V */
    int32_t n_rot;            /* <arch>.rope.dimension_count (default head_dim) */
    int32_t n_ff;             /* <arch>.feed_forward_length */
    float rms_eps;            /* <arch>.attention.layer_norm_rms_epsilon (default 1e-5) */
    float rope_freq_base;     /* <arch>.rope.freq_base (default 10000) */
    float rope_freq_scale;    /* 1 / <arch>.rope.scaling.factor for linear scaling, else 1 */
    ns_rope_style rope_style; /* from the architecture table */
    bool tied_output;         /* output.weight absent: logits use token_embd */
} ns_hparams;

typedef struct ns_model ns_model;

/* Open the GGUF at `path` and load the model description. On failure *out is
 * NULL and `err` (may be NULL) says what is wrong (unknown architecture,
 * missing tensor, shape mismatch, unsupported type). */
ns_status ns_model_load(const char *path, ns_model **out, ns_err *err);

/* Same, over an already open GGUF handle, which the model borrows: it must
 * outlive the model. */
ns_status ns_model_load_gguf(const ns_gguf *g, ns_model **out, ns_err *err);

/* Free the model (and the GGUF handle when the model opened it); sets *m to
 * NULL. NULL-safe. */
void ns_model_free(ns_model **m);

const ns_hparams *ns_model_hparams(const ns_model *m);
const ns_gguf *ns_model_gguf(const ns_model *m);

/* Global tensors. `output` is token_embd when the output is tied.
 * `rope_freqs` is (head_dim/2) F32 frequency factors, or NULL. */
const ns_tensor *ns_model_tok_embd(const ns_model *m);    /* (n_embd, n_vocab) */
const ns_tensor *ns_model_output_norm(const ns_model *m); /* (n_embd) */
const ns_tensor *ns_model_output(const ns_model *m);      /* (n_embd, n_vocab) */
const ns_tensor *ns_model_rope_freqs(const ns_model *m);  /* (n_rot/2) or NULL */

/* Layer il in [0, n_layer). */
const ns_layer *ns_model_layer(const ns_model *m, int32_t il);

/* Every tensor the model uses, by id in [0, ns_model_n_tensors). */
int32_t ns_model_n_tensors(const ns_model *m);
const ns_tensor *ns_model_tensor(const ns_model *m, int32_t id);

/* Total bytes of weight data the model uses. */
uint64_t ns_model_weight_bytes(const ns_model *m);

/* Name of an architecture ("llama"), or "?" */
const char *ns_arch_name(ns_arch a);

/* RoPE inverse frequency of pair i (0 <= i < n_rot/2):
 * freq_scale * base^(-2i/n_rot) / factor[i]. Shared so every backend uses the
 * same float math. */
float ns_model_rope_inv_freq(const ns_model *m, int32_t i);

#endif /* NS_MODEL_H */
