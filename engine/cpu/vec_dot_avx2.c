/*
 * vec_dot_avx2.c - AVX2 + FMA + F16C dot-product kernels and activation
 * quantizers for every weight type (see vec_dot.h).
 *
 * Compiled with default flags: every function carries a target attribute
 * and is reached only through ns__vec_dot_avx2_get(), which the dispatcher
 * calls after checking the CPU. The integer work is exact, so results
 * differ from the scalar reference only by float summation order; the
 * activation quantizers produce the same bytes as the scalar ones.
 * On non-x86 builds the table is empty.
 * Thread safety: immutable table, reentrant kernels.
 */
#include "vec_dot_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "fp16.h"
#include "quant_blocks.h"

#define NS_AVX2 __attribute__((target("avx2,fma,f16c")))
/* Hot helpers called with constant arguments: always inlined so offsets and
 * masks fold into the unrolled loop bodies. */
#define NS_AVX2_INLINE __attribute__((target("avx2,fma,f16c"), always_inline)) static inline

/* ---- helpers ------------------------------------------------------------- */

NS_AVX2 static inline float hsum_f32x8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

NS_AVX2 static inline float hsum_f32x4(__m128 r) {
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

NS_AVX2 static inline float h2f(uint16_t h) {
    return _cvtsh_ss(h);
}

/* 32 nibbles of a 16-byte run: bytes 0..15 the low nibbles (elements
 * 0..15), bytes 16..31 the high nibbles (elements 16..31). */
NS_AVX2 static inline __m256i nibbles32(const uint8_t *p) {
    /* The 16 bytes in both lanes, the high lane shifted right by 4. */
    const __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
}

/* 0xFF in byte j where bit j of the 32-bit word at p is set. */
NS_AVX2 static inline __m256i bits32_to_bytes(const uint8_t *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    const __m256i shuf =
        _mm256_setr_epi64x(0x0000000000000000LL, 0x0101010101010101LL, 0x0202020202020202LL, 0x0303030303030303LL);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)x), shuf), bit);
    return _mm256_cmpeq_epi8(b, bit);
}

/* Signed int8 x signed int8 (y never -128): 8 int32 partial sums. */
NS_AVX2 static inline __m256i dot_i8_i32(__m256i x, __m256i y) {
    const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

/* Unsigned int8 (<= 127) x signed int8: 8 int32 partial sums. */
NS_AVX2 static inline __m256i dot_u8_i32(__m256i ux, __m256i y) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(ux, y), _mm256_set1_epi16(1));
}

/* Shuffle masks for _mm256_shuffle_epi8 over 8 int16 per 128-bit lane:
 * k_pick1[k] broadcasts int16 element k in both lanes; k_pick2[k] broadcasts
 * element 2k in the low lane and 2k + 1 in the high lane. */
#define NS__PK(k) (2 * (k)), (2 * (k) + 1)
#define NS__PK8(k) NS__PK(k), NS__PK(k), NS__PK(k), NS__PK(k), NS__PK(k), NS__PK(k), NS__PK(k), NS__PK(k)
static const uint8_t k_pick1[8][32] __attribute__((aligned(32))) = {
    {NS__PK8(0), NS__PK8(0)}, {NS__PK8(1), NS__PK8(1)}, {NS__PK8(2), NS__PK8(2)}, {NS__PK8(3), NS__PK8(3)},
    {NS__PK8(4), NS__PK8(4)}, {NS__PK8(5), NS__PK8(5)}, {NS__PK8(6), NS__PK8(6)}, {NS__PK8(7), NS__PK8(7)},
};
static const uint8_t k_pick2[4][32] __attribute__((aligned(32))) = {
    {NS__PK8(0), NS__PK8(1)},
    {NS__PK8(2), NS__PK8(3)},
    {NS__PK8(4), NS__PK8(5)},
    {NS__PK8(6), NS__PK8(7)},
};
#undef NS__PK8
#undef NS__PK

NS_AVX2 static inline __m256i pick1(int k) {
    return _mm256_load_si256((const __m256i *)(const void *)k_pick1[k]);
}
NS_AVX2 static inline __m256i pick2(int k) {
    return _mm256_load_si256((const __m256i *)(const void *)k_pick2[k]);
}

/* ---- float weights ------------------------------------------------------- */

NS_AVX2 static void dot_f32_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const float *w = vw, *a = va;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
           acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8), _mm256_loadu_ps(a + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 16), _mm256_loadu_ps(a + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 24), _mm256_loadu_ps(a + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + i), _mm256_loadu_ps(a + i), acc0);
    }
    float sum = hsum_f32x8(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) {
        sum += w[i] * a[i];
    }
    *s = sum;
}

NS_AVX2 static inline __m256 load_f16x8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

NS_AVX2 static inline __m256 load_bf16x8(const uint16_t *p) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

NS_AVX2 static void dot_f16_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const uint16_t *w = vw;
    const float *a = va;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
           acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load_f16x8(w + i), _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(load_f16x8(w + i + 8), _mm256_loadu_ps(a + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load_f16x8(w + i + 16), _mm256_loadu_ps(a + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load_f16x8(w + i + 24), _mm256_loadu_ps(a + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) {
        acc0 = _mm256_fmadd_ps(load_f16x8(w + i), _mm256_loadu_ps(a + i), acc0);
    }
    float sum = hsum_f32x8(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) {
        sum += ns_fp16_to_fp32(w[i]) * a[i];
    }
    *s = sum;
}

NS_AVX2 static void dot_bf16_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const uint16_t *w = vw;
    const float *a = va;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(),
           acc3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        acc0 = _mm256_fmadd_ps(load_bf16x8(w + i), _mm256_loadu_ps(a + i), acc0);
        acc1 = _mm256_fmadd_ps(load_bf16x8(w + i + 8), _mm256_loadu_ps(a + i + 8), acc1);
        acc2 = _mm256_fmadd_ps(load_bf16x8(w + i + 16), _mm256_loadu_ps(a + i + 16), acc2);
        acc3 = _mm256_fmadd_ps(load_bf16x8(w + i + 24), _mm256_loadu_ps(a + i + 24), acc3);
    }
    for (; i + 8 <= n; i += 8) {
        acc0 = _mm256_fmadd_ps(load_bf16x8(w + i), _mm256_loadu_ps(a + i), acc0);
    }
    float sum = hsum_f32x8(_mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3)));
    for (; i < n; i++) {
        sum += ns_bf16_to_fp32(w[i]) * a[i];
    }
    *s = sum;
}

NS_AVX2 static void act_copy_f32(const float *x, void *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

/* ---- activation quantizers (same bytes as quant.c's scalar ones) --------- */

#define NS__RNE (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* Round 32 floats * id to nearest-even int8 into q (|x * id| <= 127). */
NS_AVX2 static inline void round_pack32(const float *x, __m256 id, int8_t *q) {
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 0), id), NS__RNE));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id), NS__RNE));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id), NS__RNE));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id), NS__RNE));
    /* packs work per 128-bit lane; the final permute restores order. */
    const __m256i p01 = _mm256_packs_epi32(i0, i1);
    const __m256i p23 = _mm256_packs_epi32(i2, i3);
    __m256i b = _mm256_packs_epi16(p01, p23);
    b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(void *)q, b);
}

NS_AVX2 static inline __m256 abs_ps(__m256 v) {
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

NS_AVX2 static inline float amax32(const float *x) {
    __m256 m = _mm256_max_ps(abs_ps(_mm256_loadu_ps(x)), abs_ps(_mm256_loadu_ps(x + 8)));
    m = _mm256_max_ps(m, _mm256_max_ps(abs_ps(_mm256_loadu_ps(x + 16)), abs_ps(_mm256_loadu_ps(x + 24))));
    __m128 r = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    r = _mm_max_ps(r, _mm_movehl_ps(r, r));
    r = _mm_max_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

NS_AVX2 static void quantize_q8_0_avx2(const float *x, void *vy, int64_t n) {
    ns_block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / 32; i++) {
        const float amax = amax32(x + 32 * i);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ns_fp32_to_fp16(d);
        round_pack32(x + 32 * i, _mm256_set1_ps(id), y[i].qs);
    }
}

NS_AVX2 static void quantize_q8_1_avx2(const float *x, void *vy, int64_t n) {
    ns_block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / 32; i++) {
        const float amax = amax32(x + 32 * i);
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ns_fp32_to_fp16(d);
        round_pack32(x + 32 * i, _mm256_set1_ps(id), y[i].qs);
        const __m256i q = _mm256_loadu_si256((const __m256i *)(const void *)y[i].qs);
        const __m256i s32 = dot_i8_i32(_mm256_set1_epi8(1), q);
        __m128i r = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
        r = _mm_hadd_epi32(r, r);
        r = _mm_hadd_epi32(r, r);
        y[i].s = ns_fp32_to_fp16((float)_mm_cvtsi128_si32(r) * d);
    }
}

NS_AVX2 static void quantize_q8_K_avx2(const float *x, void *vy, int64_t n) {
    ns_block_q8_K *y = vy;
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const float *xb = x + NS_QK_K * i;
        float amax = 0;
        for (int j = 0; j < NS_QK_K; j += 32) {
            const float m = amax32(xb + j);
            amax = m > amax ? m : amax;
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        /* The signed value of the first element of largest magnitude, as
         * the scalar quantizer picks it. */
        float max = 0;
        for (int j = 0; j < NS_QK_K; j++) {
            if (fabsf(xb[j]) == amax) {
                max = xb[j];
                break;
            }
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < NS_QK_K; j += 32) {
            round_pack32(xb + j, _mm256_set1_ps(iscale), y[i].qs + j);
        }
        /* -127/max * x can round to +128 for x = -max only when max < 0;
         * the scalar version clamps to 127. Packs saturate to 127 already. */
        for (int j = 0; j < NS_QK_K / 16; j++) {
            const __m128i q = _mm_loadu_si128((const __m128i *)(const void *)(y[i].qs + 16 * j));
            __m128i s16 = _mm_madd_epi16(_mm_cvtepi8_epi16(q), _mm_set1_epi16(1));
            s16 = _mm_add_epi32(s16, _mm_madd_epi16(_mm_cvtepi8_epi16(_mm_srli_si128(q, 8)), _mm_set1_epi16(1)));
            s16 = _mm_hadd_epi32(s16, s16);
            s16 = _mm_hadd_epi32(s16, s16);
            y[i].bsums[j] = (int16_t)_mm_cvtsi128_si32(s16);
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- 32-element blocks --------------------------------------------------- */

NS_AVX2 static void dot_q4_0_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q4_0 *w = vw;
    const ns_block_q8_0 *a = va;
    const int64_t nb = n / 32;
    const __m256i off = _mm256_set1_epi8(8);
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256i qx0 = _mm256_sub_epi8(nibbles32(w[i].qs), off);
        const __m256i qx1 = _mm256_sub_epi8(nibbles32(w[i + 1].qs), off);
        const __m256i qy0 = _mm256_loadu_si256((const __m256i *)(const void *)a[i].qs);
        const __m256i qy1 = _mm256_loadu_si256((const __m256i *)(const void *)a[i + 1].qs);
        const __m256 d0 = _mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d));
        const __m256 d1 = _mm256_set1_ps(h2f(w[i + 1].d) * h2f(a[i + 1].d));
        acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(dot_i8_i32(qx0, qy0)), acc0);
        acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(dot_i8_i32(qx1, qy1)), acc1);
    }
    for (; i < nb; i++) {
        const __m256i qx = _mm256_sub_epi8(nibbles32(w[i].qs), off);
        const __m256i qy = _mm256_loadu_si256((const __m256i *)(const void *)a[i].qs);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), _mm256_cvtepi32_ps(dot_i8_i32(qx, qy)), acc0);
    }
    *s = hsum_f32x8(_mm256_add_ps(acc0, acc1));
}

NS_AVX2 static void dot_q4_1_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q4_1 *w = vw;
    const ns_block_q8_1 *a = va;
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i qx = nibbles32(w[i].qs);
        const __m256i qy = _mm256_loadu_si256((const __m256i *)(const void *)a[i].qs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), _mm256_cvtepi32_ps(dot_u8_i32(qx, qy)), acc);
        summs += h2f(w[i].m) * h2f(a[i].s);
    }
    *s = hsum_f32x8(acc) + summs;
}

NS_AVX2 static void dot_q5_0_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q5_0 *w = vw;
    const ns_block_q8_0 *a = va;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        /* (nibble | bit4) - 16 == nibble | (bit4 ? 0 : 0xF0) as int8. */
        const __m256i hi = _mm256_andnot_si256(bits32_to_bytes(w[i].qh), _mm256_set1_epi8((char)0xF0));
        const __m256i qx = _mm256_or_si256(nibbles32(w[i].qs), hi);
        const __m256i qy = _mm256_loadu_si256((const __m256i *)(const void *)a[i].qs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), _mm256_cvtepi32_ps(dot_i8_i32(qx, qy)), acc);
    }
    *s = hsum_f32x8(acc);
}

NS_AVX2 static void dot_q5_1_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q5_1 *w = vw;
    const ns_block_q8_1 *a = va;
    __m256 acc = _mm256_setzero_ps();
    float summs = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i hi = _mm256_and_si256(bits32_to_bytes(w[i].qh), _mm256_set1_epi8(0x10));
        const __m256i qx = _mm256_or_si256(nibbles32(w[i].qs), hi);
        const __m256i qy = _mm256_loadu_si256((const __m256i *)(const void *)a[i].qs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), _mm256_cvtepi32_ps(dot_u8_i32(qx, qy)), acc);
        summs += h2f(w[i].m) * h2f(a[i].s);
    }
    *s = hsum_f32x8(acc) + summs;
}

NS_AVX2 static void dot_q8_0_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q8_0 *w = vw;
    const ns_block_q8_0 *a = va;
    const int64_t nb = n / 32;
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 2 <= nb; i += 2) {
        const __m256i qx0 = _mm256_loadu_si256((const __m256i *)(const void *)w[i].qs);
        const __m256i qx1 = _mm256_loadu_si256((const __m256i *)(const void *)w[i + 1].qs);
        const __m256i qy0 = _mm256_loadu_si256((const __m256i *)(const void *)a[i].qs);
        const __m256i qy1 = _mm256_loadu_si256((const __m256i *)(const void *)a[i + 1].qs);
        const __m256 d0 = _mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d));
        const __m256 d1 = _mm256_set1_ps(h2f(w[i + 1].d) * h2f(a[i + 1].d));
        acc0 = _mm256_fmadd_ps(d0, _mm256_cvtepi32_ps(dot_i8_i32(qx0, qy0)), acc0);
        acc1 = _mm256_fmadd_ps(d1, _mm256_cvtepi32_ps(dot_i8_i32(qx1, qy1)), acc1);
    }
    for (; i < nb; i++) {
        const __m256i qx = _mm256_loadu_si256((const __m256i *)(const void *)w[i].qs);
        const __m256i qy = _mm256_loadu_si256((const __m256i *)(const void *)a[i].qs);
        acc0 = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), _mm256_cvtepi32_ps(dot_i8_i32(qx, qy)), acc0);
    }
    *s = hsum_f32x8(_mm256_add_ps(acc0, acc1));
}

NS_AVX2 static inline __m256i iq4_values(void) {
    const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)ns__kvalues_iq4nl);
    return _mm256_set_m128i(v, v);
}

NS_AVX2 static void dot_iq4_nl_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_iq4_nl *w = vw;
    const ns_block_q8_0 *a = va;
    const __m256i values = iq4_values();
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / 32; i++) {
        const __m256i qx = _mm256_shuffle_epi8(values, nibbles32(w[i].qs));
        const __m256i qy = _mm256_loadu_si256((const __m256i *)(const void *)a[i].qs);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(w[i].d) * h2f(a[i].d)), _mm256_cvtepi32_ps(dot_i8_i32(qx, qy)), acc);
    }
    *s = hsum_f32x8(acc);
}

/* ---- K-quants x Q8_K ------------------------------------------------------ */

/* 32 elements (128 c + 32 k ...) of a Q2_K block: scale * q * a partial sums. */
NS_AVX2_INLINE __m256i q2k_part(__m256i q2bits, const int8_t *q8, __m256i scales, int c, int k) {
    const __m256i qx = _mm256_and_si256(_mm256_srli_epi16(q2bits, 2 * k), _mm256_set1_epi8(3));
    const __m256i qy = _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 128 * c + 32 * k));
    return _mm256_madd_epi16(_mm256_shuffle_epi8(scales, pick2(k)), _mm256_maddubs_epi16(qx, qy));
}

NS_AVX2 static void dot_q2_K_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q2_K *w = vw;
    const ns_block_q8_K *a = va;
    const __m128i m4 = _mm_set1_epi8(0xF);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const float d = a[i].d * h2f(w[i].d);
        const float dmin = -a[i].d * h2f(w[i].dmin);
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)(const void *)w[i].scales);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
        const __m256i bsums = _mm256_loadu_si256((const __m256i *)(const void *)a[i].bsums);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_madd_epi16(mins, bsums)), acc);
        const __m256i all_scales = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
        const uint8_t *q2 = w[i].qs;
        const int8_t *q8 = a[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            const __m256i scales = c == 0 ? _mm256_permute2x128_si256(all_scales, all_scales, 0x00)
                                          : _mm256_permute2x128_si256(all_scales, all_scales, 0x11);
            const __m256i q2bits = _mm256_loadu_si256((const __m256i *)(const void *)(q2 + 32 * c));
            sumi = _mm256_add_epi32(
                sumi, _mm256_add_epi32(
                          _mm256_add_epi32(q2k_part(q2bits, q8, scales, c, 0), q2k_part(q2bits, q8, scales, c, 1)),
                          _mm256_add_epi32(q2k_part(q2bits, q8, scales, c, 2), q2k_part(q2bits, q8, scales, c, 3))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_f32x8(acc);
}

/* 32 elements of a Q3_K block: scale * (q - 4 + 4 * high) * a partial sums. */
NS_AVX2_INLINE __m256i q3k_part(__m256i q3bits, __m256i hbits, const int8_t *q8, __m256i scales, int c, int k) {
    const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(q3bits, 2 * k), _mm256_set1_epi8(3));
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hbits, 4 * c + k), _mm256_set1_epi8(1));
    const __m256i qx = _mm256_or_si256(lo, _mm256_slli_epi16(hi, 2)); /* value + 4, in 0..7 */
    const __m256i qy = _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 128 * c + 32 * k));
    const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(qx, qy), _mm256_maddubs_epi16(_mm256_set1_epi8(4), qy));
    return _mm256_madd_epi16(_mm256_shuffle_epi8(scales, pick2(k)), p16);
}

NS_AVX2 static void dot_q3_K_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q3_K *w = vw;
    const ns_block_q8_K *a = va;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const float d = a[i].d * h2f(w[i].d);
        /* Unpack the 16 6-bit scales (biased by 32). */
        uint32_t aux[4];
        memcpy(aux, w[i].scales, 12);
        const uint32_t tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & 0x0f0f0f0fu) | (((tmp >> 4) & 0x03030303u) << 4);
        aux[3] = ((aux[1] >> 4) & 0x0f0f0f0fu) | (((tmp >> 6) & 0x03030303u) << 4);
        aux[0] = (aux[0] & 0x0f0f0f0fu) | (((tmp >> 0) & 0x03030303u) << 4);
        aux[1] = (aux[1] & 0x0f0f0f0fu) | (((tmp >> 2) & 0x03030303u) << 4);
        const __m128i sc8 = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(const void *)aux), _mm_set1_epi8(32));
        const __m256i all_scales = _mm256_cvtepi8_epi16(sc8);
        const __m256i hbits = _mm256_loadu_si256((const __m256i *)(const void *)w[i].hmask);
        const uint8_t *q3 = w[i].qs;
        const int8_t *q8 = a[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            const __m256i scales = c == 0 ? _mm256_permute2x128_si256(all_scales, all_scales, 0x00)
                                          : _mm256_permute2x128_si256(all_scales, all_scales, 0x11);
            const __m256i q3bits = _mm256_loadu_si256((const __m256i *)(const void *)(q3 + 32 * c));
            sumi =
                _mm256_add_epi32(sumi, _mm256_add_epi32(_mm256_add_epi32(q3k_part(q3bits, hbits, q8, scales, c, 0),
                                                                         q3k_part(q3bits, hbits, q8, scales, c, 1)),
                                                        _mm256_add_epi32(q3k_part(q3bits, hbits, q8, scales, c, 2),
                                                                         q3k_part(q3bits, hbits, q8, scales, c, 3))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_f32x8(acc);
}

/* The 8 scales and 8 mins of a Q4_K/Q5_K block as 16 int16:
 * [sc0..sc7 | m0..m7]. p is the 12-byte scales field; 16 bytes are read
 * (the last 4 belong to the block's quants, which always follow, and are
 * ignored). With s the bytes: sc0-3 = s0-3 & 63, m0-3 = s4-7 & 63,
 * sc4-7 = (s8-11 & 15) | (s0-3 >> 6) << 4, m4-7 = (s8-11 >> 4) | (s4-7 >> 6) << 4. */
NS_AVX2 static inline __m256i k4_scales_mins(const uint8_t *p) {
    const __m128i s = _mm_loadu_si128((const __m128i *)(const void *)p);
    const __m128i a = _mm_shuffle_epi8(s, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
    const __m128i b = _mm_shuffle_epi8(s, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
    const __m128i lo = _mm_and_si128(a, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0));
    const __m128i hi =
        _mm_and_si128(_mm_srli_epi16(a, 4), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15));
    const __m128i top = _mm_and_si128(_mm_srli_epi16(b, 2), _mm_set1_epi8(0x30));
    return _mm256_cvtepu8_epi16(_mm_or_si128(_mm_or_si128(lo, hi), top));
}

/* Sum over j of m[j] * (bsums[2j] + bsums[2j + 1]), as 4 int32. */
NS_AVX2 static inline __m128i k4_min_sums(__m256i scales_mins, const int16_t *bsums) {
    const __m256i b = _mm256_loadu_si256((const __m256i *)(const void *)bsums);
    const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    return _mm_madd_epi16(_mm256_extracti128_si256(scales_mins, 1), pairs);
}

/* 64 elements (sub-blocks 2j, 2j + 1) of a Q4_K block: 8 int32 partial
 * sums of scale * q * a. */
NS_AVX2_INLINE __m256i q4k_chunk(const uint8_t *q4, const int8_t *q8, __m256i scales, int j) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m256i q4bits = _mm256_loadu_si256((const __m256i *)(const void *)(q4 + 32 * j));
    const __m256i qy_l = _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 64 * j));
    const __m256i qy_h = _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 64 * j + 32));
    const __m256i p_l = _mm256_maddubs_epi16(_mm256_and_si256(q4bits, m4), qy_l);
    const __m256i p_h = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q4bits, 4), m4), qy_h);
    return _mm256_add_epi32(_mm256_madd_epi16(_mm256_shuffle_epi8(scales, pick1(2 * j)), p_l),
                            _mm256_madd_epi16(_mm256_shuffle_epi8(scales, pick1(2 * j + 1)), p_h));
}

NS_AVX2 static void dot_q4_K_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q4_K *w = vw;
    const ns_block_q8_K *a = va;
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const float d = a[i].d * h2f(w[i].d);
        const float dmin = -a[i].d * h2f(w[i].dmin);
        const __m256i sm = k4_scales_mins(w[i].scales);
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k4_min_sums(sm, a[i].bsums)), acc_m);
        const __m256i scales = _mm256_permute2x128_si256(sm, sm, 0x00);
        const uint8_t *q4 = w[i].qs;
        const int8_t *q8 = a[i].qs;
        const __m256i sumi =
            _mm256_add_epi32(_mm256_add_epi32(q4k_chunk(q4, q8, scales, 0), q4k_chunk(q4, q8, scales, 1)),
                             _mm256_add_epi32(q4k_chunk(q4, q8, scales, 2), q4k_chunk(q4, q8, scales, 3)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_f32x8(acc) + hsum_f32x4(acc_m);
}

/* 64 elements of a Q5_K block, as q4k_chunk plus the fifth bits. */
NS_AVX2_INLINE __m256i q5k_chunk(const uint8_t *q5, __m256i hbits, const int8_t *q8, __m256i scales, int j) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m256i m1 = _mm256_set1_epi8(1);
    const __m256i q5bits = _mm256_loadu_si256((const __m256i *)(const void *)(q5 + 32 * j));
    const __m256i h_l = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j), m1);
    const __m256i h_h = _mm256_and_si256(_mm256_srli_epi16(hbits, 2 * j + 1), m1);
    const __m256i qx_l = _mm256_or_si256(_mm256_and_si256(q5bits, m4), _mm256_slli_epi16(h_l, 4));
    const __m256i qx_h = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q5bits, 4), m4), _mm256_slli_epi16(h_h, 4));
    const __m256i qy_l = _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 64 * j));
    const __m256i qy_h = _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 64 * j + 32));
    const __m256i p_l = _mm256_maddubs_epi16(qx_l, qy_l);
    const __m256i p_h = _mm256_maddubs_epi16(qx_h, qy_h);
    return _mm256_add_epi32(_mm256_madd_epi16(_mm256_shuffle_epi8(scales, pick1(2 * j)), p_l),
                            _mm256_madd_epi16(_mm256_shuffle_epi8(scales, pick1(2 * j + 1)), p_h));
}

NS_AVX2 static void dot_q5_K_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q5_K *w = vw;
    const ns_block_q8_K *a = va;
    __m256 acc = _mm256_setzero_ps();
    __m128 acc_m = _mm_setzero_ps();
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const float d = a[i].d * h2f(w[i].d);
        const float dmin = -a[i].d * h2f(w[i].dmin);
        const __m256i sm = k4_scales_mins(w[i].scales);
        acc_m = _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(k4_min_sums(sm, a[i].bsums)), acc_m);
        const __m256i scales = _mm256_permute2x128_si256(sm, sm, 0x00);
        const __m256i hbits = _mm256_loadu_si256((const __m256i *)(const void *)w[i].qh);
        const uint8_t *q5 = w[i].qs;
        const int8_t *q8 = a[i].qs;
        const __m256i sumi = _mm256_add_epi32(
            _mm256_add_epi32(q5k_chunk(q5, hbits, q8, scales, 0), q5k_chunk(q5, hbits, q8, scales, 1)),
            _mm256_add_epi32(q5k_chunk(q5, hbits, q8, scales, 2), q5k_chunk(q5, hbits, q8, scales, 3)));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_f32x8(acc) + hsum_f32x4(acc_m);
}

/* 32 elements of a Q6_K block: scale * (q - 32) * a partial sums. */
NS_AVX2_INLINE __m256i q6k_part(__m256i qx, const int8_t *q8, __m256i scales, int c, int k) {
    const __m256i qy = _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 128 * c + 32 * k));
    const __m256i p16 = _mm256_sub_epi16(_mm256_maddubs_epi16(qx, qy), _mm256_maddubs_epi16(_mm256_set1_epi8(32), qy));
    return _mm256_madd_epi16(_mm256_shuffle_epi8(scales, pick2(k)), p16);
}

NS_AVX2 static void dot_q6_K_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_q6_K *w = vw;
    const ns_block_q8_K *a = va;
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const float d = a[i].d * h2f(w[i].d);
        const __m256i all_scales = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)w[i].scales));
        const uint8_t *ql = w[i].ql, *qh = w[i].qh;
        const int8_t *q8 = a[i].qs;
        __m256i sumi = _mm256_setzero_si256();
        for (int c = 0; c < 2; c++) {
            const __m256i scales = c == 0 ? _mm256_permute2x128_si256(all_scales, all_scales, 0x00)
                                          : _mm256_permute2x128_si256(all_scales, all_scales, 0x11);
            const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(ql + 64 * c));
            const __m256i b2 = _mm256_loadu_si256((const __m256i *)(const void *)(ql + 64 * c + 32));
            const __m256i bh = _mm256_loadu_si256((const __m256i *)(const void *)(qh + 32 * c));
            __m256i qx[4];
            qx[0] = _mm256_or_si256(_mm256_and_si256(b1, m4), _mm256_slli_epi16(_mm256_and_si256(bh, m3), 4));
            qx[1] = _mm256_or_si256(_mm256_and_si256(b2, m4),
                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 2), m3), 4));
            qx[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b1, 4), m4),
                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 4), m3), 4));
            qx[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(b2, 4), m4),
                                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bh, 6), m3), 4));
            sumi = _mm256_add_epi32(
                sumi, _mm256_add_epi32(
                          _mm256_add_epi32(q6k_part(qx[0], q8, scales, c, 0), q6k_part(qx[1], q8, scales, c, 1)),
                          _mm256_add_epi32(q6k_part(qx[2], q8, scales, c, 2), q6k_part(qx[3], q8, scales, c, 3))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_f32x8(acc);
}

NS_AVX2 static void dot_iq4_xs_avx2(int64_t n, float *s, const void *vw, const void *va) {
    const ns_block_iq4_xs *w = vw;
    const ns_block_q8_K *a = va;
    const __m256i values = iq4_values();
    __m256 acc = _mm256_setzero_ps();
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const float d = a[i].d * h2f(w[i].d);
        __m256i sumi = _mm256_setzero_si256();
        for (int ib = 0; ib < 8; ib++) {
            const int ls = ((w[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((w[i].scales_h >> 2 * ib) & 3) << 4);
            const __m256i qx = _mm256_shuffle_epi8(values, nibbles32(w[i].qs + 16 * ib));
            const __m256i qy = _mm256_loadu_si256((const __m256i *)(const void *)(a[i].qs + 32 * ib));
            const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(qx, qx), _mm256_sign_epi8(qy, qx));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p16, _mm256_set1_epi16((short)(ls - 32))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
    }
    *s = hsum_f32x8(acc);
}

/* ---- rows x tokens micro-kernels (ns_gemm_fn) ----------------------------- */

/* Tokens per register block. Each kernel below handles one weight row and
 * NT (1..NS__GEMM_NT, a compile-time constant after inlining) activation
 * rows: the weight block is decoded once and used for all NT tokens. The
 * per-token float work is the same instruction sequence for every NT, so a
 * token's result does not depend on the blocking (batch invariance). */
#define NS__GEMM_NT 4

/* Q4_K x Q8_K. Per token and block: acc = fma(d, sumi, acc), then
 * acc = fma(dmin, min sums in lanes 0..3 (4..7 zero), acc). The block's
 * unpacked quants and scale vectors are staged in a small L1 buffer and
 * read back for each token (16 live vectors do not fit the 16 registers). */
NS_AVX2_INLINE void q4k_row_nt(int64_t nb, const ns_block_q4_K *w, const uint8_t *a, size_t a_stride, int nt, float *s,
                               size_t s_stride) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    __m256 acc[NS__GEMM_NT];
    _Alignas(32) __m256i wq[8], sc[8];
    _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
        acc[t] = _mm256_setzero_ps();
    }
    for (int64_t ib = 0; ib < nb; ib++) {
        const float wd = h2f(w[ib].d), wdmin = h2f(w[ib].dmin);
        const __m256i sm = k4_scales_mins(w[ib].scales);
        const __m256i scales = _mm256_permute2x128_si256(sm, sm, 0x00);
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
            const __m256i q4bits = _mm256_loadu_si256((const __m256i *)(const void *)(w[ib].qs + 32 * j));
            _mm256_store_si256(&wq[2 * j], _mm256_and_si256(q4bits, m4));
            _mm256_store_si256(&wq[2 * j + 1], _mm256_and_si256(_mm256_srli_epi16(q4bits, 4), m4));
            _mm256_store_si256(&sc[2 * j], _mm256_shuffle_epi8(scales, pick1(2 * j)));
            _mm256_store_si256(&sc[2 * j + 1], _mm256_shuffle_epi8(scales, pick1(2 * j + 1)));
        }
        _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
            const ns_block_q8_K *at = (const ns_block_q8_K *)(const void *)(a + (size_t)t * a_stride) + ib;
            __m256i sumi = _mm256_setzero_si256();
            _Pragma("GCC unroll 8") for (int k = 0; k < 8; k++) {
                const __m256i p = _mm256_maddubs_epi16(
                    _mm256_load_si256(&wq[k]), _mm256_loadu_si256((const __m256i *)(const void *)(at->qs + 32 * k)));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(_mm256_load_si256(&sc[k]), p));
            }
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(at->d * wd), _mm256_cvtepi32_ps(sumi), acc[t]);
            const __m256i ms = _mm256_zextsi128_si256(k4_min_sums(sm, at->bsums));
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(-at->d * wdmin), _mm256_cvtepi32_ps(ms), acc[t]);
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
        s[(size_t)t * s_stride] = hsum_f32x8(acc[t]);
    }
}

/* Q6_K x Q8_K. The -32 offset is taken out once per block and token with
 * the activation's 16-element sums: sumi -= 32 * sum_g scale_g * bsums_g. */
NS_AVX2_INLINE void q6k_row_nt(int64_t nb, const ns_block_q6_K *w, const uint8_t *a, size_t a_stride, int nt, float *s,
                               size_t s_stride) {
    const __m256i m4 = _mm256_set1_epi8(0xF);
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc[NS__GEMM_NT];
    _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
        acc[t] = _mm256_setzero_ps();
    }
    for (int64_t ib = 0; ib < nb; ib++) {
        const float wd = h2f(w[ib].d);
        const __m256i all_scales = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)w[ib].scales));
        __m256i sumi[NS__GEMM_NT];
        _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
            sumi[t] = _mm256_setzero_si256();
        }
        _Pragma("GCC unroll 4") for (int c = 0; c < 2; c++) {
            const __m256i scales = c == 0 ? _mm256_permute2x128_si256(all_scales, all_scales, 0x00)
                                          : _mm256_permute2x128_si256(all_scales, all_scales, 0x11);
            const __m256i b1 = _mm256_loadu_si256((const __m256i *)(const void *)(w[ib].ql + 64 * c));
            const __m256i b2 = _mm256_loadu_si256((const __m256i *)(const void *)(w[ib].ql + 64 * c + 32));
            const __m256i bh = _mm256_loadu_si256((const __m256i *)(const void *)(w[ib].qh + 32 * c));
            _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
                const __m256i lo4 = (k & 1) == 0 ? b1 : b2;
                const __m256i lo = k < 2 ? _mm256_and_si256(lo4, m4) : _mm256_and_si256(_mm256_srli_epi16(lo4, 4), m4);
                const __m256i h2 = _mm256_and_si256(_mm256_srli_epi16(bh, 2 * k), m3);
                const __m256i qx = _mm256_or_si256(lo, _mm256_slli_epi16(h2, 4));
                const __m256i sc = _mm256_shuffle_epi8(scales, pick2(k));
                _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
                    const int8_t *q8 =
                        ((const ns_block_q8_K *)(const void *)(a + (size_t)t * a_stride))[ib].qs + 128 * c + 32 * k;
                    const __m256i p = _mm256_maddubs_epi16(qx, _mm256_loadu_si256((const __m256i *)(const void *)q8));
                    sumi[t] = _mm256_add_epi32(sumi[t], _mm256_madd_epi16(sc, p));
                }
            }
        }
        _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
            const ns_block_q8_K *at = (const ns_block_q8_K *)(const void *)(a + (size_t)t * a_stride) + ib;
            const __m256i bias =
                _mm256_madd_epi16(all_scales, _mm256_loadu_si256((const __m256i *)(const void *)at->bsums));
            const __m256i si = _mm256_sub_epi32(sumi[t], _mm256_slli_epi32(bias, 5));
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(at->d * wd), _mm256_cvtepi32_ps(si), acc[t]);
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
        s[(size_t)t * s_stride] = hsum_f32x8(acc[t]);
    }
}

/* Q8_0 x Q8_0: one accumulator per token, blocks in order. */
NS_AVX2_INLINE void q80_row_nt(int64_t nb, const ns_block_q8_0 *w, const uint8_t *a, size_t a_stride, int nt, float *s,
                               size_t s_stride) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[NS__GEMM_NT];
    _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
        acc[t] = _mm256_setzero_ps();
    }
    for (int64_t ib = 0; ib < nb; ib++) {
        const __m256i qx = _mm256_loadu_si256((const __m256i *)(const void *)w[ib].qs);
        const __m256i ax = _mm256_sign_epi8(qx, qx);
        const float wd = h2f(w[ib].d);
        _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
            const ns_block_q8_0 *at = (const ns_block_q8_0 *)(const void *)(a + (size_t)t * a_stride) + ib;
            const __m256i sy = _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(const void *)at->qs), qx);
            const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), ones);
            acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(wd * h2f(at->d)), _mm256_cvtepi32_ps(p), acc[t]);
        }
    }
    _Pragma("GCC unroll 4") for (int t = 0; t < nt; t++) {
        s[(size_t)t * s_stride] = hsum_f32x8(acc[t]);
    }
}

/* The ns_gemm_fn wrapper: token blocks of NS__GEMM_NT outer (their
 * activation rows stay in L1), weight rows inner. */
#define NS__GEMM_WRAPPER(name, row_fn, wblock, qk)                                                                     \
    NS_AVX2 static void name(int64_t n, const void *w, size_t w_stride, int32_t nr, const void *a, size_t a_stride,    \
                             int32_t nt, float *s, size_t s_stride) {                                                  \
        const int64_t nb = n / (qk);                                                                                   \
        for (int32_t t0 = 0; t0 < nt; t0 += NS__GEMM_NT) {                                                             \
            const int32_t m = nt - t0 < NS__GEMM_NT ? nt - t0 : NS__GEMM_NT;                                           \
            const uint8_t *at = (const uint8_t *)a + (size_t)t0 * a_stride;                                            \
            for (int32_t r = 0; r < nr; r++) {                                                                         \
                const wblock *wr = (const wblock *)(const void *)((const uint8_t *)w + (size_t)r * w_stride);          \
                float *st = s + (size_t)t0 * s_stride + r;                                                             \
                switch (m) {                                                                                           \
                case 1:                                                                                                \
                    row_fn(nb, wr, at, a_stride, 1, st, s_stride);                                                     \
                    break;                                                                                             \
                case 2:                                                                                                \
                    row_fn(nb, wr, at, a_stride, 2, st, s_stride);                                                     \
                    break;                                                                                             \
                case 3:                                                                                                \
                    row_fn(nb, wr, at, a_stride, 3, st, s_stride);                                                     \
                    break;                                                                                             \
                default:                                                                                               \
                    row_fn(nb, wr, at, a_stride, 4, st, s_stride);                                                     \
                    break;                                                                                             \
                }                                                                                                      \
            }                                                                                                          \
        }                                                                                                              \
    }

NS__GEMM_WRAPPER(gemm_q4_K_avx2, q4k_row_nt, ns_block_q4_K, NS_QK_K)
NS__GEMM_WRAPPER(gemm_q6_K_avx2, q6k_row_nt, ns_block_q6_K, NS_QK_K)
NS__GEMM_WRAPPER(gemm_q8_0_avx2, q80_row_nt, ns_block_q8_0, NS_QK8_0)

static const ns_vec_dot_traits g_avx2[NS_TYPE_COUNT] = {
    [NS_TYPE_F32] = {NS_TYPE_F32, act_copy_f32, dot_f32_avx2},
    [NS_TYPE_F16] = {NS_TYPE_F32, act_copy_f32, dot_f16_avx2},
    [NS_TYPE_BF16] = {NS_TYPE_F32, act_copy_f32, dot_bf16_avx2},
    [NS_TYPE_Q4_0] = {NS_TYPE_Q8_0, quantize_q8_0_avx2, dot_q4_0_avx2},
    [NS_TYPE_Q4_1] = {NS_TYPE_Q8_1, quantize_q8_1_avx2, dot_q4_1_avx2},
    [NS_TYPE_Q5_0] = {NS_TYPE_Q8_0, quantize_q8_0_avx2, dot_q5_0_avx2},
    [NS_TYPE_Q5_1] = {NS_TYPE_Q8_1, quantize_q8_1_avx2, dot_q5_1_avx2},
    [NS_TYPE_Q8_0] = {NS_TYPE_Q8_0, quantize_q8_0_avx2, dot_q8_0_avx2, gemm_q8_0_avx2},
    [NS_TYPE_IQ4_NL] = {NS_TYPE_Q8_0, quantize_q8_0_avx2, dot_iq4_nl_avx2},
    [NS_TYPE_Q2_K] = {NS_TYPE_Q8_K, quantize_q8_K_avx2, dot_q2_K_avx2},
    [NS_TYPE_Q3_K] = {NS_TYPE_Q8_K, quantize_q8_K_avx2, dot_q3_K_avx2},
    [NS_TYPE_Q4_K] = {NS_TYPE_Q8_K, quantize_q8_K_avx2, dot_q4_K_avx2, gemm_q4_K_avx2},
    [NS_TYPE_Q5_K] = {NS_TYPE_Q8_K, quantize_q8_K_avx2, dot_q5_K_avx2},
    [NS_TYPE_Q6_K] = {NS_TYPE_Q8_K, quantize_q8_K_avx2, dot_q6_K_avx2, gemm_q6_K_avx2},
    [NS_TYPE_IQ4_XS] = {NS_TYPE_Q8_K, quantize_q8_K_avx2, dot_iq4_xs_avx2},
};

const ns_vec_dot_traits *ns__vec_dot_avx2_get(ns_type t) {
    if ((uint32_t)t >= NS_TYPE_COUNT || g_avx2[t].vec_dot == NULL) {
        return NULL;
    }
    return &g_avx2[t];
}

#else /* not x86-64 */

const ns_vec_dot_traits *ns__vec_dot_avx2_get(ns_type t) {
    (void)t;
    return NULL;
}

#endif
