/*
 * sampler.c - the sampling chain, the per-sequence RNG, the penalty window
 * and stop-string handling over streamed text. See sampler.h.
 *
 * Ownership: a sampler owns its window, stop strings and text buffers, and
 * its workspace when it was created with ws = NULL.
 * Thread safety: one thread at a time per sampler and per workspace.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ns_util.h"
#include "sampler.h"

typedef struct cand {
    int32_t id;
    float logit;
} cand;

struct ns_sampler_ws {
    int32_t n_vocab;
    cand *c;        /* (n_vocab) candidates, by id before truncation */
    cand *tmp;      /* (n_vocab) top-m selection, sorted best first */
    int32_t *count; /* (n_vocab) occurrences in the window; all zero between calls */
    uint16_t *bkt;  /* (n_vocab) top-p: mass bucket of each candidate */
    double *mass;   /* (NS__TOPP_BUCKETS) top-p: probability mass per bucket */
};

/* top-p without top-k: candidates are bucketed by logit distance from the
 * max, so only the bucket where the mass crosses top_p needs sorting. */
#define NS__TOPP_BUCKETS 4096
#define NS__TOPP_RANGE 64.0f /* logits further than this below the max share the last bucket */

struct ns_sampler {
    ns_sampler_params p; /* p.stop points at `stops` */
    const ns_tokenizer *tok;
    int32_t n_vocab;
    ns_sampler_ws *ws;
    bool own_ws;
    uint64_t rng[4]; /* xoshiro256** state */

    int32_t *window; /* (win_cap) ring buffer of recent tokens */
    int32_t win_cap, win_n, win_pos;

    int32_t n_generated;
    ns_finish finish;

    char *stop_blob;     /* the stop strings, NUL-separated */
    const char **stops;  /* (n_stop) into stop_blob */
    size_t *stop_len;    /* (n_stop) */
    size_t max_stop_len; /* longest stop string */

    ns_detok detok;
    char *hold; /* (hold_cap) text not yet released */
    size_t n_hold, hold_cap;
    char *emit; /* (hold_cap) text released by the last call */
};

/* ------------------------------------------------------------------------ */
/* RNG: xoshiro256** seeded through splitmix64                               */

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

/* Uniform in [0, 1). */
static double rng_uniform(uint64_t s[4]) {
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static void rng_seed(uint64_t s[4], uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        s[i] = splitmix64(&x);
    }
}

/* ------------------------------------------------------------------------ */

void ns_sampler_params_default(ns_sampler_params *p) {
    memset(p, 0, sizeof(*p));
    p->temperature = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->penalty_last_n = 64;
}

ns_status ns_sampler_ws_create(int32_t n_vocab, ns_sampler_ws **out, ns_err *err) {
    *out = NULL;
    if (n_vocab <= 0) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: n_vocab %d", n_vocab);
    }
    ns_sampler_ws *ws = calloc(1, sizeof(*ws));
    if (ws == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "sampler: out of memory");
    }
    ws->n_vocab = n_vocab;
    ws->c = malloc((size_t)n_vocab * sizeof(cand));
    ws->tmp = malloc((size_t)n_vocab * sizeof(cand));
    ws->count = calloc((size_t)n_vocab, sizeof(int32_t));
    ws->bkt = malloc((size_t)n_vocab * sizeof(uint16_t));
    ws->mass = malloc(NS__TOPP_BUCKETS * sizeof(double));
    if (ws->c == NULL || ws->tmp == NULL || ws->count == NULL || ws->bkt == NULL || ws->mass == NULL) {
        ns_sampler_ws_destroy(&ws);
        return ns__err_set(err, NS_ERR_NOMEM, "sampler: out of memory for %d candidates", n_vocab);
    }
    *out = ws;
    return NS_OK;
}

void ns_sampler_ws_destroy(ns_sampler_ws **wsp) {
    if (wsp == NULL || *wsp == NULL) {
        return;
    }
    ns_sampler_ws *ws = *wsp;
    free(ws->c);
    free(ws->tmp);
    free(ws->count);
    free(ws->bkt);
    free(ws->mass);
    free(ws);
    *wsp = NULL;
}

static ns_status check_params(const ns_tokenizer *tok, const ns_sampler_params *p, ns_err *err) {
    if (!isfinite(p->temperature)) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: temperature must be finite");
    }
    if (!(p->top_p > 0.0f) || isnan(p->top_p)) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: top_p must be > 0 (>= 1 turns it off)");
    }
    if (isnan(p->min_p) || p->min_p > 1.0f) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: min_p must be <= 1 (<= 0 turns it off)");
    }
    if (!(p->repeat_penalty > 0.0f) || !isfinite(p->repeat_penalty)) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: repeat_penalty must be > 0 (1 turns it off)");
    }
    if (!isfinite(p->frequency_penalty) || !isfinite(p->presence_penalty)) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: penalties must be finite");
    }
    if (p->penalty_last_n < 0) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: penalty_last_n must be >= 0");
    }
    if (p->n_stop > 0 && (p->stop == NULL || tok == NULL)) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: stop strings need a tokenizer");
    }
    for (size_t i = 0; i < p->n_stop; i++) {
        if (p->stop[i] == NULL || p->stop[i][0] == '\0') {
            return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: stop string %zu is empty", i);
        }
        if (!ns_utf8_valid(p->stop[i], strlen(p->stop[i]))) {
            return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: stop string %zu is not valid UTF-8", i);
        }
    }
    return NS_OK;
}

ns_status ns_sampler_create(const ns_tokenizer *tok, int32_t n_vocab, const ns_sampler_params *p, ns_sampler_ws *ws,
                            ns_sampler **out, ns_err *err) {
    if (out == NULL || p == NULL) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: NULL argument");
    }
    *out = NULL;
    if (n_vocab <= 0) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: n_vocab %d", n_vocab);
    }
    if (ws != NULL && ws->n_vocab < n_vocab) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sampler: workspace for %d tokens, need %d", ws->n_vocab, n_vocab);
    }
    NS_TRY(check_params(tok, p, err));

    ns_status st = NS_OK;
    ns_sampler *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "sampler: out of memory");
    }
    s->p = *p;
    s->tok = tok;
    s->n_vocab = n_vocab;
    if (ws == NULL) {
        if ((st = ns_sampler_ws_create(n_vocab, &s->ws, err)) != NS_OK) {
            goto fail;
        }
        s->own_ws = true;
    } else {
        s->ws = ws;
    }
    s->win_cap = p->penalty_last_n;
    if (s->win_cap > 0 && (s->window = malloc((size_t)s->win_cap * sizeof(int32_t))) == NULL) {
        goto nomem;
    }

    size_t blob = 0;
    for (size_t i = 0; i < p->n_stop; i++) {
        size_t l = strlen(p->stop[i]);
        blob += l + 1;
        if (l > s->max_stop_len) {
            s->max_stop_len = l;
        }
    }
    if (p->n_stop > 0) {
        s->stop_blob = malloc(blob);
        s->stops = malloc(p->n_stop * sizeof(*s->stops));
        s->stop_len = malloc(p->n_stop * sizeof(*s->stop_len));
        if (s->stop_blob == NULL || s->stops == NULL || s->stop_len == NULL) {
            goto nomem;
        }
        size_t off = 0;
        for (size_t i = 0; i < p->n_stop; i++) {
            size_t l = strlen(p->stop[i]);
            memcpy(s->stop_blob + off, p->stop[i], l + 1);
            s->stops[i] = s->stop_blob + off;
            s->stop_len[i] = l;
            off += l + 1;
        }
        s->p.stop = s->stops;
    } else {
        s->p.stop = NULL;
    }

    if (tok != NULL) {
        ns_detok_init(&s->detok, tok, p->render_special);
        /* held stop prefix + one token's text + a final U+FFFD */
        s->hold_cap = s->max_stop_len + ns_detok_max_out(tok) + 3;
        s->hold = malloc(s->hold_cap);
        s->emit = malloc(s->hold_cap);
        if (s->hold == NULL || s->emit == NULL) {
            goto nomem;
        }
    }
    ns_sampler_reset(s);
    *out = s;
    return NS_OK;
nomem:
    st = ns__err_set(err, NS_ERR_NOMEM, "sampler: out of memory");
fail:
    ns_sampler_destroy(&s);
    return st;
}

void ns_sampler_destroy(ns_sampler **sp) {
    if (sp == NULL || *sp == NULL) {
        return;
    }
    ns_sampler *s = *sp;
    if (s->own_ws) {
        ns_sampler_ws_destroy(&s->ws);
    }
    free(s->window);
    free(s->stop_blob);
    free(s->stops);
    free(s->stop_len);
    free(s->hold);
    free(s->emit);
    free(s);
    *sp = NULL;
}

void ns_sampler_reset(ns_sampler *s) {
    rng_seed(s->rng, s->p.seed);
    s->win_n = s->win_pos = 0;
    s->n_generated = 0;
    s->finish = NS_FINISH_NONE;
    s->n_hold = 0;
    if (s->tok != NULL) {
        ns_detok_reset(&s->detok);
    }
}

static void window_push(ns_sampler *s, int32_t id) {
    if (s->win_cap <= 0) {
        return;
    }
    s->window[s->win_pos] = id;
    s->win_pos = (s->win_pos + 1) % s->win_cap;
    if (s->win_n < s->win_cap) {
        s->win_n++;
    }
}

void ns_sampler_accept_prompt(ns_sampler *s, const int32_t *ids, size_t n) {
    /* only the last win_cap tokens can matter */
    size_t from = s->win_cap > 0 && n > (size_t)s->win_cap ? n - (size_t)s->win_cap : 0;
    for (size_t i = from; i < n; i++) {
        window_push(s, ids[i]);
    }
}

int32_t ns_sampler_n_generated(const ns_sampler *s) {
    return s->n_generated;
}
ns_finish ns_sampler_finish(const ns_sampler *s) {
    return s->finish;
}

/* ------------------------------------------------------------------------ */
/* the chain                                                                 */

/* a ranks before b: higher logit, then lower id (a total order, so every
 * selection below is deterministic) */
static bool cand_better(const cand *a, const cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

/* min-heap on "better": the root is the worst kept candidate */
static void heap_sift_down(cand *h, size_t n, size_t i) {
    cand x = h[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        const cand *wv = &x;
        if (l < n && cand_better(wv, &h[l])) {
            w = l;
            wv = &h[l];
        }
        if (r < n && cand_better(wv, &h[r])) {
            w = r;
        }
        if (w == i) {
            break;
        }
        h[i] = h[w];
        i = w;
    }
    h[i] = x;
}

/* The best m of src[0..n) into dst[0..m), best first. O(n log m), no allocation. */
static void top_sorted(const cand *src, size_t n, size_t m, cand *dst) {
    if (m > n) {
        m = n;
    }
    if (m == 0) {
        return;
    }
    for (size_t i = 0; i < m; i++) {
        dst[i] = src[i];
    }
    for (size_t i = m / 2; i-- > 0;) {
        heap_sift_down(dst, m, i);
    }
    for (size_t i = m; i < n; i++) {
        if (cand_better(&src[i], &dst[0])) {
            dst[0] = src[i];
            heap_sift_down(dst, m, 0);
        }
    }
    /* heap sort: move the worst to the back repeatedly */
    for (size_t end = m; end-- > 1;) {
        cand t = dst[0];
        dst[0] = dst[end];
        dst[end] = t;
        heap_sift_down(dst, end, 0);
    }
}

static void apply_penalties(ns_sampler *s, cand *c) {
    const ns_sampler_params *p = &s->p;
    if (s->win_n == 0 || (p->repeat_penalty == 1.0f && p->frequency_penalty == 0.0f && p->presence_penalty == 0.0f)) {
        return;
    }
    int32_t *count = s->ws->count;
    for (int32_t i = 0; i < s->win_n; i++) {
        int32_t id = s->window[i];
        if (id >= 0 && id < s->n_vocab) {
            count[id]++;
        }
    }
    for (int32_t i = 0; i < s->win_n; i++) {
        int32_t id = s->window[i];
        if (id < 0 || id >= s->n_vocab || count[id] == 0) {
            continue; /* out of range, or already applied */
        }
        float l = c[id].logit;
        l = l <= 0.0f ? l * p->repeat_penalty : l / p->repeat_penalty;
        l -= (float)count[id] * p->frequency_penalty + p->presence_penalty;
        c[id].logit = l;
        count[id] = 0; /* applied once per distinct token; restores the all-zero invariant */
    }
}

/* Keep the smallest best-first prefix of cur[0..n) whose probability (softmax
 * at temperature 1) reaches top_p, as llama.cpp's top-p. When cur is already
 * sorted best first this is a walk. Otherwise the candidates are bucketed by
 * distance from the max logit, buckets are taken best first while the mass
 * stays below top_p, and only the crossing bucket is sorted; the kept set is
 * left in ws->tmp (better buckets in id order, then the sorted part), *cur
 * points there. Returns the new count (>= 1). */
static size_t top_p_filter(ns_sampler_ws *ws, cand **curp, size_t n, bool sorted, float top_p) {
    cand *cur = *curp;
    float mx = -INFINITY, mn = INFINITY;
    for (size_t i = 0; i < n; i++) {
        float l = cur[i].logit;
        mx = l > mx ? l : mx;
        mn = (l < mn && l > -INFINITY) ? l : mn;
    }
    if (!isfinite(mx)) {
        return n;
    }
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        sum += (double)expf(cur[i].logit - mx);
    }
    double target = (double)top_p * sum;
    if (sorted) {
        double cum = 0.0;
        for (size_t i = 0; i < n; i++) {
            cum += (double)expf(cur[i].logit - mx);
            if (cum >= target) {
                return i + 1;
            }
        }
        return n;
    }
    float range = mx - mn;
    if (!(range > 0.0f)) {
        range = 1.0f; /* all equal: one bucket */
    }
    if (range > NS__TOPP_RANGE) {
        range = NS__TOPP_RANGE;
    }
    float scale = (float)(NS__TOPP_BUCKETS - 1) / range;
    for (size_t b = 0; b < NS__TOPP_BUCKETS; b++) {
        ws->mass[b] = 0.0;
    }
    for (size_t i = 0; i < n; i++) {
        float d = (mx - cur[i].logit) * scale;
        size_t b = d < (float)(NS__TOPP_BUCKETS - 1) ? (size_t)d : NS__TOPP_BUCKETS - 1;
        ws->bkt[i] = (uint16_t)b;
        ws->mass[b] += (double)expf(cur[i].logit - mx);
    }
    double acc = 0.0;
    size_t cut = NS__TOPP_BUCKETS - 1;
    for (size_t b = 0; b < NS__TOPP_BUCKETS; b++) {
        if (acc + ws->mass[b] >= target) {
            cut = b;
            break;
        }
        acc += ws->mass[b];
    }
    /* better buckets in id order, then the crossing bucket */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ws->bkt[i] < cut) {
            ws->tmp[k++] = cur[i];
        }
    }
    size_t m0 = k;
    for (size_t i = 0; i < n; i++) {
        if (ws->bkt[i] == cut) {
            ws->tmp[k++] = cur[i];
        }
    }
    size_t kb = k - m0;
    /* sort the crossing bucket into cur (no longer needed) and take its prefix */
    top_sorted(ws->tmp + m0, kb, kb, cur);
    size_t keep = kb;
    for (size_t j = 0; j < kb; j++) {
        acc += (double)expf(cur[j].logit - mx);
        if (acc >= target) {
            keep = j + 1;
            break;
        }
    }
    memcpy(ws->tmp + m0, cur, keep * sizeof(cand));
    *curp = ws->tmp;
    size_t total = m0 + keep;
    return total > 0 ? total : 1;
}

int32_t ns_sampler_sample(ns_sampler *s, const float *logits) {
    const ns_sampler_params *p = &s->p;
    size_t n = (size_t)s->n_vocab;
    cand *c = s->ws->c;
    for (size_t i = 0; i < n; i++) {
        float l = logits[i];
        c[i] = (cand){(int32_t)i, isnan(l) ? -INFINITY : l};
    }
    apply_penalties(s, c);

    if (p->temperature <= 0.0f) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++) {
            if (c[i].logit > c[best].logit) {
                best = i;
            }
        }
        return c[best].id;
    }

    cand *cur = c;
    size_t n_cur = n;
    bool sorted = false;
    if (p->top_k > 0 && (size_t)p->top_k < n) {
        top_sorted(c, n, (size_t)p->top_k, s->ws->tmp);
        cur = s->ws->tmp;
        n_cur = (size_t)p->top_k;
        sorted = true;
    }

    if (p->top_p < 1.0f && n_cur > 1) {
        n_cur = top_p_filter(s->ws, &cur, n_cur, sorted, p->top_p);
    }

    if (p->min_p > 0.0f && n_cur > 1) {
        float mx = -INFINITY;
        for (size_t i = 0; i < n_cur; i++) {
            mx = cur[i].logit > mx ? cur[i].logit : mx;
        }
        float thresh = mx + logf(p->min_p);
        size_t k = 0;
        for (size_t i = 0; i < n_cur; i++) {
            if (cur[i].logit >= thresh) {
                cur[k++] = cur[i]; /* order preserved */
            }
        }
        n_cur = k > 0 ? k : 1;
    }

    /* temperature, then draw */
    float inv_t = 1.0f / p->temperature;
    float mx = -INFINITY;
    size_t best = 0;
    for (size_t i = 0; i < n_cur; i++) {
        cur[i].logit *= inv_t;
        if (cand_better(&cur[i], &cur[best])) {
            best = i;
        }
    }
    mx = cur[best].logit;
    double sum = 0.0;
    for (size_t i = 0; i < n_cur; i++) {
        sum += exp((double)(cur[i].logit - mx));
    }
    if (!(sum > 0.0) || !isfinite(sum) || !isfinite(mx)) {
        return cur[best].id;
    }
    double r = rng_uniform(s->rng) * sum;
    double acc = 0.0;
    for (size_t i = 0; i < n_cur; i++) {
        acc += exp((double)(cur[i].logit - mx));
        if (r < acc) {
            return cur[i].id;
        }
    }
    return cur[best].id; /* rounding at the very end of the walk */
}

/* ------------------------------------------------------------------------ */
/* text, stop strings and finishing                                          */

static void emit_bytes(ns_sampler *s, ns_sample_result *res, size_t n) {
    memcpy(s->emit, s->hold, n);
    memmove(s->hold, s->hold + n, s->n_hold - n);
    s->n_hold -= n;
    res->text = s->emit;
    res->text_len = n;
}

/* Release everything held (flushing the detokenizer) and finish. */
static void finish_all(ns_sampler *s, ns_sample_result *res, ns_finish why) {
    if (s->tok != NULL) {
        size_t k = 0;
        ns_status st = ns_detok_flush(&s->detok, s->hold + s->n_hold, s->hold_cap - s->n_hold, &k);
        NS_ASSERT(st == NS_OK);
        s->n_hold += k;
        emit_bytes(s, res, s->n_hold);
    }
    s->finish = why;
    res->finish = why;
}

/* Earliest completed stop string in the hold buffer: its index, position in *pos. */
static int32_t find_stop(const ns_sampler *s, size_t *pos) {
    int32_t best = -1;
    size_t best_pos = 0;
    for (size_t j = 0; j < s->p.n_stop; j++) {
        size_t l = s->stop_len[j];
        if (l > s->n_hold) {
            continue;
        }
        size_t limit = best >= 0 ? best_pos : s->n_hold - l;
        for (size_t i = 0; i <= limit && i + l <= s->n_hold; i++) {
            if (s->hold[i] == s->stops[j][0] && memcmp(s->hold + i, s->stops[j], l) == 0) {
                if (best < 0 || i < best_pos) {
                    best = (int32_t)j;
                    best_pos = i;
                }
                break;
            }
        }
    }
    *pos = best_pos;
    return best;
}

/* Length of the longest suffix of the hold buffer that is a proper prefix of a stop string. */
static size_t held_prefix(const ns_sampler *s) {
    size_t maxl = s->max_stop_len > 0 ? s->max_stop_len - 1 : 0;
    if (maxl > s->n_hold) {
        maxl = s->n_hold;
    }
    for (size_t l = maxl; l > 0; l--) {
        const char *suf = s->hold + s->n_hold - l;
        for (size_t j = 0; j < s->p.n_stop; j++) {
            if (s->stop_len[j] > l && memcmp(s->stops[j], suf, l) == 0) {
                return l;
            }
        }
    }
    return 0;
}

ns_status ns_sampler_accept(ns_sampler *s, int32_t token, ns_sample_result *res) {
    res->token = token;
    res->finish = NS_FINISH_NONE;
    res->stop_index = -1;
    res->text = s->emit != NULL ? s->emit : "";
    res->text_len = 0;
    if (s->finish != NS_FINISH_NONE) {
        res->finish = s->finish;
        return NS_ERR_STATE;
    }
    if (token < 0 || token >= s->n_vocab) {
        return NS_ERR_RANGE;
    }
    window_push(s, token);
    s->n_generated++;

    if (s->tok != NULL && !s->p.ignore_eos && ns_tokenizer_is_eog(s->tok, token)) {
        finish_all(s, res, NS_FINISH_EOG);
        return NS_OK;
    }
    if (s->tok != NULL) {
        size_t k = 0;
        ns_status st = ns_detok_push(&s->detok, token, s->hold + s->n_hold, s->hold_cap - s->n_hold, &k);
        NS_ASSERT(st == NS_OK); /* hold_cap leaves room for one token after the held prefix */
        s->n_hold += k;
        size_t pos;
        int32_t j = find_stop(s, &pos);
        if (j >= 0) {
            emit_bytes(s, res, pos);
            s->n_hold = 0;
            s->finish = NS_FINISH_STOP;
            res->finish = NS_FINISH_STOP;
            res->stop_index = j;
            return NS_OK;
        }
    }
    if (s->p.max_tokens > 0 && s->n_generated >= s->p.max_tokens) {
        finish_all(s, res, NS_FINISH_LENGTH);
        return NS_OK;
    }
    if (s->tok != NULL) {
        emit_bytes(s, res, s->n_hold - held_prefix(s));
    }
    return NS_OK;
}

ns_status ns_sampler_step(ns_sampler *s, const float *logits, ns_sample_result *res) {
    if (s->finish != NS_FINISH_NONE) {
        return ns_sampler_accept(s, -1, res);
    }
    return ns_sampler_accept(s, ns_sampler_sample(s, logits), res);
}
