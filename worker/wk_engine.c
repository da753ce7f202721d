/*
 * wk_engine.c - the worker's engine thread (see wk_engine.h).
 *
 * Locking: one mutex guards the inbox (new jobs), the cancel list, the
 * release flag and the finished list. The scheduler, the running list and
 * every job inside are touched only by the engine thread, outside the lock.
 */
#include "wk_engine.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "ns_log.h"
#include "ns_util.h"
#include "scheduler.h"

struct wk_engine {
    ns_engine *eng; /* model, tokenizer, backend, KV cache, scheduler */
    ns_sched *sched;
    const ns_tokenizer *tok;
    int32_t slots;
    int32_t ctx;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu */
    wk_job *inbox; /* submitted, not yet seen by the engine thread (FIFO via inbox_tail) */
    wk_job *inbox_tail;
    int64_t *cancels;   /* [cancel_cap] job ids to cancel */
    int32_t *cancel_at; /* [cancel_cap] their attempts (-1: any) */
    int32_t n_cancels;
    int32_t cancel_cap;
    bool release_all;
    bool quit;
    wk_job *finished; /* handed back, in finish order (finished_tail) */
    wk_job *finished_tail;
    int32_t n_inside;
    bool fatal;
    char fatal_msg[NS_ERRMSG_LEN];

    /* engine thread only */
    wk_job *running; /* submitted to the scheduler */
    bool releasing;

    int pipe_rd, pipe_wr;
    _Atomic uint64_t n_tokens;
};

/* ---- helpers ------------------------------------------------------------- */

static void notify(wk_engine *e) {
    char c = 1;
    ssize_t w = write(e->pipe_wr, &c, 1);
    (void)w; /* EAGAIN: a byte is already waiting, which is enough */
}

/* Engine thread: move a job to the finished list. Caller holds no lock. */
static void hand_back(wk_engine *e, wk_job *j) {
    if (j->t_done == 0) {
        j->t_done = ns_time_s();
    }
    pthread_mutex_lock(&e->mu);
    j->next = NULL;
    if (e->finished_tail != NULL) {
        e->finished_tail->next = j;
    } else {
        e->finished = j;
    }
    e->finished_tail = j;
    pthread_mutex_unlock(&e->mu);
    notify(e);
}

static void unlink_running(wk_engine *e, wk_job *j) {
    for (wk_job **pp = &e->running; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            j->next = NULL;
            return;
        }
    }
}

/* ---- scheduler callbacks (engine thread) --------------------------------- */

static bool cb_token(void *user, uint64_t id, int32_t token, const char *text, size_t len) {
    (void)id;
    (void)token;
    wk_job *j = user;
    if (len > 0 && ns_buf_append(&j->text, text, len) != NS_OK) {
        j->finish_reason = "length"; /* the text cap: end the job with what fits */
        return true;
    }
    return false;
}

static void cb_finish(void *user, uint64_t id, ns_sched_finish reason, ns_status status, const ns_sched_result *r) {
    (void)id;
    wk_job *j = user;
    wk_engine *e = j->engine;
    j->n_generated = r->n_generated;
    j->t_admit = r->t_admit;
    j->t_first = r->t_first_token;
    j->t_done = r->t_done;
    switch (reason) {
    case NS_SCHED_FINISH_LENGTH:
        j->outcome = WK_OUT_OK;
        j->finish_reason = "length";
        break;
    case NS_SCHED_FINISH_EOG:
    case NS_SCHED_FINISH_STOP:
        j->outcome = WK_OUT_OK;
        if (j->finish_reason == NULL) {
            j->finish_reason = "stop"; /* OpenAI: end of turn and stop strings are both "stop" */
        }
        break;
    case NS_SCHED_FINISH_CANCELLED:
        j->outcome = (e != NULL && e->releasing && !j->cancel_wanted) ? WK_OUT_RELEASED : WK_OUT_CANCELLED;
        break;
    case NS_SCHED_FINISH_ERROR:
    case NS_SCHED_FINISH_NONE:
    default:
        wk_job_set_error(j, "engine", true, "forward pass failed: %s", ns_status_str(status));
        break;
    }
    if (e != NULL) {
        atomic_fetch_add(&e->n_tokens, (uint64_t)(r->n_generated > 0 ? r->n_generated : 0));
        unlink_running(e, j);
        hand_back(e, j);
    }
}

/* ---- the engine thread --------------------------------------------------- */

static void admit(wk_engine *e, wk_job *j) {
    if (e->releasing) {
        j->outcome = j->cancel_wanted ? WK_OUT_CANCELLED : WK_OUT_RELEASED;
        hand_back(e, j);
        return;
    }
    if (j->cancel_wanted) {
        j->outcome = WK_OUT_CANCELLED;
        hand_back(e, j);
        return;
    }
    ns_sched_request req = {
        .prompt = j->prompt,
        .n_prompt = j->n_prompt,
        .sampling = j->sampling,
        .user = j,
        .on_token = cb_token,
        .on_finish = cb_finish,
    };
    ns_err err = {0};
    ns_status st = ns_sched_submit(e->sched, &req, &j->sched_id, &err);
    if (st != NS_OK) {
        /* Capacity: the prompt can never fit, or the queue is full (cannot
         * happen: credit never exceeds what the queue holds). Fail alone. */
        wk_job_set_error(j, st == NS_ERR_CAPACITY ? "too_long" : "invalid_job", false, "%s", ns_err_msg(&err));
        hand_back(e, j);
        return;
    }
    j->submitted = true;
    j->next = e->running;
    e->running = j;
}

static void *engine_main(void *arg) {
    wk_engine *e = arg;
    int64_t *cancels = calloc((size_t)e->cancel_cap, sizeof(*cancels));
    int32_t *cancel_at = calloc((size_t)e->cancel_cap, sizeof(*cancel_at));
    if (cancels == NULL || cancel_at == NULL) {
        free(cancels);
        free(cancel_at);
        pthread_mutex_lock(&e->mu);
        e->fatal = true;
        snprintf(e->fatal_msg, sizeof(e->fatal_msg), "out of memory");
        pthread_mutex_unlock(&e->mu);
        notify(e);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&e->mu);
        while (!e->quit && e->inbox == NULL && e->n_cancels == 0 && !(e->release_all && !e->releasing) &&
               ns_sched_idle(e->sched)) {
            pthread_cond_wait(&e->cv, &e->mu);
        }
        if (e->quit) {
            pthread_mutex_unlock(&e->mu);
            break;
        }
        wk_job *in = e->inbox;
        e->inbox = e->inbox_tail = NULL;
        int32_t n_cancels = e->n_cancels;
        memcpy(cancels, e->cancels, (size_t)n_cancels * sizeof(*cancels));
        memcpy(cancel_at, e->cancel_at, (size_t)n_cancels * sizeof(*cancel_at));
        e->n_cancels = 0;
        bool start_release = e->release_all && !e->releasing;
        pthread_mutex_unlock(&e->mu);

        /* cancels first, so a cancel for a job still in the inbox wins */
        for (int32_t i = 0; i < n_cancels; i++) {
            for (wk_job *j = in; j != NULL; j = j->next) {
                if (j->job_id == cancels[i] && (cancel_at[i] < 0 || cancel_at[i] == j->attempt)) {
                    j->cancel_wanted = true;
                }
            }
            for (wk_job *j = e->running; j != NULL; j = j->next) {
                if (j->job_id == cancels[i] && (cancel_at[i] < 0 || cancel_at[i] == j->attempt)) {
                    j->cancel_wanted = true;
                    (void)ns_sched_cancel(e->sched, j->sched_id); /* on_finish unlinks it */
                    break;
                }
            }
        }
        if (start_release) {
            e->releasing = true;
            while (e->running != NULL) {
                wk_job *j = e->running;
                if (ns_sched_cancel(e->sched, j->sched_id) != NS_OK) {
                    unlink_running(e, j); /* not known to the scheduler: hand back by hand */
                    j->outcome = WK_OUT_RELEASED;
                    hand_back(e, j);
                }
            }
        }
        while (in != NULL) {
            wk_job *j = in;
            in = in->next;
            j->next = NULL;
            admit(e, j);
        }
        if (!ns_sched_idle(e->sched)) {
            ns_err err = {0};
            int32_t n = 0;
            ns_status st = ns_sched_step(e->sched, &n, &err);
            if (st != NS_OK) {
                NS_LOGE("engine: step failed: %s", ns_err_msg(&err));
                if (st == NS_ERR_DEVICE || st == NS_ERR_NOMEM) {
                    pthread_mutex_lock(&e->mu);
                    e->fatal = true;
                    snprintf(e->fatal_msg, sizeof(e->fatal_msg), "%s", ns_err_msg(&err));
                    pthread_mutex_unlock(&e->mu);
                    notify(e);
                }
            }
        }
    }
    free(cancels);
    free(cancel_at);
    return NULL;
}

/* ---- public API ---------------------------------------------------------- */

ns_status wk_engine_create(const wk_engine_params *p, wk_engine **out, ns_err *err) {
    *out = NULL;
    wk_engine *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return ns__err_set(err, NS_ERR_NOMEM, "out of memory");
    }
    e->pipe_rd = e->pipe_wr = -1;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    ns_engine_params ep;
    ns_status st = NS_OK;
    ns_engine_params_default(&ep);
    ep.model_path = p->model_path;
    if (!ns_backend_kind_parse(p->backend != NULL ? p->backend : "auto", &ep.backend)) {
        st = ns__err_set(err, NS_ERR_INVALID_ARG, "--backend '%s': expected cpu, cuda or auto", p->backend);
        goto fail;
    }
    ep.n_threads = p->n_threads;
    ep.max_tokens = p->ubatch > 0 ? p->ubatch : 512;
    ep.max_seqs = p->slots > 0 ? p->slots : 32;
    if (ep.max_seqs > ep.max_tokens) {
        ep.max_tokens = ep.max_seqs; /* every running sequence decodes one token per pass */
    }
    ep.page_size = NS_KV_DEFAULT_PAGE_SIZE;

    ep.vram_budget = p->vram_budget;
    ep.resident_layers = p->resident_layers;
    ep.workload = p->workload;
    if (p->vram_budget > 0) {
        /* The planner chooses the pass size, the slots (unless --slots) and
         * the KV pages within the budget; only the context is ours. */
        ep.max_tokens = p->ubatch > 0 ? p->ubatch : 0;
        ep.max_seqs = p->slots > 0 ? p->slots : 0;
    }

    /* KV pool: enough pages for every slot at full context, capped by
     * --kv-mem (without a VRAM budget). Reading the shape first costs one
     * mmap of the header. */
    {
        ns_model *m = NULL;
        st = ns_model_load(p->model_path, &m, err);
        if (st != NS_OK) {
            goto fail;
        }
        const ns_hparams *hp = ns_model_hparams(m);
        int32_t ctx = p->ctx;
        if (ctx <= 0) {
            ctx = hp->n_ctx_train > 0 ? (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096) : 2048;
        }
        if (hp->n_ctx_train > 0 && ctx > hp->n_ctx_train) {
            NS_LOGW("worker: --ctx %d is past the model's trained context %d", ctx, hp->n_ctx_train);
        }
        ns_kv_params one = {.n_pages = 1, .page_size = ep.page_size, .max_seqs = 1, .max_seq_len = ctx};
        uint64_t page_bytes = ns_kv_storage_bytes(&one, hp->n_layer, hp->n_head_kv, hp->head_dim);
        ns_model_free(&m);
        ep.max_seq_len = ctx;
        int32_t per_seq = (ctx + ep.page_size - 1) / ep.page_size;
        uint64_t kv_mem = p->kv_mem > 0 ? p->kv_mem : (1ull << 30);
        uint64_t fit = page_bytes > 0 ? kv_mem / page_bytes : 0;
        if (p->vram_budget > 0) {
            per_seq = 0; /* the plan sizes the pool */
        } else if (fit < (uint64_t)per_seq) {
            st = ns__err_set(err, NS_ERR_CAPACITY, "--kv-mem %llu bytes cannot hold one %d-token context",
                             (unsigned long long)kv_mem, ctx);
            goto fail;
        }
        uint64_t want = (uint64_t)per_seq * (uint64_t)ep.max_seqs;
        uint64_t n_pages = want < fit ? want : fit;
        ep.n_pages = n_pages > INT32_MAX ? INT32_MAX : (int32_t)n_pages;
        ep.max_seq_len = ctx;
    }
    st = ns_engine_create(&ep, &e->eng, err);
    if (st != NS_OK) {
        goto fail;
    }
    e->sched = ns_engine_sched(e->eng);
    e->tok = ns_engine_tokenizer(e->eng);
    const ns_backend_params *bp = ns_engine_backend_params(e->eng);
    e->slots = bp->kv.max_seqs;
    e->ctx = bp->kv.max_seq_len;
    e->cancel_cap = 4 * e->slots + 64;
    e->cancels = calloc((size_t)e->cancel_cap, sizeof(*e->cancels));
    e->cancel_at = calloc((size_t)e->cancel_cap, sizeof(*e->cancel_at));
    int fds[2];
    if (e->cancels == NULL || e->cancel_at == NULL || pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
        st = ns__err_set(err, NS_ERR_NOMEM, "engine: cannot allocate the cancel list or notify pipe");
        goto fail;
    }
    e->pipe_rd = fds[0];
    e->pipe_wr = fds[1];
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        st = ns__err_set(err, NS_ERR_NOMEM, "engine: cannot start the thread");
        goto fail;
    }
    e->thread_started = true;
    NS_LOGI("engine: %s, backend %s, %d slots x %d tokens, %d KV pages of %d tokens, %d tokens per pass", p->model_path,
            ns_backend_name(ns_engine_backend(e->eng)), e->slots, e->ctx, bp->kv.n_pages, bp->kv.page_size,
            bp->max_tokens);
    *out = e;
    return NS_OK;
fail:
    wk_engine_destroy(&e);
    return st;
}

static void free_list(wk_job *j) {
    while (j != NULL) {
        wk_job *next = j->next;
        wk_job_free(j);
        j = next;
    }
}

void wk_engine_destroy(wk_engine **pe) {
    if (pe == NULL || *pe == NULL) {
        return;
    }
    wk_engine *e = *pe;
    if (e->thread_started) {
        pthread_mutex_lock(&e->mu);
        e->quit = true;
        pthread_cond_signal(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    }
    /* ns_sched_free finishes what is left (callbacks run: they move the jobs
     * to the finished list, freed below). */
    ns_engine_free(&e->eng);
    free_list(e->inbox);
    free_list(e->running);
    free_list(e->finished);
    free(e->cancels);
    free(e->cancel_at);
    if (e->pipe_rd >= 0) {
        close(e->pipe_rd);
    }
    if (e->pipe_wr >= 0) {
        close(e->pipe_wr);
    }
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
    *pe = NULL;
}

int32_t wk_engine_slots(const wk_engine *e) {
    return e->slots;
}
int32_t wk_engine_ctx(const wk_engine *e) {
    return e->ctx;
}
const ns_model *wk_engine_model(const wk_engine *e) {
    return ns_engine_model(e->eng);
}
const ns_tokenizer *wk_engine_tokenizer(const wk_engine *e) {
    return e->tok;
}
const char *wk_engine_backend_name(const wk_engine *e) {
    return ns_backend_name(ns_engine_backend(e->eng));
}
int wk_engine_notify_fd(const wk_engine *e) {
    return e->pipe_rd;
}
uint64_t wk_engine_tokens(const wk_engine *e) {
    return atomic_load(&((wk_engine *)e)->n_tokens);
}

void wk_engine_submit(wk_engine *e, wk_job *job) {
    job->engine = e;
    job->next = NULL;
    pthread_mutex_lock(&e->mu);
    if (e->inbox_tail != NULL) {
        e->inbox_tail->next = job;
    } else {
        e->inbox = job;
    }
    e->inbox_tail = job;
    e->n_inside++;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

void wk_engine_cancel(wk_engine *e, int64_t job_id, int32_t attempt) {
    pthread_mutex_lock(&e->mu);
    bool dup = false;
    for (int32_t i = 0; i < e->n_cancels; i++) {
        dup |= e->cancels[i] == job_id && e->cancel_at[i] == attempt;
    }
    if (!dup && e->n_cancels < e->cancel_cap) {
        e->cancels[e->n_cancels] = job_id;
        e->cancel_at[e->n_cancels++] = attempt;
        pthread_cond_signal(&e->cv);
    }
    pthread_mutex_unlock(&e->mu);
}

void wk_engine_release_all(wk_engine *e) {
    pthread_mutex_lock(&e->mu);
    e->release_all = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

wk_job *wk_engine_take_finished(wk_engine *e) {
    pthread_mutex_lock(&e->mu);
    wk_job *list = e->finished;
    for (wk_job *j = list; j != NULL; j = j->next) {
        e->n_inside--;
    }
    e->finished = e->finished_tail = NULL;
    pthread_mutex_unlock(&e->mu);
    return list;
}

int32_t wk_engine_n_inside(const wk_engine *e) {
    wk_engine *m = (wk_engine *)e;
    pthread_mutex_lock(&m->mu);
    int32_t n = m->n_inside;
    pthread_mutex_unlock(&m->mu);
    return n;
}

void wk_engine_drain_notify(wk_engine *e) {
    char buf[64];
    while (read(e->pipe_rd, buf, sizeof(buf)) > 0) {
    }
}

bool wk_engine_fatal(wk_engine *e, char *msg, size_t cap) {
    pthread_mutex_lock(&e->mu);
    bool f = e->fatal;
    if (f && msg != NULL && cap > 0) {
        snprintf(msg, cap, "%s", e->fatal_msg);
    }
    pthread_mutex_unlock(&e->mu);
    return f;
}
