/*
 * batch.h - a ubatch: the tokens of one forward pass, from many sequences.
 *
 * The caller (scheduler, tests, commands) fills the per-token input arrays:
 * token, pos, seq_id and want_logits. ns_kv_cache_prepare (kv_cache.h) then
 * fills the derived fields the backends use: the per-token slot into the
 * ubatch's sequence table, that table's page lists, and the logits row map.
 *
 * Attention rule: token i attends to positions 0..pos[i] of ITS OWN sequence
 * (seq_id[i]), read from that sequence's KV pages. Positions below pos[i]
 * must already be in the cache or be earlier tokens of the same sequence in
 * this ubatch (their K/V are stored before attention runs).
 *
 * Ownership: the arrays point into memory the ubatch's creator owns; use
 * ns_ubatch_init over an ns_arena or caller arrays sized for `cap` tokens.
 * Thread safety: none; one ubatch per step.
 */
#ifndef NS_BATCH_H
#define NS_BATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "ns_arena.h"
#include "ns_status.h"

typedef struct ns_ubatch {
    int32_t cap;          /* capacity in tokens (the arrays below hold cap entries) */
    int32_t n_tokens;     /* tokens in this pass, 1..cap */
    int32_t *token;       /* [n_tokens] token ids */
    int32_t *pos;         /* [n_tokens] position of the token in its sequence */
    int32_t *seq_id;      /* [n_tokens] KV-cache sequence id */
    uint8_t *want_logits; /* [n_tokens] 1 when this row's logits are wanted */

    /* Derived by ns_kv_cache_prepare (do not fill by hand). */
    int32_t *slot;       /* [n_tokens] index of the token's sequence in the tables below */
    int32_t n_seq;       /* distinct sequences in this pass */
    int32_t max_pages;   /* row stride of `pages` (pages per sequence for the longest context) */
    int32_t *pages;      /* [cap][max_pages] physical page ids of each slot's sequence, -1 past the end */
    int32_t *seq_len;    /* [cap] per slot: tokens of the sequence in the cache after this pass */
    int32_t n_logits;    /* rows with want_logits */
    int32_t *logit_rows; /* [n_logits] token index of each logits row, ascending */
} ns_ubatch;

/* Carve a ubatch for up to `cap` tokens and `max_pages` pages per sequence
 * out of `arena` (zeroed, n_tokens = 0). Returns NS_ERR_NOMEM when the arena
 * is too small. */
ns_status ns_ubatch_init(ns_ubatch *ub, ns_arena *arena, int32_t cap, int32_t max_pages);

/* Bytes ns_ubatch_init needs from an arena (including alignment padding). */
size_t ns_ubatch_bytes(int32_t cap, int32_t max_pages);

/* Append one token; false when the ubatch is full. */
bool ns_ubatch_add(ns_ubatch *ub, int32_t token, int32_t pos, int32_t seq_id, bool want_logits);

/* Empty the ubatch (keeps its arrays). */
static inline void ns_ubatch_clear(ns_ubatch *ub) {
    ub->n_tokens = 0;
    ub->n_seq = 0;
    ub->n_logits = 0;
}

#endif /* NS_BATCH_H */
