/*
 * quant_blocks.h - private: the on-disk block layouts of ggml's quantized
 * types, byte for byte (they are the GGUF tensor data format).
 *
 * Every struct is checked at compile time against the block size in the
 * type table (NS_TYPE_MAP in ns_types.h). Half-precision fields are raw
 * IEEE binary16 bits (convert with fp16.h). All multi-byte fields are
 * little-endian, as on every platform we build for.
 *
 * Shared by the reference (de)quantizers (quant*.c), the CPU dot kernels
 * (cpu/vec_dot*.c) and, for the layout facts, the CUDA kernels. Header only,
 * no mutable state.
 */
#ifndef NS_QUANT_BLOCKS_H
#define NS_QUANT_BLOCKS_H

#include <stdint.h>

#include "ns_types.h"

#define NS_QK4_0 32
#define NS_QK4_1 32
#define NS_QK5_0 32
#define NS_QK5_1 32
#define NS_QK8_0 32
#define NS_QK8_1 32
#define NS_QK4_NL 32
#define NS_QK_K 256
#define NS_K_SCALE_SIZE 12

/* Q4_0: x[j] = (q[j] - 8) * d. qs[j] holds element j (low nibble) and
 * element j + 16 (high nibble). */
typedef struct ns_block_q4_0 {
    uint16_t d;               /* fp16 scale */
    uint8_t qs[NS_QK4_0 / 2]; /* 4-bit quants */
} ns_block_q4_0;

/* Q4_1: x[j] = q[j] * d + m, nibble order as Q4_0. */
typedef struct ns_block_q4_1 {
    uint16_t d; /* fp16 scale */
    uint16_t m; /* fp16 offset (the block minimum) */
    uint8_t qs[NS_QK4_1 / 2];
} ns_block_q4_1;

/* Q5_0: x[j] = (q[j] - 16) * d; bit 4 of element j is bit j of qh. */
typedef struct ns_block_q5_0 {
    uint16_t d;
    uint8_t qh[4]; /* 32 high bits, little-endian uint32 */
    uint8_t qs[NS_QK5_0 / 2];
} ns_block_q5_0;

/* Q5_1: x[j] = q[j] * d + m, high bits as Q5_0. */
typedef struct ns_block_q5_1 {
    uint16_t d;
    uint16_t m;
    uint8_t qh[4];
    uint8_t qs[NS_QK5_1 / 2];
} ns_block_q5_1;

/* Q8_0: x[j] = q[j] * d. */
typedef struct ns_block_q8_0 {
    uint16_t d;
    int8_t qs[NS_QK8_0];
} ns_block_q8_0;

/* Q8_1 (activations for Q4_1/Q5_1): as Q8_0 plus s = d * sum(q), fp16. */
typedef struct ns_block_q8_1 {
    uint16_t d;
    uint16_t s;
    int8_t qs[NS_QK8_1];
} ns_block_q8_1;

/* Q2_K: 16 sub-blocks of 16. x = d * (sc & 15) * q - dmin * (sc >> 4).
 * qs: each byte holds 4 elements 32 apart (2 bits each) within a 128 half. */
typedef struct ns_block_q2_K {
    uint8_t scales[NS_QK_K / 16]; /* low nibble: scale, high nibble: min */
    uint8_t qs[NS_QK_K / 4];      /* 2-bit quants */
    uint16_t d;                   /* fp16 super-block scale for the scales */
    uint16_t dmin;                /* fp16 super-block scale for the mins */
} ns_block_q2_K;

/* Q3_K: 16 sub-blocks of 16, 6-bit signed scales (biased by 32) packed in
 * 12 bytes. x = d * (sc - 32) * (q - (hmask bit set ? 0 : 4)). */
typedef struct ns_block_q3_K {
    uint8_t hmask[NS_QK_K / 8]; /* high bit of each quant */
    uint8_t qs[NS_QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];         /* 16 x 6-bit scales */
    uint16_t d;                 /* fp16 super-block scale */
} ns_block_q3_K;

/* Q4_K: 8 sub-blocks of 32, 6-bit scale and min each (packed in 12 bytes).
 * x = d * sc * q - dmin * m. qs: 64-element chunks, low nibbles are the
 * first 32, high nibbles the next 32. */
typedef struct ns_block_q4_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[NS_K_SCALE_SIZE];
    uint8_t qs[NS_QK_K / 2];
} ns_block_q4_K;

/* Q5_K: as Q4_K plus a fifth bit per quant in qh. */
typedef struct ns_block_q5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[NS_K_SCALE_SIZE];
    uint8_t qh[NS_QK_K / 8];
    uint8_t qs[NS_QK_K / 2];
} ns_block_q5_K;

/* Q6_K: 16 sub-blocks of 16 with int8 scales. x = d * sc * (q - 32). */
typedef struct ns_block_q6_K {
    uint8_t ql[NS_QK_K / 2]; /* low 4 bits */
    uint8_t qh[NS_QK_K / 4]; /* high 2 bits */
    int8_t scales[NS_QK_K / 16];
    uint16_t d;
} ns_block_q6_K;

/* Q8_K (activations for K-quants): float scale, and the sums of each group
 * of 16 quants (used for the mins of Q2_K/Q4_K/Q5_K). */
typedef struct ns_block_q8_K {
    float d;
    int8_t qs[NS_QK_K];
    int16_t bsums[NS_QK_K / 16];
} ns_block_q8_K;

/* IQ4_NL: x[j] = d * kvalues_iq4nl[q[j]], nibble order as Q4_0. */
typedef struct ns_block_iq4_nl {
    uint16_t d;
    uint8_t qs[NS_QK4_NL / 2];
} ns_block_iq4_nl;

/* IQ4_XS: 8 sub-blocks of 32 with 6-bit scales (biased by 32):
 * low 4 bits in scales_l (two per byte), high 2 bits in scales_h.
 * x = d * (ls - 32) * kvalues_iq4nl[q]. */
typedef struct ns_block_iq4_xs {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[NS_QK_K / 64];
    uint8_t qs[NS_QK_K / 2];
} ns_block_iq4_xs;

/* The 16 IQ4_NL / IQ4_XS levels (defined in quant.c). */
extern const int8_t ns__kvalues_iq4nl[16];

/* Compile-time checks against the type table. */
#define NS__QB_ENUM(name, id, be, bb, sup) NS__QB_BYTES_##name = (bb), NS__QB_ELEMS_##name = (be),
enum { NS_TYPE_MAP(NS__QB_ENUM) NS__QB_END };
#undef NS__QB_ENUM

#define NS__QB_CHECK(name, NAME, qk)                                                                                   \
    _Static_assert(sizeof(ns_block_##name) == NS__QB_BYTES_##NAME, "block size of " #name);                            \
    _Static_assert((qk) == NS__QB_ELEMS_##NAME, "block elements of " #name)
NS__QB_CHECK(q4_0, Q4_0, NS_QK4_0);
NS__QB_CHECK(q4_1, Q4_1, NS_QK4_1);
NS__QB_CHECK(q5_0, Q5_0, NS_QK5_0);
NS__QB_CHECK(q5_1, Q5_1, NS_QK5_1);
NS__QB_CHECK(q8_0, Q8_0, NS_QK8_0);
NS__QB_CHECK(q8_1, Q8_1, NS_QK8_1);
NS__QB_CHECK(q2_K, Q2_K, NS_QK_K);
NS__QB_CHECK(q3_K, Q3_K, NS_QK_K);
NS__QB_CHECK(q4_K, Q4_K, NS_QK_K);
NS__QB_CHECK(q5_K, Q5_K, NS_QK_K);
NS__QB_CHECK(q6_K, Q6_K, NS_QK_K);
NS__QB_CHECK(q8_K, Q8_K, NS_QK_K);
NS__QB_CHECK(iq4_nl, IQ4_NL, NS_QK4_NL);
NS__QB_CHECK(iq4_xs, IQ4_XS, NS_QK_K);
#undef NS__QB_CHECK

/* Scale and min j (0..7) of a Q4_K/Q5_K block from its 12 packed bytes. */
static inline void ns__get_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

#endif /* NS_QUANT_BLOCKS_H */
