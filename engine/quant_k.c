/*
 * quant_k.c - reference quantizers for the K-quants (Q2_K..Q6_K) and the
 * non-linear 4-bit formats (IQ4_NL, IQ4_XS).
 *
 * The algorithms follow llama.cpp's reference quantizers (the same searches,
 * written independently):
 *   - Q2_K, Q4_K, Q5_K: per sub-block an affine fit (scale, min) searched
 *     over a range of grid widths with least-squares refits
 *     (qkx2_quants), then the sub-block scales and mins are themselves
 *     quantized to 4 or 6 bits against a super-block fp16 scale, and the
 *     elements are re-quantized against the final scales;
 *   - Q3_K, Q6_K: symmetric per sub-block search (qx_quants) weighting
 *     errors by x^2, the sub-block scales quantized the same way (Q3_K
 *     searches its 6-bit scale grid too, as llama.cpp's imatrix path does);
 *   - IQ4_NL, IQ4_XS: scale search over the non-uniform 16-level table.
 * Thread safety: reentrant; all scratch is on the stack.
 */
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "fp16.h"
#include "quant_blocks.h"
#include "quant_impl.h"

static inline int clampi(int v, int lo, int hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Symmetric quantization of x[0..n) to l in [-nmax, nmax - 1] with weights
 * w (x^2 when w is NULL). Tries 19 grid scales around the one mapping the
 * largest magnitude to -nmax and keeps the best weighted least-squares
 * scale. Writes L[i] = l + nmax and returns the scale. */
static float qx_quants(int n, int nmax, const float *x, int8_t *L, const float *w) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (!(amax >= NS__GROUP_MAX_EPS)) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = clampi(ns__nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        const float wi = w ? w[i] : x[i] * x[i];
        sumlx += wi * x[i] * (float)l;
        suml2 += wi * (float)(l * l);
    }
    float scale = suml2 > 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) {
            continue;
        }
        iscale = -((float)nmax + 0.1f * (float)is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(ns__nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float wi = w ? w[i] : x[i] * x[i];
            sumlx += wi * x[i] * (float)l;
            suml2 += wi * (float)(l * l);
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                L[i] = (int8_t)(nmax + clampi(ns__nearest_int(iscale * x[i]), -nmax, nmax - 1));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Affine quantization x ~ scale * l - min_out, l in [0, nmax], min_out >= 0
 * (the K-quant convention: the offset is always subtracted). Starts from the
 * full-range grid, then tries nstep + 1 grid widths (nmax + rmin + k * rdelta
 * levels over max - min), refitting scale and offset by weighted least
 * squares for each level assignment; keeps the lowest weighted error
 * (absolute when use_mad, squared otherwise). */
static float qkx2_quants(int n, int nmax, const float *x, const float *w, uint8_t *L, float *min_out, uint8_t *Laux,
                         float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = w[0], sum_x = w[0] * x[0];
    for (int i = 1; i < n; i++) {
        min = x[i] < min ? x[i] : min;
        max = x[i] > max ? x[i] : max;
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) {
        min = 0;
    }
    if (!(max > min)) {
        memset(L, 0, (size_t)n);
        *min_out = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)clampi(ns__nearest_int(iscale * (x[i] - min)), 0, nmax);
        float diff = scale * (float)L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_error += w[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * (float)is + (float)nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = clampi(ns__nearest_int(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)(l * l);
            sum_xl += w[i] * (float)l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * (float)Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                cur_error += w[i] * diff;
            }
            if (cur_error < best_error) {
                memcpy(L, Laux, (size_t)n);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *min_out = -min;
    return scale;
}

/* Pack 256 2-bit values: byte l of each 32-byte group holds elements
 * l, l + 32, l + 64, l + 96 of its 128-element half. */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < NS_QK_K; j += 128) {
        for (int l = 0; l < 32; l++) {
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
        }
    }
}

void ns__quantize_q2_K(const float *x, void *vy, int64_t n) {
    ns_block_q2_K *y = vy;
    uint8_t L[NS_QK_K], Laux[16];
    float w[16], mins[NS_QK_K / 16], scales[NS_QK_K / 16];
    for (int64_t i = 0; i < n / NS_QK_K; i++, x += NS_QK_K) {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < NS_QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) {
                w[l] = fabsf(x[16 * j + l]);
            }
            scales[j] = qkx2_quants(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            max_scale = scales[j] > max_scale ? scales[j] : max_scale;
            max_min = mins[j] > max_min ? mins[j] : max_min;
        }
        /* Sub-block scales and mins on 4-bit grids against the fp16-rounded
         * super-block scales (so fp16 rounding is accounted for). When the
         * scale underflows fp16, the block decodes to zero. */
        y[i].d = ns_fp32_to_fp16(max_scale / 15.0f);
        y[i].dmin = ns_fp32_to_fp16(max_min / 15.0f);
        const float dd = ns_fp16_to_fp32(y[i].d);
        float dm = ns_fp16_to_fp32(y[i].dmin);
        if (!(dd > 0)) {
            y[i].d = 0;
            y[i].dmin = 0;
            dm = 0;
        }
        for (int j = 0; j < NS_QK_K / 16; j++) {
            const int ls = dd > 0 ? clampi(ns__nearest_int(scales[j] / dd), 0, 15) : 0;
            const int lm = dm > 0 ? clampi(ns__nearest_int(mins[j] / dm), 0, 15) : 0;
            y[i].scales[j] = (uint8_t)(ls | (lm << 4));
        }
        for (int j = 0; j < NS_QK_K / 16; j++) {
            const float d = dd * (float)(y[i].scales[j] & 0xF);
            if (d == 0.0f) {
                continue;
            }
            const float m = dm * (float)(y[i].scales[j] >> 4);
            for (int l = 0; l < 16; l++) {
                L[16 * j + l] = (uint8_t)clampi(ns__nearest_int((x[16 * j + l] + m) / d), 0, 3);
            }
        }
        pack_2bit(L, y[i].qs);
    }
}

/* llama.cpp's reference Q3_K sub-block search: start from the grid that maps
 * the largest magnitude to -nmax, then move single elements to the level
 * that most improves the x^2-weighted least-squares fit (up to 5 passes).
 * Writes L[i] = l + nmax and returns the scale. */
static float q3_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (!(amax >= NS__GROUP_MAX_EPS)) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    const float iscale = (float)-nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = clampi(ns__nearest_int(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * (float)l;
        suml2 += w * (float)(l * l);
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * (float)L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * (float)(L[i] * L[i]);
                const int new_l = clampi(ns__nearest_int(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (new_l != L[i]) {
                    slx += w * x[i] * (float)new_l;
                    sl2 += w * (float)(new_l * new_l);
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed++;
                    }
                }
            }
        }
        if (n_changed == 0) {
            break;
        }
    }
    for (int i = 0; i < n; i++) {
        L[i] = (int8_t)(L[i] + nmax);
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Encode one Q3_K block from 16 sub-block scales: the scales go on a 6-bit
 * signed grid (searched when search_scales, else max-mapped), then every
 * element takes its nearest level under the final scale. */
static void q3k_encode(const float *x, const float *scales, const float *sw, bool search_scales, ns_block_q3_K *y) {
    int8_t Ls[NS_QK_K / 16], L[NS_QK_K];
    float d_block = 0.0f;
    if (search_scales) {
        d_block = qx_quants(NS_QK_K / 16, 32, scales, Ls, sw);
    } else {
        float max_scale = 0, amax = 0;
        for (int j = 0; j < NS_QK_K / 16; j++) {
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        const float iscale = max_scale != 0.0f ? -32.0f / max_scale : 0.0f;
        for (int j = 0; j < NS_QK_K / 16; j++) {
            Ls[j] = (int8_t)(clampi(ns__nearest_int(iscale * scales[j]), -32, 31) + 32);
        }
        d_block = max_scale != 0.0f ? 1 / iscale : 0.0f;
    }
    memset(y->scales, 0, sizeof(y->scales));
    for (int j = 0; j < NS_QK_K / 16; j++) {
        const int l = Ls[j];
        if (j < 8) {
            y->scales[j] = (uint8_t)(l & 0xF);
        } else {
            y->scales[j - 8] |= (uint8_t)((l & 0xF) << 4);
        }
        y->scales[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
    }
    y->d = ns_fp32_to_fp16(d_block);
    const float dd = ns_fp16_to_fp32(y->d);
    for (int j = 0; j < NS_QK_K / 16; j++) {
        const float d = dd * (float)(Ls[j] - 32);
        for (int l = 0; l < 16; l++) {
            L[16 * j + l] = d == 0.0f ? 4 : (int8_t)(clampi(ns__nearest_int(x[16 * j + l] / d), -4, 3) + 4);
        }
    }
    /* High bit of element j goes to bit (j / 32) of hmask[j % 32]. */
    memset(y->hmask, 0, sizeof(y->hmask));
    uint8_t Lu[NS_QK_K];
    for (int j = 0; j < NS_QK_K; j++) {
        int l = L[j];
        if (l > 3) {
            y->hmask[j % 32] |= (uint8_t)(1u << (j / 32));
            l -= 4;
        }
        Lu[j] = (uint8_t)l;
    }
    pack_2bit(Lu, y->qs);
}

static float block_sq_err(const float *x, const float *y, int n) {
    float e = 0;
    for (int i = 0; i < n; i++) {
        e += (x[i] - y[i]) * (x[i] - y[i]);
    }
    return e;
}

/* Q3_K: two candidate encodings per super-block (llama.cpp's reference
 * search, and the grid search its imatrix path uses), keep the one with the
 * lower squared error. */
void ns__quantize_q3_K(const float *x, void *vy, int64_t n) {
    ns_block_q3_K *y = vy;
    int8_t L[NS_QK_K];
    float scales[NS_QK_K / 16], sw[NS_QK_K / 16], w[16], deq[NS_QK_K];
    for (int64_t i = 0; i < n / NS_QK_K; i++, x += NS_QK_K) {
        ns_block_q3_K a, b;
        for (int j = 0; j < NS_QK_K / 16; j++) {
            scales[j] = q3_quants(16, 4, x + 16 * j, L + 16 * j);
        }
        q3k_encode(x, scales, NULL, false, &a);
        for (int j = 0; j < NS_QK_K / 16; j++) {
            float sumw = 0;
            for (int l = 0; l < 16; l++) {
                w[l] = x[16 * j + l] * x[16 * j + l];
                sumw += w[l];
            }
            sw[j] = sumw;
            scales[j] = qx_quants(16, 4, x + 16 * j, L + 16 * j, w);
        }
        q3k_encode(x, scales, sw, true, &b);
        ns__dequantize_q3_K(&a, deq, NS_QK_K);
        const float ea = block_sq_err(x, deq, NS_QK_K);
        ns__dequantize_q3_K(&b, deq, NS_QK_K);
        const float eb = block_sq_err(x, deq, NS_QK_K);
        y[i] = eb < ea ? b : a;
    }
}

/* Pack 8 6-bit scales and mins into the 12-byte K4 layout. */
static void pack_scale_min_k4(const uint8_t ls[8], const uint8_t lm[8], uint8_t *q) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            q[j] = ls[j];
            q[j + 4] = lm[j];
        } else {
            q[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            q[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            q[j - 0] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

/* Shared Q4_K / Q5_K super-block quantization: levels in [0, nmax] per
 * element, written to L. */
static void quantize_k4_block(const float *x, int nmax, float rmin, int nstep, uint8_t *scales12, uint16_t *dh,
                              uint16_t *dminh, uint8_t *L) {
    uint8_t Laux[32], ls[8], lm[8];
    float w[32], mins[8], scales[8];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) {
            sum_x2 += x[32 * j + l] * x[32 * j + l];
        }
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) {
            w[l] = av_x + fabsf(x[32 * j + l]);
        }
        scales[j] = qkx2_quants(32, nmax, x + 32 * j, w, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
        max_scale = scales[j] > max_scale ? scales[j] : max_scale;
        max_min = mins[j] > max_min ? mins[j] : max_min;
    }
    /* 6-bit scales and mins against the fp16-rounded super-block scales;
     * a block whose scale underflows fp16 decodes to zero. */
    *dh = ns_fp32_to_fp16(max_scale / 63.0f);
    *dminh = ns_fp32_to_fp16(max_min / 63.0f);
    const float dd = ns_fp16_to_fp32(*dh);
    float dm = ns_fp16_to_fp32(*dminh);
    if (!(dd > 0)) {
        *dh = 0;
        *dminh = 0;
        dm = 0;
    }
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)(dd > 0 ? clampi(ns__nearest_int(scales[j] / dd), 0, 63) : 0);
        lm[j] = (uint8_t)(dm > 0 ? clampi(ns__nearest_int(mins[j] / dm), 0, 63) : 0);
    }
    memset(scales12, 0, NS_K_SCALE_SIZE);
    pack_scale_min_k4(ls, lm, scales12);
    for (int j = 0; j < 8; j++) {
        const float d = dd * (float)ls[j];
        if (d == 0.0f) {
            continue;
        }
        const float m = dm * (float)lm[j];
        for (int l = 0; l < 32; l++) {
            L[32 * j + l] = (uint8_t)clampi(ns__nearest_int((x[32 * j + l] + m) / d), 0, nmax);
        }
    }
}

void ns__quantize_q4_K(const float *x, void *vy, int64_t n) {
    ns_block_q4_K *y = vy;
    uint8_t L[NS_QK_K];
    for (int64_t i = 0; i < n / NS_QK_K; i++, x += NS_QK_K) {
        quantize_k4_block(x, 15, -1.0f, 20, y[i].scales, &y[i].d, &y[i].dmin, L);
        uint8_t *q = y[i].qs;
        for (int j = 0; j < NS_QK_K; j += 64) {
            for (int l = 0; l < 32; l++) {
                q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            }
            q += 32;
        }
    }
}

void ns__quantize_q5_K(const float *x, void *vy, int64_t n) {
    ns_block_q5_K *y = vy;
    uint8_t L[NS_QK_K];
    for (int64_t i = 0; i < n / NS_QK_K; i++, x += NS_QK_K) {
        quantize_k4_block(x, 31, -0.5f, 15, y[i].scales, &y[i].d, &y[i].dmin, L);
        uint8_t *qh = y[i].qh, *ql = y[i].qs;
        memset(qh, 0, NS_QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int c = 0; c < NS_QK_K; c += 64) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[c + j], l2 = L[c + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[j] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[j] |= m2;
                }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
            ql += 32;
        }
    }
}

void ns__quantize_q6_K(const float *x, void *vy, int64_t n) {
    ns_block_q6_K *y = vy;
    int8_t L[NS_QK_K];
    float scales[NS_QK_K / 16];
    for (int64_t i = 0; i < n / NS_QK_K; i++, x += NS_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < NS_QK_K / 16; ib++) {
            scales[ib] = qx_quants(16, 32, x + 16 * ib, L + 16 * ib, NULL);
            if (fabsf(scales[ib]) > max_abs_scale) {
                max_abs_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        memset(&y[i], 0, sizeof(y[i]));
        if (!(max_abs_scale >= NS__GROUP_MAX_EPS)) {
            continue; /* all zero: every level 0 would decode to -32 * d = 0 */
        }
        const float iscale = -128.0f / max_scale;
        y[i].d = ns_fp32_to_fp16(1 / iscale);
        for (int ib = 0; ib < NS_QK_K / 16; ib++) {
            y[i].scales[ib] = (int8_t)clampi(ns__nearest_int(iscale * scales[ib]), -128, 127);
        }
        const float dd = ns_fp16_to_fp32(y[i].d);
        for (int j = 0; j < NS_QK_K / 16; j++) {
            const float d = dd * (float)y[i].scales[j];
            if (d == 0.0f) {
                for (int l = 0; l < 16; l++) {
                    L[16 * j + l] = 32;
                }
                continue;
            }
            for (int l = 0; l < 16; l++) {
                L[16 * j + l] = (int8_t)(clampi(ns__nearest_int(x[16 * j + l] / d), -32, 31) + 32);
            }
        }
        uint8_t *ql = y[i].ql, *qh = y[i].qh;
        for (int j = 0; j < NS_QK_K; j += 128) {
            for (int l = 0; l < 32; l++) {
                const int q1 = L[j + l + 0], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
                ql[l + 0] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
    }
}

/* Index of the IQ4 level nearest to v (the table is sorted). */
static int best_index_iq4(float v) {
    const int8_t *val = ns__kvalues_iq4nl;
    if (!(v > val[0])) {
        return 0; /* also NaN */
    }
    if (v >= val[15]) {
        return 15;
    }
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < val[mid]) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    return v - (float)val[lo] < (float)val[hi] - v ? lo : hi;
}

/* Best scale for one 32-element group on the IQ4 grid, weights x^2:
 * tries the 15 scales that put the largest magnitude near each end level. */
static float iq4_group_scale(const float *xb, const float *w) {
    const int8_t *val = ns__kvalues_iq4nl;
    float amax = 0, max = 0;
    for (int j = 0; j < 32; j++) {
        if (fabsf(xb[j]) > amax) {
            amax = fabsf(xb[j]);
            max = xb[j];
        }
    }
    if (!(amax >= NS__GROUP_MAX_EPS)) {
        return 0.0f;
    }
    float d = -max / (float)val[0];
    float id = 1 / d;
    float sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; j++) {
        const float q = (float)val[best_index_iq4(id * xb[j])];
        sumqx += w[j] * q * xb[j];
        sumq2 += w[j] * q * q;
    }
    d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
    float best = d * sumqx;
    for (int itry = -7; itry <= 7; itry++) {
        id = ((float)itry + (float)val[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            const float q = (float)val[best_index_iq4(id * xb[j])];
            sumqx += w[j] * q * xb[j];
            sumq2 += w[j] * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

static void pack_iq4(const uint8_t *L, uint8_t *qs, int n) {
    for (int i = 0; i < n / 32; i++) {
        for (int j = 0; j < 16; j++) {
            qs[16 * i + j] = (uint8_t)(L[32 * i + j] | (L[32 * i + 16 + j] << 4));
        }
    }
}

void ns__quantize_iq4_nl(const float *x, void *vy, int64_t n) {
    ns_block_iq4_nl *y = vy;
    float w[32];
    uint8_t L[32];
    for (int64_t i = 0; i < n / NS_QK4_NL; i++, x += NS_QK4_NL) {
        for (int j = 0; j < 32; j++) {
            w[j] = x[j] * x[j];
        }
        y[i].d = ns_fp32_to_fp16(iq4_group_scale(x, w));
        const float d = ns_fp16_to_fp32(y[i].d);
        const float id = d != 0.0f ? 1 / d : 0.0f;
        for (int j = 0; j < 32; j++) {
            L[j] = (uint8_t)best_index_iq4(id * x[j]);
        }
        pack_iq4(L, y[i].qs, 32);
    }
}

void ns__quantize_iq4_xs(const float *x, void *vy, int64_t n) {
    ns_block_iq4_xs *y = vy;
    float w[32], scales[8];
    uint8_t L[NS_QK_K];
    for (int64_t i = 0; i < n / NS_QK_K; i++, x += NS_QK_K) {
        float max_scale = 0, amax_scale = 0;
        for (int ib = 0; ib < 8; ib++) {
            for (int j = 0; j < 32; j++) {
                w[j] = x[32 * ib + j] * x[32 * ib + j];
            }
            scales[ib] = iq4_group_scale(x + 32 * ib, w);
            if (fabsf(scales[ib]) > amax_scale) {
                amax_scale = fabsf(scales[ib]);
                max_scale = scales[ib];
            }
        }
        y[i].scales_h = 0;
        memset(y[i].scales_l, 0, sizeof(y[i].scales_l));
        y[i].d = ns_fp32_to_fp16(-max_scale / 32);
        const float d = ns_fp16_to_fp32(y[i].d);
        const float id = d != 0.0f ? 1 / d : 0.0f;
        for (int ib = 0; ib < 8; ib++) {
            const int l = clampi(ns__nearest_int(id * scales[ib]), -32, 31);
            const float dl = d * (float)l;
            const float idl = dl != 0.0f ? 1 / dl : 0.0f;
            for (int j = 0; j < 32; j++) {
                L[32 * ib + j] = (uint8_t)best_index_iq4(idl * x[32 * ib + j]);
            }
            const int lb = l + 32;
            y[i].scales_l[ib / 2] |= (uint8_t)((lb & 0xF) << (4 * (ib % 2)));
            y[i].scales_h |= (uint16_t)((lb >> 4) << (2 * ib));
        }
        pack_iq4(L, y[i].qs, NS_QK_K);
    }
}
