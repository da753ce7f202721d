/*
 * quant.c - reference dequantizers for every supported format, the
 * quantizers of the 32-element formats and of the activation formats, and
 * the public dispatch (see quant.h). K-quant and IQ4 quantizers live in
 * quant_k.c.
 *
 * Bit exactness: the dequantizers evaluate exactly the float expressions
 * llama.cpp evaluates (same operand order, a product rounded before the
 * add: separate statements keep compilers from fusing them into an FMA).
 * Thread safety: reentrant, no global mutable state.
 */
#include "quant.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "fp16.h"
#include "quant_blocks.h"
#include "quant_impl.h"

const int8_t ns__kvalues_iq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* ---- dequantization ------------------------------------------------------ */

static void dequant_f32(const void *vx, float *y, int64_t n) {
    memcpy(y, vx, (size_t)n * sizeof(float));
}

static void dequant_f16(const void *vx, float *y, int64_t n) {
    const uint8_t *x = vx;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, x + 2 * i, 2);
        y[i] = ns_fp16_to_fp32(h);
    }
}

static void dequant_bf16(const void *vx, float *y, int64_t n) {
    const uint8_t *x = vx;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, x + 2 * i, 2);
        y[i] = ns_bf16_to_fp32(h);
    }
}

static void dequant_q4_0(const void *vx, float *y, int64_t n) {
    const ns_block_q4_0 *x = vx;
    for (int64_t i = 0; i < n / NS_QK4_0; i++) {
        const float d = ns_fp16_to_fp32(x[i].d);
        for (int j = 0; j < NS_QK4_0 / 2; j++) {
            const int x0 = (x[i].qs[j] & 0x0F) - 8;
            const int x1 = (x[i].qs[j] >> 4) - 8;
            y[i * NS_QK4_0 + j] = (float)x0 * d;
            y[i * NS_QK4_0 + j + NS_QK4_0 / 2] = (float)x1 * d;
        }
    }
}

static void dequant_q4_1(const void *vx, float *y, int64_t n) {
    const ns_block_q4_1 *x = vx;
    for (int64_t i = 0; i < n / NS_QK4_1; i++) {
        const float d = ns_fp16_to_fp32(x[i].d);
        const float m = ns_fp16_to_fp32(x[i].m);
        for (int j = 0; j < NS_QK4_1 / 2; j++) {
            const float p0 = (float)(x[i].qs[j] & 0x0F) * d;
            const float p1 = (float)(x[i].qs[j] >> 4) * d;
            y[i * NS_QK4_1 + j] = p0 + m;
            y[i * NS_QK4_1 + j + NS_QK4_1 / 2] = p1 + m;
        }
    }
}

static void dequant_q5_0(const void *vx, float *y, int64_t n) {
    const ns_block_q5_0 *x = vx;
    for (int64_t i = 0; i < n / NS_QK5_0; i++) {
        const float d = ns_fp16_to_fp32(x[i].d);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof(qh));
        for (int j = 0; j < NS_QK5_0 / 2; j++) {
            const uint32_t xh0 = ((qh >> j) << 4) & 0x10;
            const uint32_t xh1 = (qh >> (j + 12)) & 0x10;
            const int x0 = (int)((x[i].qs[j] & 0x0Fu) | xh0) - 16;
            const int x1 = (int)((x[i].qs[j] >> 4) | xh1) - 16;
            y[i * NS_QK5_0 + j] = (float)x0 * d;
            y[i * NS_QK5_0 + j + NS_QK5_0 / 2] = (float)x1 * d;
        }
    }
}

static void dequant_q5_1(const void *vx, float *y, int64_t n) {
    const ns_block_q5_1 *x = vx;
    for (int64_t i = 0; i < n / NS_QK5_1; i++) {
        const float d = ns_fp16_to_fp32(x[i].d);
        const float m = ns_fp16_to_fp32(x[i].m);
        uint32_t qh;
        memcpy(&qh, x[i].qh, sizeof(qh));
        for (int j = 0; j < NS_QK5_1 / 2; j++) {
            const uint32_t xh0 = ((qh >> j) << 4) & 0x10;
            const uint32_t xh1 = (qh >> (j + 12)) & 0x10;
            const float p0 = (float)((x[i].qs[j] & 0x0Fu) | xh0) * d;
            const float p1 = (float)((x[i].qs[j] >> 4) | xh1) * d;
            y[i * NS_QK5_1 + j] = p0 + m;
            y[i * NS_QK5_1 + j + NS_QK5_1 / 2] = p1 + m;
        }
    }
}

static void dequant_q8_0(const void *vx, float *y, int64_t n) {
    const ns_block_q8_0 *x = vx;
    for (int64_t i = 0; i < n / NS_QK8_0; i++) {
        const float d = ns_fp16_to_fp32(x[i].d);
        for (int j = 0; j < NS_QK8_0; j++) {
            y[i * NS_QK8_0 + j] = (float)x[i].qs[j] * d;
        }
    }
}

static void dequant_q8_1(const void *vx, float *y, int64_t n) {
    const ns_block_q8_1 *x = vx;
    for (int64_t i = 0; i < n / NS_QK8_1; i++) {
        const float d = ns_fp16_to_fp32(x[i].d);
        for (int j = 0; j < NS_QK8_1; j++) {
            y[i * NS_QK8_1 + j] = (float)x[i].qs[j] * d;
        }
    }
}

static void dequant_q8_K(const void *vx, float *y, int64_t n) {
    const ns_block_q8_K *x = vx;
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        for (int j = 0; j < NS_QK_K; j++) {
            y[i * NS_QK_K + j] = x[i].d * (float)x[i].qs[j];
        }
    }
}

static void dequant_q2_K(const void *vx, float *y, int64_t n) {
    const ns_block_q2_K *x = vx;
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const float d = ns_fp16_to_fp32(x[i].d);
        const float min = ns_fp16_to_fp32(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        for (int c = 0; c < NS_QK_K; c += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                for (int half = 0; half < 2; half++) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * (float)(sc & 0xF);
                    const float ml = min * (float)(sc >> 4);
                    for (int l = 0; l < 16; l++) {
                        const float p = dl * (float)((q[l + 16 * half] >> shift) & 3);
                        *y++ = p - ml;
                    }
                }
                shift += 2;
            }
            q += 32;
        }
    }
}

/* Unpack the 16 6-bit Q3_K scales (still biased by 32). */
static void q3k_scales(const uint8_t *packed, int8_t out[16]) {
    for (int j = 0; j < 16; j++) {
        const int lo = j < 8 ? (packed[j] & 0xF) : (packed[j - 8] >> 4);
        const int hi = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
        out[j] = (int8_t)(lo | (hi << 4));
    }
}

void ns__dequantize_q3_K(const void *vx, float *y, int64_t n) {
    const ns_block_q3_K *x = vx;
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const float d_all = ns_fp16_to_fp32(x[i].d);
        const uint8_t *q = x[i].qs;
        const uint8_t *hm = x[i].hmask;
        int8_t scales[16];
        q3k_scales(x[i].scales, scales);
        uint8_t m = 1;
        int is = 0;
        for (int c = 0; c < NS_QK_K; c += 128) {
            int shift = 0;
            for (int j = 0; j < 4; j++) {
                for (int half = 0; half < 2; half++) {
                    const float dl = d_all * (float)(scales[is++] - 32);
                    for (int l = 16 * half; l < 16 * half + 16; l++) {
                        const int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
                        *y++ = dl * (float)v;
                    }
                }
                shift += 2;
                m = (uint8_t)(m << 1);
            }
            q += 32;
        }
    }
}

static void dequant_q4_K(const void *vx, float *y, int64_t n) {
    const ns_block_q4_K *x = vx;
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const uint8_t *q = x[i].qs;
        const float d = ns_fp16_to_fp32(x[i].d);
        const float min = ns_fp16_to_fp32(x[i].dmin);
        int is = 0;
        for (int j = 0; j < NS_QK_K; j += 64) {
            uint8_t sc, m;
            ns__get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc;
            const float m1 = min * (float)m;
            ns__get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc;
            const float m2 = min * (float)m;
            for (int l = 0; l < 32; l++) {
                const float p = d1 * (float)(q[l] & 0xF);
                *y++ = p - m1;
            }
            for (int l = 0; l < 32; l++) {
                const float p = d2 * (float)(q[l] >> 4);
                *y++ = p - m2;
            }
            q += 32;
            is += 2;
        }
    }
}

static void dequant_q5_K(const void *vx, float *y, int64_t n) {
    const ns_block_q5_K *x = vx;
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        const float d = ns_fp16_to_fp32(x[i].d);
        const float min = ns_fp16_to_fp32(x[i].dmin);
        int is = 0;
        uint8_t u1 = 1, u2 = 2;
        for (int j = 0; j < NS_QK_K; j += 64) {
            uint8_t sc, m;
            ns__get_scale_min_k4(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * (float)sc;
            const float m1 = min * (float)m;
            ns__get_scale_min_k4(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * (float)sc;
            const float m2 = min * (float)m;
            for (int l = 0; l < 32; l++) {
                const float p = d1 * (float)((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0));
                *y++ = p - m1;
            }
            for (int l = 0; l < 32; l++) {
                const float p = d2 * (float)((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0));
                *y++ = p - m2;
            }
            ql += 32;
            is += 2;
            u1 = (uint8_t)(u1 << 2);
            u2 = (uint8_t)(u2 << 2);
        }
    }
}

static void dequant_q6_K(const void *vx, float *y, int64_t n) {
    const ns_block_q6_K *x = vx;
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const float d = ns_fp16_to_fp32(x[i].d);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int c = 0; c < NS_QK_K; c += 128) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * (float)sc[is + 0] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

static void dequant_iq4_nl(const void *vx, float *y, int64_t n) {
    const ns_block_iq4_nl *x = vx;
    for (int64_t i = 0; i < n / NS_QK4_NL; i++) {
        const float d = ns_fp16_to_fp32(x[i].d);
        for (int j = 0; j < NS_QK4_NL / 2; j++) {
            y[j] = d * (float)ns__kvalues_iq4nl[x[i].qs[j] & 0xF];
            y[j + NS_QK4_NL / 2] = d * (float)ns__kvalues_iq4nl[x[i].qs[j] >> 4];
        }
        y += NS_QK4_NL;
    }
}

static void dequant_iq4_xs(const void *vx, float *y, int64_t n) {
    const ns_block_iq4_xs *x = vx;
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const float d = ns_fp16_to_fp32(x[i].d);
        const uint8_t *qs = x[i].qs;
        for (int ib = 0; ib < NS_QK_K / 32; ib++) {
            const int ls = ((x[i].scales_l[ib / 2] >> 4 * (ib % 2)) & 0xF) | (((x[i].scales_h >> 2 * ib) & 3) << 4);
            const float dl = d * (float)(ls - 32);
            for (int j = 0; j < 16; j++) {
                y[j] = dl * (float)ns__kvalues_iq4nl[qs[j] & 0xF];
                y[j + 16] = dl * (float)ns__kvalues_iq4nl[qs[j] >> 4];
            }
            y += 32;
            qs += 16;
        }
    }
}

/* ---- quantization of the 32-element formats ------------------------------ */

static void quant_f32(const float *x, void *vy, int64_t n) {
    memcpy(vy, x, (size_t)n * sizeof(float));
}

static void quant_f16(const float *x, void *vy, int64_t n) {
    uint8_t *y = vy;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = ns_fp32_to_fp16(x[i]);
        memcpy(y + 2 * i, &h, 2);
    }
}

static void quant_bf16(const float *x, void *vy, int64_t n) {
    uint8_t *y = vy;
    for (int64_t i = 0; i < n; i++) {
        const uint16_t h = ns_fp32_to_bf16(x[i]);
        memcpy(y + 2 * i, &h, 2);
    }
}

/* Symmetric grid l in [-nmax, nmax - 1] (Q4_0: 8, Q5_0: 16). Tries the
 * scales that map the largest-magnitude value near either end of the grid
 * and keeps the least-squares best; then rounds the scale to fp16 and picks
 * the nearest level for each element under that exact scale. Writes
 * L[i] = l + nmax and returns the fp16 scale bits. */
static uint16_t quant_sym_block(int n, int nmax, const float *x, uint8_t *L) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (!(amax >= NS__GROUP_MAX_EPS)) {
        memset(L, nmax, (size_t)n);
        return 0;
    }
    float best_scale = max / (float)-nmax; /* llama.cpp's choice */
    float best = -1.0f;                    /* largest sumlx^2 / suml2 seen */
    for (int side = 0; side < 2; side++) {
        for (int is = -10; is <= 10; is++) {
            const float iscale =
                side == 0 ? -((float)nmax + 0.1f * (float)is) / max : ((float)(nmax - 1) + 0.1f * (float)is) / max;
            float sumlx = 0, suml2 = 0;
            for (int i = 0; i < n; i++) {
                int l = ns__nearest_int(iscale * x[i]);
                l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
                sumlx += x[i] * (float)l;
                suml2 += (float)(l * l);
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2) {
                best = sumlx * sumlx / suml2;
                best_scale = sumlx / suml2;
            }
        }
    }
    const uint16_t dh = ns_fp32_to_fp16(best_scale);
    const float d = ns_fp16_to_fp32(dh);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < n; i++) {
        int l = ns__nearest_int(id * x[i]);
        l = l < -nmax ? -nmax : l > nmax - 1 ? nmax - 1 : l;
        L[i] = (uint8_t)(l + nmax);
    }
    return dh;
}

/* Affine grid x ~ d * l + m, l in [0, nmax] (Q4_1: 15, Q5_1: 31). Searches
 * grid widths around max - min, fits (d, m) by least squares for each level
 * assignment, keeps the best, then rounds d and m to fp16 and re-picks the
 * nearest level per element. */
static void quant_affine_block(int n, int nmax, const float *x, uint8_t *L, uint16_t *dh, uint16_t *mh) {
    float min = x[0], max = x[0];
    for (int i = 1; i < n; i++) {
        min = x[i] < min ? x[i] : min;
        max = x[i] > max ? x[i] : max;
    }
    if (!(max - min > 0)) {
        memset(L, 0, (size_t)n);
        *dh = 0;
        *mh = ns_fp32_to_fp16(min);
        return;
    }
    float sum_x = 0;
    for (int i = 0; i < n; i++) {
        sum_x += x[i];
    }
    float best_d = (max - min) / (float)nmax, best_m = min, best_err = INFINITY;
    uint8_t Laux[32];
    for (int is = -10; is <= 10; is++) {
        const float iscale = ((float)nmax + 0.1f * (float)is) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = ns__nearest_int(iscale * (x[i] - min));
            l = l < 0 ? 0 : l > nmax ? nmax : l;
            Laux[i] = (uint8_t)l;
            sum_l += (float)l;
            sum_l2 += (float)(l * l);
            sum_xl += (float)l * x[i];
        }
        const float D = (float)n * sum_l2 - sum_l * sum_l;
        if (!(D > 0)) {
            continue;
        }
        const float d = ((float)n * sum_xl - sum_x * sum_l) / D;
        const float m = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        float err = 0;
        for (int i = 0; i < n; i++) {
            const float diff = d * (float)Laux[i] + m - x[i];
            err += diff * diff;
        }
        if (err < best_err) {
            best_err = err;
            best_d = d;
            best_m = m;
        }
    }
    *dh = ns_fp32_to_fp16(best_d);
    *mh = ns_fp32_to_fp16(best_m);
    const float d = ns_fp16_to_fp32(*dh);
    const float m = ns_fp16_to_fp32(*mh);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int i = 0; i < n; i++) {
        int l = ns__nearest_int(id * (x[i] - m));
        l = l < 0 ? 0 : l > nmax ? nmax : l;
        L[i] = (uint8_t)l;
    }
}

static void quant_q4_0(const float *x, void *vy, int64_t n) {
    ns_block_q4_0 *y = vy;
    uint8_t L[NS_QK4_0];
    for (int64_t i = 0; i < n / NS_QK4_0; i++) {
        y[i].d = quant_sym_block(NS_QK4_0, 8, x + i * NS_QK4_0, L);
        for (int j = 0; j < NS_QK4_0 / 2; j++) {
            y[i].qs[j] = (uint8_t)(L[j] | (L[j + NS_QK4_0 / 2] << 4));
        }
    }
}

static void quant_q4_1(const float *x, void *vy, int64_t n) {
    ns_block_q4_1 *y = vy;
    uint8_t L[NS_QK4_1];
    for (int64_t i = 0; i < n / NS_QK4_1; i++) {
        quant_affine_block(NS_QK4_1, 15, x + i * NS_QK4_1, L, &y[i].d, &y[i].m);
        for (int j = 0; j < NS_QK4_1 / 2; j++) {
            y[i].qs[j] = (uint8_t)(L[j] | (L[j + NS_QK4_1 / 2] << 4));
        }
    }
}

static void pack_q5(const uint8_t *L, uint8_t qs[16], uint8_t qh_out[4]) {
    uint32_t qh = 0;
    for (int j = 0; j < 16; j++) {
        qs[j] = (uint8_t)((L[j] & 0xF) | ((L[j + 16] & 0xF) << 4));
        qh |= (uint32_t)((L[j] >> 4) & 1) << j;
        qh |= (uint32_t)((L[j + 16] >> 4) & 1) << (j + 16);
    }
    memcpy(qh_out, &qh, 4);
}

static void quant_q5_0(const float *x, void *vy, int64_t n) {
    ns_block_q5_0 *y = vy;
    uint8_t L[NS_QK5_0];
    for (int64_t i = 0; i < n / NS_QK5_0; i++) {
        y[i].d = quant_sym_block(NS_QK5_0, 16, x + i * NS_QK5_0, L);
        pack_q5(L, y[i].qs, y[i].qh);
    }
}

static void quant_q5_1(const float *x, void *vy, int64_t n) {
    ns_block_q5_1 *y = vy;
    uint8_t L[NS_QK5_1];
    for (int64_t i = 0; i < n / NS_QK5_1; i++) {
        quant_affine_block(NS_QK5_1, 31, x + i * NS_QK5_1, L, &y[i].d, &y[i].m);
        pack_q5(L, y[i].qs, y[i].qh);
    }
}

/* ---- activation formats (also used by the CPU dot products) -------------- */

void ns__quantize_q8_0(const float *x, void *vy, int64_t n) {
    ns_block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / NS_QK8_0; i++) {
        const float *xb = x + i * NS_QK8_0;
        float amax = 0;
        for (int j = 0; j < NS_QK8_0; j++) {
            amax = fmaxf(amax, fabsf(xb[j]));
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ns_fp32_to_fp16(d);
        for (int j = 0; j < NS_QK8_0; j++) {
            y[i].qs[j] = (int8_t)ns__nearest_int(xb[j] * id);
        }
    }
}

void ns__quantize_q8_1(const float *x, void *vy, int64_t n) {
    ns_block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / NS_QK8_1; i++) {
        const float *xb = x + i * NS_QK8_1;
        float amax = 0;
        for (int j = 0; j < NS_QK8_1; j++) {
            amax = fmaxf(amax, fabsf(xb[j]));
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[i].d = ns_fp32_to_fp16(d);
        int sum = 0;
        for (int j = 0; j < NS_QK8_1; j++) {
            y[i].qs[j] = (int8_t)ns__nearest_int(xb[j] * id);
            sum += y[i].qs[j];
        }
        y[i].s = ns_fp32_to_fp16((float)sum * d);
    }
}

void ns__quantize_q8_K(const float *x, void *vy, int64_t n) {
    ns_block_q8_K *y = vy;
    for (int64_t i = 0; i < n / NS_QK_K; i++) {
        const float *xb = x + i * NS_QK_K;
        float max = 0, amax = 0;
        for (int j = 0; j < NS_QK_K; j++) {
            if (fabsf(xb[j]) > amax) {
                amax = fabsf(xb[j]);
                max = xb[j];
            }
        }
        if (amax == 0.0f) {
            memset(&y[i], 0, sizeof(y[i]));
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < NS_QK_K; j++) {
            const int v = ns__nearest_int(iscale * xb[j]);
            y[i].qs[j] = (int8_t)(v < 127 ? v : 127);
        }
        for (int j = 0; j < NS_QK_K / 16; j++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) {
                sum += y[i].qs[16 * j + l];
            }
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1.0f / iscale;
    }
}

/* ---- dispatch ------------------------------------------------------------ */

typedef void (*dequant_fn)(const void *, float *, int64_t);
typedef void (*quant_fn)(const float *, void *, int64_t);

typedef struct quant_entry {
    dequant_fn to_float;
    quant_fn from_float;
} quant_entry;

static const quant_entry g_quant[NS_TYPE_COUNT] = {
    [NS_TYPE_F32] = {dequant_f32, quant_f32},
    [NS_TYPE_F16] = {dequant_f16, quant_f16},
    [NS_TYPE_BF16] = {dequant_bf16, quant_bf16},
    [NS_TYPE_Q4_0] = {dequant_q4_0, quant_q4_0},
    [NS_TYPE_Q4_1] = {dequant_q4_1, quant_q4_1},
    [NS_TYPE_Q5_0] = {dequant_q5_0, quant_q5_0},
    [NS_TYPE_Q5_1] = {dequant_q5_1, quant_q5_1},
    [NS_TYPE_Q8_0] = {dequant_q8_0, ns__quantize_q8_0},
    [NS_TYPE_Q8_1] = {dequant_q8_1, ns__quantize_q8_1},
    [NS_TYPE_Q2_K] = {dequant_q2_K, ns__quantize_q2_K},
    [NS_TYPE_Q3_K] = {ns__dequantize_q3_K, ns__quantize_q3_K},
    [NS_TYPE_Q4_K] = {dequant_q4_K, ns__quantize_q4_K},
    [NS_TYPE_Q5_K] = {dequant_q5_K, ns__quantize_q5_K},
    [NS_TYPE_Q6_K] = {dequant_q6_K, ns__quantize_q6_K},
    [NS_TYPE_Q8_K] = {dequant_q8_K, ns__quantize_q8_K},
    [NS_TYPE_IQ4_NL] = {dequant_iq4_nl, ns__quantize_iq4_nl},
    [NS_TYPE_IQ4_XS] = {dequant_iq4_xs, ns__quantize_iq4_xs},
};

static const quant_entry *quant_lookup(ns_type t) {
    if ((uint32_t)t >= NS_TYPE_COUNT || g_quant[t].to_float == NULL) {
        return NULL;
    }
    return &g_quant[t];
}

bool ns_quant_supported(ns_type t) {
    return quant_lookup(t) != NULL;
}

/* Shared argument checks: NS_OK when (t, n, pointers) are usable. */
static ns_status quant_check(ns_type t, const void *a, const void *b, int64_t n, const quant_entry **out) {
    const quant_entry *e = quant_lookup(t);
    if (e == NULL) {
        return NS_ERR_UNSUPPORTED;
    }
    const ns_type_traits *tr = ns_type_get((uint32_t)t);
    if (n < 0 || n % tr->blck_size != 0 || (n > 0 && (a == NULL || b == NULL))) {
        return NS_ERR_INVALID_ARG;
    }
    *out = e;
    return NS_OK;
}

ns_status ns_dequantize_row(ns_type t, const void *src, float *dst, int64_t n) {
    const quant_entry *e = NULL;
    NS_TRY(quant_check(t, src, dst, n, &e));
    if (n > 0) {
        e->to_float(src, dst, n);
    }
    return NS_OK;
}

ns_status ns_quantize_row(ns_type t, const float *src, void *dst, int64_t n) {
    const quant_entry *e = NULL;
    NS_TRY(quant_check(t, src, dst, n, &e));
    if (n > 0) {
        e->from_float(src, dst, n);
    }
    return NS_OK;
}

ns_status ns_dequantize_tensor(ns_type t, const void *src, float *dst, int64_t n_rows, int64_t row_len) {
    const quant_entry *e = NULL;
    NS_TRY(quant_check(t, src, dst, row_len, &e));
    if (n_rows < 0) {
        return NS_ERR_INVALID_ARG;
    }
    const size_t row_bytes = ns_type_row_size(t, row_len);
    for (int64_t r = 0; r < n_rows && row_len > 0; r++) {
        e->to_float((const uint8_t *)src + (size_t)r * row_bytes, dst + r * row_len, row_len);
    }
    return NS_OK;
}

ns_status ns_quantize_tensor(ns_type t, const float *src, void *dst, int64_t n_rows, int64_t row_len) {
    const quant_entry *e = NULL;
    NS_TRY(quant_check(t, src, dst, row_len, &e));
    if (n_rows < 0) {
        return NS_ERR_INVALID_ARG;
    }
    const size_t row_bytes = ns_type_row_size(t, row_len);
    for (int64_t r = 0; r < n_rows && row_len > 0; r++) {
        e->from_float(src + r * row_len, (uint8_t *)dst + (size_t)r * row_bytes, row_len);
    }
    return NS_OK;
}
