/*
 * tokenizer.c - loading a tokenizer from GGUF metadata, vocabulary lookups,
 * special-token partitioning, encode dispatch, pieces and the streaming
 * detokenizer. The SPM and BPE algorithms are in tokenizer_spm.c and
 * tokenizer_bpe.c.
 *
 * Ownership: ns_tokenizer owns copies of every string it uses.
 * Thread safety: immutable after ns_tokenizer_load; encode allocates its own
 * scratch, so concurrent calls are safe.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ns_log.h"
#include "ns_util.h"
#include "tokenizer.h"
#include "tokenizer_impl.h"

/* ------------------------------------------------------------------------ */
/* small helpers                                                             */

ns_status ns__tok_vec_push(ns__tok_vec *v, int32_t id) {
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->v, cap * sizeof(*p));
        if (p == NULL) {
            return NS_ERR_NOMEM;
        }
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = id;
    return NS_OK;
}

static uint64_t pow2_at_least(uint64_t n) {
    uint64_t p = 16;
    while (p < n) {
        p <<= 1;
    }
    return p;
}

static const char *tok_text(const ns_tokenizer *t, int32_t id) {
    return t->text_blob + t->text_off[id];
}

int32_t ns_tokenizer_find(const ns_tokenizer *t, const char *text, size_t len) {
    if (t == NULL || (text == NULL && len > 0)) {
        return -1;
    }
    uint64_t h = ns__tok_hash_bytes(ns__tok_hash_init(), text, len);
    for (uint64_t i = h & t->tok_hash_mask;; i = (i + 1) & t->tok_hash_mask) {
        int32_t id = t->tok_hash[i];
        if (id < 0) {
            return -1;
        }
        if (t->text_len[id] == len && memcmp(tok_text(t, id), text, len) == 0) {
            return id;
        }
    }
}

/* Insert id under its text; a later id with the same text replaces the
 * earlier one (llama.cpp's token_to_id[word] = i). */
static void tok_hash_insert(ns_tokenizer *t, int32_t id) {
    const char *s = tok_text(t, id);
    size_t len = t->text_len[id];
    uint64_t h = ns__tok_hash_bytes(ns__tok_hash_init(), s, len);
    for (uint64_t i = h & t->tok_hash_mask;; i = (i + 1) & t->tok_hash_mask) {
        int32_t cur = t->tok_hash[i];
        if (cur < 0) {
            t->tok_hash[i] = id;
            return;
        }
        if (t->text_len[cur] == len && memcmp(tok_text(t, cur), s, len) == 0) {
            t->tok_hash[i] = id;
            return;
        }
    }
}

int32_t ns__tok_merge_rank(const ns_tokenizer *t, const char *left, size_t left_len, const char *right,
                           size_t right_len) {
    if (t->n_merges == 0) {
        return -1;
    }
    uint64_t h = ns__tok_hash_bytes(ns__tok_hash_init(), left, left_len);
    h = ns__tok_hash_bytes(h, " ", 1);
    h = ns__tok_hash_bytes(h, right, right_len);
    size_t total = left_len + 1 + right_len;
    for (uint64_t i = h & t->merge_hash_mask;; i = (i + 1) & t->merge_hash_mask) {
        int32_t m = t->merge_hash[i];
        if (m < 0) {
            return -1;
        }
        if (t->merge_len[m] == total && t->merge_split[m] == left_len) {
            const char *s = t->merge_blob + t->merge_off[m];
            if (memcmp(s, left, left_len) == 0 && memcmp(s + left_len + 1, right, right_len) == 0) {
                return m;
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* loading                                                                   */

static bool str_eq(ns_gguf_str s, const char *c) {
    return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0;
}

/* Optional u32 token id key: keep `*id` when absent or out of range. */
static void load_special_id(const ns_gguf *g, const char *key, int32_t n_vocab, int32_t *id) {
    uint32_t v;
    if (ns_gguf_get_u32(g, key, &v) != NS_OK) {
        return;
    }
    if (v >= (uint32_t)n_vocab) {
        NS_LOGW("tokenizer: %s = %u is out of range, keeping %d", key, v, *id);
        return;
    }
    *id = (int32_t)v;
}

static ns_status load_texts(ns_tokenizer *t, const ns_gguf_kv *kv, ns_err *err) {
    uint64_t n = kv->arr_n;
    uint64_t total = 0;
    char tmp[40];
    for (uint64_t i = 0; i < n; i++) {
        ns_gguf_str s = ns_gguf_arr_str(kv, i);
        uint64_t l = s.len ? s.len : (uint64_t)snprintf(tmp, sizeof(tmp), "[EMPTY_%llu]", (unsigned long long)i);
        total += l + 1;
        if (total > UINT32_MAX) {
            return ns__err_set(err, NS_ERR_FORMAT, "tokenizer: token texts exceed 4 GiB");
        }
    }
    t->text_blob = malloc(total ? total : 1);
    t->text_off = malloc(n * sizeof(uint32_t));
    t->text_len = malloc(n * sizeof(uint32_t));
    if (t->text_blob == NULL || t->text_off == NULL || t->text_len == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory for %llu token texts", (unsigned long long)n);
    }
    uint32_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        ns_gguf_str s = ns_gguf_arr_str(kv, i);
        uint32_t l;
        if (s.len) {
            memcpy(t->text_blob + off, s.ptr, s.len);
            l = (uint32_t)s.len;
        } else {
            /* llama.cpp names empty tokens "[EMPTY_i]" */
            NS_LOGW("tokenizer: empty token at index %llu", (unsigned long long)i);
            l = (uint32_t)snprintf(t->text_blob + off, 40, "[EMPTY_%llu]", (unsigned long long)i);
        }
        t->text_blob[off + l] = '\0';
        t->text_off[i] = off;
        t->text_len[i] = l;
        off += l + 1;
    }
    return NS_OK;
}

static ns_status load_merges(ns_tokenizer *t, const ns_gguf *g, ns_err *err) {
    const ns_gguf_kv *kv = ns_gguf_find_kv(g, "tokenizer.ggml.merges");
    if (kv == NULL) {
        return ns__err_set(err, NS_ERR_FORMAT, "tokenizer: gpt2 vocabulary without tokenizer.ggml.merges");
    }
    if (kv->type != NS_GGUF_ARRAY || kv->arr_type != NS_GGUF_STRING || kv->arr_n > INT32_MAX) {
        return ns__err_set(err, NS_ERR_FORMAT, "tokenizer: tokenizer.ggml.merges is not a string array");
    }
    uint64_t n = kv->arr_n;
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        total += ns_gguf_arr_str(kv, i).len;
        if (total > UINT32_MAX) {
            return ns__err_set(err, NS_ERR_FORMAT, "tokenizer: merges exceed 4 GiB");
        }
    }
    t->merge_blob = malloc(total ? total : 1);
    t->merge_off = malloc((n ? n : 1) * sizeof(uint32_t));
    t->merge_len = malloc((n ? n : 1) * sizeof(uint32_t));
    t->merge_split = malloc((n ? n : 1) * sizeof(uint32_t));
    t->merge_hash_mask = pow2_at_least(2 * n + 1) - 1;
    t->merge_hash = malloc((t->merge_hash_mask + 1) * sizeof(int32_t));
    if (t->merge_blob == NULL || t->merge_off == NULL || t->merge_len == NULL || t->merge_split == NULL ||
        t->merge_hash == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory for %llu merges", (unsigned long long)n);
    }
    memset(t->merge_hash, 0xff, (t->merge_hash_mask + 1) * sizeof(int32_t));
    t->n_merges = (int32_t)n;
    uint32_t off = 0;
    uint64_t n_bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        ns_gguf_str s = ns_gguf_arr_str(kv, i);
        memcpy(t->merge_blob + off, s.ptr, s.len);
        t->merge_off[i] = off;
        t->merge_len[i] = (uint32_t)s.len;
        off += (uint32_t)s.len;
        /* the separator is the first space after position 0 (llama.cpp: find(' ', 1)) */
        const char *sp = s.len > 1 ? memchr(s.ptr + 1, ' ', s.len - 1) : NULL;
        if (sp == NULL) {
            n_bad++;
            t->merge_split[i] = UINT32_MAX; /* never matches */
            continue;
        }
        uint32_t split = (uint32_t)(sp - s.ptr);
        t->merge_split[i] = split;
        /* keep the first (lowest-rank) occurrence of a pair */
        if (ns__tok_merge_rank(t, s.ptr, split, sp + 1, s.len - split - 1) >= 0) {
            continue;
        }
        uint64_t h = ns__tok_hash_bytes(ns__tok_hash_init(), s.ptr, s.len);
        uint64_t j = h & t->merge_hash_mask;
        while (t->merge_hash[j] >= 0) {
            j = (j + 1) & t->merge_hash_mask;
        }
        t->merge_hash[j] = (int32_t)i;
    }
    if (n_bad) {
        NS_LOGW("tokenizer: %llu merges without a separator ignored", (unsigned long long)n_bad);
    }
    return NS_OK;
}

static bool name_is_any(const char *s, size_t len, const char *const *names) {
    for (size_t i = 0; names[i]; i++) {
        if (strlen(names[i]) == len && memcmp(s, names[i], len) == 0) {
            return true;
        }
    }
    return false;
}

/* EOT / EOM auto-detection and the end-of-generation set (llama.cpp's rules). */
static void setup_eog(ns_tokenizer *t) {
    static const char *const eot_names[] = {"<|eot_id|>",
                                            "<|im_end|>",
                                            "<|end|>",
                                            "<end_of_turn>",
                                            "<|endoftext|>",
                                            "<EOT>",
                                            "<\xef\xbd\x9c"
                                            "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
                                            NULL};
    static const char *const eom_names[] = {"<|eom_id|>", NULL};
    static const char *const fim_names[] = {"<|fim_pad|>",  "<fim-pad>",     "<PAD>",
                                            "<|fim_repo|>", "<|repo_name|>", "<fim-repo>",
                                            "<REPO>",       "<|file_sep|>",  NULL};
    static const char *const eog_names[] = {"<|eot_id|>",    "<|im_end|>", "<|end|>", "<end_of_turn>",
                                            "<|endoftext|>", "<|eom_id|>", "<EOT>",   NULL};
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = tok_text(t, id);
        size_t len = t->text_len[id];
        if (len < 3 || (s[0] != '<' && s[0] != '[')) {
            continue;
        }
        bool is_eot = name_is_any(s, len, eot_names);
        bool is_eom = name_is_any(s, len, eom_names);
        bool is_fim = name_is_any(s, len, fim_names);
        bool is_eog = name_is_any(s, len, eog_names);
        if (is_eot && t->eot < 0) {
            t->eot = id;
        }
        if (is_eom && t->eom < 0) {
            t->eom = id;
        }
        if (is_eot || is_eom || is_fim || is_eog) {
            if (is_eog || is_fim) {
                t->flags[id] |= NS__TOKF_EOG;
            }
            if (t->type[id] != NS_TOKEN_CONTROL) {
                NS_LOGW("tokenizer: control-looking token %d '%s' was not control-type; overriding", id, s);
                t->type[id] = NS_TOKEN_CONTROL;
            }
        }
    }
    if (t->eos >= 0) {
        t->flags[t->eos] |= NS__TOKF_EOG;
    }
    if (t->eot >= 0) {
        t->flags[t->eot] |= NS__TOKF_EOG;
    }
    if (t->eom >= 0) {
        t->flags[t->eom] |= NS__TOKF_EOG;
    }
}

/* Merge sort by (text length desc, id asc); qsort would need a global
 * context pointer for the lengths. */
static void sort_special(const ns_tokenizer *t, int32_t *a, int32_t *tmp, int32_t n) {
    if (n < 2) {
        return;
    }
    int32_t h = n / 2;
    sort_special(t, a, tmp, h);
    sort_special(t, a + h, tmp, n - h);
    int32_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        uint32_t li = t->text_len[a[i]], lj = t->text_len[a[j]];
        bool take_left = li > lj || (li == lj && a[i] < a[j]);
        tmp[k++] = take_left ? a[i++] : a[j++];
    }
    while (i < h) {
        tmp[k++] = a[i++];
    }
    while (j < n) {
        tmp[k++] = a[j++];
    }
    memcpy(a, tmp, (size_t)n * sizeof(*a));
}

static ns_status setup_special(ns_tokenizer *t, const ns_gguf *g, ns_err *err) {
    int32_t n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        uint8_t ty = t->type[id];
        n += ty == NS_TOKEN_CONTROL || ty == NS_TOKEN_USER_DEFINED || ty == NS_TOKEN_UNKNOWN;
    }
    t->special = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    int32_t *tmp = malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    if (t->special == NULL || tmp == NULL) {
        free(tmp);
        return ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory");
    }
    n = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        uint8_t ty = t->type[id];
        if (ty == NS_TOKEN_CONTROL || ty == NS_TOKEN_USER_DEFINED || ty == NS_TOKEN_UNKNOWN) {
            t->special[n++] = id;
        }
    }
    sort_special(t, t->special, tmp, n);
    free(tmp);
    t->n_special = n;

    /* llama.cpp's per-model attributes: Phi-3 special tokens eat whitespace on
     * their right, except <unk>, <s> and <|endoftext|>. */
    char name[128];
    if (ns_gguf_get_cstr(g, "general.name", name, sizeof(name))) {
        for (char *p = name; *p; p++) {
            *p = (char)tolower((unsigned char)*p);
        }
        if (strstr(name, "phi-3") || strstr(name, "phi3")) {
            for (int32_t i = 0; i < n; i++) {
                t->flags[t->special[i]] |= NS__TOKF_RSTRIP;
            }
            static const char *const on[] = {"</s>", NULL};
            static const char *const off[] = {"<unk>", "<s>", "<|endoftext|>", NULL};
            for (int i = 0; on[i]; i++) {
                int32_t id = ns_tokenizer_find(t, on[i], strlen(on[i]));
                if (id >= 0) {
                    t->flags[id] |= NS__TOKF_RSTRIP;
                }
            }
            for (int i = 0; off[i]; i++) {
                int32_t id = ns_tokenizer_find(t, off[i], strlen(off[i]));
                if (id >= 0) {
                    t->flags[id] &= (uint8_t)~NS__TOKF_RSTRIP;
                }
            }
        }
    }
    return NS_OK;
}

/* Parse "<0xXX>" into a byte. */
static int parse_byte_token(const char *s, size_t len) {
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>' || !isxdigit((unsigned char)s[3]) ||
        !isxdigit((unsigned char)s[4])) {
        return -1;
    }
    char hex[3] = {s[3], s[4], 0};
    return (int)strtol(hex, NULL, 16);
}

static size_t spm_unescape(const char *s, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        if (i + 3 <= len && (uint8_t)s[i] == 0xe2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
            out[o++] = ' ';
            i += 3;
        } else {
            out[o++] = s[i++];
        }
    }
    return o;
}

static ns_status setup_pieces(ns_tokenizer *t, ns_err *err) {
    /* every piece is at most as long as its text (unescaping and unmapping only shrink) */
    size_t total = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        total += t->text_len[id];
    }
    t->piece_blob = malloc(total ? total : 1);
    t->piece_off = malloc(((size_t)t->n_vocab + 1) * sizeof(uint32_t));
    if (t->piece_blob == NULL || t->piece_off == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory for pieces");
    }
    uint32_t off = 0;
    t->max_piece_len = 0;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        const char *s = tok_text(t, id);
        size_t len = t->text_len[id];
        char *dst = t->piece_blob + off;
        size_t n = 0;
        switch (t->type[id]) {
        case NS_TOKEN_CONTROL:
        case NS_TOKEN_UNKNOWN:
        case NS_TOKEN_USER_DEFINED:
            memcpy(dst, s, len);
            n = len;
            break;
        case NS_TOKEN_NORMAL:
            n = t->kind == NS_TOK_SPM ? spm_unescape(s, len, dst) : ns__tok_bpe_unmap(t, s, len, dst);
            break;
        case NS_TOKEN_BYTE: {
            int b = parse_byte_token(s, len);
            if (b >= 0) {
                dst[0] = (char)b;
                n = 1;
            } else {
                memcpy(dst, s, len);
                n = len;
            }
            break;
        }
        default: /* unused, undefined: nothing, as llama.cpp */
            n = 0;
            break;
        }
        t->piece_off[id] = off;
        off += (uint32_t)n;
        if (n > t->max_piece_len) {
            t->max_piece_len = n;
        }
    }
    t->piece_off[t->n_vocab] = off;
    return NS_OK;
}

static void setup_bytes(ns_tokenizer *t) {
    for (int b = 0; b < 256; b++) {
        int32_t id = -1;
        if (t->kind == NS_TOK_SPM) {
            char buf[8];
            snprintf(buf, sizeof(buf), "<0x%02X>", b);
            id = ns_tokenizer_find(t, buf, 6);
            if (id < 0) {
                char c = (char)b;
                id = ns_tokenizer_find(t, &c, 1);
            }
            if (id < 0) {
                id = t->unk;
            }
        } else {
            char c = (char)b;
            id = ns_tokenizer_find(t, &c, 1);
        }
        t->byte_to_token[b] = id;
    }
}

ns_status ns_tokenizer_load(const ns_gguf *g, ns_tokenizer **out, ns_err *err) {
    if (out == NULL) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "tokenizer: out is NULL");
    }
    *out = NULL;
    if (g == NULL) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "tokenizer: gguf is NULL");
    }
    ns_status st = NS_OK;
    ns_gguf_str model;
    if (ns_gguf_get_str(g, "tokenizer.ggml.model", &model) != NS_OK) {
        return ns__err_set(err, NS_ERR_FORMAT, "tokenizer: tokenizer.ggml.model missing or not a string");
    }
    ns_tokenizer *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory");
    }
    t->eot = t->eom = -1;
    if (str_eq(model, "llama")) {
        t->kind = NS_TOK_SPM;
        t->bos = 1;
        t->eos = 2;
        t->unk = 0;
        t->add_bos = true;
        t->add_eos = false;
        t->add_space_prefix = true;
        snprintf(t->pre_name, sizeof(t->pre_name), "spm");
    } else if (str_eq(model, "gpt2")) {
        t->kind = NS_TOK_BPE;
        t->bos = 11;
        t->eos = 11;
        t->unk = -1;
        t->add_bos = false;
        t->add_eos = false;
        t->add_space_prefix = false;
    } else {
        st = ns__err_set(err, NS_ERR_UNSUPPORTED, "tokenizer: unsupported tokenizer model '%.*s'",
                         (int)(model.len > 64 ? 64 : model.len), model.ptr);
        goto fail;
    }

    const ns_gguf_kv *kv_tok = ns_gguf_find_kv(g, "tokenizer.ggml.tokens");
    if (kv_tok == NULL || kv_tok->type != NS_GGUF_ARRAY || kv_tok->arr_type != NS_GGUF_STRING) {
        st = ns__err_set(err, NS_ERR_FORMAT, "tokenizer: tokenizer.ggml.tokens missing or not a string array");
        goto fail;
    }
    if (kv_tok->arr_n == 0 || kv_tok->arr_n > (uint64_t)INT32_MAX / 4) {
        st = ns__err_set(err, NS_ERR_FORMAT, "tokenizer: bad vocabulary size %llu", (unsigned long long)kv_tok->arr_n);
        goto fail;
    }
    t->n_vocab = (int32_t)kv_tok->arr_n;
    size_t nv = (size_t)t->n_vocab;
    if ((st = load_texts(t, kv_tok, err)) != NS_OK) {
        goto fail;
    }
    t->scores = calloc(nv, sizeof(float));
    t->type = malloc(nv);
    t->flags = calloc(nv, 1);
    t->tok_hash_mask = pow2_at_least(2 * nv + 1) - 1;
    t->tok_hash = malloc((t->tok_hash_mask + 1) * sizeof(int32_t));
    if (t->scores == NULL || t->type == NULL || t->flags == NULL || t->tok_hash == NULL) {
        st = ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory");
        goto fail;
    }
    memset(t->tok_hash, 0xff, (t->tok_hash_mask + 1) * sizeof(int32_t));
    memset(t->type, NS_TOKEN_NORMAL, nv);

    const ns_gguf_kv *kv_scores = ns_gguf_find_kv(g, "tokenizer.ggml.scores");
    if (kv_scores != NULL) {
        if (kv_scores->type != NS_GGUF_ARRAY || kv_scores->arr_n != kv_tok->arr_n) {
            st = ns__err_set(err, NS_ERR_FORMAT, "tokenizer: tokenizer.ggml.scores has %llu entries, expected %d",
                             (unsigned long long)kv_scores->arr_n, t->n_vocab);
            goto fail;
        }
        for (size_t i = 0; i < nv; i++) {
            double v;
            if (!ns_gguf_arr_f64(kv_scores, i, &v)) {
                st = ns__err_set(err, NS_ERR_FORMAT, "tokenizer: tokenizer.ggml.scores is not numeric");
                goto fail;
            }
            t->scores[i] = (float)v;
        }
    }
    const ns_gguf_kv *kv_types = ns_gguf_find_kv(g, "tokenizer.ggml.token_type");
    if (kv_types != NULL) {
        if (kv_types->type != NS_GGUF_ARRAY || kv_types->arr_n != kv_tok->arr_n) {
            st = ns__err_set(err, NS_ERR_FORMAT, "tokenizer: tokenizer.ggml.token_type has %llu entries, expected %d",
                             (unsigned long long)kv_types->arr_n, t->n_vocab);
            goto fail;
        }
        for (size_t i = 0; i < nv; i++) {
            int64_t v;
            if (!ns_gguf_arr_i64(kv_types, i, &v)) {
                st = ns__err_set(err, NS_ERR_FORMAT, "tokenizer: tokenizer.ggml.token_type is not an integer array");
                goto fail;
            }
            t->type[i] = (v >= NS_TOKEN_NORMAL && v <= NS_TOKEN_BYTE) ? (uint8_t)v : (uint8_t)NS_TOKEN_UNDEFINED;
        }
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        tok_hash_insert(t, id);
    }

    if (t->kind == NS_TOK_BPE) {
        if ((st = load_merges(t, g, err)) != NS_OK) {
            goto fail;
        }
        char pre[64];
        bool has_pre = ns_gguf_get_cstr(g, "tokenizer.ggml.pre", pre, sizeof(pre));
        if ((st = ns__tok_bpe_init(t, has_pre ? pre : NULL, err)) != NS_OK) {
            goto fail;
        }
    } else {
        bool b;
        if (ns_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &b) == NS_OK) {
            t->add_space_prefix = b;
        }
    }

    load_special_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab, &t->bos);
    load_special_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab, &t->eos);
    load_special_id(g, "tokenizer.ggml.eot_token_id", t->n_vocab, &t->eot);
    load_special_id(g, "tokenizer.ggml.eom_token_id", t->n_vocab, &t->eom);
    load_special_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab, &t->unk);
    if (t->bos >= t->n_vocab) {
        t->bos = -1;
    }
    if (t->eos >= t->n_vocab) {
        t->eos = -1;
    }
    if (t->unk >= t->n_vocab) {
        t->unk = -1;
    }
    {
        bool b;
        if (ns_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) == NS_OK) {
            t->add_bos = b;
        }
        if (ns_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b) == NS_OK) {
            t->add_eos = b;
        }
    }
    if (t->add_bos && t->bos < 0) {
        st = ns__err_set(err, NS_ERR_FORMAT, "tokenizer: add_bos_token is true but there is no BOS token");
        goto fail;
    }
    if (t->add_eos && t->eos < 0) {
        st = ns__err_set(err, NS_ERR_FORMAT, "tokenizer: add_eos_token is true but there is no EOS token");
        goto fail;
    }

    setup_eog(t);
    if ((st = setup_special(t, g, err)) != NS_OK) {
        goto fail;
    }
    setup_bytes(t);
    if ((st = setup_pieces(t, err)) != NS_OK) {
        goto fail;
    }
    *out = t;
    return NS_OK;
fail:
    ns_tokenizer_free(&t);
    return st;
}

void ns_tokenizer_free(ns_tokenizer **tp) {
    if (tp == NULL || *tp == NULL) {
        return;
    }
    ns_tokenizer *t = *tp;
    ns__tok_bpe_free(t);
    free(t->text_blob);
    free(t->text_off);
    free(t->text_len);
    free(t->scores);
    free(t->type);
    free(t->flags);
    free(t->tok_hash);
    free(t->merge_blob);
    free(t->merge_off);
    free(t->merge_len);
    free(t->merge_split);
    free(t->merge_hash);
    free(t->special);
    free(t->piece_blob);
    free(t->piece_off);
    free(t);
    *tp = NULL;
}

/* ------------------------------------------------------------------------ */
/* accessors                                                                 */

ns_tok_kind ns_tokenizer_kind(const ns_tokenizer *t) {
    return t->kind;
}
const char *ns_tokenizer_pre(const ns_tokenizer *t) {
    return t->pre_name;
}
int32_t ns_tokenizer_n_vocab(const ns_tokenizer *t) {
    return t->n_vocab;
}
int32_t ns_tokenizer_bos(const ns_tokenizer *t) {
    return t->bos;
}
int32_t ns_tokenizer_eos(const ns_tokenizer *t) {
    return t->eos;
}
int32_t ns_tokenizer_eot(const ns_tokenizer *t) {
    return t->eot;
}
int32_t ns_tokenizer_unk(const ns_tokenizer *t) {
    return t->unk;
}
bool ns_tokenizer_add_bos(const ns_tokenizer *t) {
    return t->add_bos;
}
bool ns_tokenizer_add_eos(const ns_tokenizer *t) {
    return t->add_eos;
}
size_t ns_tokenizer_max_piece_len(const ns_tokenizer *t) {
    return t->max_piece_len;
}

bool ns_tokenizer_is_eog(const ns_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && (t->flags[id] & NS__TOKF_EOG) != 0;
}

ns_token_type ns_tokenizer_token_type(const ns_tokenizer *t, int32_t id) {
    if (id < 0 || id >= t->n_vocab) {
        return NS_TOKEN_UNDEFINED;
    }
    return (ns_token_type)t->type[id];
}

const char *ns_tokenizer_token_text(const ns_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_vocab) {
        if (len) {
            *len = 0;
        }
        return "";
    }
    if (len) {
        *len = t->text_len[id];
    }
    return tok_text(t, id);
}

const char *ns_tokenizer_piece(const ns_tokenizer *t, int32_t id, bool special, size_t *len) {
    if (id < 0 || id >= t->n_vocab ||
        (!special && (t->type[id] == NS_TOKEN_CONTROL || t->type[id] == NS_TOKEN_UNKNOWN))) {
        *len = 0;
        return "";
    }
    *len = t->piece_off[id + 1] - t->piece_off[id];
    return t->piece_blob + t->piece_off[id];
}

ns_status ns_tokenizer_token_to_piece(const ns_tokenizer *t, int32_t id, bool special, char *buf, size_t cap,
                                      size_t *n_out) {
    if (id < 0 || id >= t->n_vocab) {
        *n_out = 0;
        return NS_ERR_RANGE;
    }
    size_t len;
    const char *p = ns_tokenizer_piece(t, id, special, &len);
    *n_out = len;
    if (len > cap) {
        return NS_ERR_CAPACITY;
    }
    if (len) {
        memcpy(buf, p, len);
    }
    return NS_OK;
}

ns_status ns_tokenizer_decode(const ns_tokenizer *t, const int32_t *ids, size_t n, bool special, char *buf, size_t cap,
                              size_t *n_out) {
    size_t total = 0;
    ns_status st = NS_OK;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) {
            *n_out = 0;
            return NS_ERR_RANGE;
        }
        size_t len;
        const char *p = ns_tokenizer_piece(t, ids[i], special, &len);
        if (total + len <= cap) {
            memcpy(buf + total, p, len);
        } else {
            st = NS_ERR_CAPACITY;
        }
        total += len;
    }
    *n_out = total;
    return st;
}

/* ------------------------------------------------------------------------ */
/* encoding                                                                  */

/* A piece of the input: raw text [off, off+len) or a special token. */
typedef struct frag {
    int32_t token; /* -1 for raw text */
    size_t off;
    size_t len;
} frag;

typedef struct frag_vec {
    frag *v;
    size_t n, cap;
} frag_vec;

static ns_status frag_push(frag_vec *f, int32_t token, size_t off, size_t len) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        frag *p = realloc(f->v, cap * sizeof(*p));
        if (p == NULL) {
            return NS_ERR_NOMEM;
        }
        f->v = p;
        f->cap = cap;
    }
    f->v[f->n++] = (frag){token, off, len};
    return NS_OK;
}

static const char *find_bytes(const char *hay, size_t n, const char *needle, size_t m) {
    if (m == 0 || m > n) {
        return NULL;
    }
    const char *end = hay + n - m;
    for (const char *p = hay; p <= end;) {
        const char *q = memchr(p, needle[0], (size_t)(end - p) + 1);
        if (q == NULL) {
            return NULL;
        }
        if (memcmp(q, needle, m) == 0) {
            return q;
        }
        p = q + 1;
    }
    return NULL;
}

/* Cut the special tokens out of the text, longest first (llama.cpp's
 * tokenizer_st_partition). Result in *cur. */
static ns_status partition_special(const ns_tokenizer *t, const char *text, size_t len, bool parse_special,
                                   frag_vec *cur, frag_vec *next) {
    cur->n = 0;
    if (len == 0) {
        return NS_OK;
    }
    NS_TRY(frag_push(cur, -1, 0, len));
    for (int32_t si = 0; si < t->n_special; si++) {
        int32_t id = t->special[si];
        uint8_t ty = t->type[id];
        if (!parse_special && (ty == NS_TOKEN_CONTROL || ty == NS_TOKEN_UNKNOWN)) {
            continue;
        }
        const char *s = tok_text(t, id);
        size_t sl = t->text_len[id];
        /* quick reject: does it occur anywhere in a raw fragment? */
        bool any = false;
        for (size_t i = 0; i < cur->n && !any; i++) {
            any = cur->v[i].token < 0 && find_bytes(text + cur->v[i].off, cur->v[i].len, s, sl) != NULL;
        }
        if (!any) {
            continue;
        }
        next->n = 0;
        for (size_t i = 0; i < cur->n; i++) {
            frag f = cur->v[i];
            if (f.token >= 0) {
                NS_TRY(frag_push(next, f.token, 0, 0));
                continue;
            }
            size_t off = f.off, flen = f.len;
            for (;;) {
                const char *m = find_bytes(text + off, flen, s, sl);
                if (m == NULL) {
                    if (flen > 0) {
                        NS_TRY(frag_push(next, -1, off, flen));
                    }
                    break;
                }
                size_t mpos = (size_t)(m - text);
                size_t left = mpos - off;
                if (t->flags[id] & NS__TOKF_LSTRIP) {
                    while (left > 0 && isspace((unsigned char)text[off + left - 1])) {
                        left--;
                    }
                }
                if (left > 0) {
                    NS_TRY(frag_push(next, -1, off, left));
                }
                NS_TRY(frag_push(next, id, 0, 0));
                size_t roff = mpos + sl;
                size_t rlen = off + flen - roff;
                if (t->flags[id] & NS__TOKF_RSTRIP) {
                    while (rlen > 0 && isspace((unsigned char)text[roff])) {
                        roff++;
                        rlen--;
                    }
                }
                off = roff;
                flen = rlen;
                if (flen == 0) {
                    break;
                }
            }
        }
        frag_vec tmp = *cur;
        *cur = *next;
        *next = tmp;
    }
    return NS_OK;
}

/* SPM: spaces -> U+2581, with an optional leading space. */
static ns_status spm_fragment(const ns_tokenizer *t, const char *s, size_t len, bool prefix, ns__tok_vec *out,
                              ns_err *err) {
    size_t n_sp = prefix ? 1 : 0;
    for (size_t i = 0; i < len; i++) {
        n_sp += s[i] == ' ';
    }
    size_t cap = len + 2 * n_sp + 3;
    char *buf = malloc(cap);
    if (buf == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory");
    }
    size_t o = 0;
    if (prefix) {
        memcpy(buf + o, "\xe2\x96\x81", 3);
        o += 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ') {
            memcpy(buf + o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            buf[o++] = s[i];
        }
    }
    ns_status st = ns__tok_spm_encode(t, buf, o, out, err);
    free(buf);
    return st;
}

ns_status ns_tokenizer_encode(const ns_tokenizer *t, const char *text, size_t len, bool add_special, bool parse_special,
                              int32_t *out, size_t cap, size_t *n_out, ns_err *err) {
    if (t == NULL || n_out == NULL || (text == NULL && len > 0) || (out == NULL && cap > 0)) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "tokenizer: bad arguments to encode");
    }
    *n_out = 0;
    ns_status st = NS_OK;
    frag_vec cur = {0}, next = {0};
    ns__tok_vec ids = {0};

    if ((st = partition_special(t, text, len, parse_special, &cur, &next)) != NS_OK) {
        st = ns__err_set(err, st, "tokenizer: out of memory");
        goto done;
    }
    if (add_special && t->add_bos) {
        if ((st = ns__tok_vec_push(&ids, t->bos)) != NS_OK) {
            goto nomem;
        }
    }
    bool prev_special = true; /* SPM: the first fragment gets the space prefix */
    for (size_t i = 0; i < cur.n; i++) {
        frag f = cur.v[i];
        if (f.token >= 0) {
            if ((st = ns__tok_vec_push(&ids, f.token)) != NS_OK) {
                goto nomem;
            }
            prev_special = true;
            continue;
        }
        if (t->kind == NS_TOK_SPM) {
            st = spm_fragment(t, text + f.off, f.len, t->add_space_prefix && prev_special, &ids, err);
        } else {
            st = ns__tok_bpe_encode(t, text + f.off, f.len, &ids, err);
        }
        if (st != NS_OK) {
            goto done;
        }
        prev_special = false;
    }
    if (add_special && t->add_eos) {
        if ((st = ns__tok_vec_push(&ids, t->eos)) != NS_OK) {
            goto nomem;
        }
    }
    *n_out = ids.n;
    if (ids.n > cap) {
        st = ns__err_set(err, NS_ERR_CAPACITY, "tokenizer: %zu tokens do not fit in %zu", ids.n, cap);
        goto done;
    }
    if (ids.n) {
        memcpy(out, ids.v, ids.n * sizeof(int32_t));
    }
    goto done;
nomem:
    st = ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory");
done:
    free(cur.v);
    free(next.v);
    free(ids.v);
    return st;
}

/* ------------------------------------------------------------------------ */
/* streaming detokenizer                                                     */

/* Length of a UTF-8 sequence from its lead byte (0 = invalid lead). */
static int utf8_lead_len(uint8_t c) {
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        return 2;
    }
    if (c >= 0xe0 && c <= 0xef) {
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        return 4;
    }
    return 0;
}

/* Is `c` a valid byte at position k (1..3) of a sequence led by `lead`? */
static bool utf8_cont_ok(uint8_t lead, int k, uint8_t c) {
    if (k == 1) {
        if (lead == 0xe0) {
            return c >= 0xa0 && c <= 0xbf;
        }
        if (lead == 0xed) {
            return c >= 0x80 && c <= 0x9f;
        }
        if (lead == 0xf0) {
            return c >= 0x90 && c <= 0xbf;
        }
        if (lead == 0xf4) {
            return c >= 0x80 && c <= 0x8f;
        }
    }
    return c >= 0x80 && c <= 0xbf;
}

/* Run over the concatenation a[0..na) b[0..nb): emit complete valid
 * characters (U+FFFD for invalid bytes) into out (NULL = count only) and
 * return the number of bytes consumed; an incomplete valid tail is left
 * unconsumed unless `final`, where it becomes one U+FFFD. */
static size_t utf8_run(const uint8_t *a, size_t na, const uint8_t *b, size_t nb, bool final, char *out, size_t *n_out) {
    size_t n = na + nb, i = 0, o = 0;
#define AT(k) ((k) < na ? a[(k)] : b[(k)-na])
    while (i < n) {
        uint8_t c = AT(i);
        int L = utf8_lead_len(c);
        if (L == 1) {
            if (out) {
                out[o] = (char)c;
            }
            o++;
            i++;
            continue;
        }
        int k = 1;
        if (L > 0) {
            while (k < L && i + (size_t)k < n && utf8_cont_ok(c, k, AT(i + (size_t)k))) {
                k++;
            }
        }
        if (L > 0 && k == L) {
            for (int j = 0; j < L; j++) {
                if (out) {
                    out[o + (size_t)j] = (char)AT(i + (size_t)j);
                }
            }
            o += (size_t)L;
            i += (size_t)L;
            continue;
        }
        if (L > 0 && i + (size_t)k == n && !final) {
            break; /* valid so far, waiting for more bytes */
        }
        /* invalid lead, bad continuation, or truncated at the end: one U+FFFD
         * for the maximal valid prefix */
        if (out) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
        }
        o += 3;
        i += L > 0 ? (size_t)k : 1;
    }
#undef AT
    *n_out = o;
    return i;
}

void ns_detok_init(ns_detok *d, const ns_tokenizer *t, bool special) {
    memset(d, 0, sizeof(*d));
    d->tok = t;
    d->special = special;
}

void ns_detok_reset(ns_detok *d) {
    d->n_pending = 0;
}

size_t ns_detok_max_out(const ns_tokenizer *t) {
    return 3 * (t->max_piece_len + NS_DETOK_MAX_PENDING);
}

ns_status ns_detok_push(ns_detok *d, int32_t id, char *out, size_t cap, size_t *n_out) {
    size_t len;
    const char *p = ns_tokenizer_piece(d->tok, id, d->special, &len);
    size_t need;
    utf8_run(d->pending, d->n_pending, (const uint8_t *)p, len, false, NULL, &need);
    if (need > cap) {
        *n_out = need;
        return NS_ERR_CAPACITY;
    }
    size_t used = utf8_run(d->pending, d->n_pending, (const uint8_t *)p, len, false, out, n_out);
    /* keep the unconsumed tail (at most 3 bytes) */
    size_t total = d->n_pending + len;
    uint8_t tail[NS_DETOK_MAX_PENDING];
    size_t nt = total - used;
    NS_ASSERT(nt < NS_DETOK_MAX_PENDING);
    for (size_t k = 0; k < nt; k++) {
        size_t idx = used + k;
        tail[k] = idx < d->n_pending ? d->pending[idx] : (uint8_t)p[idx - d->n_pending];
    }
    memcpy(d->pending, tail, nt);
    d->n_pending = (uint8_t)nt;
    return NS_OK;
}

ns_status ns_detok_flush(ns_detok *d, char *out, size_t cap, size_t *n_out) {
    size_t need;
    utf8_run(d->pending, d->n_pending, NULL, 0, true, NULL, &need);
    if (need > cap) {
        *n_out = need;
        return NS_ERR_CAPACITY;
    }
    utf8_run(d->pending, d->n_pending, NULL, 0, true, out, n_out);
    d->n_pending = 0;
    return NS_OK;
}

/* ---- the merge loops' bigram heap ---------------------------------------------- */

static bool ns__tok_bigram_before(const ns__tok_bigram *a, const ns__tok_bigram *b) {
    return a->prio < b->prio || (a->prio == b->prio && a->left < b->left);
}

void ns__tok_heap_push(ns__tok_heap *h, ns__tok_bigram b) {
    NS_ASSERT(h->n < h->cap);
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ns__tok_bigram_before(&b, &h->v[p])) {
            break;
        }
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
}

ns__tok_bigram ns__tok_heap_pop(ns__tok_heap *h) {
    ns__tok_bigram top = h->v[0];
    ns__tok_bigram last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        const ns__tok_bigram *bv = &last;
        if (l < h->n && ns__tok_bigram_before(&h->v[l], bv)) {
            best = l;
            bv = &h->v[l];
        }
        if (r < h->n && ns__tok_bigram_before(&h->v[r], bv)) {
            best = r;
        }
        if (best == i) {
            break;
        }
        h->v[i] = h->v[best];
        i = best;
    }
    if (h->n > 0) {
        h->v[i] = last;
    }
    return top;
}
