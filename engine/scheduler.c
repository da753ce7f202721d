/*
 * scheduler.c - continuous batching (see scheduler.h).
 *
 * Running sequences live in a table indexed by their KV sequence id; `order`
 * lists them in admission order, which is also the prefill order. Waiting
 * requests sit in a FIFO array. Every buffer is allocated at creation; the
 * only allocations after that are the prompt copy and sampler made by
 * submit.
 */
#include "scheduler.h"

#include <stdlib.h>
#include <string.h>

#include "ns_util.h"

typedef struct sched_entry {
    uint64_t id;
    ns_sched_request req; /* callbacks and user; req.prompt points at `prompt` */
    int32_t *prompt;      /* owned copy */
    ns_sampler *sampler;  /* owned */
    int32_t n_prompt;
    int32_t max_tokens;  /* after clamping to the context */
    int32_t n_prefilled; /* prompt tokens stored in the cache */
    int32_t n_gen;       /* tokens sampled */
    int32_t last_token;  /* sampled, not yet fed */
    int32_t kv_seq;      /* -1 while queued */
    int32_t logit_row;   /* this step's logits row, or -1 */
    bool used;
    ns_sched_result res;
} sched_entry;

struct ns_sched {
    const ns_model *model;
    ns_backend *be;
    ns_kv_cache *kv;
    const ns_tokenizer *tok;
    int32_t n_vocab;
    int32_t budget; /* tokens per pass */
    int32_t max_seqs;
    int32_t max_seq_len;

    sched_entry *run; /* [max_seqs] by kv seq id */
    int32_t *order;   /* [max_seqs] kv seq ids in admission order */
    int32_t n_running;

    sched_entry *queue; /* [max_queue] FIFO */
    int32_t n_queued;
    int32_t max_queue;

    uint64_t next_id;
    ns_sampler_ws *ws; /* sampling scratch shared by every sampler (one thread) */
    ns_arena arena;    /* ubatch storage */
    ns_ubatch ub;
    float *logits; /* [max_seqs][n_vocab] */
};

static const char *g_finish_names[] = {
#define NS__FINISH_STR(name, str) str,
    NS_SCHED_FINISH_MAP(NS__FINISH_STR)
#undef NS__FINISH_STR
};

const char *ns_sched_finish_str(ns_sched_finish r) {
    if ((int)r < 0 || (size_t)r >= sizeof(g_finish_names) / sizeof(g_finish_names[0])) {
        return "?";
    }
    return g_finish_names[r];
}

ns_status ns_sched_create(const ns_model *m, ns_backend *b, const ns_backend_params *bp, ns_kv_cache *kv,
                          const ns_tokenizer *tok, const ns_sched_params *p, ns_sched **out, ns_err *err) {
    *out = NULL;
    const ns_kv_params *kp = ns_kv_cache_params(kv);
    if (kp->max_seqs > bp->max_tokens) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sched: %d sequences cannot each decode in a %d-token pass",
                           kp->max_seqs, bp->max_tokens);
    }
    ns_sched *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "sched: out of memory");
    }
    s->model = m;
    s->be = b;
    s->kv = kv;
    s->tok = tok;
    s->n_vocab = ns_model_hparams(m)->n_vocab;
    s->budget = bp->max_tokens;
    s->max_seqs = kp->max_seqs;
    s->max_seq_len = kp->max_seq_len;
    s->max_queue = p != NULL && p->max_queue > 0 ? p->max_queue : 4 * kp->max_seqs;
    s->next_id = 1;
    int32_t max_pages = ns_kv_pages_for(kv, kp->max_seq_len);
    s->run = calloc((size_t)s->max_seqs, sizeof(sched_entry));
    s->order = calloc((size_t)s->max_seqs, sizeof(int32_t));
    s->queue = calloc((size_t)s->max_queue, sizeof(sched_entry));
    s->logits = malloc((size_t)s->max_seqs * (size_t)s->n_vocab * sizeof(float));
    if (s->run == NULL || s->order == NULL || s->queue == NULL || s->logits == NULL ||
        ns_sampler_ws_create(s->n_vocab, &s->ws, err) != NS_OK ||
        ns_arena_init(&s->arena, ns_ubatch_bytes(s->budget, max_pages)) != NS_OK ||
        ns_ubatch_init(&s->ub, &s->arena, s->budget, max_pages) != NS_OK) {
        ns_sched_free(&s);
        return ns__err_set(err, NS_ERR_NOMEM, "sched: out of memory");
    }
    *out = s;
    return NS_OK;
}

static void finish_entry(ns_sched *s, sched_entry *e, ns_sched_finish reason, ns_status st) {
    e->res.t_done = ns_time_s();
    e->res.n_generated = e->n_gen;
    if (e->kv_seq >= 0) {
        ns_kv_seq_remove(s->kv, e->kv_seq);
        for (int32_t i = 0; i < s->n_running; i++) {
            if (s->order[i] == e->kv_seq) {
                memmove(&s->order[i], &s->order[i + 1], (size_t)(s->n_running - i - 1) * sizeof(int32_t));
                break;
            }
        }
        s->n_running--;
    }
    sched_entry done = *e;
    memset(e, 0, sizeof(*e));
    e->kv_seq = -1;
    if (done.req.on_finish != NULL) {
        done.req.on_finish(done.req.user, done.id, reason, st, &done.res);
    }
    free(done.prompt);
    ns_sampler_destroy(&done.sampler);
}

static void drop_queued(ns_sched *s, int32_t qi, ns_sched_finish reason) {
    sched_entry e = s->queue[qi];
    memmove(&s->queue[qi], &s->queue[qi + 1], (size_t)(s->n_queued - qi - 1) * sizeof(sched_entry));
    s->n_queued--;
    e.kv_seq = -1;
    finish_entry(s, &e, reason, NS_OK);
}

void ns_sched_free(ns_sched **ps) {
    if (ps == NULL || *ps == NULL) {
        return;
    }
    ns_sched *s = *ps;
    if (s->run != NULL && s->order != NULL) {
        while (s->n_running > 0) {
            finish_entry(s, &s->run[s->order[0]], NS_SCHED_FINISH_CANCELLED, NS_OK);
        }
    }
    while (s->queue != NULL && s->n_queued > 0) {
        drop_queued(s, 0, NS_SCHED_FINISH_CANCELLED);
    }
    ns_sampler_ws_destroy(&s->ws);
    free(s->run);
    free(s->order);
    free(s->queue);
    free(s->logits);
    ns_arena_free(&s->arena);
    free(s);
    *ps = NULL;
}

bool ns_sched_can_admit(const ns_sched *s, int32_t n_prompt, int32_t max_tokens, bool *ever) {
    int32_t mt = max_tokens;
    if (n_prompt + mt - 1 > s->max_seq_len) {
        mt = s->max_seq_len - n_prompt + 1;
    }
    int32_t need = ns_kv_pages_for(s->kv, n_prompt + mt - 1);
    bool fits = n_prompt >= 1 && n_prompt < s->max_seq_len && need <= ns_kv_cache_params(s->kv)->n_pages;
    if (ever != NULL) {
        *ever = fits;
    }
    return fits && s->n_running < s->max_seqs && need <= ns_kv_n_free_pages(s->kv);
}

ns_status ns_sched_submit(ns_sched *s, const ns_sched_request *req, uint64_t *id, ns_err *err) {
    if (req->n_prompt < 1 || req->prompt == NULL) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "sched: empty prompt");
    }
    for (int32_t i = 0; i < req->n_prompt; i++) {
        if (req->prompt[i] < 0 || req->prompt[i] >= s->n_vocab) {
            return ns__err_set(err, NS_ERR_INVALID_ARG, "sched: prompt token %d id %d outside vocab of %d", i,
                               req->prompt[i], s->n_vocab);
        }
    }
    bool ever;
    ns_sched_can_admit(s, req->n_prompt, 1, &ever);
    if (!ever) {
        return ns__err_set(err, NS_ERR_CAPACITY, "sched: a %d-token prompt does not fit the context (%d) or KV cache",
                           req->n_prompt, s->max_seq_len);
    }
    if (s->n_queued >= s->max_queue) {
        return ns__err_set(err, NS_ERR_CAPACITY, "sched: queue full (%d)", s->max_queue);
    }
    ns_sampler *sampler = NULL;
    NS_TRY(ns_sampler_create(s->tok, s->n_vocab, &req->sampling, s->ws, &sampler, err));
    int32_t *copy = malloc((size_t)req->n_prompt * sizeof(int32_t));
    if (copy == NULL) {
        ns_sampler_destroy(&sampler);
        return ns__err_set(err, NS_ERR_NOMEM, "sched: out of memory");
    }
    memcpy(copy, req->prompt, (size_t)req->n_prompt * sizeof(int32_t));
    ns_sampler_accept_prompt(sampler, copy, (size_t)req->n_prompt);
    sched_entry *e = &s->queue[s->n_queued++];
    memset(e, 0, sizeof(*e));
    e->id = s->next_id++;
    e->req = *req;
    e->req.prompt = copy;
    e->prompt = copy;
    e->sampler = sampler;
    e->n_prompt = req->n_prompt;
    e->max_tokens = req->sampling.max_tokens;
    if (e->max_tokens <= 0 || e->n_prompt + e->max_tokens - 1 > s->max_seq_len) {
        e->max_tokens = s->max_seq_len - e->n_prompt + 1;
    }
    e->kv_seq = -1;
    e->logit_row = -1;
    e->used = true;
    e->res.n_prompt = req->n_prompt;
    e->res.t_submit = ns_time_s();
    *id = e->id;
    return NS_OK;
}

/* Admit queued requests in FIFO order while the head fits. */
static void admit(ns_sched *s) {
    while (s->n_queued > 0 && s->n_running < s->max_seqs) {
        sched_entry *q = &s->queue[0];
        int32_t need = q->n_prompt + q->max_tokens - 1;
        if (ns_kv_pages_for(s->kv, need) > ns_kv_n_free_pages(s->kv)) {
            break;
        }
        int32_t seq;
        if (ns_kv_seq_add(s->kv, &seq) != NS_OK) {
            break;
        }
        if (ns_kv_seq_reserve(s->kv, seq, need) != NS_OK) {
            ns_kv_seq_remove(s->kv, seq);
            break;
        }
        sched_entry *e = &s->run[seq];
        *e = *q;
        e->kv_seq = seq;
        e->res.t_admit = ns_time_s();
        memmove(&s->queue[0], &s->queue[1], (size_t)(s->n_queued - 1) * sizeof(sched_entry));
        s->n_queued--;
        s->order[s->n_running++] = seq;
    }
}

ns_status ns_sched_step(ns_sched *s, int32_t *n_tokens, ns_err *err) {
    if (n_tokens != NULL) {
        *n_tokens = 0;
    }
    admit(s);
    if (s->n_running == 0) {
        return NS_OK;
    }
    ns_ubatch *ub = &s->ub;
    ns_ubatch_clear(ub);
    /* Decode tokens first: one per sequence past its prefill. */
    for (int32_t i = 0; i < s->n_running; i++) {
        sched_entry *e = &s->run[s->order[i]];
        e->logit_row = -1;
        if (e->n_prefilled == e->n_prompt) {
            e->logit_row = ub->n_tokens; /* token index for now; mapped to a row below */
            ns_ubatch_add(ub, e->last_token, e->n_prompt + e->n_gen - 1, e->kv_seq, true);
        }
    }
    /* Then prefill chunks, oldest first, up to the budget. */
    for (int32_t i = 0; i < s->n_running && ub->n_tokens < ub->cap; i++) {
        sched_entry *e = &s->run[s->order[i]];
        if (e->n_prefilled == e->n_prompt) {
            continue;
        }
        int32_t room = ub->cap - ub->n_tokens;
        int32_t chunk = e->n_prompt - e->n_prefilled < room ? e->n_prompt - e->n_prefilled : room;
        for (int32_t k = 0; k < chunk; k++) {
            int32_t pos = e->n_prefilled + k;
            bool last = pos == e->n_prompt - 1;
            if (last) {
                e->logit_row = ub->n_tokens;
            }
            ns_ubatch_add(ub, e->prompt[pos], pos, e->kv_seq, last);
        }
        e->n_prefilled += chunk;
    }
    if (n_tokens != NULL) {
        *n_tokens = ub->n_tokens;
    }
    ns_status st = ns_kv_cache_prepare(s->kv, ub, err);
    if (st == NS_OK) {
        st = ns_forward(s->model, s->be, ub, s->logits, err);
    }
    if (st != NS_OK) {
        while (s->n_running > 0) {
            finish_entry(s, &s->run[s->order[0]], NS_SCHED_FINISH_ERROR, st);
        }
        return st;
    }
    /* Logits row j belongs to token ub->logit_rows[j]; entries remember the
     * token index of their row. Callbacks may finish (or cancel) sequences
     * while we go, so each row re-checks its entry. */
    double now = ns_time_s();
    for (int32_t j = 0; j < ub->n_logits; j++) {
        int32_t ti = ub->logit_rows[j];
        int32_t seq = ub->seq_id[ti];
        sched_entry *e = &s->run[seq];
        if (!e->used || e->logit_row != ti) {
            continue; /* finished by a callback during this step */
        }
        e->logit_row = -1;
        const float *lg = s->logits + (size_t)j * s->n_vocab;
        ns_sample_result res;
        ns_status sst = ns_sampler_step(e->sampler, lg, &res);
        if (sst != NS_OK) {
            finish_entry(s, e, NS_SCHED_FINISH_ERROR, sst);
            continue;
        }
        if (e->n_gen == 0) {
            e->res.t_first_token = now;
        }
        e->n_gen++;
        uint64_t id = e->id;
        bool stop = e->req.on_token != NULL && e->req.on_token(e->req.user, id, res.token, res.text, res.text_len);
        if (!e->used || e->id != id) {
            continue; /* cancelled from on_token */
        }
        if (res.finish == NS_FINISH_EOG) {
            finish_entry(s, e, NS_SCHED_FINISH_EOG, NS_OK);
        } else if (res.finish == NS_FINISH_STOP || stop) {
            finish_entry(s, e, NS_SCHED_FINISH_STOP, NS_OK);
        } else if (res.finish == NS_FINISH_LENGTH || e->n_gen >= e->max_tokens) {
            finish_entry(s, e, NS_SCHED_FINISH_LENGTH, NS_OK);
        } else {
            e->last_token = res.token;
        }
    }
    return NS_OK;
}

ns_status ns_sched_cancel(ns_sched *s, uint64_t id) {
    for (int32_t i = 0; i < s->n_running; i++) {
        sched_entry *e = &s->run[s->order[i]];
        if (e->id == id) {
            finish_entry(s, e, NS_SCHED_FINISH_CANCELLED, NS_OK);
            return NS_OK;
        }
    }
    for (int32_t i = 0; i < s->n_queued; i++) {
        if (s->queue[i].id == id) {
            drop_queued(s, i, NS_SCHED_FINISH_CANCELLED);
            return NS_OK;
        }
    }
    return NS_ERR_NOT_FOUND;
}

bool ns_sched_idle(const ns_sched *s) {
    return s->n_running == 0 && s->n_queued == 0;
}
int32_t ns_sched_n_running(const ns_sched *s) {
    return s->n_running;
}
int32_t ns_sched_n_queued(const ns_sched *s) {
    return s->n_queued;
}
