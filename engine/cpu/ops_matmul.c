/*
 * ops_matmul.c - out[t][r] (+)= W[r] . in[t] on the CPU.
 *
 * The work is tiled over (NS__TILE_ROWS rows of W) x (NS__TILE_TOKENS
 * tokens); threads take tiles from a shared counter. Within a tile each
 * weight row is used for every token of the tile while it sits in L1/L2, so
 * prefill reuses every weight block across up to NS__TILE_TOKENS tokens
 * (cache blocking), and decode (one token) streams W once, split over
 * threads.
 *
 * Every output element is computed by the same per-row routine whatever the
 * tile or batch, so results do not depend on the batch composition (batch
 * invariance is exact, not approximate).
 *
 * Row routines by weight type:
 *   F32, F16  - f32 / f32 x f16 dot on the mapping in place;
 *   quantized - the activation rows are quantized once per matmul input
 *               (cached across the Q/K/V and gate/up matmuls that share it)
 *               with vec_dot.h's from_float, then vec_dot per (row, token):
 *               integer block products as in llama.cpp's CPU backend;
 *   fallback  - types without a vec_dot: the tile's rows are dequantized
 *               into the thread's scratch, then f32 dots.
 */
#include <string.h>

#include "cpu_impl.h"
#include "quant.h"
#include "vec_dot.h"

static const ns_vec_dot_traits *traits_for(const ns__cpu_ctx *c, ns_type t) {
    if (t == NS_TYPE_F32 || t == NS_TYPE_F16) {
        return NULL;
    }
    return c->simd ? ns_cpu_vec_dot_get(t) : ns_cpu_vec_dot_get_scalar(t);
}

size_t ns__cpu_matmul_act_row_size(const ns__cpu_ctx *c, const ns_tensor *w) {
    if (traits_for(c, w->type) == NULL) {
        return 0;
    }
    return ns_cpu_act_row_size(w->type, w->ne[0]);
}

typedef struct matmul_args {
    ns__cpu_ctx *c;
    const ns_tensor *w;
    ns_act in, out;
    int32_t n;
    bool accumulate;
    int32_t n_row_tiles, n_tok_tiles;
    const ns_vec_dot_traits *vd; /* NULL: f32/f16/dequantize paths */
} matmul_args;

static void quantize_task(void *p, int32_t ith, int32_t nth) {
    matmul_args *a = p;
    ns__cpu_ctx *c = a->c;
    for (int32_t t = ith; t < a->n; t += nth) {
        a->vd->from_float(ns__cpu_act(c, a->in, t), (uint8_t *)c->qact + (size_t)t * c->qact_stride, a->w->ne[0]);
    }
}

static void matmul_task(void *p, int32_t ith, int32_t nth) {
    (void)nth;
    matmul_args *a = p;
    ns__cpu_ctx *c = a->c;
    const ns_tensor *w = a->w;
    const int32_t K = (int32_t)w->ne[0];
    const int32_t R = (int32_t)w->ne[1];
    const int32_t n_items = a->n_row_tiles * a->n_tok_tiles;
    float *tile = ns__cpu_scratch(c, ith);
    for (;;) {
        int32_t item = ns_threadpool_chunk(c->tp);
        if (item >= n_items) {
            break;
        }
        int32_t rt = item / a->n_tok_tiles, tt = item % a->n_tok_tiles;
        int32_t r0 = rt * NS__TILE_ROWS, r1 = r0 + NS__TILE_ROWS < R ? r0 + NS__TILE_ROWS : R;
        int32_t t0 = tt * NS__TILE_TOKENS, t1 = t0 + NS__TILE_TOKENS < a->n ? t0 + NS__TILE_TOKENS : a->n;
        if (a->vd != NULL) {
            for (int32_t t = t0; t < t1; t++) {
                const void *x = (const uint8_t *)c->qact + (size_t)t * c->qact_stride;
                float *y = ns__cpu_act(c, a->out, t);
                for (int32_t r = r0; r < r1; r++) {
                    float s;
                    a->vd->vec_dot(K, &s, w->data + (size_t)r * w->row_bytes, x);
                    y[r] = a->accumulate ? y[r] + s : s;
                }
            }
        } else if (w->type == NS_TYPE_F32) {
            for (int32_t t = t0; t < t1; t++) {
                const float *x = ns__cpu_act(c, a->in, t);
                float *y = ns__cpu_act(c, a->out, t);
                for (int32_t r = r0; r < r1; r++) {
                    float s = c->k.dot_f32((const float *)(w->data + (size_t)r * w->row_bytes), x, K);
                    y[r] = a->accumulate ? y[r] + s : s;
                }
            }
        } else if (w->type == NS_TYPE_F16) {
            for (int32_t t = t0; t < t1; t++) {
                const float *x = ns__cpu_act(c, a->in, t);
                float *y = ns__cpu_act(c, a->out, t);
                for (int32_t r = r0; r < r1; r++) {
                    float s = c->k.dot_f32_f16(x, (const uint16_t *)(w->data + (size_t)r * w->row_bytes), K);
                    y[r] = a->accumulate ? y[r] + s : s;
                }
            }
        } else {
            for (int32_t r = r0; r < r1; r++) {
                (void)ns_dequantize_row(w->type, w->data + (size_t)r * w->row_bytes, tile + (size_t)(r - r0) * K, K);
            }
            for (int32_t t = t0; t < t1; t++) {
                const float *x = ns__cpu_act(c, a->in, t);
                float *y = ns__cpu_act(c, a->out, t);
                for (int32_t r = r0; r < r1; r++) {
                    float s = c->k.dot_f32(tile + (size_t)(r - r0) * K, x, K);
                    y[r] = a->accumulate ? y[r] + s : s;
                }
            }
        }
    }
}

void ns__cpu_op_matmul(ns__cpu_ctx *c, const ns_tensor *w, ns_act in, ns_act out, int32_t n, bool accumulate) {
    matmul_args a = {c, w, in, out, n, accumulate, 0, 0, NULL};
    a.n_row_tiles = (int32_t)((w->ne[1] + NS__TILE_ROWS - 1) / NS__TILE_ROWS);
    a.n_tok_tiles = (n + NS__TILE_TOKENS - 1) / NS__TILE_TOKENS;
    const ns_vec_dot_traits *vd = traits_for(c, w->type);
    size_t act_row = vd != NULL ? ns_cpu_act_row_size(w->type, w->ne[0]) : 0;
    if (vd != NULL && act_row > 0 && act_row <= c->qact_stride) {
        a.vd = vd;
        if (!(c->qact_valid && c->qact_src == in && c->qact_type == vd->act_type && c->qact_n >= n)) {
            ns_threadpool_run_sized(c->tp, quantize_task, &a, (double)n * (double)w->ne[0] * 4.0);
            c->qact_valid = true;
            c->qact_src = in;
            c->qact_type = vd->act_type;
            c->qact_n = n;
        }
    }
    ns_threadpool_run_sized(c->tp, matmul_task, &a, (double)n * (double)w->ne[0] * (double)w->ne[1]);
    ns__cpu_act_written(c, out);
}
