/*
 * ops_matmul.c - out[t][r] (+)= W[r] . in[t] on the CPU.
 *
 * Deferred groups. Matmuls are queued (ctx->mmq) rather than run at once:
 * consecutive matmuls that read the same input in the same activation
 * format (Q/K/V; gate/up) run as one thread-pool op, so a layer has one
 * barrier where it had three. The forward pass never reads a matmul output
 * before a non-matmul op, and every non-matmul op flushes the queue first,
 * so deferral is invisible. gate/up followed by swiglu runs swiglu inside
 * the same tiles (ns__cpu_matmul_swiglu).
 *
 * Tiles. Each weight's work is tiled over (NS__TILE_ROWS rows of W) x
 * (NS__TILE_TOKENS tokens); one tile is one thread-pool item. Within a tile
 * each weight row is used for every token of the tile while it sits in
 * L1/L2, so prefill reuses every weight block across up to NS__TILE_TOKENS
 * tokens, and decode streams W once, split over threads.
 *
 * Row routines by weight type:
 *   F32, F16  - f32 / f32 x f16 dot on the mapping in place;
 *   quantized - the activation rows are quantized once per group input
 *               (cached across groups that share it) with vec_dot.h's
 *               from_float; then the type's rows x tokens micro-kernel
 *               (`gemm`: each weight block decoded once for 4 tokens) when
 *               it has one, else vec_dot per (row, token);
 *   fallback  - types without a vec_dot: the tile's rows are dequantized
 *               into the thread's scratch, then f32 dots.
 *
 * Batch invariance is exact: every output element is computed by the same
 * routine whatever the tile or batch (the gemm kernels guarantee a token's
 * result does not depend on its 4-token block), so a sequence gives
 * bit-identical logits alone or among others.
 */
#include <math.h>
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

/* The vec_dot traits a matmul of w uses (NULL: f32/f16/dequantize paths,
 * including a quantized type whose activation row does not fit qact). */
static const ns_vec_dot_traits *matmul_traits(const ns__cpu_ctx *c, const ns_tensor *w) {
    const ns_vec_dot_traits *vd = traits_for(c, w->type);
    if (vd == NULL) {
        return NULL;
    }
    size_t act_row = ns_cpu_act_row_size(w->type, w->ne[0]);
    return act_row > 0 && act_row <= c->qact_stride ? vd : NULL;
}

/* Activation format key for grouping: matmuls in one group share qact. */
static int act_key(const ns__cpu_ctx *c, const ns_tensor *w) {
    const ns_vec_dot_traits *vd = matmul_traits(c, w);
    return vd != NULL ? (int)vd->act_type : -1;
}

typedef struct mm_job {
    const ns_tensor *w;
    const ns_vec_dot_traits *vd;
    ns_act out;
    bool accumulate;
    int32_t item0; /* first item of this job */
    int32_t n_row_tiles;
} mm_job;

typedef struct mm_group {
    ns__cpu_ctx *c;
    ns_act in;
    int32_t n;
    int32_t count;
    mm_job job[NS__MM_MAX];
    bool swiglu; /* job[0] gate, job[1] up: one item does both tiles + swiglu */
    int32_t n_tok_tiles;
    int32_t n_items;
} mm_group;

/* out rows [t0, t1) x [r0, r1) of one job. */
static void mm_tile(ns__cpu_ctx *c, const mm_job *j, ns_act in, int32_t ith, int32_t r0, int32_t r1, int32_t t0,
                    int32_t t1) {
    const ns_tensor *w = j->w;
    const int32_t K = (int32_t)w->ne[0];
    const int32_t out_w = c->act_w[j->out];
    const bool acc = j->accumulate;
    float *tile = ns__cpu_scratch(c, ith);
    if (j->vd != NULL && j->vd->gemm != NULL) {
        const uint8_t *x = (const uint8_t *)c->qact + (size_t)t0 * c->qact_stride;
        const uint8_t *wr = w->data + (size_t)r0 * w->row_bytes;
        if (!acc) {
            j->vd->gemm(K, wr, w->row_bytes, r1 - r0, x, c->qact_stride, t1 - t0, ns__cpu_act(c, j->out, t0) + r0,
                        (size_t)out_w);
            return;
        }
        /* [t1 - t0][r1 - r0] partial products, then the residual add. */
        const int32_t nr = r1 - r0;
        j->vd->gemm(K, wr, w->row_bytes, nr, x, c->qact_stride, t1 - t0, tile, (size_t)nr);
        for (int32_t t = t0; t < t1; t++) {
            float *y = ns__cpu_act(c, j->out, t) + r0;
            const float *s = tile + (size_t)(t - t0) * nr;
            for (int32_t r = 0; r < nr; r++) {
                y[r] = y[r] + s[r];
            }
        }
        return;
    }
    if (j->vd != NULL) {
        for (int32_t t = t0; t < t1; t++) {
            const void *x = (const uint8_t *)c->qact + (size_t)t * c->qact_stride;
            float *y = ns__cpu_act(c, j->out, t);
            for (int32_t r = r0; r < r1; r++) {
                float s;
                j->vd->vec_dot(K, &s, w->data + (size_t)r * w->row_bytes, x);
                y[r] = acc ? y[r] + s : s;
            }
        }
    } else if (w->type == NS_TYPE_F32) {
        for (int32_t t = t0; t < t1; t++) {
            const float *x = ns__cpu_act(c, in, t);
            float *y = ns__cpu_act(c, j->out, t);
            for (int32_t r = r0; r < r1; r++) {
                float s = c->k.dot_f32((const float *)(w->data + (size_t)r * w->row_bytes), x, K);
                y[r] = acc ? y[r] + s : s;
            }
        }
    } else if (w->type == NS_TYPE_F16) {
        for (int32_t t = t0; t < t1; t++) {
            const float *x = ns__cpu_act(c, in, t);
            float *y = ns__cpu_act(c, j->out, t);
            for (int32_t r = r0; r < r1; r++) {
                float s = c->k.dot_f32_f16(x, (const uint16_t *)(w->data + (size_t)r * w->row_bytes), K);
                y[r] = acc ? y[r] + s : s;
            }
        }
    } else {
        for (int32_t r = r0; r < r1; r++) {
            (void)ns_dequantize_row(w->type, w->data + (size_t)r * w->row_bytes, tile + (size_t)(r - r0) * K, K);
        }
        for (int32_t t = t0; t < t1; t++) {
            const float *x = ns__cpu_act(c, in, t);
            float *y = ns__cpu_act(c, j->out, t);
            for (int32_t r = r0; r < r1; r++) {
                float s = c->k.dot_f32(tile + (size_t)(r - r0) * K, x, K);
                y[r] = acc ? y[r] + s : s;
            }
        }
    }
}

static void mm_item(void *p, int32_t ith, int32_t item) {
    mm_group *g = p;
    ns__cpu_ctx *c = g->c;
    int32_t ji = 0;
    while (ji + 1 < g->count && item >= g->job[ji + 1].item0) {
        ji++;
    }
    const mm_job *j = &g->job[ji];
    const int32_t local = item - j->item0;
    const int32_t rt = local / g->n_tok_tiles, tt = local % g->n_tok_tiles;
    const int32_t R = (int32_t)j->w->ne[1];
    const int32_t r0 = rt * NS__TILE_ROWS, r1 = r0 + NS__TILE_ROWS < R ? r0 + NS__TILE_ROWS : R;
    const int32_t t0 = tt * NS__TILE_TOKENS, t1 = t0 + NS__TILE_TOKENS < g->n ? t0 + NS__TILE_TOKENS : g->n;
    mm_tile(c, j, g->in, ith, r0, r1, t0, t1);
    if (g->swiglu) {
        const mm_job *up = &g->job[1];
        mm_tile(c, up, g->in, ith, r0, r1, t0, t1);
        for (int32_t t = t0; t < t1; t++) {
            float *gt = ns__cpu_act(c, j->out, t);
            const float *u = ns__cpu_act(c, up->out, t);
            for (int32_t r = r0; r < r1; r++) {
                gt[r] = gt[r] / (1.0f + expf(-gt[r])) * u[r];
            }
        }
    }
}

/* Quantize rows [4 item, 4 item + 4) of the group input into qact. */
#define NS__QUANT_ROWS 4

static void quantize_item(void *p, int32_t ith, int32_t item) {
    (void)ith;
    mm_group *g = p;
    ns__cpu_ctx *c = g->c;
    const ns_tensor *w = g->job[0].w;
    const int32_t t0 = item * NS__QUANT_ROWS;
    const int32_t t1 = t0 + NS__QUANT_ROWS < g->n ? t0 + NS__QUANT_ROWS : g->n;
    for (int32_t t = t0; t < t1; t++) {
        g->job[0].vd->from_float(ns__cpu_act(c, g->in, t), (uint8_t *)c->qact + (size_t)t * c->qact_stride, w->ne[0]);
    }
}

static void run_items(ns__cpu_ctx *c, ns_threadpool_item_fn fn, void *arg, int32_t n_items, double work) {
    if (ns_threadpool_worth_parallel(c->tp, work)) {
        ns_threadpool_run_items(c->tp, fn, arg, n_items);
    } else {
        for (int32_t i = 0; i < n_items; i++) {
            fn(arg, 0, i);
        }
    }
}

/* Run the queue as one group (swiglu: fuse gate/up/swiglu) and empty it. */
static void run_group(ns__cpu_ctx *c, bool swiglu) {
    mm_group g = {0};
    g.c = c;
    g.in = c->mmq.in;
    g.n = c->mmq.n;
    g.count = c->mmq.count;
    g.swiglu = swiglu;
    g.n_tok_tiles = (g.n + NS__TILE_TOKENS - 1) / NS__TILE_TOKENS;
    double work = 0;
    for (int32_t i = 0; i < g.count; i++) {
        mm_job *j = &g.job[i];
        j->w = c->mmq.w[i];
        j->vd = matmul_traits(c, j->w);
        j->out = c->mmq.out[i];
        j->accumulate = c->mmq.accumulate[i];
        j->n_row_tiles = (int32_t)((j->w->ne[1] + NS__TILE_ROWS - 1) / NS__TILE_ROWS);
        j->item0 = g.n_items;
        if (!swiglu || i == 0) {
            g.n_items += j->n_row_tiles * g.n_tok_tiles;
        }
        work += (double)g.n * (double)j->w->ne[0] * (double)j->w->ne[1];
    }
    c->mmq.count = 0;
    if (swiglu) {
        g.count = 1; /* items index gate's tiles; each also does up's */
    }
    if (g.job[0].vd != NULL) {
        const ns_vec_dot_traits *vd = g.job[0].vd;
        if (!(c->qact_valid && c->qact_src == g.in && c->qact_type == vd->act_type && c->qact_n >= g.n)) {
            run_items(c, quantize_item, &g, (g.n + NS__QUANT_ROWS - 1) / NS__QUANT_ROWS,
                      (double)g.n * (double)g.job[0].w->ne[0] * 4.0);
            c->qact_valid = true;
            c->qact_src = g.in;
            c->qact_type = vd->act_type;
            c->qact_n = g.n;
        }
    }
    run_items(c, mm_item, &g, g.n_items, work);
    for (int32_t i = 0; i < (swiglu ? 2 : g.count); i++) {
        ns__cpu_act_written(c, g.job[i].out);
    }
}

void ns__cpu_flush(ns__cpu_ctx *c) {
    if (c->mmq.count > 0) {
        run_group(c, false);
    }
}

void ns__cpu_op_matmul(ns__cpu_ctx *c, const ns_tensor *w, ns_act in, ns_act out, int32_t n, bool accumulate) {
    if (c->mmq.count > 0) {
        bool fits = c->mmq.count < NS__MM_MAX && c->mmq.in == in && c->mmq.n == n && out != in &&
                    c->mmq.w[0]->ne[0] == w->ne[0] && act_key(c, c->mmq.w[0]) == act_key(c, w);
        for (int32_t i = 0; i < c->mmq.count && fits; i++) {
            fits = c->mmq.out[i] != out;
        }
        if (!fits) {
            ns__cpu_flush(c);
        }
    }
    const int32_t i = c->mmq.count++;
    c->mmq.w[i] = w;
    c->mmq.out[i] = out;
    c->mmq.accumulate[i] = accumulate;
    c->mmq.in = in;
    c->mmq.n = n;
    if (out == in) {
        ns__cpu_flush(c); /* in place: never share its input with another matmul */
    }
}

bool ns__cpu_matmul_swiglu(ns__cpu_ctx *c, ns_act gate, ns_act up, int32_t width, int32_t n) {
    if (c->mmq.count != 2 || c->mmq.n != n || c->mmq.out[0] != gate || c->mmq.out[1] != up || c->mmq.accumulate[0] ||
        c->mmq.accumulate[1]) {
        return false;
    }
    const ns_tensor *wg = c->mmq.w[0], *wu = c->mmq.w[1];
    if (wg->ne[0] != wu->ne[0] || wg->ne[1] != wu->ne[1] || wg->ne[1] != width) {
        return false;
    }
    run_group(c, true);
    return true;
}
