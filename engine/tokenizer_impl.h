/*
 * tokenizer_impl.h - private layout of ns_tokenizer, shared by tokenizer.c
 * (load, special tokens, pieces, detokenizer), tokenizer_spm.c and
 * tokenizer_bpe.c. Not part of the public API.
 *
 * Ownership: every pointer in ns_tokenizer is owned by it and freed by
 * ns_tokenizer_free. Thread safety: immutable after load.
 */
#ifndef NS_TOKENIZER_IMPL_H
#define NS_TOKENIZER_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ns_status.h"
#include "tokenizer.h"

#define NS__TOK_MAX_REGEX 4

/* Per-token flag bits (ns_tokenizer.flags). */
enum {
    NS__TOKF_EOG = 1u << 0,    /* ends generation */
    NS__TOKF_LSTRIP = 1u << 1, /* special match eats whitespace on its left */
    NS__TOKF_RSTRIP = 1u << 2, /* special match eats whitespace on its right */
};

/* Growable id vector used while encoding (scratch, per call). */
typedef struct ns__tok_vec {
    int32_t *v;
    size_t n;
    size_t cap;
} ns__tok_vec;

struct ns_tokenizer {
    ns_tok_kind kind;
    char pre_name[32]; /* pre-tokenizer in use ("spm", "llama3", "qwen2", "gpt2", "default", ...) */
    int32_t n_vocab;

    /* Vocabulary texts: token i is text_blob[text_off[i] .. text_off[i]+text_len[i]), NUL-terminated. */
    char *text_blob;
    uint32_t *text_off; /* (n_vocab) */
    uint32_t *text_len; /* (n_vocab) */
    float *scores;      /* (n_vocab) SPM merge scores; 0 when the file has none */
    uint8_t *type;      /* (n_vocab) ns_token_type */
    uint8_t *flags;     /* (n_vocab) NS__TOKF_* */

    /* text -> id: open addressing over ids, -1 = empty slot. */
    int32_t *tok_hash; /* (tok_hash_mask + 1) */
    uint64_t tok_hash_mask;

    /* BPE merges: merge i is "left right" = merge_blob[merge_off[i] .. +merge_len[i]),
     * split at merge_split[i] (the separating space). Its rank is i. */
    char *merge_blob;
    uint32_t *merge_off;   /* (n_merges) */
    uint32_t *merge_len;   /* (n_merges) */
    uint32_t *merge_split; /* (n_merges) */
    int32_t n_merges;
    int32_t *merge_hash; /* (merge_hash_mask + 1) merge index, -1 = empty */
    uint64_t merge_hash_mask;

    /* Control, user-defined and unknown tokens, longest text first. */
    int32_t *special;
    int32_t n_special;

    /* Detokenized pieces (special=true rendering): piece i is piece_blob[piece_off[i] .. piece_off[i+1]). */
    char *piece_blob;
    uint32_t *piece_off; /* (n_vocab + 1) */
    size_t max_piece_len;

    int32_t byte_to_token[256]; /* token for a raw byte (SPM byte fallback, BPE single bytes); -1 if none */

    int32_t bos, eos, eot, eom, unk;
    bool add_bos, add_eos;
    bool add_space_prefix; /* SPM: prefix the first fragment (and those after specials) with a space */
    bool ignore_merges;    /* BPE (llama3): a word that is a whole token is emitted directly */

    /* BPE pre-tokenizer: applied in order, each splitting the previous pieces. */
    void *regex[NS__TOK_MAX_REGEX]; /* pcre2_code_8 * */
    int n_regex;

    /* GPT-2 byte <-> unicode map. */
    char byte_enc[256][2];     /* UTF-8 of the code point for byte b */
    uint8_t byte_enc_len[256]; /* 1 or 2 */
    int16_t byte_dec[324];     /* code point (< 324) -> byte, -1 if not a mapped code point */
};

/* 64-bit FNV-1a, streaming. */
static inline uint64_t ns__tok_hash_init(void) {
    return 1469598103934665603ull;
}
static inline uint64_t ns__tok_hash_bytes(uint64_t h, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Append an id, growing the vector; NS_ERR_NOMEM on failure. */
/* A merge candidate of the SPM and BPE merge loops: adjacent symbols
 * left/right whose bytes summed to `size` when queued (a changed size marks a
 * stale entry). Lower `prio` pops first, ties pop the leftmost: SPM queues
 * -score, BPE the merge rank. */
typedef struct ns__tok_bigram {
    int64_t left, right;
    double prio;
    size_t size;
} ns__tok_bigram;

/* Binary min-heap of bigrams over caller-sized storage v[cap]. */
typedef struct ns__tok_heap {
    ns__tok_bigram *v;
    size_t n, cap;
} ns__tok_heap;

void ns__tok_heap_push(ns__tok_heap *h, ns__tok_bigram b); /* asserts n < cap */
ns__tok_bigram ns__tok_heap_pop(ns__tok_heap *h);          /* n must be > 0 */

ns_status ns__tok_vec_push(ns__tok_vec *v, int32_t id);

/* SPM: encode already-escaped text (spaces are U+2581) and append the ids. */
ns_status ns__tok_spm_encode(const ns_tokenizer *t, const char *text, size_t len, ns__tok_vec *out, ns_err *err);

/* BPE: pre-tokenize and merge one raw-text fragment, appending the ids. */
ns_status ns__tok_bpe_encode(const ns_tokenizer *t, const char *text, size_t len, ns__tok_vec *out, ns_err *err);

/* BPE setup at load: byte map and the pre-tokenizer regexes for `pre` (the
 * tokenizer.ggml.pre value, may be NULL). Sets pre_name, ignore_merges and
 * the default add_bos. */
ns_status ns__tok_bpe_init(ns_tokenizer *t, const char *pre, ns_err *err);
void ns__tok_bpe_free(ns_tokenizer *t);

/* Rank of the merge (left, right), or -1. */
int32_t ns__tok_merge_rank(const ns_tokenizer *t, const char *left, size_t left_len, const char *right,
                           size_t right_len);

/* Decode a byte-level BPE token text to raw bytes into out (room for len
 * bytes suffices); returns the output length. */
size_t ns__tok_bpe_unmap(const ns_tokenizer *t, const char *text, size_t len, char *out);

#endif /* NS_TOKENIZER_IMPL_H */
