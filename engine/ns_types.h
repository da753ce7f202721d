/*
 * ns_types.h - tensor element types (ggml's numbering, as stored in GGUF).
 *
 * ns_type values equal ggml_type ids so GGUF files map directly. The traits
 * table knows every id a file may contain, supported or not, so a reader can
 * size tensors of any known type and say "unsupported tensor type IQ2_XXS"
 * instead of misreading them. `supported` marks the types the engine can
 * dequantize and compute.
 * Thread safety: the table is immutable.
 */
#ifndef NS_TYPES_H
#define NS_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* X(name, id, block_elems, block_bytes, supported) */
#define NS_TYPE_MAP(X)                                                                                                 \
    X(F32, 0, 1, 4, 1)                                                                                                 \
    X(F16, 1, 1, 2, 1)                                                                                                 \
    X(Q4_0, 2, 32, 18, 1)                                                                                              \
    X(Q4_1, 3, 32, 20, 1)                                                                                              \
    X(Q5_0, 6, 32, 22, 1)                                                                                              \
    X(Q5_1, 7, 32, 24, 1)                                                                                              \
    X(Q8_0, 8, 32, 34, 1)                                                                                              \
    X(Q8_1, 9, 32, 36, 0)                                                                                              \
    X(Q2_K, 10, 256, 84, 1)                                                                                            \
    X(Q3_K, 11, 256, 110, 1)                                                                                           \
    X(Q4_K, 12, 256, 144, 1)                                                                                           \
    X(Q5_K, 13, 256, 176, 1)                                                                                           \
    X(Q6_K, 14, 256, 210, 1)                                                                                           \
    X(Q8_K, 15, 256, 292, 0)                                                                                           \
    X(IQ2_XXS, 16, 256, 66, 0)                                                                                         \
    X(IQ2_XS, 17, 256, 74, 0)                                                                                          \
    X(IQ3_XXS, 18, 256, 98, 0)                                                                                         \
    X(IQ1_S, 19, 256, 50, 0)                                                                                           \
    X(IQ4_NL, 20, 32, 18, 1)                                                                                           \
    X(IQ3_S, 21, 256, 110, 0)                                                                                          \
    X(IQ2_S, 22, 256, 82, 0)                                                                                           \
    X(IQ4_XS, 23, 256, 136, 1)                                                                                         \
    X(I8, 24, 1, 1, 0)                                                                                                 \
    X(I16, 25, 1, 2, 0)                                                                                                \
    X(I32, 26, 1, 4, 0)                                                                                                \
    X(I64, 27, 1, 8, 0)                                                                                                \
    X(F64, 28, 1, 8, 0)                                                                                                \
    X(IQ1_M, 29, 256, 56, 0)                                                                                           \
    X(BF16, 30, 1, 2, 1)                                                                                               \
    X(TQ1_0, 34, 256, 54, 0)                                                                                           \
    X(TQ2_0, 35, 256, 66, 0)                                                                                           \
    X(MXFP4, 39, 32, 17, 0)

typedef enum ns_type {
#define NS__TYPE_ENUM(name, id, be, bb, sup) NS_TYPE_##name = id,
    NS_TYPE_MAP(NS__TYPE_ENUM)
#undef NS__TYPE_ENUM
        NS_TYPE_COUNT = 40 /* one past the largest id */
} ns_type;

typedef struct ns_type_traits {
    const char *name;   /* "Q4_K"; NULL for ids no format defines */
    uint32_t blck_size; /* elements per block */
    uint32_t type_size; /* bytes per block */
    bool supported;     /* the engine can dequantize and compute it */
} ns_type_traits;

/* Traits for id `t`, or NULL when `t` is not a known ggml type id. */
const ns_type_traits *ns_type_get(uint32_t t);

/* "Q4_K", or "type#N" style static "unknown" for ids not in the table. */
const char *ns_type_name(uint32_t t);

/* Case-insensitive lookup by name ("q4_k", "F16"); false when unknown. */
bool ns_type_from_name(const char *name, ns_type *out);

/* Bytes for a row of `n` elements; 0 if n is not a multiple of the block
 * size or the type is unknown. */
size_t ns_type_row_size(ns_type t, int64_t n);

#endif /* NS_TYPES_H */
