/*
 * arch.h - internal: the architecture table behind model.c.
 *
 * Each supported architecture is one row: its GGUF name, RoPE style, and the
 * per-layer tensors it has (name suffix, where it goes in ns_layer, expected
 * shape, whether it is required). Adding a llama-like architecture means
 * adding a row, not a forward function.
 * Thread safety: the table is immutable.
 */
#ifndef NS_ARCH_H
#define NS_ARCH_H

#include <stdbool.h>
#include <stddef.h>

#include "model.h"

/* Symbolic dimensions of a tensor shape. */
typedef enum ns__dim { NS__DIM_1 = 0, NS__DIM_EMBD, NS__DIM_Q, NS__DIM_KV, NS__DIM_FF } ns__dim;

typedef struct ns__layer_tensor {
    const char *suffix; /* "attn_q.weight": full name is "blk.<il>.<suffix>" */
    size_t offset;      /* offsetof(ns_layer, field) */
    ns__dim ne0, ne1;   /* expected shape */
    bool required;      /* missing -> load error; else the field stays NULL */
    bool f32_only;      /* norms and biases */
} ns__layer_tensor;

typedef struct ns__arch_info {
    ns_arch arch;
    const char *name; /* general.architecture */
    ns_rope_style rope_style;
    const ns__layer_tensor *layer_tensors;
    size_t n_layer_tensors;
} ns__arch_info;

/* Row for general.architecture `name`, or NULL when unsupported. */
const ns__arch_info *ns__arch_find(const char *name);

/* Row for `arch` (never NULL for a valid ns_arch). */
const ns__arch_info *ns__arch_get(ns_arch arch);

#endif /* NS_ARCH_H */
