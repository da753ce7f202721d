/*
 * tokenizer_bpe.c - byte-level BPE ("gpt2" vocabularies: GPT-2, Llama 3,
 * Qwen2, ...).
 *
 * 1. The input is decoded as UTF-8 the way llama.cpp does it (an invalid
 *    byte becomes U+FFFD) and re-encoded, so the regex sees valid UTF-8.
 * 2. The pre-tokenizer regexes (PCRE2 with PCRE2_UTF | PCRE2_UCP, so \p{L},
 *    \p{N} and \s follow the Unicode tables of the PCRE2 library) split it
 *    into words; text between matches is a word too.
 * 3. Each word's bytes are mapped through GPT-2's byte -> code point table
 *    and merged pairwise by rank (lowest rank first, ties leftmost), as
 *    llama.cpp's llm_tokenizer_bpe_session does. With ignore_merges (Llama 3)
 *    a word that is itself a token is emitted directly.
 *
 * Ownership: compiled regexes belong to the tokenizer (ns__tok_bpe_free);
 * scratch is allocated per call. Thread safety: compiled PCRE2 patterns (JIT
 * included) are shared read-only; match data is per call.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ns_log.h"
#include "tokenizer_impl.h"

/* Pre-tokenizer regexes, as published in the models' tokenizer.json (with
 * llama.cpp's rewrite of (?i:...) contractions, which is equivalent). */
#define RE_LLAMA3                                                                                                      \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "            \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                                                       \
    "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "                 \
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"

typedef struct pre_def {
    const char *name;           /* our name for it */
    const char *const *aliases; /* tokenizer.ggml.pre values */
    const char *regex[NS__TOK_MAX_REGEX];
    bool ignore_merges;
    bool add_bos;
} pre_def;

static const char *const k_llama3_names[] = {"llama3", "llama-v3", "llama-bpe", "falcon3", NULL};
static const char *const k_llama3x_names[] = {"dbrx", "smaug-bpe", NULL};
static const char *const k_qwen2_names[] = {"qwen2", "stablelm2", "megrez", NULL};
static const char *const k_gpt2_names[] = {
    "gpt-2",      "phi-2",        "jina-es",     "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
    "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt",     "olmo",     "jais",       NULL};
static const char *const k_starcoder_names[] = {"starcoder", "refact", "command-r",  "smollm",
                                                "codeshell", "exaone", "minerva-7b", NULL};
static const char *const k_default_names[] = {"default", NULL};

static const pre_def k_pre_defs[] = {
    {"llama3", k_llama3_names, {RE_LLAMA3}, true, true},
    {"llama3", k_llama3x_names, {RE_LLAMA3}, false, false},
    {"qwen2", k_qwen2_names, {RE_QWEN2}, false, false},
    {"gpt2", k_gpt2_names, {RE_GPT2}, false, false},
    {"starcoder", k_starcoder_names, {"\\p{N}", RE_GPT2}, false, false},
    {"default", k_default_names, {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"}, false, false},
};

static void build_byte_map(ns_tokenizer *t) {
    int n = 0;
    for (int i = 0; i < 324; i++) {
        t->byte_dec[i] = -1;
    }
    for (int b = 0; b < 256; b++) {
        int cp;
        if ((b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff)) {
            cp = b;
        } else {
            cp = 256 + n++;
        }
        t->byte_dec[cp] = (int16_t)b;
        if (cp < 0x80) {
            t->byte_enc[b][0] = (char)cp;
            t->byte_enc_len[b] = 1;
        } else {
            t->byte_enc[b][0] = (char)(0xc0 | (cp >> 6));
            t->byte_enc[b][1] = (char)(0x80 | (cp & 0x3f));
            t->byte_enc_len[b] = 2;
        }
    }
}

ns_status ns__tok_bpe_init(ns_tokenizer *t, const char *pre, ns_err *err) {
    build_byte_map(t);
    const pre_def *def = NULL;
    if (pre != NULL) {
        for (size_t i = 0; i < sizeof(k_pre_defs) / sizeof(k_pre_defs[0]) && def == NULL; i++) {
            for (size_t j = 0; k_pre_defs[i].aliases[j]; j++) {
                if (strcmp(pre, k_pre_defs[i].aliases[j]) == 0) {
                    def = &k_pre_defs[i];
                    break;
                }
            }
        }
    }
    if (def == NULL) {
        def = &k_pre_defs[sizeof(k_pre_defs) / sizeof(k_pre_defs[0]) - 1];
        NS_LOGW("tokenizer: %s pre-tokenizer '%s', using 'default'", pre ? "unknown" : "missing", pre ? pre : "");
    }
    snprintf(t->pre_name, sizeof(t->pre_name), "%s", def->name);
    t->ignore_merges = def->ignore_merges;
    t->add_bos = def->add_bos;
    t->n_regex = 0;
    for (int i = 0; i < NS__TOK_MAX_REGEX && def->regex[i]; i++) {
        int code;
        PCRE2_SIZE eoff;
        pcre2_code *re =
            pcre2_compile((PCRE2_SPTR)def->regex[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &eoff, NULL);
        if (re == NULL) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(code, msg, sizeof(msg));
            return ns__err_set(err, NS_ERR_UNSUPPORTED, "tokenizer: regex %d for '%s' failed at %zu: %s", i, def->name,
                               (size_t)eoff, (const char *)msg);
        }
        (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* optional: falls back to the interpreter */
        t->regex[t->n_regex++] = re;
    }
    return NS_OK;
}

void ns__tok_bpe_free(ns_tokenizer *t) {
    for (int i = 0; i < t->n_regex; i++) {
        pcre2_code_free((pcre2_code *)t->regex[i]);
        t->regex[i] = NULL;
    }
    t->n_regex = 0;
}

size_t ns__tok_bpe_unmap(const ns_tokenizer *t, const char *text, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint8_t c = (uint8_t)text[i];
        uint32_t cp = 0;
        size_t n = 0;
        if (c < 0x80) {
            cp = c;
            n = 1;
        } else if ((c & 0xe0) == 0xc0 && i + 1 < len && ((uint8_t)text[i + 1] & 0xc0) == 0x80) {
            cp = ((uint32_t)(c & 0x1f) << 6) | ((uint8_t)text[i + 1] & 0x3f);
            n = 2;
        }
        if (n > 0 && cp < 324 && t->byte_dec[cp] >= 0) {
            out[o++] = (char)t->byte_dec[cp];
            i += n;
            continue;
        }
        /* not a mapped code point: copy its bytes through */
        size_t m = 1;
        if (c >= 0xc0) {
            m = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            if (m > len - i) {
                m = len - i;
            }
        }
        memcpy(out + o, text + i, m);
        o += m;
        i += m;
    }
    return o;
}

/* ------------------------------------------------------------------------ */

/* llama.cpp's UTF-8 decoder (unicode_cpt_from_utf8 + FFFD on error), writing
 * valid UTF-8 to out (room for 3*len). Surrogates and code points past
 * U+10FFFF, which that decoder lets through, become U+FFFD as well. */
static size_t clean_utf8(const uint8_t *s, size_t len, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        uint8_t c = s[i];
        uint32_t cp;
        size_t n;
        if (!(c & 0x80)) {
            cp = c;
            n = 1;
        } else if (!(c & 0x40)) {
            cp = 0xfffd;
            n = 1;
        } else if (!(c & 0x20)) {
            if (i + 1 >= len || (s[i + 1] & 0xc0) != 0x80) {
                cp = 0xfffd, n = 1;
            } else {
                cp = ((uint32_t)(c & 0x1f) << 6) | (s[i + 1] & 0x3f), n = 2;
            }
        } else if (!(c & 0x10)) {
            if (i + 2 >= len || (s[i + 1] & 0xc0) != 0x80 || (s[i + 2] & 0xc0) != 0x80) {
                cp = 0xfffd, n = 1;
            } else {
                cp = ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f), n = 3;
            }
        } else if (!(c & 0x08)) {
            if (i + 3 >= len || (s[i + 1] & 0xc0) != 0x80 || (s[i + 2] & 0xc0) != 0x80 || (s[i + 3] & 0xc0) != 0x80) {
                cp = 0xfffd, n = 1;
            } else {
                cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[i + 1] & 0x3f) << 12) |
                     ((uint32_t)(s[i + 2] & 0x3f) << 6) | (s[i + 3] & 0x3f),
                n = 4;
            }
        } else {
            cp = 0xfffd;
            n = 1;
        }
        i += n;
        if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) {
            cp = 0xfffd;
        }
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else if (cp < 0x800) {
            out[o++] = (char)(0xc0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            out[o++] = (char)(0xe0 | (cp >> 12));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (cp & 0x3f));
        } else {
            out[o++] = (char)(0xf0 | (cp >> 18));
            out[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
            out[o++] = (char)(0x80 | (cp & 0x3f));
        }
    }
    return o;
}

typedef struct seg {
    size_t off, len;
} seg;

typedef struct seg_vec {
    seg *v;
    size_t n, cap;
} seg_vec;

static bool seg_push(seg_vec *s, size_t off, size_t len) {
    if (len == 0) {
        return true;
    }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        seg *p = realloc(s->v, cap * sizeof(*p));
        if (p == NULL) {
            return false;
        }
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = (seg){off, len};
    return true;
}

/* Split every segment of `in` by regex `re` into `out` (matches and the gaps between them). */
static ns_status regex_split(const pcre2_code *re, const char *text, const seg_vec *in, seg_vec *out,
                             pcre2_match_data *md, ns_err *err) {
    out->n = 0;
    for (size_t i = 0; i < in->n; i++) {
        const char *subj = text + in->v[i].off;
        size_t n = in->v[i].len, base = in->v[i].off;
        size_t pos = 0, prev = 0;
        while (pos < n) {
            int rc = pcre2_match(re, (PCRE2_SPTR)subj, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
            if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
                rc = pcre2_match(re, (PCRE2_SPTR)subj, n, pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
            }
            if (rc == PCRE2_ERROR_NOMATCH) {
                break;
            }
            if (rc < 0) {
                PCRE2_UCHAR msg[128];
                pcre2_get_error_message(rc, msg, sizeof(msg));
                return ns__err_set(err, NS_ERR_FORMAT, "tokenizer: pre-tokenizer regex failed: %s", (const char *)msg);
            }
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t ms = ov[0], me = ov[1];
            if (me <= ms) {
                /* empty match (the patterns never produce one): step one character */
                pos = ms + 1;
                while (pos < n && ((uint8_t)subj[pos] & 0xc0) == 0x80) {
                    pos++;
                }
                continue;
            }
            if (!seg_push(out, base + prev, ms - prev) || !seg_push(out, base + ms, me - ms)) {
                return ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory");
            }
            prev = pos = me;
        }
        if (!seg_push(out, base + prev, n - prev)) {
            return ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory");
        }
    }
    return NS_OK;
}

typedef struct bpe_sym {
    int64_t prev, next;
    size_t off, n; /* in the encoded word; n = 0 once merged away */
} bpe_sym;

static void bpe_add_bigram(const ns_tokenizer *t, const char *w, const bpe_sym *syms, ns__tok_heap *h, int64_t left,
                           int64_t right) {
    if (left < 0 || right < 0) {
        return;
    }
    const bpe_sym *l = &syms[left], *r = &syms[right];
    int32_t rank = ns__tok_merge_rank(t, w + l->off, l->n, w + r->off, r->n);
    if (rank < 0) {
        return;
    }
    ns__tok_heap_push(h, (ns__tok_bigram){left, right, (double)rank, l->n + r->n});
}

/* Merge one byte-encoded word and append its ids. syms/heap have room for
 * len symbols / 3*len bigrams. */
static ns_status bpe_word(const ns_tokenizer *t, const char *w, size_t len, bpe_sym *syms, ns__tok_heap *h,
                          ns__tok_vec *out) {
    if (t->ignore_merges) {
        int32_t id = ns_tokenizer_find(t, w, len);
        if (id >= 0) {
            return ns__tok_vec_push(out, id);
        }
    }
    int64_t n_syms = 0;
    for (size_t off = 0; off < len;) {
        uint8_t c = (uint8_t)w[off];
        size_t n = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (n > len - off) {
            n = len - off;
        }
        syms[n_syms] = (bpe_sym){n_syms - 1, off + n == len ? -1 : n_syms + 1, off, n};
        n_syms++;
        off += n;
    }
    h->n = 0;
    for (int64_t i = 1; i < n_syms; i++) {
        bpe_add_bigram(t, w, syms, h, i - 1, i);
    }
    while (h->n > 0) {
        ns__tok_bigram b = ns__tok_heap_pop(h);
        bpe_sym *l = &syms[b.left], *r = &syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) {
            continue; /* outdated */
        }
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) {
            syms[r->next].prev = b.left;
        }
        bpe_add_bigram(t, w, syms, h, l->prev, b.left);
        bpe_add_bigram(t, w, syms, h, b.left, l->next);
    }
    for (int64_t i = 0; i != -1; i = syms[i].next) {
        const bpe_sym *s = &syms[i];
        int32_t id = ns_tokenizer_find(t, w + s->off, s->n);
        if (id >= 0) {
            NS_TRY(ns__tok_vec_push(out, id));
            continue;
        }
        /* llama.cpp: look each byte of the symbol up as a one-byte token */
        for (size_t j = 0; j < s->n; j++) {
            int32_t bid = ns_tokenizer_find(t, w + s->off + j, 1);
            if (bid >= 0) {
                NS_TRY(ns__tok_vec_push(out, bid));
            }
        }
    }
    return NS_OK;
}

ns_status ns__tok_bpe_encode(const ns_tokenizer *t, const char *text, size_t len, ns__tok_vec *out, ns_err *err) {
    if (len == 0) {
        return NS_OK;
    }
    ns_status st = NS_OK;
    char *clean = NULL, *enc = NULL;
    seg_vec a = {0}, b = {0};
    bpe_sym *syms = NULL;
    ns__tok_heap h = {0};
    pcre2_match_data *md = NULL;

    if (len > SIZE_MAX / 4) {
        return ns__err_set(err, NS_ERR_RANGE, "tokenizer: text too long");
    }
    clean = malloc(3 * len);
    md = pcre2_match_data_create(1, NULL);
    if (clean == NULL || md == NULL) {
        goto nomem;
    }
    size_t clen = clean_utf8((const uint8_t *)text, len, clean);
    if (!seg_push(&a, 0, clen)) {
        goto nomem;
    }
    for (int r = 0; r < t->n_regex; r++) {
        if ((st = regex_split((const pcre2_code *)t->regex[r], clean, &a, &b, md, err)) != NS_OK) {
            goto done;
        }
        seg_vec tmp = a;
        a = b;
        b = tmp;
    }
    size_t max_word = 0;
    for (size_t i = 0; i < a.n; i++) {
        if (a.v[i].len > max_word) {
            max_word = a.v[i].len;
        }
    }
    /* encoded word: at most 2 bytes per input byte */
    enc = malloc(2 * max_word);
    syms = malloc(2 * max_word * sizeof(*syms));
    h.cap = 6 * max_word + 1;
    h.v = malloc(h.cap * sizeof(*h.v));
    if (enc == NULL || syms == NULL || h.v == NULL) {
        goto nomem;
    }
    for (size_t i = 0; i < a.n; i++) {
        size_t el = 0;
        for (size_t k = 0; k < a.v[i].len; k++) {
            uint8_t c = (uint8_t)clean[a.v[i].off + k];
            memcpy(enc + el, t->byte_enc[c], t->byte_enc_len[c]);
            el += t->byte_enc_len[c];
        }
        if ((st = bpe_word(t, enc, el, syms, &h, out)) != NS_OK) {
            goto nomem;
        }
    }
    goto done;
nomem:
    st = ns__err_set(err, NS_ERR_NOMEM, "tokenizer: out of memory");
done:
    pcre2_match_data_free(md);
    free(clean);
    free(enc);
    free(a.v);
    free(b.v);
    free(syms);
    free(h.v);
    return st;
}
