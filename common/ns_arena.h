/*
 * ns_arena.h - bump allocator over one block of memory.
 *
 * An arena hands out aligned sub-ranges of a block it either owns (malloc'd by
 * ns_arena_init) or borrows (ns_arena_init_borrowed: e.g. a device pointer from
 * the one cudaMalloc at start-up, or a pinned host block). Allocation never
 * touches the system allocator; it fails with NULL when the block is full.
 * Reset is O(1): per-step scratch is ns_arena_mark() / ns_arena_reset_to().
 * The arena never dereferences its base, so a borrowed device pointer works.
 * Thread safety: none; one arena per thread or per owner.
 */
#ifndef NS_ARENA_H
#define NS_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "ns_status.h"

typedef struct ns_arena {
    uint8_t *base;     /* start of the block (host or device address) */
    size_t cap;        /* bytes in the block */
    size_t used;       /* bytes handed out, including alignment padding */
    size_t high_water; /* largest `used` ever seen */
    int owned;         /* 1 when ns_arena_free must free(base) */
} ns_arena;

/* Allocate a `cap`-byte block (64-byte aligned) owned by the arena. */
ns_status ns_arena_init(ns_arena *a, size_t cap);

/* Use caller-owned memory; ns_arena_free will not release it. */
void ns_arena_init_borrowed(ns_arena *a, void *mem, size_t cap);

/* Release an owned block; the arena becomes empty. NULL-safe. */
void ns_arena_free(ns_arena *a);

/* `size` bytes aligned to `align` (a power of two), or NULL when full. */
void *ns_arena_alloc(ns_arena *a, size_t size, size_t align);

/* Like ns_arena_alloc, but zero-filled (host arenas only). */
void *ns_arena_calloc(ns_arena *a, size_t size, size_t align);

static inline size_t ns_arena_mark(const ns_arena *a) {
    return a->used;
}
static inline void ns_arena_reset_to(ns_arena *a, size_t mark) {
    a->used = mark;
}
static inline void ns_arena_reset(ns_arena *a) {
    a->used = 0;
}
static inline size_t ns_arena_remaining(const ns_arena *a) {
    return a->cap - a->used;
}

/* Round `n` up to a multiple of `align` (a power of two). */
static inline size_t ns_align_up(size_t n, size_t align) {
    return (n + align - 1) & ~(align - 1);
}

#endif /* NS_ARENA_H */
