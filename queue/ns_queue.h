/*
 * ns_queue.h - the job queue's transactions over PostgreSQL.
 *
 * Shared by the broker (batches, enqueue, claim, leases, cancel, retry,
 * results pages), the worker (complete, fail, release: the fenced writes)
 * and tools. docs/queue.md explains states, leases, fencing and retries.
 *
 * Job states: queued -> leased -> succeeded | failed | cancelled, and
 * leased -> queued again on a retryable failure, a lost worker or a release.
 * Every transition updates the batch counters in the same statement.
 *
 * Fencing: a claim increments jobs.attempt (the lease epoch) and returns it.
 * ns_queue_complete / fail / release / ack_cancel only touch the row when it
 * is still 'leased' with that same attempt; otherwise they change nothing and
 * return NS_ERR_CONFLICT ("stale lease"). A result row is inserted with
 * ON CONFLICT DO NOTHING in the same statement as the state change.
 *
 * Status conventions: see ns_db.h. Strings passed in must be valid UTF-8
 * without NUL (the broker checks wire input; callers check their own).
 * Callbacks receive pointers valid only during the call.
 * Thread safety: as the ns_db handle (one per thread).
 */
#ifndef NS_QUEUE_H
#define NS_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ns_buf.h"
#include "ns_db.h"
#include "ns_job.h"
#include "ns_status.h"

/* ---- batches ------------------------------------------------------------ */

typedef struct ns_batch_spec {
    const char *name;            /* may be NULL or "" */
    const char *model;           /* required: routed to workers serving exactly this model */
    int32_t priority;            /* higher first */
    int32_t max_attempts;        /* 1..100; 0 means the default (3) */
    const char *metadata_json;   /* JSON object text, or NULL */
    const char *idempotency_key; /* NULL: none. A second create with the same key returns the first batch */
} ns_batch_spec;

/* Create a batch (state 'open'). *created is false when the idempotency key
 * matched an existing batch, whose id is returned. */
ns_status ns_queue_create_batch(ns_db *db, const ns_batch_spec *spec, int64_t *batch_id, bool *created);

#define NS_QUEUE_NAME_CAP 257

typedef struct ns_batch_info {
    int64_t id;
    char name[NS_QUEUE_NAME_CAP];
    char model[NS_QUEUE_NAME_CAP];
    char state[16]; /* open | sealed | done | cancelled */
    int32_t priority;
    int32_t max_attempts;
    int64_t total, queued, running, succeeded, failed, cancelled;
    int64_t prompt_tokens, completion_tokens;
    double created_at, sealed_at, started_at, finished_at; /* unix seconds; 0 = not yet */
    double now;                                            /* database clock, unix seconds */
} ns_batch_info;

/* Read a batch's row. NS_ERR_NOT_FOUND when absent. metadata_json (may be
 * NULL) receives the metadata as JSON text (empty when none). */
ns_status ns_queue_batch_info(ns_db *db, int64_t batch_id, ns_batch_info *out, ns_buf *metadata_json);

/* Read several batches at once (watchers): `cb` is called once per batch found. */
ns_status ns_queue_batch_infos(ns_db *db, const int64_t *ids, size_t n,
                               void (*cb)(void *user, const ns_batch_info *info), void *user);

/* Seal: no more jobs. The batch becomes 'done' at once when nothing is queued
 * or running. NS_ERR_STATE when cancelled; sealing twice is a no-op. */
ns_status ns_queue_seal(ns_db *db, int64_t batch_id, ns_batch_info *out);

/* ---- enqueue ------------------------------------------------------------ */

/* Insert n jobs into an open batch in one transaction (COPY), and bump the
 * counters. All or nothing: NS_ERR_CONFLICT when a custom_id already exists in
 * the batch (the message names it), NS_ERR_STATE when the batch is not open,
 * NS_ERR_NOT_FOUND when it does not exist. *batch_total gets the batch's new
 * total. Duplicate custom_ids within `jobs` are the caller's to reject first
 * (they would also fail here, as a conflict). */
ns_status ns_queue_enqueue(ns_db *db, int64_t batch_id, const ns_job_spec *jobs, size_t n, int64_t *batch_total);

/* ---- claims and leases (broker) ------------------------------------------ */

/* A claimed job with its input, as read back from PostgreSQL. */
typedef struct ns_claimed_job {
    int64_t job_id;
    int64_t batch_id;
    int32_t attempt;
    const char *custom_id;
    const char *prompt;        /* NULL for chat jobs */
    const char *messages_json; /* JSON array of {role, content}; NULL for prompt jobs */
    int32_t max_tokens;
    float temperature;
    int32_t top_k;
    float top_p;
    float min_p;
    bool has_seed;
    int64_t seed;
    const char *stop_json; /* JSON array of strings, or NULL */
} ns_claimed_job;

/* Claim up to `limit` runnable queued jobs of batches for `model` (highest
 * priority, then oldest), lease them to `owner` for lease_ms, and call `cb`
 * for each after COMMIT. *n_claimed (may be NULL) gets the count. */
ns_status ns_queue_claim(ns_db *db, const char *model, const char *owner, int limit, int64_t lease_ms,
                         void (*cb)(void *user, const ns_claimed_job *job), void *user, int *n_claimed);

/* Extend every lease held by `owner` to now + lease_ms. */
ns_status ns_queue_renew_leases(ns_db *db, const char *owner, int64_t lease_ms, int64_t *n_renewed);

/* Re-adopt a job a worker still runs (READY's in-flight list after a broker
 * restart): if it is still leased with this attempt, move the lease to
 * `owner` and renew it. *adopted says whether it was. */
ns_status ns_queue_adopt(ns_db *db, int64_t job_id, int32_t attempt, const char *owner, int64_t lease_ms,
                         bool *adopted);

/* Return every lease held by `owner` to the queue, except the (job, attempt)
 * pairs in keep[] (may be NULL/0). charge = true counts it as a failed attempt
 * (worker lost: error kind/message recorded in job_errors; the job fails for
 * good at max_attempts); charge = false is a plain release. Jobs whose cancel
 * was requested become cancelled. Requeued jobs run again at once. */
ns_status ns_queue_requeue_owner(ns_db *db, const char *owner, bool charge, const char *kind, const char *message,
                                 const int64_t *keep_job_ids, const int32_t *keep_attempts, size_t n_keep,
                                 int64_t *n_requeued);

/* Reaper: requeue (charged, kind "lease_expired") every lease past its expiry. */
ns_status ns_queue_reap_expired(ns_db *db, int64_t *n_reaped);

/* ---- worker writes (fenced on job_id + attempt) --------------------------- */

typedef struct ns_job_result {
    const char *text; /* generated text, UTF-8 without NUL */
    size_t text_len;
    const char *finish_reason; /* "stop" | "length" | ... */
    int32_t prompt_tokens;
    int32_t completion_tokens;
    double queue_ms, prefill_ms, decode_ms, total_ms; /* timings; negative = unknown (stored as NULL) */
} ns_job_result;

/* Record the result and mark the job succeeded, in one statement. Call it
 * before sending DONE. NS_ERR_CONFLICT when the lease is stale (nothing
 * written); NS_ERR_IO when the outcome is unknown (connection lost: retrying
 * the same call is safe, it either writes once or reports the conflict). */
ns_status ns_queue_complete(ns_db *db, int64_t job_id, int32_t attempt, const char *worker, const ns_job_result *res);

/* Record a failed attempt (job_errors row) and either requeue the job with
 * backoff (retryable and failures < max_attempts) or fail it for good.
 * *new_state (may be NULL) gets "queued", "failed" or "cancelled".
 * NS_ERR_CONFLICT when stale. */
ns_status ns_queue_fail(ns_db *db, int64_t job_id, int32_t attempt, const char *worker, const char *kind,
                        const char *message, bool retryable, char new_state[16]);

/* Give a leased job back without charging an attempt (worker shutdown, or a
 * job it never started). It runs again at once (or becomes cancelled when a
 * cancel was requested). NS_ERR_CONFLICT when stale. */
ns_status ns_queue_release(ns_db *db, int64_t job_id, int32_t attempt);

/* Acknowledge a CANCEL_JOB: the worker stopped the job, which becomes
 * cancelled. NS_ERR_CONFLICT when stale. */
ns_status ns_queue_ack_cancel(ns_db *db, int64_t job_id, int32_t attempt);

/* ---- cancel, retry, results (broker on behalf of clients) ----------------- */

/* Called for each running job whose cancel was requested: the broker sends
 * CANCEL_JOB to `owner`. */
typedef void (*ns_queue_leased_fn)(void *user, int64_t job_id, int32_t attempt, const char *owner);

/* Cancel a batch: state 'cancelled', queued jobs cancelled at once, running
 * jobs flagged (cb called for each). NS_ERR_NOT_FOUND; a done batch is left
 * as it is (counts 0). */
ns_status ns_queue_cancel_batch(ns_db *db, int64_t batch_id, int64_t *n_cancelled, int64_t *n_running,
                                ns_queue_leased_fn cb, void *user);

/* Cancel some jobs of a batch by custom_id (same semantics, per job). */
ns_status ns_queue_cancel_jobs(ns_db *db, int64_t batch_id, const char *const *custom_ids, const size_t *lens, size_t n,
                               int64_t *n_cancelled, int64_t *n_running, ns_queue_leased_fn cb, void *user);

/* Requeue every failed job of a batch with a fresh attempt budget (failures
 * reset to 0; error history kept). A done batch goes back to 'sealed'.
 * NS_ERR_STATE for a cancelled batch. */
ns_status ns_queue_retry_failed(ns_db *db, int64_t batch_id, int64_t *n_requeued);

/* One row of a results page. */
typedef struct ns_result_row {
    int64_t job_id;
    const char *custom_id;
    const char *state; /* succeeded | failed | cancelled */
    /* ok rows */
    int32_t attempt;
    const char *worker;
    const char *text;
    size_t text_len;
    const char *finish_reason;
    int32_t prompt_tokens, completion_tokens;
    double queue_ms, prefill_ms, decode_ms, total_ms; /* -1 when NULL */
    double finished_at;                               /* unix seconds */
    bool chat; /* ok rows: the job's input was chat messages (false: a raw prompt) */
    /* error rows: JSON array of {attempt, worker, kind, message, at}, maybe "[]" */
    const char *errors_json;
} ns_result_row;

/* One page of results (errors = false: succeeded jobs with their result;
 * errors = true: failed and cancelled jobs with their error history), in
 * job_id order after `after_job_id`, at most `limit` rows. `cb` returns false
 * to stop early (e.g. the reply is full); *last_job_id gets the id of the
 * last row delivered (the next cursor), *more whether rows may remain. */
ns_status ns_queue_results(ns_db *db, int64_t batch_id, int64_t after_job_id, int limit, bool errors,
                           bool (*cb)(void *user, const ns_result_row *row), void *user, int64_t *last_job_id,
                           bool *more);

#endif /* NS_QUEUE_H */
