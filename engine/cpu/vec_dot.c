/*
 * vec_dot.c - the portable scalar dot-product kernels (the reference the
 * SIMD variants are tested against), the kernel tables and the run-time
 * dispatch; see vec_dot.h.
 *
 * Each quantized kernel decodes a weight block into small integers, takes
 * exact integer dot products with the int8 activations per (sub-)block, and
 * applies the float scales once per block.
 * Thread safety: immutable tables, reentrant functions.
 */
#include "vec_dot.h"

#include <string.h>

#include "fp16.h"
#include "quant_blocks.h"
#include "quant_impl.h"
#include "vec_dot_impl.h"

/* ---- float weights (activations stay F32) -------------------------------- */

static void act_copy_f32(const float *x, void *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

static void dot_f32_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const float *w = vw, *a = va;
    float sum = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += w[i] * a[i];
    }
    *s = sum;
}

static void dot_f16_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const uint16_t *w = vw;
    const float *a = va;
    float sum = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += ns_fp16_to_fp32(w[i]) * a[i];
    }
    *s = sum;
}

static void dot_bf16_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const uint16_t *w = vw;
    const float *a = va;
    float sum = 0;
    for (int64_t i = 0; i < n; i++) {
        sum += ns_bf16_to_fp32(w[i]) * a[i];
    }
    *s = sum;
}

/* ---- 32-element blocks x Q8_0 / Q8_1 -------------------------------------- */

static int dot_i8_32(const int8_t *w, const int8_t *a) {
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        sum += w[j] * a[j];
    }
    return sum;
}

/* Unpack 16 bytes of nibbles: element j low nibble, element j + 16 high. */
static void unpack_nibbles(const uint8_t *qs, int8_t *q) {
    for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)(qs[j] & 0xF);
        q[j + 16] = (int8_t)(qs[j] >> 4);
    }
}

/* Add bit 4 of every element from the 32 high bits of a Q5 block. */
static void add_q5_high(const uint8_t qh_bytes[4], int8_t *q) {
    uint32_t qh;
    memcpy(&qh, qh_bytes, 4);
    for (int j = 0; j < 32; j++) {
        q[j] = (int8_t)(q[j] | (((qh >> j) & 1) << 4));
    }
}

static void dot_q4_0_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q4_0 *w = vw;
    const ns_block_q8_0 *a = va;
    float sum = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        unpack_nibbles(w[i].qs, q);
        for (int j = 0; j < 32; j++) {
            q[j] = (int8_t)(q[j] - 8);
        }
        sum += (float)dot_i8_32(q, a[i].qs) * (ns_fp16_to_fp32(w[i].d) * ns_fp16_to_fp32(a[i].d));
    }
    *s = sum;
}

static void dot_q4_1_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q4_1 *w = vw;
    const ns_block_q8_1 *a = va;
    float sum = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        unpack_nibbles(w[i].qs, q);
        sum += (float)dot_i8_32(q, a[i].qs) * (ns_fp16_to_fp32(w[i].d) * ns_fp16_to_fp32(a[i].d)) +
               ns_fp16_to_fp32(w[i].m) * ns_fp16_to_fp32(a[i].s);
    }
    *s = sum;
}

static void dot_q5_0_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q5_0 *w = vw;
    const ns_block_q8_0 *a = va;
    float sum = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        unpack_nibbles(w[i].qs, q);
        add_q5_high(w[i].qh, q);
        for (int j = 0; j < 32; j++) {
            q[j] = (int8_t)(q[j] - 16);
        }
        sum += (float)dot_i8_32(q, a[i].qs) * (ns_fp16_to_fp32(w[i].d) * ns_fp16_to_fp32(a[i].d));
    }
    *s = sum;
}

static void dot_q5_1_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q5_1 *w = vw;
    const ns_block_q8_1 *a = va;
    float sum = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        unpack_nibbles(w[i].qs, q);
        add_q5_high(w[i].qh, q);
        sum += (float)dot_i8_32(q, a[i].qs) * (ns_fp16_to_fp32(w[i].d) * ns_fp16_to_fp32(a[i].d)) +
               ns_fp16_to_fp32(w[i].m) * ns_fp16_to_fp32(a[i].s);
    }
    *s = sum;
}

static void dot_q8_0_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q8_0 *w = vw;
    const ns_block_q8_0 *a = va;
    float sum = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        sum += (float)dot_i8_32(w[i].qs, a[i].qs) * (ns_fp16_to_fp32(w[i].d) * ns_fp16_to_fp32(a[i].d));
    }
    *s = sum;
}

static void dot_iq4_nl_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_iq4_nl *w = vw;
    const ns_block_q8_0 *a = va;
    float sum = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / 32; i++) {
        unpack_nibbles(w[i].qs, q);
        for (int j = 0; j < 32; j++) {
            q[j] = ns__kvalues_iq4nl[(uint8_t)q[j]];
        }
        sum += (float)dot_i8_32(q, a[i].qs) * (ns_fp16_to_fp32(w[i].d) * ns_fp16_to_fp32(a[i].d));
    }
    *s = sum;
}

/* ---- 256-element super-blocks x Q8_K -------------------------------------- */

/* Integer dot of n int8 weights with n int8 activations. */
static int dot_i8(const int8_t *w, const int8_t *a, int n) {
    int sum = 0;
    for (int j = 0; j < n; j++) {
        sum += w[j] * a[j];
    }
    return sum;
}

static void dot_q2_K_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q2_K *w = vw;
    const ns_block_q8_K *a = va;
    float sum = 0;
    int8_t q[NS_QK_K];
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        /* Element 128 c + 32 k + l is bits 2k..2k+1 of qs[32 c + l]. */
        for (int c = 0; c < 2; c++) {
            for (int k = 0; k < 4; k++) {
                for (int l = 0; l < 32; l++) {
                    q[128 * c + 32 * k + l] = (int8_t)((w[i].qs[32 * c + l] >> (2 * k)) & 3);
                }
            }
        }
        int sumi = 0, summ = 0;
        for (int g = 0; g < 16; g++) {
            sumi += (w[i].scales[g] & 0xF) * dot_i8(q + 16 * g, a[i].qs + 16 * g, 16);
            summ += (w[i].scales[g] >> 4) * a[i].bsums[g];
        }
        sum += a[i].d * ns_fp16_to_fp32(w[i].d) * (float)sumi - a[i].d * ns_fp16_to_fp32(w[i].dmin) * (float)summ;
    }
    *s = sum;
}

static void dot_q3_K_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q3_K *w = vw;
    const ns_block_q8_K *a = va;
    float sum = 0;
    int8_t q[NS_QK_K];
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        /* Element 128 c + 32 k + l: low bits as Q2_K, high bit is bit
         * 4 c + k of hmask[l]; value (low) - (high ? 0 : 4). */
        for (int c = 0; c < 2; c++) {
            for (int k = 0; k < 4; k++) {
                for (int l = 0; l < 32; l++) {
                    const int lo = (w[i].qs[32 * c + l] >> (2 * k)) & 3;
                    const int hi = (w[i].hmask[l] >> (4 * c + k)) & 1;
                    q[128 * c + 32 * k + l] = (int8_t)(lo - (hi ? 0 : 4));
                }
            }
        }
        int sumi = 0;
        for (int g = 0; g < 16; g++) {
            const int lo = g < 8 ? (w[i].scales[g] & 0xF) : (w[i].scales[g - 8] >> 4);
            const int hi = (w[i].scales[8 + g % 4] >> (2 * (g / 4))) & 3;
            sumi += ((lo | (hi << 4)) - 32) * dot_i8(q + 16 * g, a[i].qs + 16 * g, 16);
        }
        sum += a[i].d * ns_fp16_to_fp32(w[i].d) * (float)sumi;
    }
    *s = sum;
}

static void dot_q4_K_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q4_K *w = vw;
    const ns_block_q8_K *a = va;
    float sum = 0;
    int8_t q[NS_QK_K];
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                q[64 * c + l] = (int8_t)(w[i].qs[32 * c + l] & 0xF);
                q[64 * c + 32 + l] = (int8_t)(w[i].qs[32 * c + l] >> 4);
            }
        }
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            ns__get_scale_min_k4(j, w[i].scales, &sc, &m);
            sumi += sc * dot_i8(q + 32 * j, a[i].qs + 32 * j, 32);
            summ += m * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        sum += a[i].d * ns_fp16_to_fp32(w[i].d) * (float)sumi - a[i].d * ns_fp16_to_fp32(w[i].dmin) * (float)summ;
    }
    *s = sum;
}

static void dot_q5_K_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q5_K *w = vw;
    const ns_block_q8_K *a = va;
    float sum = 0;
    int8_t q[NS_QK_K];
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        for (int c = 0; c < 4; c++) {
            for (int l = 0; l < 32; l++) {
                const int h0 = (w[i].qh[l] >> (2 * c)) & 1, h1 = (w[i].qh[l] >> (2 * c + 1)) & 1;
                q[64 * c + l] = (int8_t)((w[i].qs[32 * c + l] & 0xF) | (h0 << 4));
                q[64 * c + 32 + l] = (int8_t)((w[i].qs[32 * c + l] >> 4) | (h1 << 4));
            }
        }
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            ns__get_scale_min_k4(j, w[i].scales, &sc, &m);
            sumi += sc * dot_i8(q + 32 * j, a[i].qs + 32 * j, 32);
            summ += m * (a[i].bsums[2 * j] + a[i].bsums[2 * j + 1]);
        }
        sum += a[i].d * ns_fp16_to_fp32(w[i].d) * (float)sumi - a[i].d * ns_fp16_to_fp32(w[i].dmin) * (float)summ;
    }
    *s = sum;
}

static void dot_q6_K_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q6_K *w = vw;
    const ns_block_q8_K *a = va;
    float sum = 0;
    int8_t q[NS_QK_K];
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const uint8_t *ql = w[i].ql, *qh = w[i].qh;
        for (int c = 0; c < 2; c++) {
            for (int l = 0; l < 32; l++) {
                int8_t *qc = q + 128 * c;
                qc[l + 0] = (int8_t)(((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                qc[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                qc[l + 64] = (int8_t)(((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                qc[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
            ql += 64;
            qh += 32;
        }
        int sumi = 0;
        for (int g = 0; g < 16; g++) {
            sumi += w[i].scales[g] * dot_i8(q + 16 * g, a[i].qs + 16 * g, 16);
        }
        sum += a[i].d * ns_fp16_to_fp32(w[i].d) * (float)sumi;
    }
    *s = sum;
}

static void dot_iq4_xs_scalar(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_iq4_xs *w = vw;
    const ns_block_q8_K *a = va;
    float sum = 0;
    int8_t q[32];
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        int sumi = 0;
        for (int ib = 0; ib < 8; ib++) {
            const int ls = ((w[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((w[i].scales_h >> 2 * ib) & 3) << 4);
            unpack_nibbles(w[i].qs + 16 * ib, q);
            for (int j = 0; j < 32; j++) {
                q[j] = ns__kvalues_iq4nl[(uint8_t)q[j]];
            }
            sumi += (ls - 32) * dot_i8(q, a[i].qs + 32 * ib, 32);
        }
        sum += a[i].d * ns_fp16_to_fp32(w[i].d) * (float)sumi;
    }
    *s = sum;
}

/* ---- tables and dispatch -------------------------------------------------- */

static const ns_vec_dot_traits g_scalar[NS_TYPE_COUNT] = {
    [NS_TYPE_F32] = {NS_TYPE_F32, act_copy_f32, dot_f32_scalar},
    [NS_TYPE_F16] = {NS_TYPE_F32, act_copy_f32, dot_f16_scalar},
    [NS_TYPE_BF16] = {NS_TYPE_F32, act_copy_f32, dot_bf16_scalar},
    [NS_TYPE_Q4_0] = {NS_TYPE_Q8_0, ns__quantize_q8_0, dot_q4_0_scalar},
    [NS_TYPE_Q4_1] = {NS_TYPE_Q8_1, ns__quantize_q8_1, dot_q4_1_scalar},
    [NS_TYPE_Q5_0] = {NS_TYPE_Q8_0, ns__quantize_q8_0, dot_q5_0_scalar},
    [NS_TYPE_Q5_1] = {NS_TYPE_Q8_1, ns__quantize_q8_1, dot_q5_1_scalar},
    [NS_TYPE_Q8_0] = {NS_TYPE_Q8_0, ns__quantize_q8_0, dot_q8_0_scalar},
    [NS_TYPE_IQ4_NL] = {NS_TYPE_Q8_0, ns__quantize_q8_0, dot_iq4_nl_scalar},
    [NS_TYPE_Q2_K] = {NS_TYPE_Q8_K, ns__quantize_q8_K, dot_q2_K_scalar},
    [NS_TYPE_Q3_K] = {NS_TYPE_Q8_K, ns__quantize_q8_K, dot_q3_K_scalar},
    [NS_TYPE_Q4_K] = {NS_TYPE_Q8_K, ns__quantize_q8_K, dot_q4_K_scalar},
    [NS_TYPE_Q5_K] = {NS_TYPE_Q8_K, ns__quantize_q8_K, dot_q5_K_scalar},
    [NS_TYPE_Q6_K] = {NS_TYPE_Q8_K, ns__quantize_q8_K, dot_q6_K_scalar},
    [NS_TYPE_IQ4_XS] = {NS_TYPE_Q8_K, ns__quantize_q8_K, dot_iq4_xs_scalar},
};

const ns_vec_dot_traits *ns_cpu_vec_dot_get_scalar(ns_type weight_type) {
    if ((uint32_t)weight_type >= NS_TYPE_COUNT || g_scalar[weight_type].vec_dot == NULL) {
        return NULL;
    }
    return &g_scalar[weight_type];
}

/* True when this CPU and OS run AVX2 + FMA + F16C code. __builtin_cpu_supports
 * reads a table libgcc fills at start-up (and checks the OS saves YMM
 * state), so this is cheap enough to call per kernel lookup. Clang 14 has no
 * "f16c" feature name; every AVX2 CPU has F16C. */
int ns__cpu_has_avx2(void) {
#if defined(__x86_64__) && defined(__GNUC__)
#if defined(__clang__)
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#endif
#else
    return 0;
#endif
}

ns_cpu_isa ns_cpu_isa_best(void) {
    return ns__cpu_has_avx2() ? NS_CPU_ISA_AVX2 : NS_CPU_ISA_SCALAR;
}

const char *ns_cpu_isa_name(ns_cpu_isa isa) {
    switch (isa) {
    case NS_CPU_ISA_SCALAR:
        return "scalar";
    case NS_CPU_ISA_AVX2:
        return "avx2";
    default:
        return "unknown";
    }
}

const ns_vec_dot_traits *ns_cpu_vec_dot_get_isa(ns_type weight_type, ns_cpu_isa isa) {
    if (ns_cpu_vec_dot_get_scalar(weight_type) == NULL) {
        return NULL;
    }
    switch (isa) {
    case NS_CPU_ISA_SCALAR:
        return ns_cpu_vec_dot_get_scalar(weight_type);
    case NS_CPU_ISA_AVX2:
        return ns__cpu_has_avx2() ? ns__vec_dot_avx2_get(weight_type) : NULL;
    default:
        return NULL;
    }
}

const ns_vec_dot_traits *ns_cpu_vec_dot_get(ns_type weight_type) {
    const ns_vec_dot_traits *t = ns_cpu_vec_dot_get_isa(weight_type, ns_cpu_isa_best());
    return t != NULL ? t : ns_cpu_vec_dot_get_scalar(weight_type);
}

size_t ns_cpu_act_row_size(ns_type weight_type, int64_t n) {
    const ns_vec_dot_traits *t = ns_cpu_vec_dot_get_scalar(weight_type);
    return t != NULL ? ns_type_row_size(t->act_type, n) : 0;
}
