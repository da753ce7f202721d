/* arena_layout.c - see arena_layout.h and docs/memory.md section 1. */
#include "arena_layout.h"

#include <string.h>

#include "ns_util.h"

static const char *const g_comp_names[NS_PLAN_COMP_COUNT] = {
    "resident weights", "staging slots", "KV page pool", "activations", "workspace", "sampling buffers",
};

const char *ns_plan_comp_name(ns_plan_comp c) {
    return (unsigned)c < NS_PLAN_COMP_COUNT ? g_comp_names[c] : "?";
}

static const char *const g_buf_names[NS_ACTBUF_COUNT] = {
    "x",    "xn",       "q",     "k",    "v",        "attn", "gate",      "up",        "logits",    "tokens",   "pos",
    "slot", "out_rows", "pages", "rope", "gemm_w16", "x16",  "cublas_ws", "attn_part", "embd_rows", "embd_ids",
};

const char *ns_actbuf_name(ns_actbuf b) {
    return (unsigned)b < NS_ACTBUF_COUNT ? g_buf_names[b] : "?";
}

bool ns_plan_spread_resident(uint32_t il, uint32_t n_resident, uint32_t n_layer) {
    if (il >= n_layer || n_resident == 0) {
        return false;
    }
    if (n_resident >= n_layer) {
        return true;
    }
    return ((uint64_t)il + 1) * n_resident / n_layer > (uint64_t)il * n_resident / n_layer;
}

/* a * b * c; false on overflow or when the result cannot be aligned. */
static bool mul3(uint64_t a, uint64_t b, uint64_t c, uint64_t *out) {
    uint64_t t;
    if (!ns_mul_u64(a, b, &t) || !ns_mul_u64(t, c, &t) || t > UINT64_MAX - NS_MSIZE_ALIGN) {
        return false;
    }
    *out = t;
    return true;
}

uint64_t ns_arena_kv_page_bytes(const ns_model_sizes *ms, uint32_t page_size) {
    uint64_t b;
    const ns_msize_hparams *hp = &ms->hp;
    if (!mul3((uint64_t)hp->n_layer * hp->n_head_kv, page_size, (uint64_t)hp->head_dim_k * 2u, &b) ||
        !ns_mul_u64(b, 2, &b)) {
        return 0;
    }
    return b;
}

ns_status ns_arena_layout_compute(const ns_model_sizes *ms, const ns_arena_config *cfg, ns_arena_layout *out) {
    memset(out, 0, sizeof *out);
    if (ms == NULL || cfg == NULL || ms->layers == NULL || ms->hp.n_layer == 0 || cfg->max_tokens == 0 ||
        cfg->page_size == 0 || cfg->max_seq_len == 0) {
        return NS_ERR_INVALID_ARG;
    }
    const ns_msize_hparams *hp = &ms->hp;
    const uint32_t L = hp->n_layer;
    const uint64_t T = cfg->max_tokens;
    const uint32_t K = cfg->n_slots ? cfg->n_slots : 2;
    if (K < 2 || K > NS_ARENA_MAX_SLOTS) {
        return NS_ERR_INVALID_ARG;
    }
    ns_arena_layout l;
    memset(&l, 0, sizeof l);
    bool ok = true;

    /* Resident weights: every tensor the backend keeps on the device, each aligned. */
    l.n_resident = cfg->n_resident < L ? cfg->n_resident : L;
    l.n_streamed = L - l.n_resident;
    l.embd_on_host = cfg->embd_on_host && !ms->output_tied;
    uint64_t res = ms->globals_dev_bytes, slot = 0, host = 0;
    ok = ok && ns_add_u64(res, ms->head_dev_bytes, &res);
    if (!ms->output_tied && !l.embd_on_host) {
        ok = ok && ns_add_u64(res, ms->embd_dev_bytes, &res);
    }
    for (uint32_t i = 0; i < L && ok; i++) {
        const uint64_t d = ms->layers[i].dev_bytes;
        if (ns_plan_spread_resident(i, l.n_resident, L)) {
            ok = ns_add_u64(res, d, &res);
        } else {
            slot = d > slot ? d : slot;
            ok = ns_add_u64(host, d, &host);
        }
    }
    l.comp_bytes[NS_PLAN_RESIDENT] = res;
    l.slot_bytes = ns_msize_align(slot);
    l.host_layer_bytes = host;
    l.n_slots = l.n_streamed > 0 ? K : 0;
    ok = ok && ns_mul_u64(l.slot_bytes, l.n_slots, &l.comp_bytes[NS_PLAN_STAGING]);

    /* KV: the K pool and the V pool of every layer (kv_cache.h layout). */
    ok = ok && mul3((uint64_t)L * hp->n_head_kv, cfg->n_pages, (uint64_t)cfg->page_size * hp->head_dim_k * 2u,
                    &l.kv_pool_bytes);
    l.comp_bytes[NS_PLAN_KV] = 2 * ns_msize_align(l.kv_pool_bytes);

    /* Activations: f32 [T, width] buffers, ubatch tables, RoPE table. */
    const uint64_t n_q = (uint64_t)hp->n_head * hp->head_dim_k, n_kv = (uint64_t)hp->n_head_kv * hp->head_dim_k;
    const uint64_t width[NS_ACTBUF_TOKENS] = {
        hp->n_embd, hp->n_embd > n_q ? hp->n_embd : n_q, n_q, n_kv, n_kv, n_q, hp->n_ff, hp->n_ff, hp->n_vocab,
    };
    for (int b = NS_ACTBUF_X; b < NS_ACTBUF_TOKENS && ok; b++) {
        ok = mul3(T, width[b], 4, &l.buf_bytes[b]);
    }
    const uint64_t page_cols = ((uint64_t)cfg->max_seq_len + cfg->page_size - 1) / cfg->page_size;
    l.buf_bytes[NS_ACTBUF_TOKENS] = T * 4;
    l.buf_bytes[NS_ACTBUF_POS] = T * 4;
    l.buf_bytes[NS_ACTBUF_SLOT] = T * 4;
    l.buf_bytes[NS_ACTBUF_OUT_ROWS] = T * 4;
    ok = ok && mul3(T, page_cols, 4, &l.buf_bytes[NS_ACTBUF_PAGES]);
    l.buf_bytes[NS_ACTBUF_ROPE] = (uint64_t)(hp->n_rot / 2 > 0 ? hp->n_rot / 2 : 1) * 4;

    /* Workspace: the kernels' scratch (ns_cuda_scratch_bytes). */
    uint64_t max_k = hp->n_embd;
    max_k = hp->n_ff > max_k ? hp->n_ff : max_k;
    max_k = n_q > max_k ? n_q : max_k;
    l.max_k = (int64_t)max_k;
    l.gemm_dequant_bytes = cfg->gemm_dequant_bytes;
    if (l.gemm_dequant_bytes == 0) {
        l.gemm_dequant_bytes = max_k * 2 * NS_ARENA_GEMM_MIN_ROWS > NS_ARENA_DEFAULT_GEMM_DEQUANT
                                   ? max_k * 2 * NS_ARENA_GEMM_MIN_ROWS
                                   : NS_ARENA_DEFAULT_GEMM_DEQUANT;
    }
    if (l.gemm_dequant_bytes / (max_k * 2) < NS_ARENA_GEMM_MIN_ROWS) {
        return NS_ERR_INVALID_ARG;
    }
    l.cublas_ws_bytes = cfg->cublas_ws_bytes ? cfg->cublas_ws_bytes : NS_ARENA_DEFAULT_CUBLAS_WS;
    l.attn_partial_bytes = cfg->attn_partial_bytes ? cfg->attn_partial_bytes : NS_ARENA_DEFAULT_ATTN_PARTIAL;
    l.embd_row_bytes = l.embd_on_host ? ms->embd_row_bytes : 0;
    l.buf_bytes[NS_ACTBUF_GEMM_W16] = l.gemm_dequant_bytes;
    ok = ok && mul3(T, max_k, 2, &l.buf_bytes[NS_ACTBUF_X16]);
    l.buf_bytes[NS_ACTBUF_CUBLAS_WS] = l.cublas_ws_bytes;
    l.buf_bytes[NS_ACTBUF_ATTN_PART] = l.attn_partial_bytes;
    ok = ok && mul3(T, l.embd_row_bytes, 1, &l.buf_bytes[NS_ACTBUF_EMBD_ROWS]);
    l.buf_bytes[NS_ACTBUF_EMBD_IDS] = l.embd_on_host ? T * 4 : 0;
    if (!ok) {
        return NS_ERR_RANGE;
    }

    /* Offsets: components in order, buffers in carve order inside theirs. */
    uint64_t off = 0;
    for (int c = 0; c < NS_PLAN_COMP_COUNT && ok; c++) {
        l.comp_offset[c] = off;
        if (c == NS_PLAN_ACTIVATIONS || c == NS_PLAN_WORKSPACE) {
            int b0 = c == NS_PLAN_ACTIVATIONS ? 0 : NS_ACTBUF_WORKSPACE_FIRST;
            int b1 = c == NS_PLAN_ACTIVATIONS ? NS_ACTBUF_WORKSPACE_FIRST : NS_ACTBUF_COUNT;
            uint64_t sum = 0;
            for (int b = b0; b < b1 && ok; b++) {
                l.buf_offset[b] = off + sum;
                ok = l.buf_bytes[b] <= UINT64_MAX - NS_MSIZE_ALIGN &&
                     ns_add_u64(sum, ns_msize_align(l.buf_bytes[b]), &sum);
            }
            l.comp_bytes[c] = sum;
        }
        ok = ok && ns_add_u64(off, l.comp_bytes[c], &off);
    }
    if (!ok) {
        return NS_ERR_RANGE;
    }
    l.total = off;
    *out = l;
    return NS_OK;
}
