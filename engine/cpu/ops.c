/*
 * ops.c - CPU ops other than matmul: embedding, RMSNorm, RoPE, SwiGLU, KV
 * store and paged attention. Each op splits its rows over the thread pool.
 * No allocation: scratch comes from the context.
 */
#include <math.h>
#include <string.h>

#include "cpu_impl.h"
#include "quant.h"

/* Static split of [0, n) for thread ith of nth. */
static inline void split_range(int32_t n, int32_t ith, int32_t nth, int32_t *lo, int32_t *hi) {
    int32_t per = (n + nth - 1) / nth;
    *lo = ith * per < n ? ith * per : n;
    *hi = *lo + per < n ? *lo + per : n;
}

/* ---- embedding ------------------------------------------------------------- */

typedef struct embed_args {
    ns__cpu_ctx *c;
    const ns_tensor *w;
    ns_act out;
    int32_t n;
} embed_args;

static void embed_task(void *p, int32_t ith, int32_t nth) {
    embed_args *a = p;
    int32_t lo, hi;
    split_range(a->n, ith, nth, &lo, &hi);
    for (int32_t i = lo; i < hi; i++) {
        int32_t tok = a->c->ub->token[i];
        float *dst = ns__cpu_act(a->c, a->out, i);
        (void)ns_dequantize_row(a->w->type, a->w->data + (size_t)tok * a->w->row_bytes, dst, a->w->ne[0]);
    }
}

void ns__cpu_op_embed(ns__cpu_ctx *c, const ns_tensor *tok_embd, ns_act out, int32_t n) {
    embed_args a = {c, tok_embd, out, n};
    ns_threadpool_run_sized(c->tp, embed_task, &a, (double)n * (double)tok_embd->ne[0] * 4.0);
}

/* ---- RMSNorm --------------------------------------------------------------- */

typedef struct norm_args {
    ns__cpu_ctx *c;
    ns_act in, out;
    const float *w;
    int32_t width;
    float eps;
    int32_t n;
} norm_args;

static void norm_task(void *p, int32_t ith, int32_t nth) {
    norm_args *a = p;
    int32_t lo, hi;
    split_range(a->n, ith, nth, &lo, &hi);
    for (int32_t i = lo; i < hi; i++) {
        const float *x = ns__cpu_act(a->c, a->in, i);
        float *y = ns__cpu_act(a->c, a->out, i);
        double sum = 0.0;
        for (int32_t k = 0; k < a->width; k++) {
            sum += (double)(x[k] * x[k]);
        }
        float mean = (float)(sum / a->width);
        float scale = 1.0f / sqrtf(mean + a->eps);
        for (int32_t k = 0; k < a->width; k++) {
            y[k] = (x[k] * scale) * a->w[k];
        }
    }
}

void ns__cpu_op_rmsnorm(ns__cpu_ctx *c, ns_act in, const ns_tensor *w, float eps, ns_act out, int32_t n) {
    norm_args a = {c, in, out, (const float *)w->data, (int32_t)w->ne[0], eps, n};
    ns_threadpool_run_sized(c->tp, norm_task, &a, (double)n * (double)a.width * 2.0);
}

/* ---- RoPE ------------------------------------------------------------------ */

typedef struct rope_args {
    ns__cpu_ctx *c;
    ns_act io;
    int32_t n_heads;
    int32_t n;
} rope_args;

static void rope_task(void *p, int32_t ith, int32_t nth) {
    rope_args *a = p;
    ns__cpu_ctx *c = a->c;
    const int32_t hd = c->hp->head_dim;
    const int32_t half = c->hp->n_rot / 2;
    const bool neox = c->hp->rope_style == NS_ROPE_NEOX;
    float *cs = ns__cpu_scratch(c, ith); /* [half] cos, [half] sin */
    float *sn = cs + half;
    int32_t lo, hi;
    split_range(a->n, ith, nth, &lo, &hi);
    for (int32_t i = lo; i < hi; i++) {
        const float pos = (float)c->ub->pos[i];
        for (int32_t k = 0; k < half; k++) {
            float theta = pos * c->rope_inv_freq[k];
            cs[k] = cosf(theta);
            sn[k] = sinf(theta);
        }
        float *row = ns__cpu_act(c, a->io, i);
        for (int32_t h = 0; h < a->n_heads; h++) {
            float *x = row + (size_t)h * hd;
            if (neox) {
                for (int32_t k = 0; k < half; k++) {
                    float x0 = x[k], x1 = x[k + half];
                    x[k] = x0 * cs[k] - x1 * sn[k];
                    x[k + half] = x0 * sn[k] + x1 * cs[k];
                }
            } else {
                for (int32_t k = 0; k < half; k++) {
                    float x0 = x[2 * k], x1 = x[2 * k + 1];
                    x[2 * k] = x0 * cs[k] - x1 * sn[k];
                    x[2 * k + 1] = x0 * sn[k] + x1 * cs[k];
                }
            }
        }
    }
}

void ns__cpu_op_rope(ns__cpu_ctx *c, ns_act io, int32_t n_heads, int32_t n) {
    rope_args a = {c, io, n_heads, n};
    ns_threadpool_run_sized(c->tp, rope_task, &a, (double)n * (double)(n_heads * c->hp->head_dim + c->hp->n_rot * 20));
}

/* ---- SwiGLU ---------------------------------------------------------------- */

typedef struct swiglu_args {
    ns__cpu_ctx *c;
    ns_act gate, up;
    int32_t width, n;
} swiglu_args;

static void swiglu_task(void *p, int32_t ith, int32_t nth) {
    swiglu_args *a = p;
    int32_t lo, hi;
    split_range(a->n, ith, nth, &lo, &hi);
    for (int32_t i = lo; i < hi; i++) {
        float *g = ns__cpu_act(a->c, a->gate, i);
        const float *u = ns__cpu_act(a->c, a->up, i);
        for (int32_t k = 0; k < a->width; k++) {
            g[k] = g[k] / (1.0f + expf(-g[k])) * u[k];
        }
    }
}

void ns__cpu_op_swiglu(ns__cpu_ctx *c, ns_act gate, ns_act up, int32_t width, int32_t n) {
    swiglu_args a = {c, gate, up, width, n};
    ns_threadpool_run_sized(c->tp, swiglu_task, &a, (double)n * (double)width * 8.0);
}

/* ---- KV store -------------------------------------------------------------- */

typedef struct kv_store_args {
    ns__cpu_ctx *c;
    int32_t il;
    ns_act k, v;
    int32_t n;
} kv_store_args;

static inline size_t kv_offset(const ns__cpu_ctx *c, int32_t il, int32_t page, int32_t h, int32_t t) {
    const ns_hparams *hp = c->hp;
    return (size_t)il * c->kv_layer_elems +
           (((size_t)page * hp->n_head_kv + h) * (size_t)c->p.kv.page_size + t) * hp->head_dim;
}

static void kv_store_task(void *p, int32_t ith, int32_t nth) {
    kv_store_args *a = p;
    ns__cpu_ctx *c = a->c;
    const ns_ubatch *ub = c->ub;
    const int32_t ps = c->p.kv.page_size, hd = c->hp->head_dim;
    int32_t lo, hi;
    split_range(a->n, ith, nth, &lo, &hi);
    for (int32_t i = lo; i < hi; i++) {
        int32_t pos = ub->pos[i];
        int32_t page = ub->pages[(size_t)ub->slot[i] * ub->max_pages + pos / ps];
        const float *k = ns__cpu_act(c, a->k, i);
        const float *v = ns__cpu_act(c, a->v, i);
        for (int32_t h = 0; h < c->hp->n_head_kv; h++) {
            size_t off = kv_offset(c, a->il, page, h, pos % ps);
            c->k.f32_to_f16(c->k_pool + off, k + (size_t)h * hd, hd);
            c->k.f32_to_f16(c->v_pool + off, v + (size_t)h * hd, hd);
        }
    }
}

void ns__cpu_op_kv_store(ns__cpu_ctx *c, int32_t il, ns_act k, ns_act v, int32_t n) {
    kv_store_args a = {c, il, k, v, n};
    ns_threadpool_run_sized(c->tp, kv_store_task, &a, (double)n * (double)c->act_w[k] * 2.0);
}

/* ---- attention ------------------------------------------------------------- */

typedef struct attn_args {
    ns__cpu_ctx *c;
    int32_t il;
    ns_act q, out;
    int32_t n;
} attn_args;

#define NS__ATTN_CHUNK 4 /* (token, head) items per dynamic chunk */

static void attn_task(void *p, int32_t ith, int32_t nth) {
    (void)nth;
    attn_args *a = p;
    ns__cpu_ctx *c = a->c;
    const ns_ubatch *ub = c->ub;
    const ns_hparams *hp = c->hp;
    const int32_t ps = c->p.kv.page_size, hd = hp->head_dim;
    const int32_t group = hp->n_head / hp->n_head_kv;
    const float scale = 1.0f / sqrtf((float)hd);
    const int32_t n_items = a->n * hp->n_head;
    float *scores = ns__cpu_scratch(c, ith);
    for (;;) {
        int32_t start = ns_threadpool_chunk(c->tp) * NS__ATTN_CHUNK;
        if (start >= n_items) {
            break;
        }
        int32_t end = start + NS__ATTN_CHUNK < n_items ? start + NS__ATTN_CHUNK : n_items;
        for (int32_t item = start; item < end; item++) {
            int32_t i = item / hp->n_head, h = item % hp->n_head;
            int32_t kvh = h / group;
            int32_t len = ub->pos[i] + 1;
            const int32_t *pages = ub->pages + (size_t)ub->slot[i] * ub->max_pages;
            const float *q = ns__cpu_act(c, a->q, i) + (size_t)h * hd;
            float *o = ns__cpu_act(c, a->out, i) + (size_t)h * hd;
            float mx = -INFINITY;
            for (int32_t j0 = 0; j0 < len; j0 += ps) {
                const uint16_t *kp = c->k_pool + kv_offset(c, a->il, pages[j0 / ps], kvh, 0);
                int32_t nj = len - j0 < ps ? len - j0 : ps;
                for (int32_t t = 0; t < nj; t++) {
                    float s = c->k.dot_f32_f16(q, kp + (size_t)t * hd, hd) * scale;
                    scores[j0 + t] = s;
                    mx = s > mx ? s : mx;
                }
            }
            float sum = 0.0f;
            for (int32_t j = 0; j < len; j++) {
                float e = expf(scores[j] - mx);
                scores[j] = e;
                sum += e;
            }
            memset(o, 0, (size_t)hd * sizeof(float));
            float inv = 1.0f / sum;
            for (int32_t j0 = 0; j0 < len; j0 += ps) {
                const uint16_t *vp = c->v_pool + kv_offset(c, a->il, pages[j0 / ps], kvh, 0);
                int32_t nj = len - j0 < ps ? len - j0 : ps;
                for (int32_t t = 0; t < nj; t++) {
                    c->k.axpy_f16(o, scores[j0 + t] * inv, vp + (size_t)t * hd, hd);
                }
            }
        }
    }
}

void ns__cpu_op_attention(ns__cpu_ctx *c, int32_t il, ns_act q, ns_act out, int32_t n) {
    attn_args a = {c, il, q, out, n};
    double work = 0;
    for (int32_t i = 0; i < n; i++) {
        work += (double)(c->ub->pos[i] + 1);
    }
    ns_threadpool_run_sized(c->tp, attn_task, &a, work * 2.0 * (double)c->hp->n_head * (double)c->hp->head_dim);
}
