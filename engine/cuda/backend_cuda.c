/*
 * backend_cuda.c - the CUDA backend: backend.h's op table on top of the
 * kernels in kernels/ (ns_cuda.h). engine/forward.c drives it exactly as it
 * drives the CPU backend; nothing here knows the model's layer order beyond
 * "ops of layer il come after those of layer il-1", which the streaming
 * pipeline uses.
 *
 * Device memory: one ns_cuda arena holds, in order, the resident weights,
 * the staging slots, the K/V pools of every layer (kv_cache.h layout), the
 * activation buffers, the ubatch tables, the RoPE table and the kernels'
 * scratch (GEMM fp16 chunk, cuBLAS workspace, split-K partials). Its size
 * and every piece come from ns_backend_cuda_arena_layout (cuda_arena.c, on
 * arena_layout.h: the planner's function); creation checks that each piece
 * agrees with this file's own view of it (activation widths, KV storage,
 * the kernels' scratch) and that the carved total equals the layout's.
 *
 * Weight streaming (non-resident layers): every tensor of a streamed layer
 * is packed into one pinned host block (cudaHostAlloc, filled from the mmap
 * at creation). The n-th streamed layer of a pass uses slot n mod K. When a
 * pass starts, the first K streamed layers are already uploading (issued at
 * the end of the previous pass, or at creation). When the forward pass moves
 * from layer a to layer b: the slot of a (if streamed) is released on the
 * compute stream, the streamed layer K places after a is uploaded into that
 * slot on the copy stream (its copy waits for the release event), and the
 * compute stream waits for b's upload. A slot is therefore reused only after
 * the layer in it finished, and layer i+1 uploads while layer i computes.
 *
 * Errors: ops return nothing; the first failure is latched and returned by
 * `end` (and `begin` of later passes) with its message.
 *
 * Ownership: the context owns the ns_cuda handle (and so the arena), the
 * pinned host blocks and its host tables; the model is borrowed.
 * Thread safety: one thread at a time, as backend.h.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "backend_cuda.h"
#include "model_sizes.h"
#include "ns_cuda.h"
#include "ns_util.h"
#include "planner.h"

#define CU_ALIGN ((uint64_t)256)

typedef struct cu_weight {
    const ns_tensor *t;
    int32_t layer;     /* owning layer, -1 for globals */
    void *d;           /* device address when resident */
    uint64_t slot_off; /* offset inside the layer's staging package when streamed */
} cu_weight;

typedef struct cu_ctx {
    const ns_model *model;
    const ns_hparams *hp;
    ns_backend_params p;
    ns_backend_cuda_params cp;
    ns_cuda *cu;

    cu_weight *w; /* [n_tensors] */
    int32_t n_tensors;
    bool *resident;        /* [n_layer] */
    int32_t *stream_index; /* [n_layer] index among streamed layers, -1 if resident */
    int32_t *streamed;     /* [n_streamed] layer ids in order */
    int32_t n_streamed;
    uint64_t *pkg_bytes; /* [n_layer] bytes of a streamed layer's package */
    uint8_t *h_pkg;      /* pinned: every streamed layer's package, back to back */
    uint64_t *pkg_off;   /* [n_layer] offset of the layer's package in h_pkg */
    uint64_t slot_bytes;
    int32_t n_slots;
    void *h_embd; /* pinned copy of token_embd when it stays on the host */

    float *act[NS_ACT_COUNT]; /* [max_tokens][act_w] each */
    int32_t act_w[NS_ACT_COUNT];
    uint16_t *k_pool, *v_pool; /* [n_layer][layer_elems] f16 */
    uint64_t layer_elems;
    int32_t max_pages; /* page-table columns the device tables hold */
    int32_t *d_tok, *d_pos, *d_slot, *d_pages, *d_logit_rows;
    float *d_inv_freq; /* [n_rot/2] */

    /* the current pass */
    const ns_ubatch *ub;
    ns_cuda_attn_batch ab;
    int32_t cur_layer;   /* layer whose weights the ops are using, -1 = none */
    int32_t next_upload; /* index in `streamed` of the next layer to upload */
    bool prefetched;     /* the first K uploads of the next pass are already issued */

    ns_status st; /* first error latched in this pass */
    ns_err err;
} cu_ctx;

/* ---- sizing ---------------------------------------------------------------- */

static uint64_t al(uint64_t n) {
    return (n + CU_ALIGN - 1) & ~(CU_ALIGN - 1);
}

/* Layer of a tensor by name ("blk.N."), -1 for globals: the grouping rule
 * of model_sizes.h, so packages match the layout's per-layer sizes. */
static int32_t tensor_layer(const ns_model *m, const ns_tensor *t) {
    int64_t il = ns_msize_layer_index(t->name);
    return il >= 0 && il < ns_model_hparams(m)->n_layer ? (int32_t)il : -1;
}

static bool layer_is_resident(const ns_hparams *hp, const ns_backend_cuda_params *cp, int32_t il) {
    if (cp->n_resident < 0) {
        return true;
    }
    return cp->n_resident >= hp->n_layer ||
           ns_plan_spread_resident((uint32_t)il, (uint32_t)cp->n_resident, (uint32_t)hp->n_layer);
}

static int32_t page_cols(const ns_backend_params *p) {
    return (p->kv.max_seq_len + p->kv.page_size - 1) / p->kv.page_size;
}

/* The kernels' scratch configuration of a layout. */
static ns_cuda_scratch_cfg scratch_cfg(const ns_arena_layout *l, int32_t max_tokens) {
    ns_cuda_scratch_cfg s;
    memset(&s, 0, sizeof s);
    s.max_tokens = max_tokens;
    s.max_k = l->max_k;
    s.gemm_dequant_bytes = (size_t)l->gemm_dequant_bytes;
    s.cublas_ws_bytes = (size_t)l->cublas_ws_bytes;
    s.attn_partial_bytes = (size_t)l->attn_partial_bytes;
    s.embd_row_bytes = (size_t)l->embd_row_bytes;
    return s;
}

/* ---- error latch -------------------------------------------------------------- */

static bool ok(cu_ctx *c) {
    return c->st == NS_OK;
}

static void latch(cu_ctx *c, ns_status st) {
    if (st != NS_OK && c->st == NS_OK) {
        c->st = st;
        ns__err_set(&c->err, st, "%s", ns_cuda_errmsg(c->cu));
    }
}

/* ---- streaming ---------------------------------------------------------------- */

static void upload_streamed(cu_ctx *c, int32_t si) {
    const int32_t il = c->streamed[si];
    ns_cuda_copy_span span = {c->h_pkg + c->pkg_off[il], 0, (size_t)c->pkg_bytes[il]};
    latch(c, ns_cuda_staging_upload(c->cu, si % c->n_slots, &span, 1));
}

/* Issue the first K uploads of a pass (for the pass that follows). */
static void prefetch_pass(cu_ctx *c) {
    c->next_upload = 0;
    while (ok(c) && c->next_upload < c->n_streamed && c->next_upload < c->n_slots) {
        upload_streamed(c, c->next_upload++);
    }
    c->prefetched = true;
}

/* The forward pass moves its weight use to layer `il` (-1: globals/head). */
static void enter_layer(cu_ctx *c, int32_t il) {
    if (il == c->cur_layer) {
        return;
    }
    if (c->cur_layer >= 0 && !c->resident[c->cur_layer]) {
        const int32_t si = c->stream_index[c->cur_layer];
        latch(c, ns_cuda_staging_release(c->cu, si % c->n_slots));
        /* the slot just released takes the streamed layer K places later */
        if (ok(c) && c->next_upload < c->n_streamed) {
            upload_streamed(c, c->next_upload++);
        }
    }
    if (il >= 0 && !c->resident[il] && ok(c)) {
        latch(c, ns_cuda_staging_acquire(c->cu, c->stream_index[il] % c->n_slots));
    }
    c->cur_layer = il;
}

/* Device address of a weight, entering its layer first. */
static const void *weight(cu_ctx *c, const ns_tensor *t) {
    const cu_weight *w = &c->w[t->id];
    enter_layer(c, w->layer);
    if (w->d != NULL) {
        return w->d;
    }
    const int32_t si = c->stream_index[w->layer];
    return (const uint8_t *)ns_cuda_staging_ptr(c->cu, si % c->n_slots) + w->slot_off;
}

/* ---- ops ---------------------------------------------------------------------- */

static void cu_destroy(void *ctx) {
    cu_ctx *c = ctx;
    if (c == NULL) {
        return;
    }
    if (c->cu != NULL) {
        ns_cuda_host_free(c->cu, c->h_pkg);
        ns_cuda_host_free(c->cu, c->h_embd);
        ns_cuda_destroy(&c->cu);
    }
    free(c->w);
    free(c->resident);
    free(c->stream_index);
    free(c->streamed);
    free(c->pkg_bytes);
    free(c->pkg_off);
    free(c);
}

static const char *cu_errmsg(void *ctx) {
    return ns_err_msg(&((cu_ctx *)ctx)->err);
}

static ns_status cu_begin(void *ctx, const ns_ubatch *ub) {
    cu_ctx *c = ctx;
    if (c->st != NS_OK) {
        return c->st; /* a device error is fatal for the handle */
    }
    if (ub->n_tokens <= 0 || ub->n_tokens > c->p.max_tokens) {
        return ns__err_set(&c->err, NS_ERR_INVALID_ARG, "cuda: ubatch of %d tokens (max %d)", ub->n_tokens,
                           c->p.max_tokens);
    }
    if (ub->max_pages > c->max_pages || ub->n_seq > c->p.max_tokens || ub->n_logits > c->p.max_tokens) {
        return ns__err_set(&c->err, NS_ERR_INVALID_ARG, "cuda: ubatch page table of %d columns (max %d)", ub->max_pages,
                           c->max_pages);
    }
    const size_t n = (size_t)ub->n_tokens;
    int32_t max_pos = 0;
    for (size_t i = 0; i < n; i++) {
        max_pos = ub->pos[i] > max_pos ? ub->pos[i] : max_pos;
    }
    ns_status st = NS_OK;
    /* Host arrays are pageable: the copies complete before the calls return
     * (cudaMemcpyAsync stages pageable memory), so the ubatch may change
     * after begin. They are small. */
    if (st == NS_OK) {
        st = ns_cuda_h2d(c->cu, c->d_tok, ub->token, n * sizeof(int32_t));
    }
    if (st == NS_OK) {
        st = ns_cuda_h2d(c->cu, c->d_pos, ub->pos, n * sizeof(int32_t));
    }
    if (st == NS_OK) {
        st = ns_cuda_h2d(c->cu, c->d_slot, ub->slot, n * sizeof(int32_t));
    }
    if (st == NS_OK && ub->n_seq > 0) {
        st = ns_cuda_h2d(c->cu, c->d_pages, ub->pages, (size_t)ub->n_seq * (size_t)ub->max_pages * sizeof(int32_t));
    }
    if (st == NS_OK && ub->n_logits > 0) {
        st = ns_cuda_h2d(c->cu, c->d_logit_rows, ub->logit_rows, (size_t)ub->n_logits * sizeof(int32_t));
    }
    if (st != NS_OK) {
        latch(c, st);
        return c->st;
    }
    c->ub = ub;
    c->ab.tok_seq = c->d_slot;
    c->ab.tok_pos = c->d_pos;
    c->ab.page_table = c->d_pages;
    c->ab.max_pages = ub->max_pages;
    c->ab.n_tokens = ub->n_tokens;
    c->ab.max_pos = max_pos;
    c->cur_layer = -1;
    if (!c->prefetched) {
        prefetch_pass(c);
    }
    c->prefetched = false;
    return c->st;
}

static void cu_embed(void *ctx, const ns_tensor *tok_embd, ns_act out, int32_t n) {
    cu_ctx *c = ctx;
    if (!ok(c)) {
        return;
    }
    if (c->h_embd != NULL) {
        latch(c, ns_cuda_embed_host(c->cu, tok_embd->type, c->h_embd, tok_embd->ne[1], tok_embd->ne[0], c->ub->token, n,
                                    c->act[out]));
        return;
    }
    latch(c, ns_cuda_embed(c->cu, tok_embd->type, weight(c, tok_embd), tok_embd->ne[1], tok_embd->ne[0], c->d_tok, n,
                           c->act[out]));
}

static void cu_rmsnorm(void *ctx, ns_act in, const ns_tensor *w, float eps, ns_act out, int32_t n) {
    cu_ctx *c = ctx;
    if (!ok(c)) {
        return;
    }
    const void *dw = weight(c, w);
    if (ok(c)) {
        latch(c, ns_cuda_rms_norm(c->cu, c->act[in], c->act_w[in], dw, c->act[out], c->act_w[out], n, w->ne[0], eps));
    }
}

static void cu_matmul(void *ctx, const ns_tensor *w, ns_act in, ns_act out, int32_t n, bool accumulate) {
    cu_ctx *c = ctx;
    if (!ok(c)) {
        return;
    }
    const void *dw = weight(c, w);
    if (ok(c)) {
        latch(c, ns_cuda_matmul(c->cu, w->type, dw, w->ne[1], w->ne[0], c->act[in], c->act_w[in], n, c->act[out],
                                c->act_w[out], accumulate));
    }
}

static void cu_add_bias(void *ctx, ns_act io, const ns_tensor *b, int32_t n) {
    cu_ctx *c = ctx;
    if (!ok(c)) {
        return;
    }
    const void *db = weight(c, b);
    if (ok(c)) {
        latch(c, ns_cuda_add_bias(c->cu, c->act[io], c->act_w[io], db, n, b->ne[0]));
    }
}

static void cu_rope(void *ctx, ns_act io, int32_t n_heads, int32_t n) {
    cu_ctx *c = ctx;
    if (!ok(c)) {
        return;
    }
    const ns_cuda_rope_mode mode = c->hp->rope_style == NS_ROPE_NEOX ? NS_CUDA_ROPE_NEOX : NS_CUDA_ROPE_NORM;
    latch(c, ns_cuda_rope(c->cu, c->act[io], n, n_heads, c->hp->head_dim, c->act_w[io], c->d_pos, mode, c->hp->n_rot,
                          c->d_inv_freq));
}

static ns_cuda_kv_view kv_view(const cu_ctx *c, int32_t il) {
    const ns_hparams *hp = c->hp;
    ns_cuda_kv_view v;
    v.k = c->k_pool + (uint64_t)il * c->layer_elems;
    v.v = c->v_pool + (uint64_t)il * c->layer_elems;
    v.head_stride = (int64_t)c->p.kv.page_size * hp->head_dim;
    v.page_stride = (int64_t)hp->n_head_kv * v.head_stride;
    v.token_stride = hp->head_dim;
    v.page_size = c->p.kv.page_size;
    v.n_pages = c->p.kv.n_pages;
    return v;
}

static void cu_kv_store(void *ctx, int32_t il, ns_act k, ns_act v, int32_t n) {
    cu_ctx *c = ctx;
    if (!ok(c)) {
        return;
    }
    ns_cuda_kv_view kv = kv_view(c, il);
    ns_cuda_attn_batch ab = c->ab;
    ab.n_tokens = n;
    latch(c, ns_cuda_kv_store(c->cu, &kv, &ab, c->act[k], c->act_w[k], c->act[v], c->act_w[v], c->hp->n_head_kv,
                              c->hp->head_dim));
}

static void cu_attention(void *ctx, int32_t il, ns_act q, ns_act out, int32_t n) {
    cu_ctx *c = ctx;
    if (!ok(c)) {
        return;
    }
    ns_cuda_kv_view kv = kv_view(c, il);
    ns_cuda_attn_batch ab = c->ab;
    ab.n_tokens = n;
    latch(c, ns_cuda_attention(c->cu, &kv, &ab, c->act[q], c->act_w[q], c->act[out], c->act_w[out], c->hp->n_head,
                               c->hp->n_head_kv, c->hp->head_dim, 1.0f / sqrtf((float)c->hp->head_dim)));
}

static void cu_swiglu(void *ctx, ns_act gate, ns_act up, int32_t width, int32_t n) {
    cu_ctx *c = ctx;
    if (!ok(c)) {
        return;
    }
    if (c->act_w[gate] != width || c->act_w[up] != width) {
        c->st = ns__err_set(&c->err, NS_ERR_INVALID_ARG, "cuda: swiglu width %d != buffer width", width);
        return;
    }
    latch(c, ns_cuda_swiglu(c->cu, c->act[gate], c->act[up], c->act[gate], (int64_t)n * width));
}

static void cu_get_rows(void *ctx, ns_act in, ns_act out) {
    cu_ctx *c = ctx;
    if (!ok(c)) {
        return;
    }
    enter_layer(c, -1); /* the head follows: the last layer's slot can go */
    latch(c, ns_cuda_gather_rows(c->cu, c->act[in], c->act_w[in], c->d_logit_rows, c->ub->n_logits, c->act_w[in],
                                 c->act[out], c->act_w[out]));
}

static ns_status cu_end(void *ctx, float *logits, int32_t n_logits) {
    cu_ctx *c = ctx;
    enter_layer(c, -1);
    if (ok(c) && logits != NULL && n_logits > 0) {
        latch(c, ns_cuda_d2h(c->cu, logits, c->act[NS_ACT_LOGITS],
                             (size_t)n_logits * (size_t)c->act_w[NS_ACT_LOGITS] * sizeof(float)));
    }
    latch(c, ns_cuda_sync(c->cu));
    /* Weights do not change: the next pass's first K streamed layers upload
     * now, overlapping the host's sampling and batch building. Issued after
     * the sync so that `end` never waits for them. */
    if (ok(c) && c->n_streamed > 0) {
        prefetch_pass(c);
    }
    c->ub = NULL;
    return c->st;
}

static const ns_backend_iface g_cuda_iface = {
    .name = "cuda",
    .destroy = cu_destroy,
    .errmsg = cu_errmsg,
    .begin = cu_begin,
    .embed = cu_embed,
    .rmsnorm = cu_rmsnorm,
    .matmul = cu_matmul,
    .add_bias = cu_add_bias,
    .rope = cu_rope,
    .kv_store = cu_kv_store,
    .attention = cu_attention,
    .swiglu = cu_swiglu,
    .get_rows = cu_get_rows,
    .end = cu_end,
};

/* ---- creation ----------------------------------------------------------------- */

static void *carve(cu_ctx *c, uint64_t bytes, ns_status *st) {
    if (*st != NS_OK) {
        return NULL;
    }
    void *p = ns_cuda_alloc(c->cu, (size_t)bytes, (size_t)CU_ALIGN);
    if (p == NULL) {
        *st = ns__err_set(&c->err, NS_ERR_CAPACITY, "%s", ns_cuda_errmsg(c->cu));
    }
    return p;
}

static ns_status check_types(const ns_model *m, ns_err *err) {
    for (int32_t id = 0; id < ns_model_n_tensors(m); id++) {
        const ns_tensor *t = ns_model_tensor(m, id);
        if (!ns_cuda_type_supported(t->type)) {
            return ns__err_set(err, NS_ERR_UNSUPPORTED, "cuda: tensor %s has unsupported type %s", t->name,
                               ns_type_name(t->type));
        }
    }
    return NS_OK;
}

/* The layout against this file's own view of each piece (activation
 * widths, KV storage, page tables, RoPE table, the kernels' scratch). A
 * mismatch is a bug: the layout and the carving code disagree. */
static ns_status check_layout(const cu_ctx *c, const ns_arena_layout *lay, ns_err *err) {
    const ns_hparams *hp = c->hp;
    const ns_backend_params *p = &c->p;
    const uint64_t T = (uint64_t)p->max_tokens;
    const char *what = NULL;
    for (int a = 0; a < NS_ACT_COUNT && what == NULL; a++) {
        if (lay->buf_bytes[a] != T * (uint64_t)ns_act_width(hp, (ns_act)a) * sizeof(float)) {
            what = ns_actbuf_name((ns_actbuf)a);
        }
    }
    if (what == NULL &&
        2 * lay->kv_pool_bytes != ns_kv_storage_bytes(&p->kv, hp->n_layer, hp->n_head_kv, hp->head_dim)) {
        what = "KV pools";
    }
    if (what == NULL && lay->buf_bytes[NS_ACTBUF_PAGES] != T * (uint64_t)page_cols(p) * 4) {
        what = "page tables";
    }
    if (what == NULL && lay->buf_bytes[NS_ACTBUF_ROPE] != (uint64_t)(hp->n_rot / 2 > 0 ? hp->n_rot / 2 : 1) * 4) {
        what = "RoPE table";
    }
    ns_cuda_scratch_cfg sc = scratch_cfg(lay, p->max_tokens);
    if (what == NULL && (uint64_t)ns_cuda_scratch_bytes(&sc) != lay->comp_bytes[NS_PLAN_WORKSPACE]) {
        what = "kernel scratch";
    }
    if (what != NULL) {
        return ns__err_set(err, NS_ERR_STATE, "cuda: the arena layout disagrees with the backend on %s", what);
    }
    return NS_OK;
}

static ns_status create_inner(cu_ctx *c, ns_err *err) {
    const ns_model *m = c->model;
    const ns_hparams *hp = c->hp;
    const ns_backend_params *p = &c->p;
    ns_status st = NS_OK;

    NS_TRY(check_types(m, err));
    if (hp->head_dim > 256) {
        return ns__err_set(err, NS_ERR_UNSUPPORTED, "cuda: head_dim %d > 256", hp->head_dim);
    }
    if (c->cp.embd_on_host && hp->tied_output) {
        c->cp.embd_on_host = false; /* the head needs token_embd on the device */
    }
    c->n_slots = c->cp.n_slots > 0 ? c->cp.n_slots : 2;
    ns_arena_layout lay;
    NS_TRY(ns_backend_cuda_arena_layout(m, p, &c->cp, &lay, err));
    NS_TRY(check_layout(c, &lay, err));
    c->slot_bytes = lay.slot_bytes;
    const uint64_t need = lay.total;
    uint64_t arena = c->cp.arena_bytes != 0 ? c->cp.arena_bytes : need;
    if (need > arena) {
        char a[32], b[32];
        return ns__err_set(err, NS_ERR_CAPACITY, "cuda: this configuration needs %s of arena, budget is %s",
                           ns_format_size(need, a, sizeof a), ns_format_size(arena, b, sizeof b));
    }
    NS_TRY(ns_cuda_create(&c->cu, p->device, (size_t)arena, err));

    /* tensor table and placement */
    c->n_tensors = ns_model_n_tensors(m);
    c->w = calloc((size_t)c->n_tensors, sizeof(cu_weight));
    c->resident = calloc((size_t)hp->n_layer, sizeof(bool));
    c->stream_index = calloc((size_t)hp->n_layer, sizeof(int32_t));
    c->streamed = calloc((size_t)hp->n_layer, sizeof(int32_t));
    c->pkg_bytes = calloc((size_t)hp->n_layer, sizeof(uint64_t));
    c->pkg_off = calloc((size_t)hp->n_layer, sizeof(uint64_t));
    if (c->w == NULL || c->resident == NULL || c->stream_index == NULL || c->streamed == NULL || c->pkg_bytes == NULL ||
        c->pkg_off == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "cuda: out of host memory");
    }
    uint64_t host_total = 0;
    for (int32_t il = 0; il < hp->n_layer; il++) {
        c->resident[il] = layer_is_resident(hp, &c->cp, il);
        c->stream_index[il] = -1;
        if (!c->resident[il]) {
            c->stream_index[il] = c->n_streamed;
            c->streamed[c->n_streamed++] = il;
        }
    }
    for (int32_t id = 0; id < c->n_tensors; id++) {
        const ns_tensor *t = ns_model_tensor(m, id);
        cu_weight *w = &c->w[id];
        w->t = t;
        w->layer = tensor_layer(m, t);
        if (w->layer >= 0 && !c->resident[w->layer]) {
            w->slot_off = c->pkg_bytes[w->layer];
            c->pkg_bytes[w->layer] += al(t->nbytes);
        }
    }
    for (int32_t i = 0; i < c->n_streamed; i++) {
        c->pkg_off[c->streamed[i]] = host_total;
        host_total += c->pkg_bytes[c->streamed[i]];
    }

    /* arena, in the layout's order (every piece 256-aligned, so the total is the sum of the aligned sizes) */
    const ns_tensor *embd = ns_model_tok_embd(m);
    for (int32_t id = 0; id < c->n_tensors && st == NS_OK; id++) {
        cu_weight *w = &c->w[id];
        if (w->layer >= 0 && !c->resident[w->layer]) {
            continue;
        }
        if (w->t == embd && c->cp.embd_on_host) {
            continue;
        }
        w->d = carve(c, w->t->nbytes, &st);
        if (st == NS_OK) {
            st = ns_cuda_h2d(c->cu, w->d, w->t->data, w->t->nbytes);
            if (st != NS_OK) {
                ns__err_set(err, st, "%s", ns_cuda_errmsg(c->cu));
            }
        }
    }
    if (st == NS_OK && c->n_streamed > 0) {
        st = ns_cuda_staging_init(c->cu, c->n_slots, (size_t)c->slot_bytes);
        if (st == NS_OK) {
            st = ns_cuda_host_alloc(c->cu, (size_t)host_total, (void **)&c->h_pkg);
        }
        for (int32_t id = 0; id < c->n_tensors && st == NS_OK; id++) {
            const cu_weight *w = &c->w[id];
            if (w->layer >= 0 && !c->resident[w->layer]) {
                memcpy(c->h_pkg + c->pkg_off[w->layer] + w->slot_off, w->t->data, w->t->nbytes);
            }
        }
        if (st != NS_OK) {
            ns__err_set(err, st, "%s", ns_cuda_errmsg(c->cu));
        }
    }
    if (st == NS_OK && c->cp.embd_on_host) {
        st = ns_cuda_host_alloc(c->cu, embd->nbytes, &c->h_embd);
        if (st == NS_OK) {
            memcpy(c->h_embd, embd->data, embd->nbytes);
        } else {
            ns__err_set(err, st, "%s", ns_cuda_errmsg(c->cu));
        }
    }
    const uint64_t kv = ns_kv_storage_bytes(&p->kv, hp->n_layer, hp->n_head_kv, hp->head_dim);
    c->layer_elems = kv / 2 / sizeof(uint16_t) / (uint64_t)hp->n_layer;
    c->k_pool = carve(c, lay.kv_pool_bytes, &st);
    c->v_pool = carve(c, lay.kv_pool_bytes, &st);
    for (int a = 0; a < NS_ACT_COUNT; a++) {
        c->act_w[a] = ns_act_width(hp, (ns_act)a);
        c->act[a] = carve(c, lay.buf_bytes[a], &st);
    }
    c->max_pages = page_cols(p);
    c->d_tok = carve(c, lay.buf_bytes[NS_ACTBUF_TOKENS], &st);
    c->d_pos = carve(c, lay.buf_bytes[NS_ACTBUF_POS], &st);
    c->d_slot = carve(c, lay.buf_bytes[NS_ACTBUF_SLOT], &st);
    c->d_logit_rows = carve(c, lay.buf_bytes[NS_ACTBUF_OUT_ROWS], &st);
    c->d_pages = carve(c, lay.buf_bytes[NS_ACTBUF_PAGES], &st);
    const int32_t half = hp->n_rot / 2 > 0 ? hp->n_rot / 2 : 1;
    c->d_inv_freq = carve(c, lay.buf_bytes[NS_ACTBUF_ROPE], &st);
    if (st != NS_OK) {
        return ns__err_set(err, st, "%s", ns_err_msg(&c->err));
    }
    float *inv = malloc((size_t)half * sizeof(float));
    if (inv == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "cuda: out of host memory");
    }
    for (int32_t i = 0; i < half; i++) {
        inv[i] = ns_model_rope_inv_freq(m, i);
    }
    st = ns_cuda_h2d(c->cu, c->d_inv_freq, inv, (size_t)half * sizeof(float));
    if (st == NS_OK) {
        st = ns_cuda_sync(c->cu); /* inv is freed below; weights are in place */
    }
    free(inv);
    if (st != NS_OK) {
        return ns__err_set(err, st, "%s", ns_cuda_errmsg(c->cu));
    }
    ns_cuda_scratch_cfg sc = scratch_cfg(&lay, p->max_tokens);
    st = ns_cuda_reserve_scratch(c->cu, &sc);
    if (st != NS_OK) {
        return ns__err_set(err, st, "%s", ns_cuda_errmsg(c->cu));
    }
    /* Everything is carved: it must be exactly the layout the plan was made of. */
    const uint64_t used = (uint64_t)ns_cuda_arena(c->cu)->used;
    if (used != lay.total) {
        return ns__err_set(err, NS_ERR_STATE, "cuda: carved %llu arena bytes but the layout says %llu",
                           (unsigned long long)used, (unsigned long long)lay.total);
    }
    c->cur_layer = -1;
    if (c->n_streamed > 0) {
        prefetch_pass(c);
        if (c->st != NS_OK) {
            return ns__err_set(err, c->st, "%s", ns_err_msg(&c->err));
        }
    }
    return NS_OK;
}

ns_status ns_backend_cuda_create_ex(const ns_model *model, const ns_backend_params *p, const ns_backend_cuda_params *cp,
                                    ns_backend *out, ns_err *err) {
    memset(out, 0, sizeof *out);
    if (p->max_tokens <= 0 || p->kv.page_size <= 0 || p->kv.max_seq_len <= 0 || p->kv.n_pages <= 0) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "cuda: bad backend parameters");
    }
    if (ns_cuda_device_count() <= 0) {
        return ns__err_set(err, NS_ERR_DEVICE, "cuda: no CUDA device found");
    }
    cu_ctx *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "cuda: out of host memory");
    }
    c->model = model;
    c->hp = ns_model_hparams(model);
    c->p = *p;
    c->cp = *cp;
    ns_status st = create_inner(c, err);
    if (st != NS_OK) {
        cu_destroy(c);
        return st;
    }
    out->iface = &g_cuda_iface;
    out->ctx = c;
    return NS_OK;
}

ns_status ns_backend_cuda_create(const ns_model *model, const ns_backend_params *p, ns_backend *out, ns_err *err) {
    ns_backend_cuda_params cp;
    ns_backend_cuda_params_default(&cp);
    return ns_backend_cuda_create_ex(model, p, &cp, out, err);
}

const struct ns_cuda_info *ns_backend_cuda_info(const ns_backend *b) {
    if (b == NULL || b->iface != &g_cuda_iface) {
        return NULL;
    }
    return ns_cuda_get_info(((const cu_ctx *)b->ctx)->cu);
}

ns_status ns_backend_cuda_device_used(const ns_backend *b, uint64_t *used) {
    if (b == NULL || b->iface != &g_cuda_iface) {
        return NS_ERR_INVALID_ARG;
    }
    return ns_cuda_device_used(((const cu_ctx *)b->ctx)->cu, used);
}
