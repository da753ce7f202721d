/*
 * ops_simd.c - small vector kernels for the CPU backend: f32 dot, f32 x f16
 * dot, f16 axpy, f32 -> f16 rows. Each has a portable C version and an
 * AVX2/FMA/F16C version compiled with a target attribute and chosen at run
 * time (ns__cpu_kernels_init). No global state.
 */
#include <string.h>

#include "cpu_impl.h"
#include "fp16.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define NS__HAVE_X86 1
#else
#define NS__HAVE_X86 0
#endif

/* ---- portable ------------------------------------------------------------ */

static float dot_f32_c(const float *a, const float *b, int32_t n) {
    float s[8] = {0};
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            s[j] += a[i + j] * b[i + j];
        }
    }
    float sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) {
        sum += a[i] * b[i];
    }
    return sum;
}

static float dot_f32_f16_c(const float *a, const uint16_t *b, int32_t n) {
    float s[8] = {0};
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            s[j] += a[i + j] * ns_fp16_to_fp32(b[i + j]);
        }
    }
    float sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) {
        sum += a[i] * ns_fp16_to_fp32(b[i]);
    }
    return sum;
}

static void axpy_f16_c(float *y, float a, const uint16_t *x, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        y[i] += a * ns_fp16_to_fp32(x[i]);
    }
}

static void f32_to_f16_c(uint16_t *dst, const float *src, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        dst[i] = ns_fp32_to_fp16(src[i]);
    }
}

/* ---- AVX2 + FMA + F16C ----------------------------------------------------- */
#if NS__HAVE_X86
#define NS__AVX2 __attribute__((target("avx2,fma,f16c")))

NS__AVX2 static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

NS__AVX2 static float dot_f32_avx2(const float *a, const float *b, int32_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    }
    float sum = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) {
        sum += a[i] * b[i];
    }
    return sum;
}

NS__AVX2 static float dot_f32_f16_avx2(const float *a, const uint16_t *b, int32_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i)));
        __m256 b1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i + 8)));
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), b0, s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), b1, s1);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(b + i)));
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), b0, s0);
    }
    float sum = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++) {
        sum += a[i] * ns_fp16_to_fp32(b[i]);
    }
    return sum;
}

NS__AVX2 static void axpy_f16_avx2(float *y, float a, const uint16_t *x, int32_t n) {
    __m256 va = _mm256_set1_ps(a);
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 vx = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, vx, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) {
        y[i] += a * ns_fp16_to_fp32(x[i]);
    }
}

NS__AVX2 static void f32_to_f16_avx2(uint16_t *dst, const float *src, int32_t n) {
    int32_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128((__m128i *)(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) {
        dst[i] = ns_fp32_to_fp16(src[i]);
    }
}
#endif

void ns__cpu_kernels_init(ns__cpu_kernels *k, bool allow_simd) {
    k->dot_f32 = dot_f32_c;
    k->dot_f32_f16 = dot_f32_f16_c;
    k->axpy_f16 = axpy_f16_c;
    k->f32_to_f16 = f32_to_f16_c;
    k->simd = false;
#if NS__HAVE_X86
    /* F16C is CPUID.1:ECX bit 29 (clang's __builtin_cpu_supports lacks it). */
    unsigned eax, ebx, ecx, edx;
    bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 29)) != 0;
    __builtin_cpu_init();
    if (allow_simd && f16c && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        k->dot_f32 = dot_f32_avx2;
        k->dot_f32_f16 = dot_f32_f16_avx2;
        k->axpy_f16 = axpy_f16_avx2;
        k->f32_to_f16 = f32_to_f16_avx2;
        k->simd = true;
    }
#else
    (void)allow_simd;
#endif
}
