/*
 * quant_impl.h - private: helpers shared by quant.c, quant_k.c and the CPU
 * dot-product kernels (cpu/vec_dot*.c).
 *
 * The row quantizers below take n elements (a multiple of the block size,
 * unchecked) and write n / blck blocks. The public, checked entry points are
 * in quant.h. Thread safety: reentrant, no global mutable state.
 */
#ifndef NS_QUANT_IMPL_H
#define NS_QUANT_IMPL_H

#include <stdint.h>
#include <string.h>

/* Groups whose largest magnitude is below this are quantized as zero. */
#define NS__GROUP_MAX_EPS 1e-15f

/* Round to nearest, ties to even, for |f| < 2^22 (the classic 1.5 * 2^23
 * trick; exact under the default rounding mode). Out-of-range or NaN input
 * gives an unspecified int, never UB; callers clamp. */
static inline int ns__nearest_int(float f) {
    const float v = f + 12582912.0f;
    int32_t i;
    memcpy(&i, &v, sizeof(i));
    return (i & 0x007fffff) - 0x00400000;
}

/* Activation formats: round-to-nearest-even quantization. The AVX2 versions
 * in cpu/ produce identical bytes. */
void ns__quantize_q8_0(const float *x, void *y, int64_t n);
void ns__quantize_q8_1(const float *x, void *y, int64_t n);
void ns__quantize_q8_K(const float *x, void *y, int64_t n);

/* Reference Q3_K dequantizer (quant.c), used by the Q3_K quantizer to pick
 * the better of two encodings. */
void ns__dequantize_q3_K(const void *x, float *y, int64_t n);

/* Weight quantizers (quant_k.c). */
void ns__quantize_q2_K(const float *x, void *y, int64_t n);
void ns__quantize_q3_K(const float *x, void *y, int64_t n);
void ns__quantize_q4_K(const float *x, void *y, int64_t n);
void ns__quantize_q5_K(const float *x, void *y, int64_t n);
void ns__quantize_q6_K(const float *x, void *y, int64_t n);
void ns__quantize_iq4_nl(const float *x, void *y, int64_t n);
void ns__quantize_iq4_xs(const float *x, void *y, int64_t n);

#endif /* NS_QUANT_IMPL_H */
