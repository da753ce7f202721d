/*
 * batch.c - ubatch storage helpers (see batch.h).
 * Thread safety: none; a ubatch belongs to one thread.
 */
#include "batch.h"

#include <string.h>

#include "ns_util.h"

#define NS__UB_ALIGN 64

size_t ns_ubatch_bytes(int32_t cap, int32_t max_pages) {
    size_t c = (size_t)(cap > 0 ? cap : 0);
    size_t mp = (size_t)(max_pages > 0 ? max_pages : 0);
    size_t n = 0;
    n += ns_align_up(c * sizeof(int32_t), NS__UB_ALIGN) * 6;  /* token, pos, seq_id, slot, seq_len, logit_rows */
    n += ns_align_up(c, NS__UB_ALIGN);                        /* want_logits */
    n += ns_align_up(c * mp * sizeof(int32_t), NS__UB_ALIGN); /* pages */
    return n + NS__UB_ALIGN;
}

ns_status ns_ubatch_init(ns_ubatch *ub, ns_arena *arena, int32_t cap, int32_t max_pages) {
    memset(ub, 0, sizeof(*ub));
    if (cap <= 0 || max_pages <= 0) {
        return NS_ERR_INVALID_ARG;
    }
    size_t pages_n;
    if (!ns_mul_size((size_t)cap, (size_t)max_pages, &pages_n) || !ns_mul_size(pages_n, sizeof(int32_t), &pages_n)) {
        return NS_ERR_INVALID_ARG;
    }
    size_t ci = (size_t)cap * sizeof(int32_t);
    ub->token = ns_arena_calloc(arena, ci, NS__UB_ALIGN);
    ub->pos = ns_arena_calloc(arena, ci, NS__UB_ALIGN);
    ub->seq_id = ns_arena_calloc(arena, ci, NS__UB_ALIGN);
    ub->slot = ns_arena_calloc(arena, ci, NS__UB_ALIGN);
    ub->seq_len = ns_arena_calloc(arena, ci, NS__UB_ALIGN);
    ub->logit_rows = ns_arena_calloc(arena, ci, NS__UB_ALIGN);
    ub->want_logits = ns_arena_calloc(arena, (size_t)cap, NS__UB_ALIGN);
    ub->pages = ns_arena_calloc(arena, pages_n, NS__UB_ALIGN);
    if (!ub->token || !ub->pos || !ub->seq_id || !ub->slot || !ub->seq_len || !ub->logit_rows || !ub->want_logits ||
        !ub->pages) {
        memset(ub, 0, sizeof(*ub));
        return NS_ERR_NOMEM;
    }
    ub->cap = cap;
    ub->max_pages = max_pages;
    return NS_OK;
}

bool ns_ubatch_add(ns_ubatch *ub, int32_t token, int32_t pos, int32_t seq_id, bool want_logits) {
    if (ub->n_tokens >= ub->cap) {
        return false;
    }
    int32_t i = ub->n_tokens++;
    ub->token[i] = token;
    ub->pos[i] = pos;
    ub->seq_id[i] = seq_id;
    ub->want_logits[i] = want_logits ? 1 : 0;
    return true;
}
