/*
 * test_sampler.c - each sampler option's effect on crafted logits, seed
 * determinism, penalties and their window, stop strings split across 2-3
 * tokens, EOG / max_tokens finishing, parameter validation, and that the
 * per-token path never allocates (glibc malloc interposition).
 * The text tests use the reference vocabularies and are skipped without them.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "ns_status.h"
#include "ns_test.h"
#include "sampler.h"
#include "tokenizer.h"

/* ---- allocation counter (glibc): every malloc/calloc/realloc in the process ---- */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define NS_TEST_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define NS_TEST_SANITIZED 1
#endif
#if defined(__GLIBC__) && !defined(NS_TEST_SANITIZED)
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static volatile long g_allocs;
void *malloc(size_t n) {
    g_allocs++;
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    g_allocs++;
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    g_allocs++;
    return __libc_realloc(p, n);
}
#define HAVE_ALLOC_COUNT 1
#else
static volatile long g_allocs;
#define HAVE_ALLOC_COUNT 0
#endif

#define NV 16

static ns_sampler *make(int32_t n_vocab, const ns_sampler_params *p) {
    ns_sampler *s = NULL;
    ns_err err = {0};
    if (ns_sampler_create(NULL, n_vocab, p, NULL, &s, &err) != NS_OK) {
        NS_FAIL("create: %s", ns_err_msg(&err));
    }
    return s;
}

static ns_sampler_params greedy(void) {
    ns_sampler_params p;
    ns_sampler_params_default(&p);
    p.temperature = 0.0f;
    return p;
}

static ns_sampler_params plain(float temp) {
    ns_sampler_params p;
    ns_sampler_params_default(&p);
    p.temperature = temp;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    return p;
}

static void test_greedy_and_penalties(void) {
    float lg[NV];
    for (int i = 0; i < NV; i++) {
        lg[i] = -1.0f - 0.01f * (float)i;
    }
    lg[7] = 2.0f;
    lg[3] = 1.5f;
    ns_sampler_params p = greedy();
    ns_sampler *s = make(NV, &p);
    ASSERT_EQ(ns_sampler_sample(s, lg), 7);
    ns_sampler_destroy(&s);
    ASSERT_TRUE(s == NULL);

    /* ties go to the lowest id */
    float tie[NV] = {0};
    tie[9] = tie[4] = 1.0f;
    s = make(NV, &p);
    ASSERT_EQ(ns_sampler_sample(s, tie), 4);
    ns_sampler_destroy(&s);

    /* repetition penalty: positive logit divided (2.0/1.5 < 1.5) */
    p.repeat_penalty = 1.5f;
    s = make(NV, &p);
    int32_t hist[] = {7};
    ns_sampler_accept_prompt(s, hist, 1);
    ASSERT_EQ(ns_sampler_sample(s, lg), 3);
    ns_sampler_destroy(&s);
    /* ... negative logit multiplied: -1.0 * 1.5 < -1.2 */
    float neg[NV];
    for (int i = 0; i < NV; i++) {
        neg[i] = -5.0f;
    }
    neg[7] = -1.0f;
    neg[3] = -1.2f;
    s = make(NV, &p);
    ns_sampler_accept_prompt(s, hist, 1);
    ASSERT_EQ(ns_sampler_sample(s, neg), 3);
    ns_sampler_destroy(&s);

    /* frequency penalty scales with the count; presence does not */
    float fl[NV];
    for (int i = 0; i < NV; i++) {
        fl[i] = -3.0f;
    }
    fl[5] = 3.0f;
    fl[2] = 2.0f;
    int32_t three[] = {5, 5, 5};
    p = greedy();
    p.frequency_penalty = 0.4f; /* 3 - 1.2 = 1.8 < 2 */
    s = make(NV, &p);
    ns_sampler_accept_prompt(s, three, 3);
    ASSERT_EQ(ns_sampler_sample(s, fl), 2);
    ns_sampler_destroy(&s);
    p.frequency_penalty = 0.3f; /* 3 - 0.9 = 2.1 > 2 */
    s = make(NV, &p);
    ns_sampler_accept_prompt(s, three, 3);
    ASSERT_EQ(ns_sampler_sample(s, fl), 5);
    ns_sampler_destroy(&s);
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 0.9f; /* once: 2.1 */
    s = make(NV, &p);
    ns_sampler_accept_prompt(s, three, 3);
    ASSERT_EQ(ns_sampler_sample(s, fl), 5);
    ns_sampler_destroy(&s);
    p.presence_penalty = 1.1f; /* 1.9 */
    s = make(NV, &p);
    ns_sampler_accept_prompt(s, three, 3);
    ASSERT_EQ(ns_sampler_sample(s, fl), 2);

    /* the window: after two newer tokens, 5 is out of a window of 2 */
    ns_sampler_destroy(&s);
    p.penalty_last_n = 2;
    s = make(NV, &p);
    ns_sampler_accept_prompt(s, three, 3);
    ASSERT_EQ(ns_sampler_sample(s, fl), 2);
    ns_sample_result r;
    ASSERT_OK(ns_sampler_accept(s, 9, &r));
    ASSERT_OK(ns_sampler_accept(s, 10, &r));
    ASSERT_EQ(ns_sampler_sample(s, fl), 5);
    /* penalty_last_n = 0 turns penalties off */
    ns_sampler_destroy(&s);
    p.penalty_last_n = 0;
    s = make(NV, &p);
    ns_sampler_accept_prompt(s, three, 3);
    ASSERT_EQ(ns_sampler_sample(s, fl), 5);
    ns_sampler_destroy(&s);
}

/* Draw `n` tokens and histogram them. */
static void draw(ns_sampler *s, const float *lg, int n, int *hist, int nv) {
    memset(hist, 0, (size_t)nv * sizeof(int));
    for (int i = 0; i < n; i++) {
        int32_t t = ns_sampler_sample(s, lg);
        ASSERT_TRUE(t >= 0 && t < nv);
        hist[t]++;
    }
}

static void test_truncation(void) {
    int hist[NV];
    float flat[NV] = {0};
    /* top-k on equal logits keeps the lowest ids */
    ns_sampler_params p = plain(1.0f);
    p.top_k = 3;
    ns_sampler *s = make(NV, &p);
    draw(s, flat, 3000, hist, NV);
    for (int i = 0; i < NV; i++) {
        if (i < 3) {
            ASSERT_TRUE(hist[i] > 800);
        } else {
            ASSERT_EQ(hist[i], 0);
        }
    }
    ns_sampler_destroy(&s);
    /* top-k 1 is greedy whatever the temperature */
    float lg[NV];
    for (int i = 0; i < NV; i++) {
        lg[i] = (float)(i % 5);
    }
    lg[11] = 4.5f;
    p.top_k = 1;
    p.temperature = 5.0f;
    s = make(NV, &p);
    draw(s, lg, 500, hist, NV);
    ASSERT_EQ(hist[11], 500);
    ns_sampler_destroy(&s);

    /* top-p: probabilities .5 .3 .15 .05 -> p = 0.7 keeps the first two */
    float pl[NV];
    for (int i = 0; i < NV; i++) {
        pl[i] = -INFINITY;
    }
    pl[0] = logf(0.5f);
    pl[1] = logf(0.3f);
    pl[2] = logf(0.15f);
    pl[3] = logf(0.05f);
    p = plain(1.0f);
    p.top_p = 0.7f;
    s = make(NV, &p);
    draw(s, pl, 8000, hist, NV);
    ASSERT_EQ(hist[2] + hist[3], 0);
    ASSERT_NEAR((double)hist[0] / 8000.0, 0.625, 0.03);
    ns_sampler_destroy(&s);
    /* min-p 0.2 keeps p >= 0.2 * p_max = 0.1: tokens 0, 1, 2 */
    p = plain(1.0f);
    p.min_p = 0.2f;
    s = make(NV, &p);
    draw(s, pl, 8000, hist, NV);
    ASSERT_EQ(hist[3], 0);
    ASSERT_TRUE(hist[2] > 0);
    ASSERT_NEAR((double)hist[0] / 8000.0, 0.5 / 0.95, 0.03);
    ns_sampler_destroy(&s);
    /* min-p 0.5: keeps p >= 0.25: tokens 0, 1 */
    p.min_p = 0.5f;
    s = make(NV, &p);
    draw(s, pl, 4000, hist, NV);
    ASSERT_EQ(hist[2] + hist[3], 0);
    ns_sampler_destroy(&s);

    /* temperature: T=1 follows softmax; T small is argmax; T large flattens */
    p = plain(1.0f);
    s = make(NV, &p);
    draw(s, pl, 20000, hist, NV);
    ASSERT_NEAR(hist[0] / 20000.0, 0.5, 0.02);
    ASSERT_NEAR(hist[1] / 20000.0, 0.3, 0.02);
    ASSERT_NEAR(hist[2] / 20000.0, 0.15, 0.02);
    ASSERT_NEAR(hist[3] / 20000.0, 0.05, 0.01);
    ns_sampler_destroy(&s);
    p = plain(0.01f);
    s = make(NV, &p);
    draw(s, pl, 2000, hist, NV);
    ASSERT_EQ(hist[0], 2000);
    ns_sampler_destroy(&s);
    p = plain(4.0f); /* p_i ~ p_i^(1/4): .5^.25=.84 .3^.25=.74 .15^.25=.62 .05^.25=.47 */
    s = make(NV, &p);
    draw(s, pl, 20000, hist, NV);
    double z = pow(0.5, 0.25) + pow(0.3, 0.25) + pow(0.15, 0.25) + pow(0.05, 0.25);
    ASSERT_NEAR(hist[3] / 20000.0, pow(0.05, 0.25) / z, 0.02);
    ns_sampler_destroy(&s);
}

/* top-p without top-k on a big vocabulary takes the growing partial-sort path;
 * compare against a brute-force nucleus. */
static int cmp_desc(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void test_top_p_large(void) {
    enum { V = 20000 };
    static float lg[V], sorted[V];
    uint64_t x = 12345;
    for (int i = 0; i < V; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        lg[i] = (float)((x >> 40) % 1000) / 250.0f; /* 0..4, many ties */
        sorted[i] = lg[i];
    }
    qsort(sorted, V, sizeof(float), cmp_desc);
    double sum = 0;
    for (int i = 0; i < V; i++) {
        sum += exp(sorted[i] - sorted[0]);
    }
    double cum = 0;
    float cut = sorted[0];
    for (int i = 0; i < V; i++) {
        cum += exp(sorted[i] - sorted[0]) / sum;
        if (cum >= 0.5) {
            cut = sorted[i];
            break;
        }
    }
    ns_sampler_params p = plain(1.0f);
    p.top_p = 0.5f;
    ns_sampler *s = make(V, &p);
    int below = 0, at_or_above = 0;
    for (int i = 0; i < 3000; i++) {
        int32_t t = ns_sampler_sample(s, lg);
        if (lg[t] < cut) {
            below++;
        } else {
            at_or_above++;
        }
    }
    ASSERT_EQ(below, 0);
    ASSERT_EQ(at_or_above, 3000);
    ns_sampler_destroy(&s);
}

static void test_seed(void) {
    float lg[NV];
    for (int i = 0; i < NV; i++) {
        lg[i] = (float)i * 0.1f;
    }
    ns_sampler_params p = plain(1.0f);
    p.seed = 42;
    ns_sampler *a = make(NV, &p), *b = make(NV, &p);
    p.seed = 43;
    ns_sampler *c = make(NV, &p);
    /* b shares a workspace with nobody; check a shared one too */
    ns_sampler_ws *ws = NULL;
    ASSERT_OK(ns_sampler_ws_create(NV, &ws, NULL));
    p.seed = 42;
    ns_sampler *d = NULL, *e = NULL;
    ASSERT_OK(ns_sampler_create(NULL, NV, &p, ws, &d, NULL));
    ASSERT_OK(ns_sampler_create(NULL, NV, &p, ws, &e, NULL));
    int32_t seq_a[200];
    int diff = 0;
    for (int i = 0; i < 200; i++) {
        seq_a[i] = ns_sampler_sample(a, lg);
        ASSERT_EQ(ns_sampler_sample(b, lg), seq_a[i]);
        ASSERT_EQ(ns_sampler_sample(d, lg), seq_a[i]);
        ASSERT_EQ(ns_sampler_sample(e, lg), seq_a[i]);
        diff += ns_sampler_sample(c, lg) != seq_a[i];
    }
    ASSERT_TRUE(diff > 50);
    /* reset replays the same sequence */
    ns_sampler_reset(a);
    for (int i = 0; i < 200; i++) {
        ASSERT_EQ(ns_sampler_sample(a, lg), seq_a[i]);
    }
    ns_sampler_destroy(&a);
    ns_sampler_destroy(&b);
    ns_sampler_destroy(&c);
    ns_sampler_destroy(&d);
    ns_sampler_destroy(&e);
    ns_sampler_ws_destroy(&ws);
    ns_sampler_ws_destroy(&ws);
}

static void test_params(void) {
    ns_sampler *s = NULL;
    ns_err err = {0};
    ns_sampler_params p = plain(1.0f);
    p.top_p = 0.0f;
    ASSERT_EQ(ns_sampler_create(NULL, NV, &p, NULL, &s, &err), NS_ERR_INVALID_ARG);
    ASSERT_TRUE(s == NULL && strstr(err.msg, "top_p") != NULL);
    p = plain(NAN);
    ASSERT_EQ(ns_sampler_create(NULL, NV, &p, NULL, &s, &err), NS_ERR_INVALID_ARG);
    p = plain(1.0f);
    p.repeat_penalty = 0.0f;
    ASSERT_EQ(ns_sampler_create(NULL, NV, &p, NULL, &s, &err), NS_ERR_INVALID_ARG);
    p = plain(1.0f);
    p.penalty_last_n = -1;
    ASSERT_EQ(ns_sampler_create(NULL, NV, &p, NULL, &s, &err), NS_ERR_INVALID_ARG);
    p = plain(1.0f);
    const char *stops[] = {"x"};
    p.stop = stops;
    p.n_stop = 1;
    ASSERT_EQ(ns_sampler_create(NULL, NV, &p, NULL, &s, &err), NS_ERR_INVALID_ARG); /* no tokenizer */
    p = plain(1.0f);
    ASSERT_EQ(ns_sampler_create(NULL, 0, &p, NULL, &s, &err), NS_ERR_INVALID_ARG);
    ns_sampler_ws *ws = NULL;
    ASSERT_OK(ns_sampler_ws_create(8, &ws, NULL));
    ASSERT_EQ(ns_sampler_create(NULL, NV, &p, ws, &s, &err), NS_ERR_INVALID_ARG); /* workspace too small */
    ns_sampler_ws_destroy(&ws);
    /* max_tokens without a tokenizer; then NS_ERR_STATE */
    p.max_tokens = 2;
    s = make(NV, &p);
    ns_sample_result r;
    ASSERT_OK(ns_sampler_accept(s, 1, &r));
    ASSERT_EQ(r.finish, NS_FINISH_NONE);
    ASSERT_EQ(ns_sampler_accept(s, NV, &r), NS_ERR_RANGE);
    ASSERT_OK(ns_sampler_accept(s, 2, &r));
    ASSERT_EQ(r.finish, NS_FINISH_LENGTH);
    ASSERT_EQ(ns_sampler_finish(s), NS_FINISH_LENGTH);
    ASSERT_EQ(ns_sampler_n_generated(s), 2);
    ASSERT_EQ(ns_sampler_accept(s, 3, &r), NS_ERR_STATE);
    float lg[NV] = {0};
    ASSERT_EQ(ns_sampler_step(s, lg, &r), NS_ERR_STATE);
    ns_sampler_destroy(&s);
}

/* ---- text: stop strings, EOG, max_tokens with a real tokenizer ---- */

static ns_tokenizer *load_tok(const char *rel) {
    char path[1024];
    ns_test_reference(rel, path, sizeof(path));
    ns_gguf *g = NULL;
    ns_tokenizer *t = NULL;
    ASSERT_OK(ns_gguf_open(path, &g, NULL));
    ASSERT_OK(ns_tokenizer_load(g, &t, NULL));
    ns_gguf_close(&g);
    return t;
}

typedef struct run_out {
    char text[1024];
    size_t len;
    ns_finish finish;
    int32_t stop_index;
    int32_t n_accepted;
} run_out;

/* Force-feed the tokens of `text` through a sampler; collect released text. */
static run_out feed(const ns_tokenizer *t, const char *text, const int32_t *extra, size_t n_extra,
                    const char *const *stops, size_t n_stop, int32_t max_tokens, int32_t *released_after) {
    int32_t ids[256];
    size_t n = 0;
    ASSERT_OK(ns_tokenizer_encode(t, text, strlen(text), false, false, ids, 200, &n, NULL));
    for (size_t i = 0; i < n_extra; i++) {
        ids[n++] = extra[i];
    }
    ns_sampler_params p = greedy();
    p.stop = stops;
    p.n_stop = n_stop;
    p.max_tokens = max_tokens;
    ns_sampler *s = NULL;
    ns_err err = {0};
    if (ns_sampler_create(t, ns_tokenizer_n_vocab(t), &p, NULL, &s, &err) != NS_OK) {
        NS_FAIL("create: %s", ns_err_msg(&err));
    }
    run_out o = {.finish = NS_FINISH_NONE, .stop_index = -1};
    for (size_t i = 0; i < n; i++) {
        ns_sample_result r;
        ASSERT_OK(ns_sampler_accept(s, ids[i], &r));
        ASSERT_EQ(r.token, ids[i]);
        memcpy(o.text + o.len, r.text, r.text_len);
        o.len += r.text_len;
        if (released_after) {
            released_after[i] = (int32_t)o.len;
        }
        o.n_accepted++;
        if (r.finish != NS_FINISH_NONE) {
            o.finish = r.finish;
            o.stop_index = r.stop_index;
            break;
        }
    }
    o.text[o.len] = '\0';
    ns_sampler_destroy(&s);
    return o;
}

static void test_stop_strings(void) {
    ns_tokenizer *t = load_tok("vocab/ggml-vocab-qwen2.gguf");
    /* "Hello| world|.| The| end|." : "ld. Th" spans three tokens */
    const char *stops1[] = {"never", "ld. Th"};
    int32_t rel[16];
    run_out o = feed(t, "Hello world. The end.", NULL, 0, stops1, 2, 0, rel);
    ASSERT_EQ(o.finish, NS_FINISH_STOP);
    ASSERT_EQ(o.stop_index, 1);
    ASSERT_STREQ(o.text, "Hello wor");
    ASSERT_EQ(o.n_accepted, 4);
    ASSERT_EQ(rel[0], 5); /* "Hello" released at once */
    ASSERT_EQ(rel[1], 9); /* " world": " wor" out, "ld" held */
    ASSERT_EQ(rel[2], 9); /* ".": "ld." still a prefix */

    /* a two-token stop */
    const char *stops2[] = {"world."};
    o = feed(t, "Hello world. The end.", NULL, 0, stops2, 1, 0, NULL);
    ASSERT_EQ(o.finish, NS_FINISH_STOP);
    ASSERT_STREQ(o.text, "Hello ");
    ASSERT_EQ(o.n_accepted, 3);

    /* a false start is released once it cannot match */
    const char *stops3[] = {"world!"};
    o = feed(t, "Hello world. The end.", NULL, 0, stops3, 1, 0, NULL);
    ASSERT_EQ(o.finish, NS_FINISH_NONE);
    ASSERT_STREQ(o.text, "Hello world. The end.");

    /* earliest stop wins whatever its index */
    const char *stops4[] = {"end", "The"};
    o = feed(t, "Hello world. The end.", NULL, 0, stops4, 2, 0, NULL);
    ASSERT_EQ(o.stop_index, 1);
    ASSERT_STREQ(o.text, "Hello world. ");

    /* EOG: held text comes out, the EOG token adds none */
    const char *stops5[] = {"end!"};
    int32_t eog[] = {151645};
    o = feed(t, "Hello world. The end", eog, 1, stops5, 1, 0, NULL);
    ASSERT_EQ(o.finish, NS_FINISH_EOG);
    ASSERT_STREQ(o.text, "Hello world. The end");

    /* max_tokens: finishes with everything released */
    o = feed(t, "Hello world. The end", NULL, 0, stops5, 1, 3, NULL);
    ASSERT_EQ(o.finish, NS_FINISH_LENGTH);
    ASSERT_EQ(o.n_accepted, 3);
    ASSERT_STREQ(o.text, "Hello world.");

    /* ignore_eos: the EOG token is ordinary (control text not rendered) */
    ns_sampler_params p = greedy();
    p.ignore_eos = true;
    ns_sampler *s = NULL;
    ASSERT_OK(ns_sampler_create(t, ns_tokenizer_n_vocab(t), &p, NULL, &s, NULL));
    ns_sample_result r;
    ASSERT_OK(ns_sampler_accept(s, 151645, &r));
    ASSERT_EQ(r.finish, NS_FINISH_NONE);
    ASSERT_EQ(r.text_len, 0);
    ns_sampler_destroy(&s);
    ns_tokenizer_free(&t);

    /* SPM byte tokens: a stop string that is one character spread over four tokens */
    t = load_tok("vocab/ggml-vocab-llama-spm.gguf");
    const char *stops6[] = {"\xf0\x9f\xa6\x99"};
    o = feed(t, "a \xf0\x9f\xa6\x99 b", NULL, 0, stops6, 1, 0, rel);
    ASSERT_EQ(o.finish, NS_FINISH_STOP);
    ASSERT_STREQ(o.text, " a ");
    ns_tokenizer_free(&t);
}

static void test_no_alloc(void) {
    if (!HAVE_ALLOC_COUNT) {
        fprintf(stderr, "note: allocation counting needs glibc; skipped\n");
        return;
    }
    char path[1024];
    snprintf(path, sizeof(path), "%s/vocab/ggml-vocab-qwen2.gguf", NS_REFERENCE_DIR);
    ns_tokenizer *t = NULL;
    if (access(path, R_OK) == 0) {
        t = load_tok("vocab/ggml-vocab-qwen2.gguf");
    }
    int32_t nv = t ? ns_tokenizer_n_vocab(t) : 50000;
    float *lg = malloc((size_t)nv * sizeof(float));
    for (int32_t i = 0; i < nv; i++) {
        lg[i] = (float)((i * 7919) % 1000) / 100.0f;
    }
    const char *stops[] = {"zzzz", "\n\n"};
    ns_sampler_params p;
    ns_sampler_params_default(&p);
    p.repeat_penalty = 1.1f;
    p.frequency_penalty = 0.1f;
    p.top_k = 0; /* exercise the large partial-sort path too */
    p.stop = t ? stops : NULL;
    p.n_stop = t ? 2 : 0;
    p.max_tokens = 1000;
    ns_sampler *s = NULL;
    ASSERT_OK(ns_sampler_create(t, nv, &p, NULL, &s, NULL));
    long before = g_allocs;
    ns_sample_result r;
    int steps = 0;
    for (; steps < 200; steps++) {
        ASSERT_OK(ns_sampler_step(s, lg, &r));
        if (r.finish != NS_FINISH_NONE) {
            break;
        }
    }
    ASSERT_EQ(g_allocs - before, 0);
    ASSERT_TRUE(steps > 0);
    ns_sampler_destroy(&s);
    free(lg);
    ns_tokenizer_free(&t);
}

int main(void) {
    test_greedy_and_penalties();
    test_truncation();
    test_top_p_large();
    test_seed();
    test_params();
    test_no_alloc();
    test_stop_strings();
    return 0;
}
