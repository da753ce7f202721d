/*
 * ops_matmul.c - out[t][r] (+)= W[r] . in[t] on the CPU.
 *
 * The work is tiled over (NS__TILE_ROWS rows of W) x (NS__TILE_TOKENS
 * tokens); threads take tiles from a shared counter. Within a tile each
 * weight row is touched once per token while it sits in L1/L2, so prefill
 * reuses every weight block across up to NS__TILE_TOKENS tokens (cache
 * blocking), and decode (one token) streams W once, split over threads.
 *
 * Every output element is computed by the same per-row routine whatever the
 * tile or batch, so results do not depend on the batch composition (batch
 * invariance is exact, not approximate).
 *
 * Row routines by weight type:
 *   F32  - f32 dot on the mapping in place;
 *   F16  - f32 x f16 dot in place;
 *   else - the tile's rows are dequantized (ns_dequantize_row) into the
 *          thread's scratch once, then f32 dots.
 */
#include <string.h>

#include "cpu_impl.h"
#include "quant.h"

void ns__cpu_matmul_kind_get(ns_type t, ns__cpu_matmul_kind *out) {
    memset(out, 0, sizeof(*out));
    (void)t;
}

typedef struct matmul_args {
    ns__cpu_ctx *c;
    const ns_tensor *w;
    ns_act in, out;
    int32_t n;
    bool accumulate;
    int32_t n_row_tiles, n_tok_tiles;
} matmul_args;

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
        /* Token tiles vary fastest, so consecutive items of one thread share
         * a row tile only when there are many tokens; the dequantized tile is
         * rebuilt per item (cheap next to NS__TILE_TOKENS dots per row). */
        int32_t rt = item / a->n_tok_tiles, tt = item % a->n_tok_tiles;
        int32_t r0 = rt * NS__TILE_ROWS, r1 = r0 + NS__TILE_ROWS < R ? r0 + NS__TILE_ROWS : R;
        int32_t t0 = tt * NS__TILE_TOKENS, t1 = t0 + NS__TILE_TOKENS < a->n ? t0 + NS__TILE_TOKENS : a->n;
        if (w->type == NS_TYPE_F32) {
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
    matmul_args a = {c, w, in, out, n, accumulate, 0, 0};
    a.n_row_tiles = (int32_t)((w->ne[1] + NS__TILE_ROWS - 1) / NS__TILE_ROWS);
    a.n_tok_tiles = (n + NS__TILE_TOKENS - 1) / NS__TILE_TOKENS;
    ns_threadpool_run_sized(c->tp, matmul_task, &a, (double)n * (double)w->ne[0] * (double)w->ne[1]);
}
