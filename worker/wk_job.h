/*
 * wk_job.h - one job inside nightshift-worker: its input (tokens, sampling
 * settings, stop strings), its generation state and its outcome.
 *
 * Life of a job: the I/O thread (worker.c) builds it from a JOB message
 * (wk_job_prepare), hands it to the engine thread (wk_engine_submit), gets it
 * back finished (wk_engine_take_finished), writes the outcome to PostgreSQL
 * and frees it once that write has committed (or proved stale). Exactly one
 * thread owns a job at any time; ownership moves through the engine's locked
 * queues, so the struct itself needs no lock.
 *
 * Ownership: a job owns every buffer it points to (one malloc'd block per
 * field); wk_job_free releases them.
 */
#ifndef WK_JOB_H
#define WK_JOB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ns_buf.h"
#include "ns_job.h"
#include "chat_template.h"
#include "ns_status.h"
#include "sampler.h"
#include "tokenizer.h"

/* How a job ended, as the worker reports it. */
typedef enum wk_outcome {
    WK_OUT_NONE = 0,  /* still running */
    WK_OUT_OK,        /* generated: write the result (ns_queue_complete) */
    WK_OUT_FAILED,    /* bad job or engine error: ns_queue_fail */
    WK_OUT_CANCELLED, /* stopped on CANCEL_JOB: ns_queue_ack_cancel */
    WK_OUT_RELEASED,  /* given back unfinished (shutdown): ns_queue_release */
} wk_outcome;

typedef struct wk_job {
    struct wk_job *next; /* intrusive list link (queues, tables) */

    /* identity, from the JOB message */
    int64_t job_id;
    int64_t batch_id;
    int32_t attempt; /* lease epoch: every write is fenced on (job_id, attempt) */
    char *custom_id; /* NUL-terminated copy */

    /* input */
    int32_t *prompt; /* [n_prompt] token ids */
    int32_t n_prompt;
    ns_sampler_params sampling; /* temperature, top-k/p, min-p, seed, max_tokens, stop (-> stop_copies) */
    char **stop_copies;         /* [sampling.n_stop] NUL-terminated stop strings */

    /* generation state (engine thread) */
    struct wk_engine *engine; /* set by wk_engine_submit */
    uint64_t sched_id;        /* scheduler request id while submitted */
    bool submitted;           /* accepted by ns_sched_submit */
    bool cancel_wanted;       /* CANCEL_JOB arrived */
    ns_buf text;              /* generated text so far (capped) */

    /* outcome (set by the engine thread when it hands the job back) */
    wk_outcome outcome;
    const char *finish_reason; /* "stop" | "length" (static string) */
    char err_kind[32];         /* failures: "invalid_job", "engine", "too_long" */
    char err_msg[NS_ERRMSG_LEN];
    bool retryable; /* failures: worth another attempt elsewhere */
    int32_t n_generated;
    double t_recv, t_admit, t_first, t_done; /* ns_time_s() stamps */
} wk_job;

/* Free the job and everything it owns. NULL-safe. */
void wk_job_free(wk_job *j);

/* Set the outcome to WK_OUT_FAILED with kind and a formatted message. */
void wk_job_set_error(wk_job *j, const char *kind, bool retryable, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* What preparing a job needs from the engine. */
typedef struct wk_prep_ctx {
    const ns_tokenizer *tok;
    ns_chat_family chat; /* template family for chat jobs */
    int32_t ctx;         /* tokens per sequence */
} wk_prep_ctx;

/* Build a job from a decoded JOB message: copy its identity, render chat
 * messages through the template, tokenize, clamp max_tokens to the context
 * and copy the sampling settings. A job that cannot run (prompt longer than
 * the context, empty prompt, bad text) still comes back, with outcome
 * WK_OUT_FAILED and a clear error, so the caller records that failure.
 * Only NS_ERR_NOMEM is returned as an error (then *out is NULL). */
ns_status wk_job_prepare(const ns_job_msg *m, const wk_prep_ctx *pc, wk_job **out, ns_err *err);

#endif /* WK_JOB_H */
