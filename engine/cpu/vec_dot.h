/*
 * vec_dot.h - CPU dot products of one weight row with one activation row,
 * for every weight format the engine computes, ggml style.
 *
 * A matmul quantizes each activation row once with `from_float` into
 * `act_type`, then calls `vec_dot` for every weight row:
 *   weights                                  activations (act_type)
 *   Q4_0, Q5_0, Q8_0, IQ4_NL                 Q8_0 (32-blocks, fp16 scale)
 *   Q4_1, Q5_1                               Q8_1 (Q8_0 plus s = d * sum(q),
 *                                            which carries the offset term)
 *   Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS     Q8_K (256-blocks, float scale,
 *                                            16-element sums for the mins)
 *   F32, F16, BF16                           F32 (from_float is a copy)
 * Quantized kernels accumulate exact integer products per block and scale
 * in float, as llama.cpp's CPU backend does.
 *
 * Implementations: portable scalar C (the reference, used by the tests), and
 * AVX2+FMA+F16C (x86-64) for every type, compiled with function target
 * attributes and chosen at run time with __builtin_cpu_supports. The AVX2
 * tables also carry rows x tokens micro-kernels (`gemm`) for Q4_K, Q6_K and
 * Q8_0. There is no AVX-512 or NEON variant yet: those
 * CPUs get the AVX2 (x86) or scalar path.
 *
 * `n` is the row length in elements and must be a multiple of the weight
 * type's block size (callers check; kernels do not). Rows need no particular
 * alignment. Thread safety: all tables are immutable; every function is
 * reentrant.
 */
#ifndef NS_CPU_VEC_DOT_H
#define NS_CPU_VEC_DOT_H

#include <stddef.h>
#include <stdint.h>

#include "ns_types.h"

/* Quantize n floats (a multiple of the activation block size) into y. */
typedef void (*ns_from_float_fn)(const float *x, void *y, int64_t n);

/* *s = dot(weight row w, activation row a), both of n elements. */
typedef void (*ns_vec_dot_fn)(int64_t n, float *s, const void *w, const void *a);

/* Register-blocked matmul micro-kernel: for r < nr, t < nt,
 *   s[t * s_stride + r] = dot(weight row r, activation row t)
 * where weight row r starts at (const char *)w + r * w_stride and
 * activation row t at (const char *)a + t * a_stride (act_type format),
 * each of n elements. Each weight block is decoded once for several
 * activation rows. The value for (r, t) is bit-identical whatever nr, nt
 * and t's place among the activation rows (the per-token float work is the
 * same sequence for every blocking), which keeps matmuls batch invariant.
 * It may differ from vec_dot by float summation order. */
typedef void (*ns_gemm_fn)(int64_t n, const void *w, size_t w_stride, int32_t nr, const void *a, size_t a_stride,
                           int32_t nt, float *s, size_t s_stride);

typedef struct ns_vec_dot_traits {
    ns_type act_type;            /* format activations must be in */
    ns_from_float_fn from_float; /* float -> act_type */
    ns_vec_dot_fn vec_dot;       /* weight row . activation row */
    ns_gemm_fn gemm;             /* rows x tokens micro-kernel, or NULL (use vec_dot) */
} ns_vec_dot_traits;

/* Instruction-set levels a kernel table can be built for. */
typedef enum ns_cpu_isa {
    NS_CPU_ISA_SCALAR = 0, /* portable C */
    NS_CPU_ISA_AVX2 = 1,   /* x86-64 AVX2 + FMA + F16C */
    NS_CPU_ISA_COUNT
} ns_cpu_isa;

/* Best implementation for this CPU, or NULL when the weight type has no
 * dot product (unsupported or unknown type). */
const ns_vec_dot_traits *ns_cpu_vec_dot_get(ns_type weight_type);

/* The portable scalar reference, for tests; NULL as above. */
const ns_vec_dot_traits *ns_cpu_vec_dot_get_scalar(ns_type weight_type);

/* The implementation for one ISA level; NULL when this CPU (or this build)
 * cannot run it or the type has none. */
const ns_vec_dot_traits *ns_cpu_vec_dot_get_isa(ns_type weight_type, ns_cpu_isa isa);

/* Best ISA level this CPU runs, and its name ("scalar", "avx2"). */
ns_cpu_isa ns_cpu_isa_best(void);
const char *ns_cpu_isa_name(ns_cpu_isa isa);

/* Bytes of one activation row of n elements quantized for weight_type
 * (0 when the type has no dot product or n is not a multiple of the
 * activation block size). */
size_t ns_cpu_act_row_size(ns_type weight_type, int64_t n);

#endif /* NS_CPU_VEC_DOT_H */
