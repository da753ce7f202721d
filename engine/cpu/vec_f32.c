/*
 * vec_f32.c - float / fp16 row helpers (see vec_f32.h): portable C and
 * AVX2+FMA+F16C versions (target attributes, chosen per call).
 * Thread safety: reentrant, no state.
 */
#include "vec_f32.h"

#include "fp16.h"
#include "vec_dot_impl.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define NS_VF_X86 1
#define NS_AVX2 __attribute__((target("avx2,fma,f16c")))
#else
#define NS_VF_X86 0
#endif

/* ---- portable ------------------------------------------------------------ */

static float dot_f32_c(const float *a, const float *b, int64_t n) {
    float s[8] = {0};
    int64_t i = 0;
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

static float dot_f16_f32_c(const uint16_t *a, const float *b, int64_t n) {
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            s[j] += ns_fp16_to_fp32(a[i + j]) * b[i + j];
        }
    }
    float sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) {
        sum += ns_fp16_to_fp32(a[i]) * b[i];
    }
    return sum;
}

/* ---- AVX2 ---------------------------------------------------------------- */

#if NS_VF_X86
NS_AVX2 static inline float hsum8(__m256 x) {
    __m128 r = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    r = _mm_add_ps(r, _mm_movehl_ps(r, r));
    r = _mm_add_ss(r, _mm_movehdup_ps(r));
    return _mm_cvtss_f32(r);
}

NS_AVX2 static inline __m256 ld_h8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}

NS_AVX2 static float dot_f32_avx2(const float *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    }
    float sum = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) {
        sum += a[i] * b[i];
    }
    return sum;
}

NS_AVX2 static float dot_f16_f32_avx2(const uint16_t *a, const float *b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(ld_h8(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(ld_h8(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(ld_h8(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(ld_h8(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) {
        s0 = _mm256_fmadd_ps(ld_h8(a + i), _mm256_loadu_ps(b + i), s0);
    }
    float sum = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) {
        sum += ns_fp16_to_fp32(a[i]) * b[i];
    }
    return sum;
}

/* y += alpha * x; the vector body fuses the multiply-add (one rounding),
 * so results may differ from the portable path in the last bit. */
NS_AVX2 static void axpy_f32_avx2(float *y, float alpha, const float *x, int64_t n) {
    const __m256 va = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) {
        y[i] += alpha * x[i];
    }
}

NS_AVX2 static void axpy_f16_avx2(float *y, float alpha, const uint16_t *x, int64_t n) {
    const __m256 va = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, ld_h8(x + i), _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) {
        y[i] += alpha * ns_fp16_to_fp32(x[i]);
    }
}

NS_AVX2 static void scale_f32_avx2(float *y, float alpha, int64_t n) {
    const __m256 va = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i, _mm256_mul_ps(va, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) {
        y[i] *= alpha;
    }
}

NS_AVX2 static void f32_to_f16_avx2(uint16_t *dst, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(void *)(dst + i), h);
    }
    for (; i < n; i++) {
        dst[i] = ns_fp32_to_fp16(src[i]);
    }
}

NS_AVX2 static void f16_to_f32_avx2(float *dst, const uint16_t *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(dst + i, ld_h8(src + i));
    }
    for (; i < n; i++) {
        dst[i] = ns_fp16_to_fp32(src[i]);
    }
}

static bool simd_ok(bool use_simd) {
    return use_simd && ns__cpu_has_avx2();
}
#endif

/* ---- public -------------------------------------------------------------- */

float ns_cpu_dot_f32_isa(const float *a, const float *b, int64_t n, bool use_simd) {
#if NS_VF_X86
    if (simd_ok(use_simd)) {
        return dot_f32_avx2(a, b, n);
    }
#endif
    (void)use_simd;
    return dot_f32_c(a, b, n);
}

float ns_cpu_dot_f16_f32_isa(const uint16_t *a, const float *b, int64_t n, bool use_simd) {
#if NS_VF_X86
    if (simd_ok(use_simd)) {
        return dot_f16_f32_avx2(a, b, n);
    }
#endif
    (void)use_simd;
    return dot_f16_f32_c(a, b, n);
}

void ns_cpu_axpy_f32_isa(float *y, float alpha, const float *x, int64_t n, bool use_simd) {
#if NS_VF_X86
    if (simd_ok(use_simd)) {
        axpy_f32_avx2(y, alpha, x, n);
        return;
    }
#endif
    (void)use_simd;
    for (int64_t i = 0; i < n; i++) {
        y[i] += alpha * x[i];
    }
}

void ns_cpu_axpy_f16_isa(float *y, float alpha, const uint16_t *x, int64_t n, bool use_simd) {
#if NS_VF_X86
    if (simd_ok(use_simd)) {
        axpy_f16_avx2(y, alpha, x, n);
        return;
    }
#endif
    (void)use_simd;
    for (int64_t i = 0; i < n; i++) {
        y[i] += alpha * ns_fp16_to_fp32(x[i]);
    }
}

void ns_cpu_scale_f32_isa(float *y, float alpha, int64_t n, bool use_simd) {
#if NS_VF_X86
    if (simd_ok(use_simd)) {
        scale_f32_avx2(y, alpha, n);
        return;
    }
#endif
    (void)use_simd;
    for (int64_t i = 0; i < n; i++) {
        y[i] *= alpha;
    }
}

void ns_cpu_f32_to_f16_isa(uint16_t *dst, const float *src, int64_t n, bool use_simd) {
#if NS_VF_X86
    if (simd_ok(use_simd)) {
        f32_to_f16_avx2(dst, src, n);
        return;
    }
#endif
    (void)use_simd;
    for (int64_t i = 0; i < n; i++) {
        dst[i] = ns_fp32_to_fp16(src[i]);
    }
}

void ns_cpu_f16_to_f32_isa(float *dst, const uint16_t *src, int64_t n, bool use_simd) {
#if NS_VF_X86
    if (simd_ok(use_simd)) {
        f16_to_f32_avx2(dst, src, n);
        return;
    }
#endif
    (void)use_simd;
    for (int64_t i = 0; i < n; i++) {
        dst[i] = ns_fp16_to_fp32(src[i]);
    }
}

float ns_cpu_dot_f32(const float *a, const float *b, int64_t n) {
    return ns_cpu_dot_f32_isa(a, b, n, true);
}

float ns_cpu_dot_f16_f32(const uint16_t *a, const float *b, int64_t n) {
    return ns_cpu_dot_f16_f32_isa(a, b, n, true);
}

void ns_cpu_axpy_f32(float *y, float alpha, const float *x, int64_t n) {
    ns_cpu_axpy_f32_isa(y, alpha, x, n, true);
}

void ns_cpu_axpy_f16(float *y, float alpha, const uint16_t *x, int64_t n) {
    ns_cpu_axpy_f16_isa(y, alpha, x, n, true);
}

void ns_cpu_scale_f32(float *y, float alpha, int64_t n) {
    ns_cpu_scale_f32_isa(y, alpha, n, true);
}

void ns_cpu_f32_to_f16(uint16_t *dst, const float *src, int64_t n) {
    ns_cpu_f32_to_f16_isa(dst, src, n, true);
}

void ns_cpu_f16_to_f32(float *dst, const uint16_t *src, int64_t n) {
    ns_cpu_f16_to_f32_isa(dst, src, n, true);
}
