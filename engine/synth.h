/*
 * synth.h - synthetic llama-family models of real shapes, for benchmarks and
 * tests.
 *
 * Performance does not depend on weight values, so `nightshift synth` writes
 * random quant blocks with valid, well-scaled block scales straight to disk
 * (no float quantization), in llama.cpp's tensor-type mix for the requested
 * ftype. A 70B-shaped Q4_K_M file (about 40 GB) is written at close to disk
 * speed. Correctness tests use real reference models; synthetic models only
 * need finite, well-scaled logits.
 *
 * Thread safety: the shape table is immutable; ns_synth_write is reentrant.
 */
#ifndef NS_SYNTH_H
#define NS_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "gguf.h"
#include "ns_status.h"
#include "ns_types.h"

typedef struct ns_synth_shape {
    const char *name; /* "llama2-7b" */
    uint32_t n_layer;
    uint32_t n_embd;
    uint32_t n_ff;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t n_vocab;
    uint32_t n_ctx;  /* training context length written to metadata */
    float rope_base; /* rope.freq_base */
    bool is_70b;     /* llama.cpp bumps attn_v to Q5_K for 70B-class models */
} ns_synth_shape;

/* llama.cpp ftypes that synth can write (LLAMA_FTYPE_* values). */
typedef enum ns_synth_ftype {
    NS_FTYPE_F32 = 0,
    NS_FTYPE_F16 = 1,
    NS_FTYPE_Q4_0 = 2,
    NS_FTYPE_Q8_0 = 7,
    NS_FTYPE_Q2_K = 10,
    NS_FTYPE_Q3_K_M = 12,
    NS_FTYPE_Q4_K_M = 15,
    NS_FTYPE_Q5_K_M = 17,
    NS_FTYPE_Q6_K = 18,
} ns_synth_ftype;

/* Shape by name (tiny, tinyllama-1.1b, llama2-7b, llama3-8b, llama2-13b,
 * llama2-70b, llama3-70b); NULL when unknown. */
const ns_synth_shape *ns_synth_shape_find(const char *name);
/* i-th shape, NULL past the end (for listing). */
const ns_synth_shape *ns_synth_shape_at(uint32_t i);

/* Parse "q4_k_m" etc.; false when unknown. */
bool ns_synth_ftype_parse(const char *name, ns_synth_ftype *out);
const char *ns_synth_ftype_name(ns_synth_ftype ft);

/* The tensor type llama.cpp's quantizer gives tensor `name` (e.g.
 * "blk.3.attn_v.weight") of row length `ne0` in a model of `shape` quantized
 * to `ft`. Rows that do not fit the K-quant block fall back as llama.cpp does. */
ns_type ns_synth_tensor_type(const ns_synth_shape *shape, ns_synth_ftype ft, const char *name, int64_t ne0);

typedef struct ns_synth_opts {
    const ns_synth_shape *shape;
    ns_synth_ftype ftype;
    const ns_gguf *vocab; /* copy tokenizer.* from here (n_vocab follows it); NULL: generate a byte-level one */
    uint64_t seed;
} ns_synth_opts;

/* Write the model to `path`. On failure the partial file is removed. */
ns_status ns_synth_write(const char *path, const ns_synth_opts *opts, ns_err *err);

#endif /* NS_SYNTH_H */
