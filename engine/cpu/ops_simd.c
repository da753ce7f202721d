/*
 * ops_simd.c - the CPU backend's table of small vector kernels (f32 dot,
 * f32 x f16 dot, f16 axpy, f32 -> f16 rows), chosen once per backend.
 *
 * The kernels themselves live in vec_f32.c (portable C and AVX2+FMA+F16C);
 * this file only binds either set into ns__cpu_kernels, so the backend pays no
 * per-call dispatch and tests can run the whole model on the portable set
 * (allow_simd = false). No global state.
 */
#include "cpu_impl.h"
#include "vec_dot_impl.h"
#include "vec_f32.h"

static float dot_f32_simd(const float *a, const float *b, int32_t n) {
    return ns_cpu_dot_f32_isa(a, b, n, true);
}
static float dot_f32_c(const float *a, const float *b, int32_t n) {
    return ns_cpu_dot_f32_isa(a, b, n, false);
}

static float dot_f32_f16_simd(const float *a, const uint16_t *b, int32_t n) {
    return ns_cpu_dot_f16_f32_isa(b, a, n, true);
}
static float dot_f32_f16_c(const float *a, const uint16_t *b, int32_t n) {
    return ns_cpu_dot_f16_f32_isa(b, a, n, false);
}

static void axpy_f16_simd(float *y, float a, const uint16_t *x, int32_t n) {
    ns_cpu_axpy_f16_isa(y, a, x, n, true);
}
static void axpy_f16_c(float *y, float a, const uint16_t *x, int32_t n) {
    ns_cpu_axpy_f16_isa(y, a, x, n, false);
}

static void f32_to_f16_simd(uint16_t *dst, const float *src, int32_t n) {
    ns_cpu_f32_to_f16_isa(dst, src, n, true);
}
static void f32_to_f16_c(uint16_t *dst, const float *src, int32_t n) {
    ns_cpu_f32_to_f16_isa(dst, src, n, false);
}

void ns__cpu_kernels_init(ns__cpu_kernels *k, bool allow_simd) {
    k->simd = allow_simd && ns__cpu_has_avx2();
    k->dot_f32 = k->simd ? dot_f32_simd : dot_f32_c;
    k->dot_f32_f16 = k->simd ? dot_f32_f16_simd : dot_f32_f16_c;
    k->axpy_f16 = k->simd ? axpy_f16_simd : axpy_f16_c;
    k->f32_to_f16 = k->simd ? f32_to_f16_simd : f32_to_f16_c;
}
