/*
 * worker.h - nightshift-worker's I/O side: the DEALER connection to the
 * broker, the fenced result writes to PostgreSQL, heartbeats, credit,
 * cancels, reconnects and graceful shutdown. The engine runs on its own
 * thread (wk_engine.h); this loop never blocks on a forward pass.
 *
 * Protocol (docs/protocol.md, docs/worker.md): READY {name, model, slots,
 * inflight} -> OK {heartbeat_ms, lease_ms, adopted, dropped}; JOB in; for
 * each job: write its outcome to PostgreSQL (ns_queue_complete / fail /
 * ack_cancel / release), and only after COMMIT send DONE, then CREDIT 1.
 * HEARTBEAT both ways; CANCEL_JOB in; DISCONNECT both ways.
 *
 * Durability: a finished job stays in memory until its write commits or
 * proves stale (NS_ERR_CONFLICT). While PostgreSQL is down the loop keeps
 * heartbeating and retries the connection every second.
 *
 * Ownership: a wk_worker owns its engine, database handle, ZeroMQ context and
 * socket. Thread safety: one thread (plus the engine's own).
 */
#ifndef WK_WORKER_H
#define WK_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "ns_status.h"
#include "wk_engine.h"

typedef struct wk_config {
    const char *broker;        /* tcp://HOST:5556 */
    const char *conninfo;      /* PostgreSQL */
    const char *name;          /* lease owner; unique per worker process */
    const char *model_name;    /* the `model` clients put in batches */
    const char *chat_template; /* family override (chat_template.h names), or NULL */
    double drain_s;            /* SIGTERM: time allowed to finish running jobs before returning them */
    int heartbeat_ms;          /* until the broker says otherwise (1000) */
    int liveness;              /* missed broker heartbeats before reconnecting (3) */
} wk_config;

typedef struct wk_worker wk_worker;

/* Create the worker over an already created engine (ownership moves). */
ns_status wk_worker_create(const wk_config *cfg, wk_engine *engine, volatile sig_atomic_t *stop, wk_worker **out,
                           ns_err *err);

/* Run until stopped (*stop set once: drain; twice or more: return jobs now)
 * or a fatal engine error. Returns NS_OK after a clean shutdown, NS_ERR_DEVICE
 * after an engine failure (jobs returned first). */
ns_status wk_worker_run(wk_worker *w);

void wk_worker_destroy(wk_worker **w);

#endif /* WK_WORKER_H */
