/*
 * kv_cache.h - paged KV cache bookkeeping: fixed-size pages, a free list and a
 * page table per sequence. Backend-independent.
 *
 * This module owns only host-side metadata. The K/V storage itself belongs to
 * the backend (host memory for the CPU backend, the VRAM arena for CUDA) and
 * is allocated once, at backend creation, for `n_pages` pages. Every backend
 * uses the same layout, so page ids mean the same thing everywhere:
 *
 *   K and V are separate pools of f16 (IEEE binary16) values, one per layer.
 *   Element (layer l, page p, kv head h, slot t, dim d) of K lives at
 *     k_pool[l] + (((size_t)p * n_head_kv + h) * page_size + t) * head_dim + d
 *   and V identically in v_pool[l]. Token position `pos` of a sequence is in
 *   page  table[pos / page_size], slot pos % page_size.
 *   A (page, head) tile is page_size * head_dim contiguous halves, so one
 *   sequence's keys for one head are contiguous within each page.
 *   Bytes per pool per layer: n_pages * n_head_kv * page_size * head_dim * 2.
 *
 * Sequences: ids are small integers in [0, max_seqs) handed out by
 * ns_kv_seq_add and recycled by ns_kv_seq_remove. A sequence's length is the
 * number of positions stored (max pos + 1 after each pass). Pages are taken
 * from the free list as a sequence grows (or up front with ns_kv_seq_reserve)
 * and all return to it on removal. (Refcounted prefix sharing is a later
 * step; the table has one owner per page for now.)
 *
 * Thread safety: none; the scheduler owns the cache and calls it from one
 * thread.
 */
#ifndef NS_KV_CACHE_H
#define NS_KV_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "batch.h"
#include "ns_status.h"

#define NS_KV_DEFAULT_PAGE_SIZE 16

typedef struct ns_kv_params {
    int32_t n_pages;     /* pages in the pool (>= 1) */
    int32_t page_size;   /* tokens per page (16 default; 1..256) */
    int32_t max_seqs;    /* concurrent sequences */
    int32_t max_seq_len; /* longest sequence in tokens (page table length = ceil(max_seq_len / page_size)) */
} ns_kv_params;

typedef struct ns_kv_cache ns_kv_cache;

/* Create the bookkeeping for `p`. All memory is allocated here, once.
 * NS_ERR_INVALID_ARG on bad parameters. */
ns_status ns_kv_cache_create(const ns_kv_params *p, ns_kv_cache **out, ns_err *err);

/* Free; sets *kv to NULL. NULL-safe. */
void ns_kv_cache_free(ns_kv_cache **kv);

const ns_kv_params *ns_kv_cache_params(const ns_kv_cache *kv);

/* Bytes of K+V storage a backend needs for the pool: 2 * n_layer * n_pages *
 * n_head_kv * page_size * head_dim * sizeof(f16). 0 on overflow. */
uint64_t ns_kv_storage_bytes(const ns_kv_params *p, int32_t n_layer, int32_t n_head_kv, int32_t head_dim);

/* Start an empty sequence. NS_ERR_CAPACITY when max_seqs are in use. */
ns_status ns_kv_seq_add(ns_kv_cache *kv, int32_t *seq_id);

/* Drop a sequence and return its pages to the free list. No-op for an id not
 * in use. */
void ns_kv_seq_remove(ns_kv_cache *kv, int32_t seq_id);

/* Make sure the sequence owns pages for `n_tokens` positions in total.
 * NS_ERR_CAPACITY (nothing taken) when the free list or the page table is too
 * short. */
ns_status ns_kv_seq_reserve(ns_kv_cache *kv, int32_t seq_id, int32_t n_tokens);

/* Positions stored for the sequence (0 for unknown ids). */
int32_t ns_kv_seq_len(const ns_kv_cache *kv, int32_t seq_id);

/* Page table of a sequence: *n_pages entries (pages owned, in order). */
const int32_t *ns_kv_seq_pages(const ns_kv_cache *kv, int32_t seq_id, int32_t *n_pages);

/* True when seq_id is in use. */
bool ns_kv_seq_active(const ns_kv_cache *kv, int32_t seq_id);

int32_t ns_kv_n_free_pages(const ns_kv_cache *kv);
int32_t ns_kv_n_active_seqs(const ns_kv_cache *kv);

/* Pages needed to hold n_tokens positions. */
int32_t ns_kv_pages_for(const ns_kv_cache *kv, int32_t n_tokens);

/* Prepare a ubatch for a pass: check every token's sequence is active and its
 * position is within max_seq_len, take the pages its positions need, update
 * sequence lengths, and fill ub->slot, n_seq, max_pages, pages, seq_len,
 * n_logits and logit_rows. NS_ERR_CAPACITY when pages run out (pages taken
 * before the failure stay with their sequences); NS_ERR_INVALID_ARG on an
 * unknown sequence or a bad position. */
ns_status ns_kv_cache_prepare(ns_kv_cache *kv, ns_ubatch *ub, ns_err *err);

#endif /* NS_KV_CACHE_H */
