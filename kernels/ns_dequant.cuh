/*
 * ns_dequant.cuh - ggml block layouts as device (and host) code: dequantize
 * 8 consecutive elements of one weight row.
 *
 * Every weight kernel (embedding, fused matmul, dequantize-to-fp16 for the
 * GEMM path) reads weights only through ns__dq8<TYPE>(row, e, K, out): the 8
 * elements e..e+7 of a row of K elements, e a multiple of 8. For block types
 * K is a multiple of the block size (32 or 256), so 8 elements never
 * straddle a block. For F32/F16/BF16 elements at or past K read as 0 and
 * are never loaded, so any K works (stories260K's 172-wide FFN).
 *
 * The functions are __host__ __device__ so the host test
 * (tests/gpu/test_cuda_dequant_host.cu) checks them bit for bit against the
 * reference vectors without a GPU. Formulas follow ggml's reference
 * dequantizers (block layouts as in engine/quant_blocks.h), written out per
 * element: for each format the comment gives the element -> (byte, shift,
 * scale) mapping used.
 *
 * Internal to kernels/; include only from .cu files.
 */
#ifndef NS_DEQUANT_CUH
#define NS_DEQUANT_CUH

#include <stdint.h>
#include <string.h>

#include <type_traits>

#include <cuda_fp16.h>

#include "ns_types.h"

#define NS_HD __host__ __device__ __forceinline__

/* ---- scalar helpers ------------------------------------------------------- */

NS_HD float ns__h2f(uint16_t h) {
#ifdef __CUDA_ARCH__
    return __half2float(__ushort_as_half(h));
#else
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do {
                man <<= 1;
                e++;
            } while ((man & 0x400) == 0);
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

NS_HD float ns__bf2f(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
#ifdef __CUDA_ARCH__
    return __uint_as_float(bits);
#else
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

/* Little-endian loads. Every 2-byte field in the formats below sits at an
 * even offset of an even-sized block, and rows start at even offsets, so the
 * 16-bit load is aligned. Wider fields are assembled from bytes. */
NS_HD uint16_t ns__ld16(const uint8_t *p) {
    return *(const uint16_t *)p;
}
NS_HD uint32_t ns__ld32u(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* IQ4_NL / IQ4_XS non-linear code book. */
NS_HD int ns__iq4nl(int i) {
    /* A switch keeps the table out of constant memory so host and device share it. */
    switch (i & 15) {
    case 0:
        return -127;
    case 1:
        return -104;
    case 2:
        return -83;
    case 3:
        return -65;
    case 4:
        return -49;
    case 5:
        return -35;
    case 6:
        return -22;
    case 7:
        return -10;
    case 8:
        return 1;
    case 9:
        return 13;
    case 10:
        return 25;
    case 11:
        return 38;
    case 12:
        return 53;
    case 13:
        return 69;
    case 14:
        return 89;
    default:
        return 113;
    }
}

/* K-quant 6-bit scale/min pairs packed in 12 bytes (Q4_K, Q5_K), j < 8. */
NS_HD void ns__scale_min_k4(int j, const uint8_t *q, int *d, int *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* ---- per-type 8-element dequantizers ------------------------------------- */

template <int T> struct ns__dq;

/* F32: plain floats. */
template <> struct ns__dq<NS_TYPE_F32> {
    static constexpr int blck = 1;
    static constexpr int bytes = 4;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t K, float *y) {
        const float *r = (const float *)row;
        for (int i = 0; i < 8; i++) {
            y[i] = e + i < K ? r[e + i] : 0.0f;
        }
    }
};

template <> struct ns__dq<NS_TYPE_F16> {
    static constexpr int blck = 1;
    static constexpr int bytes = 2;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t K, float *y) {
        const uint16_t *r = (const uint16_t *)row;
        for (int i = 0; i < 8; i++) {
            y[i] = e + i < K ? ns__h2f(r[e + i]) : 0.0f;
        }
    }
};

template <> struct ns__dq<NS_TYPE_BF16> {
    static constexpr int blck = 1;
    static constexpr int bytes = 2;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t K, float *y) {
        const uint16_t *r = (const uint16_t *)row;
        for (int i = 0; i < 8; i++) {
            y[i] = e + i < K ? ns__bf2f(r[e + i]) : 0.0f;
        }
    }
};

/* Q4_0 {f16 d; u8 qs[16]}: j < 16 -> (qs[j] & 15) - 8, j >= 16 -> (qs[j-16] >> 4) - 8; times d. */
template <> struct ns__dq<NS_TYPE_Q4_0> {
    static constexpr int blck = 32;
    static constexpr int bytes = 18;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t, float *y) {
        const uint8_t *b = row + (e / 32) * bytes;
        const int j = (int)(e % 32);
        const float d = ns__h2f(ns__ld16(b));
        const uint8_t *qs = b + 2 + (j & 15);
        const int sh = j < 16 ? 0 : 4;
        for (int i = 0; i < 8; i++) {
            y[i] = (float)(((qs[i] >> sh) & 15) - 8) * d;
        }
    }
};

/* Q4_1 {f16 d; f16 m; u8 qs[16]}: nibble * d + m. */
template <> struct ns__dq<NS_TYPE_Q4_1> {
    static constexpr int blck = 32;
    static constexpr int bytes = 20;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t, float *y) {
        const uint8_t *b = row + (e / 32) * bytes;
        const int j = (int)(e % 32);
        const float d = ns__h2f(ns__ld16(b));
        const float m = ns__h2f(ns__ld16(b + 2));
        const uint8_t *qs = b + 4 + (j & 15);
        const int sh = j < 16 ? 0 : 4;
        for (int i = 0; i < 8; i++) {
            y[i] = (float)((qs[i] >> sh) & 15) * d + m;
        }
    }
};

/* Q5_0 {f16 d; u8 qh[4]; u8 qs[16]}: element j's 5th bit is bit j of qh (a
 * little-endian u32); value (nibble | bit << 4) - 16, times d. */
template <> struct ns__dq<NS_TYPE_Q5_0> {
    static constexpr int blck = 32;
    static constexpr int bytes = 22;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t, float *y) {
        const uint8_t *b = row + (e / 32) * bytes;
        const int j = (int)(e % 32);
        const float d = ns__h2f(ns__ld16(b));
        const uint32_t qh = ns__ld32u(b + 2);
        const uint8_t *qs = b + 6 + (j & 15);
        const int sh = j < 16 ? 0 : 4;
        for (int i = 0; i < 8; i++) {
            const int q = ((qs[i] >> sh) & 15) | (int)(((qh >> (j + i)) & 1) << 4);
            y[i] = (float)(q - 16) * d;
        }
    }
};

/* Q5_1 {f16 d; f16 m; u8 qh[4]; u8 qs[16]}: (nibble | bit << 4) * d + m. */
template <> struct ns__dq<NS_TYPE_Q5_1> {
    static constexpr int blck = 32;
    static constexpr int bytes = 24;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t, float *y) {
        const uint8_t *b = row + (e / 32) * bytes;
        const int j = (int)(e % 32);
        const float d = ns__h2f(ns__ld16(b));
        const float m = ns__h2f(ns__ld16(b + 2));
        const uint32_t qh = ns__ld32u(b + 4);
        const uint8_t *qs = b + 8 + (j & 15);
        const int sh = j < 16 ? 0 : 4;
        for (int i = 0; i < 8; i++) {
            const int q = ((qs[i] >> sh) & 15) | (int)(((qh >> (j + i)) & 1) << 4);
            y[i] = (float)q * d + m;
        }
    }
};

/* Q8_0 {f16 d; i8 qs[32]}. */
template <> struct ns__dq<NS_TYPE_Q8_0> {
    static constexpr int blck = 32;
    static constexpr int bytes = 34;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t, float *y) {
        const uint8_t *b = row + (e / 32) * bytes;
        const int j = (int)(e % 32);
        const float d = ns__h2f(ns__ld16(b));
        const int8_t *qs = (const int8_t *)(b + 2 + j);
        for (int i = 0; i < 8; i++) {
            y[i] = (float)qs[i] * d;
        }
    }
};

/* Q2_K {u8 scales[16]; u8 qs[64]; f16 d; f16 dmin}. Element e: n = e/128,
 * j = (e%128)/32, h = (e%32)/16, l = e%16; q = (qs[32n + 16h + l] >> 2j) & 3;
 * sc = scales[8n + 2j + h]; y = d*(sc & 15)*q - dmin*(sc >> 4). */
template <> struct ns__dq<NS_TYPE_Q2_K> {
    static constexpr int blck = 256;
    static constexpr int bytes = 84;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t, float *y) {
        const uint8_t *b = row + (e / 256) * bytes;
        const int r = (int)(e % 256);
        const int n = r / 128, j = (r % 128) / 32, h = (r % 32) / 16, l = r % 16;
        const float d = ns__h2f(ns__ld16(b + 80));
        const float dmin = ns__h2f(ns__ld16(b + 82));
        const int sc = b[8 * n + 2 * j + h];
        const float dl = d * (float)(sc & 15);
        const float ml = dmin * (float)(sc >> 4);
        const uint8_t *q = b + 16 + 32 * n + 16 * h + l;
        for (int i = 0; i < 8; i++) {
            y[i] = dl * (float)((q[i] >> (2 * j)) & 3) - ml;
        }
    }
};

/* Q3_K {u8 hmask[32]; u8 qs[64]; u8 scales[12]; f16 d}. Element e: n = e/128,
 * j = (e%128)/32, h = (e%32)/16, l = e%16; low 2 bits (qs[32n + 16h + l] >>
 * 2j) & 3, minus 4 unless bit (4n + j) of hmask[16h + l] is set; 6-bit scale
 * s = 8n + 2j + h: low nibble of scales[s] (s < 8) or scales[s-8] >> 4, high
 * two bits (scales[8 + s%4] >> 2(s/4)) & 3; y = d * (scale - 32) * q. */
template <> struct ns__dq<NS_TYPE_Q3_K> {
    static constexpr int blck = 256;
    static constexpr int bytes = 110;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t, float *y) {
        const uint8_t *b = row + (e / 256) * bytes;
        const int r = (int)(e % 256);
        const int n = r / 128, j = (r % 128) / 32, h = (r % 32) / 16, l = r % 16;
        const uint8_t *hm = b + 16 * h + l;
        const uint8_t *q = b + 32 + 32 * n + 16 * h + l;
        const uint8_t *scales = b + 96;
        const float d = ns__h2f(ns__ld16(b + 108));
        const int s = 8 * n + 2 * j + h;
        const int lo = s < 8 ? (scales[s] & 15) : (scales[s - 8] >> 4);
        const int hi = (scales[8 + (s % 4)] >> (2 * (s / 4))) & 3;
        const float dl = d * (float)((lo | (hi << 4)) - 32);
        const int mbit = 1 << (4 * n + j);
        for (int i = 0; i < 8; i++) {
            const int qv = ((q[i] >> (2 * j)) & 3) - ((hm[i] & mbit) ? 0 : 4);
            y[i] = dl * (float)qv;
        }
    }
};

/* Q4_K {f16 d; f16 dmin; u8 scales[12]; u8 qs[128]}. Element e: g = e/64,
 * h = (e%64)/32, l = e%32; nibble h of qs[32g + l]; scale/min pair 2g + h. */
template <> struct ns__dq<NS_TYPE_Q4_K> {
    static constexpr int blck = 256;
    static constexpr int bytes = 144;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t, float *y) {
        const uint8_t *b = row + (e / 256) * bytes;
        const int r = (int)(e % 256);
        const int g = r / 64, h = (r % 64) / 32, l = r % 32;
        const float d = ns__h2f(ns__ld16(b));
        const float dmin = ns__h2f(ns__ld16(b + 2));
        int sc, mn;
        ns__scale_min_k4(2 * g + h, b + 4, &sc, &mn);
        const float d1 = d * (float)sc, m1 = dmin * (float)mn;
        const uint8_t *q = b + 16 + 32 * g + l;
        for (int i = 0; i < 8; i++) {
            y[i] = d1 * (float)((q[i] >> (4 * h)) & 15) - m1;
        }
    }
};

/* Q5_K {f16 d; f16 dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]}. As Q4_K plus
 * a 5th bit: bit (2g + h) of qh[l]. */
template <> struct ns__dq<NS_TYPE_Q5_K> {
    static constexpr int blck = 256;
    static constexpr int bytes = 176;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t, float *y) {
        const uint8_t *b = row + (e / 256) * bytes;
        const int r = (int)(e % 256);
        const int g = r / 64, h = (r % 64) / 32, l = r % 32;
        const float d = ns__h2f(ns__ld16(b));
        const float dmin = ns__h2f(ns__ld16(b + 2));
        int sc, mn;
        ns__scale_min_k4(2 * g + h, b + 4, &sc, &mn);
        const float d1 = d * (float)sc, m1 = dmin * (float)mn;
        const uint8_t *qh = b + 16 + l;
        const uint8_t *q = b + 48 + 32 * g + l;
        const int hb = 2 * g + h;
        for (int i = 0; i < 8; i++) {
            const int qv = ((q[i] >> (4 * h)) & 15) | (((qh[i] >> hb) & 1) << 4);
            y[i] = d1 * (float)qv - m1;
        }
    }
};

/* Q6_K {u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d}. Element e: n = e/128,
 * k = (e%128)/32, l = e%32; low nibble (k < 2) or high nibble (k >= 2) of
 * ql[64n + 32(k&1) + l]; high two bits (qh[32n + l] >> 2k) & 3; value - 32,
 * times d * scales[8n + 2k + l/16]. */
template <> struct ns__dq<NS_TYPE_Q6_K> {
    static constexpr int blck = 256;
    static constexpr int bytes = 210;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t, float *y) {
        const uint8_t *b = row + (e / 256) * bytes;
        const int r = (int)(e % 256);
        const int n = r / 128, k = (r % 128) / 32, l = r % 32;
        const uint8_t *ql = b + 64 * n + 32 * (k & 1) + l;
        const uint8_t *qh = b + 128 + 32 * n + l;
        const int8_t *sc = (const int8_t *)(b + 192);
        const float d = ns__h2f(ns__ld16(b + 208));
        /* l..l+7 stays within one 16-element scale group (l is a multiple of 8). */
        const float dl = d * (float)sc[8 * n + 2 * k + l / 16];
        const int sh = k >= 2 ? 4 : 0;
        for (int i = 0; i < 8; i++) {
            const int qv = (((ql[i] >> sh) & 15) | (((qh[i] >> (2 * k)) & 3) << 4)) - 32;
            y[i] = dl * (float)qv;
        }
    }
};

/* IQ4_NL {f16 d; u8 qs[16]}: d * codebook[nibble], nibbles as Q4_0. */
template <> struct ns__dq<NS_TYPE_IQ4_NL> {
    static constexpr int blck = 32;
    static constexpr int bytes = 18;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t, float *y) {
        const uint8_t *b = row + (e / 32) * bytes;
        const int j = (int)(e % 32);
        const float d = ns__h2f(ns__ld16(b));
        const uint8_t *qs = b + 2 + (j & 15);
        const int sh = j < 16 ? 0 : 4;
        for (int i = 0; i < 8; i++) {
            y[i] = d * (float)ns__iq4nl(qs[i] >> sh);
        }
    }
};

/* IQ4_XS {f16 d; u16 scales_h; u8 scales_l[4]; u8 qs[128]}: sub-block ib =
 * e/32 (of 8) has 6-bit scale ls = ((scales_l[ib/2] >> 4(ib%2)) & 15) |
 * (((scales_h >> 2ib) & 3) << 4); within it, nibbles as IQ4_NL over
 * qs[16ib..16ib+16); y = d * (ls - 32) * codebook[nibble]. */
template <> struct ns__dq<NS_TYPE_IQ4_XS> {
    static constexpr int blck = 256;
    static constexpr int bytes = 136;
    static NS_HD void run(const uint8_t *row, int64_t e, int64_t, float *y) {
        const uint8_t *b = row + (e / 256) * bytes;
        const int r = (int)(e % 256);
        const int ib = r / 32, j = r % 32;
        const float d = ns__h2f(ns__ld16(b));
        const int sh_h = ns__ld16(b + 2);
        const int ls = ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | (((sh_h >> (2 * ib)) & 3) << 4);
        const float dl = d * (float)(ls - 32);
        const uint8_t *qs = b + 8 + 16 * ib + (j & 15);
        const int sh = j < 16 ? 0 : 4;
        for (int i = 0; i < 8; i++) {
            y[i] = dl * (float)ns__iq4nl(qs[i] >> sh);
        }
    }
};

/* Bytes of one row of K elements (K a multiple of the block size). */
template <int T> NS_HD int64_t ns__row_bytes(int64_t K) {
    return K / ns__dq<T>::blck * ns__dq<T>::bytes;
}

/* Call f(std::integral_constant<int, T>{}) for the runtime `type` (a generic
 * lambda reads T as decltype(tag)::value); returns false for unsupported
 * types. Keeps the list of types in one place. */
#define NS__FOR_EACH_WEIGHT_TYPE(X)                                                                                    \
    X(F32)                                                                                                             \
    X(F16) X(BF16) X(Q4_0) X(Q4_1) X(Q5_0) X(Q5_1) X(Q8_0) X(Q2_K) X(Q3_K) X(Q4_K) X(Q5_K) X(Q6_K) X(IQ4_NL) X(IQ4_XS)

template <typename F> static inline bool ns__dispatch_type(ns_type type, F &&f) {
    switch (type) {
#define NS__CASE(name)                                                                                                 \
    case NS_TYPE_##name:                                                                                               \
        f(std::integral_constant<int, NS_TYPE_##name>{});                                                              \
        return true;
        NS__FOR_EACH_WEIGHT_TYPE(NS__CASE)
#undef NS__CASE
    default:
        return false;
    }
}

#endif /* NS_DEQUANT_CUH */
