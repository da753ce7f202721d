/*
 * kv_cache.c - paged KV bookkeeping: page free list (a stack), per-sequence
 * page tables and lengths (see kv_cache.h). All memory is allocated at
 * creation. Thread safety: none.
 */
#include "kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "ns_util.h"

struct ns_kv_cache {
    ns_kv_params p;
    int32_t max_pages_per_seq; /* ceil(max_seq_len / page_size) */
    int32_t *free_pages;       /* [n_pages] stack of free page ids */
    int32_t n_free;
    int32_t *tables;  /* [max_seqs][max_pages_per_seq] */
    int32_t *n_owned; /* [max_seqs] pages owned */
    int32_t *len;     /* [max_seqs] positions stored */
    uint8_t *active;  /* [max_seqs] */
    int32_t n_active;
};

ns_status ns_kv_cache_create(const ns_kv_params *p, ns_kv_cache **out, ns_err *err) {
    *out = NULL;
    if (p->n_pages < 1 || p->page_size < 1 || p->page_size > 256 || p->max_seqs < 1 || p->max_seqs > (1 << 20) ||
        p->max_seq_len < 1) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "kv: bad parameters (n_pages %d, page_size %d, max_seqs %d)",
                           p->n_pages, p->page_size, p->max_seqs);
    }
    ns_kv_cache *kv = calloc(1, sizeof(*kv));
    if (kv == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "kv: out of memory");
    }
    kv->p = *p;
    kv->max_pages_per_seq = (p->max_seq_len + p->page_size - 1) / p->page_size;
    size_t tbl;
    if (!ns_mul_size((size_t)p->max_seqs, (size_t)kv->max_pages_per_seq, &tbl)) {
        free(kv);
        return ns__err_set(err, NS_ERR_INVALID_ARG, "kv: page table too large");
    }
    kv->free_pages = malloc((size_t)p->n_pages * sizeof(int32_t));
    kv->tables = malloc(tbl * sizeof(int32_t));
    kv->n_owned = calloc((size_t)p->max_seqs, sizeof(int32_t));
    kv->len = calloc((size_t)p->max_seqs, sizeof(int32_t));
    kv->active = calloc((size_t)p->max_seqs, 1);
    if (!kv->free_pages || !kv->tables || !kv->n_owned || !kv->len || !kv->active) {
        ns_kv_cache_free(&kv);
        return ns__err_set(err, NS_ERR_NOMEM, "kv: out of memory");
    }
    /* Stack with page 0 on top, so pages are handed out in ascending order. */
    for (int32_t i = 0; i < p->n_pages; i++) {
        kv->free_pages[i] = p->n_pages - 1 - i;
    }
    kv->n_free = p->n_pages;
    *out = kv;
    return NS_OK;
}

void ns_kv_cache_free(ns_kv_cache **pkv) {
    if (pkv == NULL || *pkv == NULL) {
        return;
    }
    ns_kv_cache *kv = *pkv;
    free(kv->free_pages);
    free(kv->tables);
    free(kv->n_owned);
    free(kv->len);
    free(kv->active);
    free(kv);
    *pkv = NULL;
}

const ns_kv_params *ns_kv_cache_params(const ns_kv_cache *kv) {
    return &kv->p;
}

uint64_t ns_kv_storage_bytes(const ns_kv_params *p, int32_t n_layer, int32_t n_head_kv, int32_t head_dim) {
    uint64_t n = 2;
    if (!ns_mul_u64(n, (uint64_t)n_layer, &n) || !ns_mul_u64(n, (uint64_t)p->n_pages, &n) ||
        !ns_mul_u64(n, (uint64_t)n_head_kv, &n) || !ns_mul_u64(n, (uint64_t)p->page_size, &n) ||
        !ns_mul_u64(n, (uint64_t)head_dim, &n) || !ns_mul_u64(n, 2, &n)) {
        return 0;
    }
    return n;
}

ns_status ns_kv_seq_add(ns_kv_cache *kv, int32_t *seq_id) {
    for (int32_t s = 0; s < kv->p.max_seqs; s++) {
        if (!kv->active[s]) {
            kv->active[s] = 1;
            kv->n_owned[s] = 0;
            kv->len[s] = 0;
            kv->n_active++;
            *seq_id = s;
            return NS_OK;
        }
    }
    return NS_ERR_CAPACITY;
}

void ns_kv_seq_remove(ns_kv_cache *kv, int32_t s) {
    if (s < 0 || s >= kv->p.max_seqs || !kv->active[s]) {
        return;
    }
    int32_t *tbl = kv->tables + (size_t)s * kv->max_pages_per_seq;
    /* Push in reverse so the next sequence gets them back in the same order. */
    for (int32_t i = kv->n_owned[s] - 1; i >= 0; i--) {
        kv->free_pages[kv->n_free++] = tbl[i];
    }
    kv->n_owned[s] = 0;
    kv->len[s] = 0;
    kv->active[s] = 0;
    kv->n_active--;
}

int32_t ns_kv_pages_for(const ns_kv_cache *kv, int32_t n_tokens) {
    if (n_tokens <= 0) {
        return 0;
    }
    return (int32_t)(((int64_t)n_tokens + kv->p.page_size - 1) / kv->p.page_size);
}

ns_status ns_kv_seq_reserve(ns_kv_cache *kv, int32_t s, int32_t n_tokens) {
    if (s < 0 || s >= kv->p.max_seqs || !kv->active[s] || n_tokens < 0) {
        return NS_ERR_INVALID_ARG;
    }
    int32_t need = ns_kv_pages_for(kv, n_tokens);
    if (need > kv->max_pages_per_seq) {
        return NS_ERR_CAPACITY;
    }
    int32_t extra = need - kv->n_owned[s];
    if (extra <= 0) {
        return NS_OK;
    }
    if (extra > kv->n_free) {
        return NS_ERR_CAPACITY;
    }
    int32_t *tbl = kv->tables + (size_t)s * kv->max_pages_per_seq;
    for (int32_t i = 0; i < extra; i++) {
        tbl[kv->n_owned[s]++] = kv->free_pages[--kv->n_free];
    }
    return NS_OK;
}

int32_t ns_kv_seq_len(const ns_kv_cache *kv, int32_t s) {
    if (s < 0 || s >= kv->p.max_seqs || !kv->active[s]) {
        return 0;
    }
    return kv->len[s];
}

const int32_t *ns_kv_seq_pages(const ns_kv_cache *kv, int32_t s, int32_t *n_pages) {
    if (s < 0 || s >= kv->p.max_seqs || !kv->active[s]) {
        *n_pages = 0;
        return NULL;
    }
    *n_pages = kv->n_owned[s];
    return kv->tables + (size_t)s * kv->max_pages_per_seq;
}

bool ns_kv_seq_active(const ns_kv_cache *kv, int32_t s) {
    return s >= 0 && s < kv->p.max_seqs && kv->active[s];
}

int32_t ns_kv_n_free_pages(const ns_kv_cache *kv) {
    return kv->n_free;
}
int32_t ns_kv_n_active_seqs(const ns_kv_cache *kv) {
    return kv->n_active;
}

ns_status ns_kv_cache_prepare(ns_kv_cache *kv, ns_ubatch *ub, ns_err *err) {
    if (ub->n_tokens <= 0 || ub->n_tokens > ub->cap) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "kv: ubatch has %d tokens (cap %d)", ub->n_tokens, ub->cap);
    }
    if (ub->max_pages < kv->max_pages_per_seq) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "kv: ubatch page stride %d < %d pages per sequence", ub->max_pages,
                           kv->max_pages_per_seq);
    }
    ub->n_seq = 0;
    ub->n_logits = 0;
    for (int32_t i = 0; i < ub->n_tokens; i++) {
        int32_t s = ub->seq_id[i];
        if (!ns_kv_seq_active(kv, s)) {
            return ns__err_set(err, NS_ERR_INVALID_ARG, "kv: token %d names unknown sequence %d", i, s);
        }
        if (ub->pos[i] < 0 || ub->pos[i] >= kv->p.max_seq_len) {
            return ns__err_set(err, NS_ERR_INVALID_ARG, "kv: token %d position %d outside [0, %d)", i, ub->pos[i],
                               kv->p.max_seq_len);
        }
        /* Slot lookup: sequences in a pass are few; a linear scan over the
         * slots seen so far is cheap compared with the pass itself. */
        int32_t slot = -1;
        for (int32_t j = ub->n_seq - 1; j >= 0; j--) {
            if (ub->seq_id[ub->logit_rows[j]] == s) { /* logit_rows doubles as slot->first token below */
                slot = j;
                break;
            }
        }
        if (slot < 0) {
            slot = ub->n_seq++;
            ub->logit_rows[slot] = i;
            ub->seq_len[slot] = kv->len[s];
        }
        ub->slot[i] = slot;
        if (ub->pos[i] + 1 > ub->seq_len[slot]) {
            ub->seq_len[slot] = ub->pos[i] + 1;
        }
    }
    for (int32_t j = 0; j < ub->n_seq; j++) {
        int32_t s = ub->seq_id[ub->logit_rows[j]];
        ns_status st = ns_kv_seq_reserve(kv, s, ub->seq_len[j]);
        if (st != NS_OK) {
            return ns__err_set(err, st, "kv: no pages for sequence %d at length %d (%d free)", s, ub->seq_len[j],
                               kv->n_free);
        }
    }
    for (int32_t j = 0; j < ub->n_seq; j++) {
        int32_t s = ub->seq_id[ub->logit_rows[j]];
        kv->len[s] = ub->seq_len[j];
        int32_t *row = ub->pages + (size_t)j * ub->max_pages;
        const int32_t *tbl = kv->tables + (size_t)s * kv->max_pages_per_seq;
        int32_t n = kv->n_owned[s];
        memcpy(row, tbl, (size_t)n * sizeof(int32_t));
        for (int32_t k = n; k < ub->max_pages; k++) {
            row[k] = -1;
        }
    }
    for (int32_t i = 0; i < ub->n_tokens; i++) {
        if (ub->want_logits[i]) {
            ub->logit_rows[ub->n_logits++] = i;
        }
    }
    return NS_OK;
}
