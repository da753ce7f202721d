/*
 * scheduler.h - continuous batching over one model, one backend and one paged
 * KV cache. The CLI (`nightshift generate`) and the worker drive the same
 * scheduler.
 *
 * Each step builds one ubatch: first one decode token for every running
 * sequence, then prefill chunks of admitted sequences (oldest first) up to
 * the token budget (max_tokens per pass). A request is admitted only when a
 * sequence slot is free and the KV pages for prompt + max_tokens can be
 * reserved, so a running sequence never runs out of pages. Finished and
 * cancelled sequences give their pages back at once; waiting requests are
 * admitted in submission order as pages free up.
 *
 * Sampling and stop strings belong to the caller: each request has a
 * `sample` callback (NULL = greedy argmax) and an `on_token` callback that
 * may ask to stop. End-of-generation tokens are recognised with the
 * tokenizer given at creation (unless the request sets ignore_eos).
 *
 * Ownership: the scheduler borrows the model, backend, KV cache and
 * tokenizer (they must outlive it) and owns its request table, ubatch and
 * logits buffer, all allocated at creation. step() allocates nothing.
 * Thread safety: none. Callbacks run inside step()/cancel() on the caller's
 * thread and must not call back into the scheduler except ns_sched_cancel
 * from on_token (which is safe).
 */
#ifndef NS_SCHEDULER_H
#define NS_SCHEDULER_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "kv_cache.h"
#include "model.h"
#include "ns_status.h"
#include "tokenizer.h"

#define NS_SCHED_FINISH_MAP(X)                                                                                         \
    X(NONE, "none")                                                                                                    \
    X(LENGTH, "length")       /* max_tokens (or the context) reached */                                                \
    X(EOG, "stop")            /* an end-of-generation token was sampled */                                             \
    X(STOP, "stop_sequence")  /* on_token asked to stop (stop string) */                                               \
    X(CANCELLED, "cancelled") /* ns_sched_cancel */                                                                    \
    X(ERROR, "error")         /* the pass failed; see status */

typedef enum ns_finish_reason {
#define NS__FINISH_ENUM(name, str) NS_FINISH_##name,
    NS_SCHED_FINISH_MAP(NS__FINISH_ENUM)
#undef NS__FINISH_ENUM
} ns_finish_reason;

/* "length", "stop", ... */
const char *ns_finish_reason_str(ns_finish_reason r);

/* Per-request accounting, passed to on_finish. Times are ns_time_s(). */
typedef struct ns_sched_result {
    int32_t n_prompt;     /* prompt tokens */
    int32_t n_generated;  /* tokens generated (the EOG token included when sampled) */
    double t_submit;      /* submitted */
    double t_admit;       /* admitted (KV reserved) */
    double t_first_token; /* prefill done, first token sampled */
    double t_done;        /* finished */
} ns_sched_result;

typedef struct ns_sched_request {
    const int32_t *prompt; /* [n_prompt] token ids; copied by submit */
    int32_t n_prompt;      /* >= 1 */
    int32_t max_tokens;    /* tokens to generate (>= 1); clamped to the context */
    bool ignore_eos;       /* keep going past end-of-generation tokens (benchmarks) */
    void *user;            /* passed to the callbacks */

    /* Pick the next token from logits[0..n_vocab) (may modify them). NULL:
     * greedy argmax. */
    int32_t (*sample)(void *user, float *logits, int32_t n_vocab);
    /* A token was generated (not called for end-of-generation tokens).
     * Return true to finish the request now with NS_FINISH_STOP. May be NULL. */
    bool (*on_token)(void *user, uint64_t id, int32_t token);
    /* The request finished; called exactly once per accepted request. Its
     * KV pages are already free. May be NULL. */
    void (*on_finish)(void *user, uint64_t id, ns_finish_reason reason, ns_status status,
                      const ns_sched_result *result);
} ns_sched_request;

typedef struct ns_sched_params {
    int32_t max_queue; /* requests waiting for admission (0 = 4 * kv max_seqs) */
} ns_sched_params;

typedef struct ns_sched ns_sched;

/* Create a scheduler over model `m`, backend `b` (created with max_tokens T:
 * the token budget per step) and KV cache `kv` (its max_seqs bounds the
 * running sequences). `tok` (may be NULL) recognises end-of-generation
 * tokens. `bp` must be the params `b` was created with. */
ns_status ns_sched_create(const ns_model *m, ns_backend *b, const ns_backend_params *bp, ns_kv_cache *kv,
                          const ns_tokenizer *tok, const ns_sched_params *p, ns_sched **out, ns_err *err);

/* Finish every request still queued or running with NS_FINISH_CANCELLED
 * (callbacks run), then free; sets *s to NULL. NULL-safe. */
void ns_sched_free(ns_sched **s);

/* Queue a request; *id identifies it in callbacks and cancel. Errors:
 * NS_ERR_INVALID_ARG (empty prompt, max_tokens < 1, bad token id),
 * NS_ERR_CAPACITY (the queue is full, or the prompt plus one token can never
 * fit in the KV cache or the context). Allocates the prompt copy. */
ns_status ns_sched_submit(ns_sched *s, const ns_sched_request *req, uint64_t *id, ns_err *err);

/* Run one step: admit what fits, run one forward pass, sample, call back.
 * *n_tokens (may be NULL) is the pass size, 0 when there was nothing to do.
 * A failing pass finishes every running request with NS_FINISH_ERROR and
 * returns the error. */
ns_status ns_sched_step(ns_sched *s, int32_t *n_tokens, ns_err *err);

/* Finish request `id` with NS_FINISH_CANCELLED (queued or running).
 * NS_ERR_NOT_FOUND when it is unknown or already finished. */
ns_status ns_sched_cancel(ns_sched *s, uint64_t id);

/* True when nothing is queued or running. */
bool ns_sched_idle(const ns_sched *s);

/* Counts. */
int32_t ns_sched_n_running(const ns_sched *s);
int32_t ns_sched_n_queued(const ns_sched *s);

/* Whether a request of n_prompt tokens and max_tokens could be admitted right
 * now (free slot and pages), and (*ever, may be NULL) whether it can ever
 * fit in this cache. */
bool ns_sched_can_admit(const ns_sched *s, int32_t n_prompt, int32_t max_tokens, bool *ever);

#endif /* NS_SCHEDULER_H */
