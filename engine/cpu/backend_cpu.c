/*
 * backend_cpu.c - the CPU backend: the ns_backend_iface op table over host
 * memory, a persistent thread pool and SIMD kernels chosen at run time.
 *
 * Weights are used in place from the GGUF mapping. Activations, per-thread
 * scratch and the KV pools are allocated once in create; a pass allocates
 * nothing. Matmuls are deferred and grouped (ops_matmul.c): every other op
 * flushes the queue before it reads or writes anything.
 */
#include <stdlib.h>
#include <string.h>

#include "cpu_impl.h"
#include "ns_util.h"

static void *alloc_aligned(size_t n) {
    void *p = NULL;
    if (n == 0) {
        n = 64;
    }
    if (posix_memalign(&p, 64, ns_align_up(n, 64)) != 0) {
        return NULL;
    }
    return p;
}

static void cpu_destroy(void *ctx) {
    ns__cpu_ctx *c = ctx;
    if (c == NULL) {
        return;
    }
    ns_threadpool_free(&c->tp);
    for (int i = 0; i < NS_ACT_COUNT; i++) {
        free(c->act[i]);
    }
    free(c->k_pool);
    free(c->v_pool);
    free(c->rope_inv_freq);
    free(c->scratch);
    free(c->qact);
    free(c);
}

static const char *cpu_errmsg(void *ctx) {
    return ns_err_msg(&((ns__cpu_ctx *)ctx)->err);
}

static ns_status cpu_begin(void *ctx, const ns_ubatch *ub) {
    ns__cpu_ctx *c = ctx;
    ns_err_clear(&c->err);
    if (ub->n_tokens <= 0 || ub->n_tokens > c->p.max_tokens) {
        return ns__err_set(&c->err, NS_ERR_INVALID_ARG, "cpu: pass of %d tokens (max %d)", ub->n_tokens,
                           c->p.max_tokens);
    }
    for (int32_t i = 0; i < ub->n_tokens; i++) {
        if (ub->token[i] < 0 || ub->token[i] >= c->hp->n_vocab) {
            return ns__err_set(&c->err, NS_ERR_INVALID_ARG, "cpu: token %d id %d outside vocab of %d", i, ub->token[i],
                               c->hp->n_vocab);
        }
        if (ub->pos[i] < 0 || ub->pos[i] >= c->p.kv.max_seq_len) {
            return ns__err_set(&c->err, NS_ERR_INVALID_ARG, "cpu: token %d position %d out of range", i, ub->pos[i]);
        }
        int32_t page = ub->pages[(size_t)ub->slot[i] * ub->max_pages + ub->pos[i] / c->p.kv.page_size];
        if (page < 0 || page >= c->p.kv.n_pages) {
            return ns__err_set(&c->err, NS_ERR_INVALID_ARG, "cpu: token %d has no KV page for position %d", i,
                               ub->pos[i]);
        }
    }
    c->ub = ub;
    c->qact_valid = false;
    c->mmq.count = 0;
    return NS_OK;
}

static void cpu_embed(void *ctx, const ns_tensor *tok_embd, ns_act out, int32_t n) {
    ns__cpu_flush(ctx);
    ns__cpu_op_embed(ctx, tok_embd, out, n);
    ns__cpu_act_written(ctx, out);
}

static void cpu_rmsnorm(void *ctx, ns_act in, const ns_tensor *w, float eps, ns_act out, int32_t n) {
    ns__cpu_flush(ctx);
    ns__cpu_op_rmsnorm(ctx, in, w, eps, out, n);
    ns__cpu_act_written(ctx, out);
}

static void cpu_matmul(void *ctx, const ns_tensor *w, ns_act in, ns_act out, int32_t n, bool accumulate) {
    ns__cpu_op_matmul(ctx, w, in, out, n, accumulate);
}

static void cpu_add_bias(void *ctx, ns_act io, const ns_tensor *b, int32_t n) {
    ns__cpu_ctx *c = ctx;
    ns__cpu_flush(c);
    const float *bias = (const float *)b->data;
    for (int32_t i = 0; i < n; i++) {
        float *row = ns__cpu_act(c, io, i);
        for (int64_t r = 0; r < b->ne[0]; r++) {
            row[r] += bias[r];
        }
    }
    ns__cpu_act_written(c, io);
}

static void cpu_rope(void *ctx, ns_act io, int32_t n_heads, int32_t n) {
    ns__cpu_flush(ctx);
    ns__cpu_op_rope(ctx, io, n_heads, n);
    ns__cpu_act_written(ctx, io);
}

static void cpu_kv_store(void *ctx, int32_t il, ns_act k, ns_act v, int32_t n) {
    ns__cpu_flush(ctx);
    ns__cpu_op_kv_store(ctx, il, k, v, n);
}

static void cpu_attention(void *ctx, int32_t il, ns_act q, ns_act out, int32_t n) {
    ns__cpu_flush(ctx);
    ns__cpu_op_attention(ctx, il, q, out, n);
    ns__cpu_act_written(ctx, out);
}

static void cpu_swiglu(void *ctx, ns_act gate, ns_act up, int32_t width, int32_t n) {
    if (ns__cpu_matmul_swiglu(ctx, gate, up, width, n)) {
        return; /* ran fused with the gate/up matmuls */
    }
    ns__cpu_flush(ctx);
    ns__cpu_op_swiglu(ctx, gate, up, width, n);
    ns__cpu_act_written(ctx, gate);
}

static void cpu_get_rows(void *ctx, ns_act in, ns_act out) {
    ns__cpu_ctx *c = ctx;
    ns__cpu_flush(c);
    const ns_ubatch *ub = c->ub;
    size_t w = (size_t)c->act_w[in] < (size_t)c->act_w[out] ? (size_t)c->act_w[in] : (size_t)c->act_w[out];
    for (int32_t j = 0; j < ub->n_logits; j++) {
        memcpy(ns__cpu_act(c, out, j), ns__cpu_act(c, in, ub->logit_rows[j]), w * sizeof(float));
    }
    ns__cpu_act_written(c, out);
}

static ns_status cpu_end(void *ctx, float *logits, int32_t n_logits) {
    ns__cpu_ctx *c = ctx;
    ns__cpu_flush(c);
    if (logits != NULL && n_logits > 0) {
        memcpy(logits, c->act[NS_ACT_LOGITS], (size_t)n_logits * (size_t)c->hp->n_vocab * sizeof(float));
    }
    c->ub = NULL;
    return c->err.status;
}

static const ns_backend_iface g_cpu_iface = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .errmsg = cpu_errmsg,
    .begin = cpu_begin,
    .embed = cpu_embed,
    .rmsnorm = cpu_rmsnorm,
    .matmul = cpu_matmul,
    .add_bias = cpu_add_bias,
    .rope = cpu_rope,
    .kv_store = cpu_kv_store,
    .attention = cpu_attention,
    .swiglu = cpu_swiglu,
    .get_rows = cpu_get_rows,
    .end = cpu_end,
};

/* Create with an explicit SIMD switch (tests compare scalar and SIMD). */
ns_status ns__backend_cpu_create_ex(const ns_model *model, const ns_backend_params *p, bool allow_simd, ns_backend *out,
                                    ns_err *err);

ns_status ns__backend_cpu_create_ex(const ns_model *model, const ns_backend_params *p, bool allow_simd, ns_backend *out,
                                    ns_err *err) {
    memset(out, 0, sizeof(*out));
    const ns_hparams *hp = ns_model_hparams(model);
    if (p->max_tokens < 1 || p->max_tokens > (1 << 16)) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "cpu: max_tokens %d out of range", p->max_tokens);
    }
    if (p->kv.n_pages < 1 || p->kv.page_size < 1 || p->kv.max_seq_len < 1) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "cpu: bad KV geometry");
    }
    ns__cpu_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "cpu: out of memory");
    }
    ns_status st = NS_ERR_NOMEM;
    c->model = model;
    c->hp = hp;
    c->p = *p;
    c->n_threads = p->n_threads > 0 ? p->n_threads : ns_cpu_count();
    ns__cpu_kernels_init(&c->k, allow_simd);
    c->simd = allow_simd;

    for (int i = 0; i < NS_ACT_COUNT; i++) {
        c->act_w[i] = ns_act_width(hp, (ns_act)i);
        size_t bytes;
        if (!ns_mul_size((size_t)p->max_tokens, (size_t)c->act_w[i] * sizeof(float), &bytes) ||
            (c->act[i] = alloc_aligned(bytes)) == NULL) {
            goto nomem;
        }
        memset(c->act[i], 0, bytes);
    }

    uint64_t kv_bytes = ns_kv_storage_bytes(&p->kv, hp->n_layer, hp->n_head_kv, hp->head_dim);
    if (kv_bytes == 0 || kv_bytes / 2 > SIZE_MAX) {
        st = ns__err_set(err, NS_ERR_INVALID_ARG, "cpu: KV pool size overflows");
        goto fail;
    }
    c->kv_layer_elems = (size_t)p->kv.n_pages * hp->n_head_kv * p->kv.page_size * hp->head_dim;
    c->k_pool = alloc_aligned((size_t)(kv_bytes / 2));
    c->v_pool = alloc_aligned((size_t)(kv_bytes / 2));
    if (c->k_pool == NULL || c->v_pool == NULL) {
        goto nomem;
    }
    /* Touch the pools now so the first passes do not page-fault. */
    memset(c->k_pool, 0, (size_t)(kv_bytes / 2));
    memset(c->v_pool, 0, (size_t)(kv_bytes / 2));

    int32_t half = hp->n_rot / 2;
    c->rope_inv_freq = malloc((size_t)half * sizeof(float));
    if (c->rope_inv_freq == NULL) {
        goto nomem;
    }
    for (int32_t i = 0; i < half; i++) {
        c->rope_inv_freq[i] = ns_model_rope_inv_freq(model, i);
    }

    size_t max_k = (size_t)hp->n_embd;
    if ((size_t)hp->n_ff > max_k) {
        max_k = (size_t)hp->n_ff;
    }
    if ((size_t)hp->n_head * hp->head_dim > max_k) {
        max_k = (size_t)hp->n_head * hp->head_dim;
    }
    c->max_k = max_k;
    size_t sf = (size_t)NS__TILE_ROWS * max_k;
    if ((size_t)p->kv.max_seq_len > sf) {
        sf = (size_t)p->kv.max_seq_len;
    }
    if ((size_t)hp->n_rot > sf) {
        sf = (size_t)hp->n_rot;
    }
    c->scratch_floats = ns_align_up(sf, 16);
    c->scratch = alloc_aligned((size_t)c->n_threads * c->scratch_floats * sizeof(float));
    if (c->scratch == NULL) {
        goto nomem;
    }
    /* Quantized activation rows: as wide as the widest any weight needs. */
    c->qact_stride = 64;
    for (int32_t i = 0; i < ns_model_n_tensors(model); i++) {
        size_t rs = ns__cpu_matmul_act_row_size(c, ns_model_tensor(model, i));
        if (ns_align_up(rs, 64) > c->qact_stride) {
            c->qact_stride = ns_align_up(rs, 64);
        }
    }
    size_t qbytes;
    if (!ns_mul_size(c->qact_stride, (size_t)p->max_tokens, &qbytes) || (c->qact = alloc_aligned(qbytes)) == NULL) {
        goto nomem;
    }
    if (ns_threadpool_create(c->n_threads, &c->tp) != NS_OK) {
        goto nomem;
    }
    out->iface = &g_cpu_iface;
    out->ctx = c;
    return NS_OK;
nomem:
    st = ns__err_set(err, NS_ERR_NOMEM, "cpu: out of memory creating the backend");
fail:
    cpu_destroy(c);
    return st;
}

ns_status ns_backend_cpu_create(const ns_model *model, const ns_backend_params *p, ns_backend *out, ns_err *err) {
    return ns__backend_cpu_create_ex(model, p, true, out, err);
}
