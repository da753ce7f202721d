/* ns_arena.c - bump allocator; see ns_arena.h. */
#include "ns_arena.h"

#include <stdlib.h>
#include <string.h>

ns_status ns_arena_init(ns_arena *a, size_t cap) {
    void *mem = NULL;
    size_t rounded = ns_align_up(cap == 0 ? 64 : cap, 64);
    NS_ASSERT(a != NULL);
    memset(a, 0, sizeof *a);
    if (rounded < cap) {
        return NS_ERR_NOMEM;
    }
    mem = aligned_alloc(64, rounded);
    if (mem == NULL) {
        return NS_ERR_NOMEM;
    }
    a->base = mem;
    a->cap = cap;
    a->owned = 1;
    return NS_OK;
}

void ns_arena_init_borrowed(ns_arena *a, void *mem, size_t cap) {
    NS_ASSERT(a != NULL);
    memset(a, 0, sizeof *a);
    a->base = mem;
    a->cap = cap;
}

void ns_arena_free(ns_arena *a) {
    if (a == NULL) {
        return;
    }
    if (a->owned) {
        free(a->base);
    }
    memset(a, 0, sizeof *a);
}

void *ns_arena_alloc(ns_arena *a, size_t size, size_t align) {
    uintptr_t base;
    uintptr_t p;
    size_t off;
    NS_ASSERT(a != NULL && align != 0 && (align & (align - 1)) == 0);
    base = (uintptr_t)a->base;
    p = (base + a->used + align - 1) & ~(uintptr_t)(align - 1);
    off = (size_t)(p - base);
    if (off < a->used || off > a->cap || size > a->cap - off) {
        return NULL;
    }
    a->used = off + size;
    if (a->used > a->high_water) {
        a->high_water = a->used;
    }
    return a->base + off;
}

void *ns_arena_calloc(ns_arena *a, size_t size, size_t align) {
    void *p = ns_arena_alloc(a, size, align);
    if (p != NULL) {
        memset(p, 0, size);
    }
    return p;
}
