/*
 * broker.h - nightshift-broker internals, shared by the broker's files.
 *
 *   main.c     command line, signals, start-up
 *   broker.c   sockets, the poll loop, timers, database reconnects, replies
 *   router.c   client requests (create, enqueue, seal, status, results, ...)
 *   workers.c  worker registry, READY/CREDIT/DONE/HEARTBEAT, dispatch, leases
 *   watch.c    WATCH subscriptions (progress events)
 *
 * The broker is single-threaded: one zmq_poll loop over two ROUTER sockets,
 * with blocking libpq calls in between. It holds no state PostgreSQL does not
 * have: the worker table and watchers are rebuilt from READY and WATCH
 * messages after a restart. Every table has a fixed capacity chosen at start,
 * so memory is bounded whatever peers send.
 */
#ifndef NS_BROKER_H
#define NS_BROKER_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "ns_db.h"
#include "ns_job.h"
#include "ns_proto.h"
#include "ns_queue.h"

#define NS_BROKER_ID_CAP 256 /* ZeroMQ routing ids are at most 255 bytes */

typedef struct ns_broker_config {
    const char *conninfo;
    const char *clients_ep;  /* ROUTER for clients, e.g. tcp://0.0.0.0:5555 */
    const char *workers_ep;  /* ROUTER for workers, e.g. tcp://0.0.0.0:5556 */
    bool migrate;            /* apply migrations at start-up */
    int heartbeat_ms;        /* heartbeat period both ways (1000) */
    int liveness;            /* missed heartbeats before a worker is lost (3) */
    int64_t lease_ms;        /* lease length; renewed every lease_ms/3 for live workers (30000) */
    int reap_ms;             /* lease-expiry reaper period (5000) */
    int dispatch_ms;         /* poll for runnable jobs at least this often (250) */
    int max_workers;         /* worker table size (1024) */
    int max_watchers;        /* watcher table size (1024) */
    int64_t backoff_base_ms; /* retry backoff (1000) */
    int64_t backoff_cap_ms;  /* (300000) */
} ns_broker_config;

typedef struct ns_broker_worker {
    bool used;
    uint8_t id[NS_BROKER_ID_CAP]; /* routing id on the workers socket */
    size_t id_len;
    char name[NS_QUEUE_NAME_CAP]; /* lease owner in jobs.lease_owner */
    char model[NS_QUEUE_NAME_CAP];
    int32_t slots;    /* capacity announced in READY */
    int32_t credit;   /* jobs it will still accept */
    int32_t inflight; /* jobs sent and not yet reported done */
    double last_seen; /* monotonic seconds of its last message */
    double ready_at;
    int64_t jobs_done;
} ns_broker_worker;

typedef struct ns_broker_watch {
    bool used;
    uint8_t id[NS_BROKER_ID_CAP]; /* client routing id */
    size_t id_len;
    bool empty_delim;
    int64_t rid;
    int64_t batch_id;
    int interval_ms;
    double next_at;   /* monotonic time of the next check */
    double last_sent; /* monotonic time of the last event */
    int64_t sig;      /* counters signature of the last event */
} ns_broker_watch;

typedef struct ns_broker {
    ns_broker_config cfg;
    ns_proto_limits lim;
    void *ctx;
    void *clients; /* ROUTER */
    void *workers; /* ROUTER */
    ns_db *db;
    bool db_up;
    double db_retry_at;
    ns_proto_rx *crx;    /* client messages: up to max_jobs_per_msg payload frames */
    ns_proto_rx *wrx;    /* worker messages: no payload frames */
    msgpack_sbuffer sb;  /* reply / outgoing body */
    msgpack_sbuffer sb2; /* second buffer (result items) */
    ns_job_spec *specs;  /* [max_jobs_per_msg] decoded ENQUEUE jobs */
    uint32_t *dup_table; /* [dup_cap] open-addressing set of spec indices + 1 */
    uint32_t dup_cap;
    ns_buf json;              /* metadata JSON */
    ns_broker_worker *wk;     /* [cfg.max_workers] */
    ns_broker_watch *watches; /* [cfg.max_watchers] */
    bool dispatch_dirty;
    double next_dispatch, next_reap, next_hb, next_renew, next_watch;
    volatile sig_atomic_t *stop; /* set by SIGTERM/SIGINT */
    /* counters for logs */
    uint64_t n_requests, n_bad, n_jobs_enqueued, n_jobs_dispatched;
} ns_broker;

/* broker.c */
void ns__broker_config_defaults(ns_broker_config *cfg);
ns_status ns__broker_create(ns_broker **out, const ns_broker_config *cfg, volatile sig_atomic_t *stop);
void ns__broker_destroy(ns_broker **b);
ns_status ns__broker_run(ns_broker *b);
/* Send body (b->sb) to a client with a stored or received identity. */
ns_status ns__broker_send_client(ns_broker *b, const uint8_t *id, size_t id_len, bool empty_delim, int cmd,
                                 const msgpack_sbuffer *sb);
/* Reply to the current client message (b->crx). */
void ns__broker_reply(ns_broker *b, int cmd);
void ns__broker_reply_error(ns_broker *b, int64_t rid, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Map a queue status to an error reply (and mark the database down on NS_ERR_IO). */
void ns__broker_reply_db_error(ns_broker *b, int64_t rid, ns_status st);
/* Note a database failure: NS_ERR_IO marks the connection down. */
void ns__broker_db_failed(ns_broker *b, ns_status st, const char *what);
double ns__broker_now(void);

/* Find a key in a checked body map; NS_ERR_NOT_FOUND when absent. */
ns_status ns__body_find(const uint8_t *body, size_t len, const char *key, ns_mp_reader *val);

/* router.c */
void ns__broker_on_client(ns_broker *b);

/* workers.c */
void ns__broker_on_worker(ns_broker *b);
void ns__broker_dispatch(ns_broker *b);
void ns__broker_heartbeat(ns_broker *b, double now);
void ns__broker_renew(ns_broker *b);
void ns__broker_workers_goodbye(ns_broker *b);
/* Ask the worker holding (job, attempt) as `owner` to stop it (CANCEL_JOB). */
void ns__broker_cancel_job(void *user, int64_t job_id, int32_t attempt, const char *owner);
/* Pack the WORKERS reply body into b->sb. */
void ns__broker_pack_workers(ns_broker *b, int64_t rid);

/* watch.c */
ns_status ns__broker_watch_add(ns_broker *b, int64_t rid, int64_t batch_id, int interval_ms);
void ns__broker_watch_tick(ns_broker *b, double now);
void ns__broker_watch_goodbye(ns_broker *b);
/* Pack a batch status map (rid first) into b->sb; `extra` more pairs follow. */
void ns__broker_pack_status(ns_broker *b, msgpack_packer *pk, int64_t rid, const ns_batch_info *info,
                            const ns_buf *metadata_json, uint32_t extra);

#endif /* NS_BROKER_H */
