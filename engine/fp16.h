/*
 * fp16.h - IEEE half (binary16) and bfloat16 <-> float32 conversions.
 *
 * Pure integer bit manipulation, so the results do not depend on compiler
 * flags, FTZ/DAZ modes or the CPU:
 *   - ns_fp16_to_fp32 is exact (every half is a float); signalling NaNs
 *     come out quiet, as x86 F16C converts them;
 *   - ns_fp32_to_fp16 rounds to nearest, ties to even, with overflow to
 *     infinity and gradual underflow to half subnormals; it gives the same
 *     bits as x86 F16C (`_cvtss_sh(x, 0)`), which is what ggml's
 *     GGML_FP32_TO_FP16 computes. NaNs stay NaN (quiet bit set, top payload
 *     bits kept, like F16C);
 *   - ns_fp32_to_bf16 rounds to nearest even like ggml_compute_fp32_to_bf16,
 *     and turns every NaN into a quiet NaN with the sign and top payload
 *     kept. Subnormals are kept (no flush), as current ggml does.
 * Header-only; every function is reentrant.
 */
#ifndef NS_FP16_H
#define NS_FP16_H

#include <stdint.h>
#include <string.h>

static inline uint32_t ns__f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

static inline float ns__f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* Exact half -> float. */
static inline float ns_fp16_to_fp32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1fu) { /* inf / NaN (NaNs come out quiet, as with F16C) */
        bits = sign | 0x7f800000u | (mant << 13) | (mant != 0 ? 0x00400000u : 0u);
    } else if (exp != 0) { /* normal: rebias 15 -> 127 */
        bits = sign | ((exp + 112u) << 23) | (mant << 13);
    } else if (mant == 0) { /* signed zero */
        bits = sign;
    } else { /* subnormal half: mant * 2^-24, normalise */
        uint32_t e = 113;
        while ((mant & 0x400u) == 0) {
            mant <<= 1;
            e--;
        }
        bits = sign | (e << 23) | ((mant & 0x3ffu) << 13);
    }
    return ns__f32_from_bits(bits);
}

/* Float -> half, round to nearest even (F16C semantics). */
static inline uint16_t ns_fp32_to_fp16(float f) {
    const uint32_t x = ns__f32_bits(f);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) { /* NaN: quiet, keep the top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
    }
    if (ax >= 0x477ff000u) { /* >= 65520 (or inf): rounds to inf */
        return (uint16_t)(sign | 0x7c00u);
    }
    if (ax >= 0x38800000u) { /* result is a normal half (>= 2^-14) */
        uint32_t m = ax + 0xfffu + ((ax >> 13) & 1u);
        m -= 0x38000000u; /* exponent bias 127 -> 15 */
        return (uint16_t)(sign | (m >> 13));
    }
    if (ax <= 0x33000000u) { /* <= 2^-25: rounds to (signed) zero */
        return (uint16_t)sign;
    }
    /* Half subnormal: value in units of 2^-24 is mant >> (126 - e). */
    const uint32_t e = ax >> 23;
    const uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126u - e; /* 14..24 */
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1u);
    const uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) {
        q++;
    }
    return (uint16_t)(sign | q);
}

/* Exact bf16 -> float. */
static inline float ns_bf16_to_fp32(uint16_t h) {
    return ns__f32_from_bits((uint32_t)h << 16);
}

/* Float -> bf16, round to nearest even; NaN becomes a quiet NaN. */
static inline uint16_t ns_fp32_to_bf16(float f) {
    const uint32_t u = ns__f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t)((u >> 16) | 64u);
    }
    return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);
}

#endif /* NS_FP16_H */
