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
 * Each request carries its sampling parameters; the scheduler gives it an
 * ns_sampler (sampler.h) at submit, which picks tokens, detokenizes them,
 * and ends the sequence on EOG tokens (with the tokenizer given at
 * creation), stop strings or max_tokens. Text reaches the caller through
 * on_token.
 *
 * Ownership: the scheduler borrows the model, backend, KV cache and
 * tokenizer (they must outlive it) and owns its request table, ubatch,
 * logits buffer and sampler workspace, allocated at creation, plus one prompt
 * copy and one sampler per request, allocated by submit. step() allocates
 * nothing.
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
#include "sampler.h"
#include "tokenizer.h"

#define NS_SCHED_FINISH_MAP(X)                                                                                         \
    X(NONE, "none")                                                                                                    \
    X(LENGTH, "length")       /* max_tokens (or the context) reached */                                                \
    X(EOG, "stop")            /* an end-of-generation token was sampled */                                             \
    X(STOP, "stop_sequence")  /* a stop string completed, or on_token asked to stop */                                 \
    X(CANCELLED, "cancelled") /* ns_sched_cancel or ns_sched_free */                                                   \
    X(ERROR, "error")         /* the pass failed; see the status */

typedef enum ns_sched_finish {
#define NS__SCHED_FINISH_ENUM(name, str) NS_SCHED_FINISH_##name,
    NS_SCHED_FINISH_MAP(NS__SCHED_FINISH_ENUM)
#undef NS__SCHED_FINISH_ENUM
} ns_sched_finish;

/* "length", "stop", "stop_sequence", "cancelled", "error" (OpenAI-style). */
const char *ns_sched_finish_str(ns_sched_finish r);

/* Per-request accounting, passed to on_finish. Times are ns_time_s(). */
typedef struct ns_sched_result {
    int32_t n_prompt;     /* prompt tokens */
    int32_t n_generated;  /* tokens generated (an EOG token included when sampled) */
    double t_submit;      /* submitted */
    double t_admit;       /* admitted (KV reserved) */
    double t_first_token; /* prefill done, first token sampled */
    double t_done;        /* finished */
} ns_sched_result;

typedef struct ns_sched_request {
    const int32_t *prompt;      /* [n_prompt] token ids; copied by submit */
    int32_t n_prompt;           /* >= 1 */
    ns_sampler_params sampling; /* temperature, top-k/p, min-p, penalties, seed, max_tokens (<= 0: up to the
                                   context), stop strings (copied), ignore_eos */
    void *user;                 /* passed to the callbacks */

    /* A token was accepted; `text` is the text it released (valid UTF-8, may
     * be empty; not NUL-terminated; stop strings are held back and never
     * appear). Return true to finish the request now (NS_SCHED_FINISH_STOP).
     * May be NULL. */
    bool (*on_token)(void *user, uint64_t id, int32_t token, const char *text, size_t len);
    /* The request finished; called exactly once per accepted request, after
     * its KV pages were freed. May be NULL. */
    void (*on_finish)(void *user, uint64_t id, ns_sched_finish reason, ns_status status, const ns_sched_result *result);
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

/* Finish every request still queued or running with NS_SCHED_FINISH_CANCELLED
 * (callbacks run), then free; sets *s to NULL. NULL-safe. */
void ns_sched_free(ns_sched **s);

/* Queue a request; *id identifies it in callbacks and cancel. Errors:
 * NS_ERR_INVALID_ARG (empty prompt, bad token id, bad sampling parameters),
 * NS_ERR_CAPACITY (the queue is full, or the prompt plus one token can never
 * fit in the KV cache or the context). Allocates the prompt copy and the
 * sampler. */
ns_status ns_sched_submit(ns_sched *s, const ns_sched_request *req, uint64_t *id, ns_err *err);

/* Run one step: admit what fits, run one forward pass, sample, call back.
 * *n_tokens (may be NULL) is the pass size, 0 when there was nothing to do.
 * A failing pass finishes every running request with NS_SCHED_FINISH_ERROR and
 * returns the error. */
ns_status ns_sched_step(ns_sched *s, int32_t *n_tokens, ns_err *err);

/* Finish request `id` with NS_SCHED_FINISH_CANCELLED (queued or running).
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
