/*
 * wk_engine.h - the worker's engine thread: one model, one backend, one paged
 * KV cache and one continuous-batching scheduler (engine/scheduler.h), driven
 * by a thread of its own so that long forward passes never delay heartbeats.
 *
 * The I/O thread (worker.c) hands prepared jobs in with wk_engine_submit and
 * takes finished ones out with wk_engine_take_finished; a byte written to
 * wk_engine_notify_fd() says that finished jobs are waiting (poll it). The
 * engine thread sleeps when it has nothing to run.
 *
 * Slots: the number of sequences the KV cache can hold at once (max_seqs);
 * the KV pool has pages for `slots` full contexts unless --kv-mem caps it,
 * and the scheduler admits a job only when its prompt + max_tokens pages can
 * be reserved, so a running job never runs out of KV memory.
 *
 * Ownership: the engine owns the model, tokenizer, backend, cache, scheduler
 * and every job between submit and take_finished. Thread safety: submit,
 * cancel, release_all, take_finished and the getters may be called from one
 * other thread (the I/O thread) while the engine thread runs.
 */
#ifndef WK_ENGINE_H
#define WK_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "ns_status.h"
#include "tokenizer.h"
#include "wk_job.h"

typedef struct wk_engine_params {
    const char *model_path;
    const char *backend;     /* "cpu", "cuda" or "auto" (NULL = auto) */
    uint64_t vram_budget;    /* cuda: the arena's upper bound in bytes (0 = no budget: every layer resident,
                                arena sized exactly); the planner sizes the KV pool and slots within it */
    int32_t resident_layers; /* cuda with a budget: -1 = the planner's choice, N >= 0 forces N */
    const char *workload;    /* planner's cost-model hint: "summarize" (NULL), "label" or "single" */
    uint64_t kv_mem;         /* cpu: cap on K/V bytes (0 = 1 GiB) */
    int32_t n_threads;       /* cpu threads (0 = online cores) */
    int32_t slots;           /* concurrent sequences (0 = 32) */
    int32_t ctx;             /* tokens per sequence (0 = min(context_length, 4096), 2048 when unknown) */
    int32_t ubatch;          /* tokens per forward pass (0 = 512) */
} wk_engine_params;

typedef struct wk_engine wk_engine;

/* Load the model, build backend + KV cache + scheduler, start the thread.
 * On failure *out is NULL and err says why. */
ns_status wk_engine_create(const wk_engine_params *p, wk_engine **out, ns_err *err);

/* Stop the thread and free everything; jobs still inside are freed without
 * an outcome (call wk_engine_release_all and drain first to keep them).
 * *e becomes NULL. NULL-safe. */
void wk_engine_destroy(wk_engine **e);

/* Facts for READY and for preparing jobs. */
int32_t wk_engine_slots(const wk_engine *e);
int32_t wk_engine_ctx(const wk_engine *e);
const ns_model *wk_engine_model(const wk_engine *e);
const ns_tokenizer *wk_engine_tokenizer(const wk_engine *e);
const char *wk_engine_backend_name(const wk_engine *e);

/* Hand a prepared job to the engine (ownership moves). */
void wk_engine_submit(wk_engine *e, wk_job *job);

/* Ask the engine to stop job `job_id` (only its lease `attempt`; -1: any) at
 * its next step; it comes back with outcome WK_OUT_CANCELLED (or finished,
 * if it finished first). Unknown jobs are ignored. */
void wk_engine_cancel(wk_engine *e, int64_t job_id, int32_t attempt);

/* Stop every job inside: they come back with outcome WK_OUT_RELEASED, and
 * jobs submitted later are returned the same way at once. */
void wk_engine_release_all(wk_engine *e);

/* Take the list of finished jobs (linked by ->next; NULL when none). */
wk_job *wk_engine_take_finished(wk_engine *e);

/* Jobs inside the engine (submitted and not yet taken back as finished). */
int32_t wk_engine_n_inside(const wk_engine *e);

/* A file descriptor that becomes readable when finished jobs wait; read it
 * dry with wk_engine_drain_notify. */
int wk_engine_notify_fd(const wk_engine *e);
void wk_engine_drain_notify(wk_engine *e);

/* True after a fatal engine error (device error): the worker should return
 * its jobs and exit so its supervisor restarts it. msg gets the detail. */
bool wk_engine_fatal(wk_engine *e, char *msg, size_t cap);

/* Tokens generated since start (for logs). */
uint64_t wk_engine_tokens(const wk_engine *e);

#endif /* WK_ENGINE_H */
