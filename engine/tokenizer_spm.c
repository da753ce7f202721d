/*
 * tokenizer_spm.c - SentencePiece-style BPE ("llama" vocabularies).
 *
 * The text (spaces already escaped to U+2581) is split into UTF-8
 * characters. Every adjacent pair whose concatenation is a token goes into a
 * priority queue ordered by that token's score (ties: leftmost first); the
 * best pair is merged and its new neighbours are queued, until no pair is
 * left. Symbols that are not tokens fall back to their bytes' <0xXX> tokens.
 * This is llama.cpp's llm_tokenizer_spm, which the reference tests pin.
 *
 * Ownership: scratch arrays are allocated per call and freed before return.
 * Thread safety: reads the immutable tokenizer only.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_impl.h"

typedef struct spm_sym {
    int64_t prev, next; /* neighbours in the live chain, -1 at the ends */
    size_t off;         /* start in the text */
    size_t n;           /* bytes; 0 once merged into its left neighbour */
} spm_sym;

static void try_add_bigram(const ns_tokenizer *t, const char *text, const spm_sym *syms, ns__tok_heap *h, int64_t left,
                           int64_t right) {
    if (left < 0 || right < 0) {
        return;
    }
    size_t size = syms[left].n + syms[right].n;
    int32_t id = ns_tokenizer_find(t, text + syms[left].off, size);
    if (id < 0) {
        return;
    }
    ns__tok_heap_push(h, (ns__tok_bigram){left, right, -(double)t->scores[id], size});
}

/* Length of the UTF-8 sequence from its lead byte, as llama.cpp's
 * unicode_len_utf8 (no validation). */
static size_t spm_utf8_len(uint8_t c) {
    static const uint8_t lookup[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lookup[c >> 4];
}

ns_status ns__tok_spm_encode(const ns_tokenizer *t, const char *text, size_t len, ns__tok_vec *out, ns_err *err) {
    if (len == 0) {
        return NS_OK;
    }
    ns_status st = NS_OK;
    spm_sym *syms = malloc(len * sizeof(*syms));
    ns__tok_heap h = {0};
    /* each merge queues at most two new bigrams: n-1 + 2(n-1) in total */
    h.cap = 3 * len + 1;
    h.v = malloc(h.cap * sizeof(*h.v));
    if (syms == NULL || h.v == NULL) {
        st = ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    int64_t n_syms = 0;
    for (size_t off = 0; off < len;) {
        size_t n = spm_utf8_len((uint8_t)text[off]);
        if (n > len - off) {
            n = len - off;
        }
        syms[n_syms] = (spm_sym){n_syms - 1, off + n == len ? -1 : n_syms + 1, off, n};
        n_syms++;
        off += n;
    }
    for (int64_t i = 1; i < n_syms; i++) {
        try_add_bigram(t, text, syms, &h, i - 1, i);
    }
    while (h.n > 0) {
        ns__tok_bigram b = ns__tok_heap_pop(&h);
        spm_sym *l = &syms[b.left], *r = &syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) {
            continue; /* stale */
        }
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) {
            syms[r->next].prev = b.left;
        }
        try_add_bigram(t, text, syms, &h, l->prev, b.left);
        try_add_bigram(t, text, syms, &h, b.left, l->next);
    }
    for (int64_t i = 0; i != -1; i = syms[i].next) {
        const spm_sym *s = &syms[i];
        int32_t id = ns_tokenizer_find(t, text + s->off, s->n);
        if (id >= 0) {
            if ((st = ns__tok_vec_push(out, id)) != NS_OK) {
                goto nomem;
            }
            continue;
        }
        /* byte fallback */
        for (size_t j = 0; j < s->n; j++) {
            int32_t bid = t->byte_to_token[(uint8_t)text[s->off + j]];
            if (bid < 0) {
                continue; /* no byte token and no <unk>: drop, as nothing can represent it */
            }
            if ((st = ns__tok_vec_push(out, bid)) != NS_OK) {
                goto nomem;
            }
        }
    }
    goto done;
nomem:
    st = ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory");
done:
    free(syms);
    free(h.v);
    return st;
}
