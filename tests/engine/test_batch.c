/*
 * test_batch.c - paged KV bookkeeping, and continuous batching through the
 * scheduler: a prompt run in a batch with 15 others gives the same greedy
 * output as alone (stories260K), with chunked prefill mixed with decode.
 */
#include "engine_test_util.h"
#include "scheduler.h"

static void test_kv_cache(void) {
    ns_kv_params p = {.n_pages = 8, .page_size = 4, .max_seqs = 3, .max_seq_len = 16};
    ns_kv_cache *kv = NULL;
    ASSERT_OK(ns_kv_cache_create(&p, &kv, NULL));
    ASSERT_EQ(ns_kv_n_free_pages(kv), 8);
    int32_t a, b, c, d;
    ASSERT_OK(ns_kv_seq_add(kv, &a));
    ASSERT_OK(ns_kv_seq_add(kv, &b));
    ASSERT_OK(ns_kv_seq_add(kv, &c));
    ASSERT_EQ(ns_kv_seq_add(kv, &d), NS_ERR_CAPACITY);
    ASSERT_OK(ns_kv_seq_reserve(kv, a, 9)); /* 3 pages */
    ASSERT_EQ(ns_kv_n_free_pages(kv), 5);
    ASSERT_EQ(ns_kv_seq_reserve(kv, b, 17), NS_ERR_CAPACITY); /* past max_seq_len */
    ASSERT_OK(ns_kv_seq_reserve(kv, b, 16));                  /* 4 pages */
    ASSERT_EQ(ns_kv_seq_reserve(kv, c, 8), NS_ERR_CAPACITY);  /* needs 2, 1 free: nothing taken */
    ASSERT_EQ(ns_kv_n_free_pages(kv), 1);
    int32_t n;
    const int32_t *pa = ns_kv_seq_pages(kv, a, &n);
    ASSERT_EQ(n, 3);
    const int32_t *pb = ns_kv_seq_pages(kv, b, &n);
    ASSERT_EQ(n, 4);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 4; j++) {
            ASSERT_NE(pa[i], pb[j]);
        }
    }
    ns_kv_seq_remove(kv, b);
    ASSERT_EQ(ns_kv_n_free_pages(kv), 5);
    ASSERT_OK(ns_kv_seq_reserve(kv, c, 8));

    /* prepare: two sequences interleaved; pages grow on demand for c. */
    ns_arena ar;
    ASSERT_OK(ns_arena_init(&ar, ns_ubatch_bytes(8, 4)));
    ns_ubatch ub;
    ASSERT_OK(ns_ubatch_init(&ub, &ar, 8, 4));
    ns_ubatch_add(&ub, 1, 0, c, false);
    ns_ubatch_add(&ub, 2, 0, a, false);
    ns_ubatch_add(&ub, 3, 1, c, true);
    ns_ubatch_add(&ub, 4, 1, a, true);
    ASSERT_OK(ns_kv_cache_prepare(kv, &ub, NULL));
    ASSERT_EQ(ub.n_seq, 2);
    ASSERT_EQ(ub.slot[0], 0);
    ASSERT_EQ(ub.slot[1], 1);
    ASSERT_EQ(ub.slot[2], 0);
    ASSERT_EQ(ub.n_logits, 2);
    ASSERT_EQ(ub.logit_rows[0], 2);
    ASSERT_EQ(ub.logit_rows[1], 3);
    ASSERT_EQ(ns_kv_seq_len(kv, c), 2);
    ASSERT_EQ(ub.pages[0], ns_kv_seq_pages(kv, c, &n)[0]);
    /* Unknown sequence and bad position are rejected. */
    ns_ubatch_clear(&ub);
    ns_ubatch_add(&ub, 1, 0, 7, false);
    ASSERT_EQ(ns_kv_cache_prepare(kv, &ub, NULL), NS_ERR_INVALID_ARG);
    ns_ubatch_clear(&ub);
    ns_ubatch_add(&ub, 1, 16, a, false);
    ASSERT_EQ(ns_kv_cache_prepare(kv, &ub, NULL), NS_ERR_INVALID_ARG);
    ns_arena_free(&ar);
    ns_kv_cache_free(&kv);
    ns_kv_cache_free(&kv); /* NULL-safe */
    printf("kv cache: ok\n");
}

#define N_PROMPTS 16
#define N_GEN 24

typedef struct gen_out {
    int32_t tokens[N_GEN];
    int32_t n;
    ns_sched_finish reason;
    int finished;
} gen_out;

static bool on_token(void *user, uint64_t id, int32_t token, const char *text, size_t len) {
    (void)id;
    (void)text;
    (void)len;
    gen_out *g = user;
    if (g->n < N_GEN) {
        g->tokens[g->n] = token;
    }
    g->n++;
    return false;
}

static void on_finish(void *user, uint64_t id, ns_sched_finish reason, ns_status st, const ns_sched_result *r) {
    (void)id;
    (void)r;
    gen_out *g = user;
    ASSERT_OK(st);
    g->reason = reason;
    g->finished++;
}

/* Run prompts[first..first+count) through one scheduler; budget = pass size. */
static void run_sched(const char *path, int32_t prompts[][64], const int *lens, int first, int count, int budget,
                      int max_seqs, gen_out *outs) {
    et_engine e;
    et_engine_open(&e, path, budget, max_seqs, 128, 2, true);
    ns_backend_params bp = {.max_tokens = budget,
                            .kv = {.n_pages = max_seqs * 8, .page_size = 16, .max_seqs = max_seqs, .max_seq_len = 128}};
    ns_sched *s = NULL;
    ns_err err = {0};
    ASSERT_OK(ns_sched_create(e.model, &e.be, &bp, e.kv, NULL, NULL, &s, &err));
    for (int i = first; i < first + count; i++) {
        ns_sched_request rq = {
            .prompt = prompts[i], .n_prompt = lens[i], .user = &outs[i], .on_token = on_token, .on_finish = on_finish};
        ns_sampler_params_default(&rq.sampling);
        rq.sampling.temperature = 0; /* greedy */
        rq.sampling.max_tokens = N_GEN;
        uint64_t id;
        ASSERT_OK(ns_sched_submit(s, &rq, &id, &err));
    }
    int steps = 0;
    while (!ns_sched_idle(s)) {
        int32_t nt;
        ASSERT_OK(ns_sched_step(s, &nt, &err));
        ASSERT_TRUE(nt > 0 && nt <= budget);
        steps++;
        ASSERT_TRUE(steps < 10000);
    }
    ASSERT_EQ(ns_kv_n_free_pages(e.kv), max_seqs * 8);
    ns_sched_free(&s);
    et_engine_close(&e);
}

static void test_batch_invariance(void) {
    char path[1024], jpath[1024];
    ns_test_reference("models/stories260K.gguf", path, sizeof(path));
    ns_test_reference("models/stories260K.p2.json", jpath, sizeof(jpath));
    char *json = et_read_file(jpath, NULL);
    int32_t base[64];
    int nb = et_json_ints(json, "prompt_tokens", base, 64);
    ASSERT_TRUE(nb >= 20);
    int32_t prompts[N_PROMPTS][64];
    int lens[N_PROMPTS];
    for (int i = 0; i < N_PROMPTS; i++) {
        lens[i] = 3 + i;
        memcpy(prompts[i], base, sizeof(int32_t) * (size_t)lens[i]);
        if (i % 3 == 1) {
            prompts[i][2] = 300 + i; /* vary the content too */
        }
    }
    gen_out alone[N_PROMPTS], batched[N_PROMPTS];
    memset(alone, 0, sizeof(alone));
    memset(batched, 0, sizeof(batched));
    for (int i = 0; i < N_PROMPTS; i++) {
        run_sched(path, prompts, lens, i, 1, 64, 1, alone);
    }
    /* 16 sequences but room for 6 at a time and 20 tokens per pass: admission
     * waits for pages, prefill is chunked and mixed with decode. */
    run_sched(path, prompts, lens, 0, N_PROMPTS, 20, 6, batched);
    for (int i = 0; i < N_PROMPTS; i++) {
        ASSERT_EQ(alone[i].finished, 1);
        ASSERT_EQ(batched[i].finished, 1);
        ASSERT_EQ(alone[i].reason, NS_SCHED_FINISH_LENGTH);
        ASSERT_EQ(alone[i].n, N_GEN);
        ASSERT_EQ(batched[i].n, N_GEN);
        for (int k = 0; k < N_GEN; k++) {
            if (alone[i].tokens[k] != batched[i].tokens[k]) {
                NS_FAIL("prompt %d token %d: alone %d, batched %d", i, k, alone[i].tokens[k], batched[i].tokens[k]);
            }
        }
    }
    free(json);
    printf("batch invariance: %d prompts x %d tokens identical\n", N_PROMPTS, N_GEN);
}

int main(void) {
    test_kv_cache();
    test_batch_invariance();
    return 0;
}
