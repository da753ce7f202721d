/*
 * vec_f32.h - float and fp16 row helpers for the CPU backend (attention,
 * norms, KV cache): dot products, axpy, scaling and fp16 row conversion.
 *
 * Each function picks AVX2+FMA+F16C or portable C at run time (a cheap
 * feature-table check per call, no global state); the `_scalar` variants
 * force the portable path for tests. Results of the SIMD and scalar paths
 * differ only by float summation order (dot products) or not at all
 * (scale and conversions: identical bits, fp16 rounding to nearest even
 * either way; axpy: the SIMD path fuses the multiply-add, so the last bit
 * may differ).
 * No alignment is required. Thread safety: reentrant.
 */
#ifndef NS_CPU_VEC_F32_H
#define NS_CPU_VEC_F32_H

#include <stdbool.h>
#include <stdint.h>

/* sum a[i] * b[i] over n floats. */
float ns_cpu_dot_f32(const float *a, const float *b, int64_t n);

/* sum half(a[i]) * b[i]: an fp16 row (e.g. a cached key) with a float row. */
float ns_cpu_dot_f16_f32(const uint16_t *a, const float *b, int64_t n);

/* y[i] += alpha * x[i]. */
void ns_cpu_axpy_f32(float *y, float alpha, const float *x, int64_t n);

/* y[i] += alpha * half(x[i]) (accumulating fp16 cached values). */
void ns_cpu_axpy_f16(float *y, float alpha, const uint16_t *x, int64_t n);

/* y[i] *= alpha. */
void ns_cpu_scale_f32(float *y, float alpha, int64_t n);

/* Row conversions (round to nearest even into fp16). */
void ns_cpu_f32_to_f16(uint16_t *dst, const float *src, int64_t n);
void ns_cpu_f16_to_f32(float *dst, const uint16_t *src, int64_t n);

/* The same operations with the SIMD path forced on or off (use_simd is
 * ignored when the CPU lacks AVX2); for tests and benchmarks. */
float ns_cpu_dot_f32_isa(const float *a, const float *b, int64_t n, bool use_simd);
float ns_cpu_dot_f16_f32_isa(const uint16_t *a, const float *b, int64_t n, bool use_simd);
void ns_cpu_axpy_f32_isa(float *y, float alpha, const float *x, int64_t n, bool use_simd);
void ns_cpu_axpy_f16_isa(float *y, float alpha, const uint16_t *x, int64_t n, bool use_simd);
void ns_cpu_scale_f32_isa(float *y, float alpha, int64_t n, bool use_simd);
void ns_cpu_f32_to_f16_isa(uint16_t *dst, const float *src, int64_t n, bool use_simd);
void ns_cpu_f16_to_f32_isa(float *dst, const uint16_t *src, int64_t n, bool use_simd);

#endif /* NS_CPU_VEC_F32_H */
