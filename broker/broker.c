/*
 * broker.c - sockets, the poll loop, timers, database reconnects and replies.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "broker.h"
#include "ns_log.h"
#include "ns_mpack.h"
#include "ns_util.h"

/* Messages handled per socket per loop turn, so neither socket starves the other. */
#define BATCH_PER_TURN 64

void ns__broker_config_defaults(ns_broker_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->clients_ep = "tcp://*:5555";
    cfg->workers_ep = "tcp://*:5556";
    cfg->heartbeat_ms = 1000;
    cfg->liveness = 3;
    cfg->lease_ms = 30000;
    cfg->reap_ms = 5000;
    cfg->dispatch_ms = 250;
    cfg->max_workers = 1024;
    cfg->max_watchers = 1024;
    cfg->backoff_base_ms = 1000;
    cfg->backoff_cap_ms = 300000;
}

double ns__broker_now(void) {
    return ns_time_s();
}

static ns_status make_router(ns_broker *b, void **out, const char *ep) {
    void *s = zmq_socket(b->ctx, ZMQ_ROUTER);
    int one = 1, linger = 1000, hwm = 1000;
    int64_t maxmsg = (int64_t)b->lim.max_frame_bytes;
    if (s == NULL) {
        return NS_ERR_IO;
    }
    /* MANDATORY: a send to a vanished peer fails (EHOSTUNREACH) instead of
     * being dropped silently, so the broker can release what it was sending. */
    zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(s, ep) != 0) {
        NS_LOGE("broker: bind %s: %s", ep, zmq_strerror(errno));
        zmq_close(s);
        return NS_ERR_IO;
    }
    *out = s;
    return NS_OK;
}

ns_status ns__broker_create(ns_broker **out, const ns_broker_config *cfg, volatile sig_atomic_t *stop) {
    ns_status st = NS_ERR_NOMEM;
    *out = NULL;
    ns_broker *b = calloc(1, sizeof *b);
    if (b == NULL) {
        return NS_ERR_NOMEM;
    }
    b->cfg = *cfg;
    b->lim = ns_proto_default_limits;
    b->stop = stop;
    msgpack_sbuffer_init(&b->sb);
    msgpack_sbuffer_init(&b->sb2);
    ns_buf_init(&b->json, b->lim.max_metadata_bytes);
    b->dup_cap = 1;
    while (b->dup_cap < 2 * b->lim.max_jobs_per_msg) {
        b->dup_cap <<= 1;
    }
    b->specs = calloc(b->lim.max_jobs_per_msg, sizeof *b->specs);
    b->dup_table = calloc(b->dup_cap, sizeof *b->dup_table);
    b->wk = calloc((size_t)cfg->max_workers, sizeof *b->wk);
    b->watches = calloc((size_t)cfg->max_watchers, sizeof *b->watches);
    if (b->specs == NULL || b->dup_table == NULL || b->wk == NULL || b->watches == NULL) {
        goto fail;
    }
    if ((st = ns_proto_rx_create(&b->crx, b->lim.max_jobs_per_msg)) != NS_OK ||
        (st = ns_proto_rx_create(&b->wrx, 0)) != NS_OK || (st = ns_db_create(&b->db, cfg->conninfo)) != NS_OK) {
        goto fail;
    }
    ns_db_set_backoff(b->db, cfg->backoff_base_ms, cfg->backoff_cap_ms);
    b->ctx = zmq_ctx_new();
    if (b->ctx == NULL) {
        st = NS_ERR_IO;
        goto fail;
    }
    if ((st = make_router(b, &b->clients, cfg->clients_ep)) != NS_OK ||
        (st = make_router(b, &b->workers, cfg->workers_ep)) != NS_OK) {
        goto fail;
    }
    *out = b;
    return NS_OK;
fail:
    ns__broker_destroy(&b);
    return st;
}

void ns__broker_destroy(ns_broker **pb) {
    if (pb == NULL || *pb == NULL) {
        return;
    }
    ns_broker *b = *pb;
    if (b->clients != NULL) {
        zmq_close(b->clients);
    }
    if (b->workers != NULL) {
        zmq_close(b->workers);
    }
    if (b->ctx != NULL) {
        zmq_ctx_term(b->ctx);
    }
    ns_proto_rx_destroy(&b->crx);
    ns_proto_rx_destroy(&b->wrx);
    ns_db_destroy(&b->db);
    msgpack_sbuffer_destroy(&b->sb);
    msgpack_sbuffer_destroy(&b->sb2);
    ns_buf_free(&b->json);
    free(b->specs);
    free(b->dup_table);
    free(b->wk);
    free(b->watches);
    free(b);
    *pb = NULL;
}

ns_status ns__broker_send_client(ns_broker *b, const uint8_t *id, size_t id_len, bool empty_delim, int cmd,
                                 const msgpack_sbuffer *sb) {
    ns_status st = ns_proto_send(b->clients, id, id_len, empty_delim, cmd, sb->data, sb->size, NULL, 0, ZMQ_DONTWAIT);
    if (st != NS_OK) {
        NS_LOG_DEBUG_("broker: reply to a client dropped: %s", zmq_strerror(errno));
    }
    return st;
}

void ns__broker_reply(ns_broker *b, int cmd) {
    ns__broker_send_client(b, b->crx->identity, b->crx->identity_len, b->crx->empty_delim, cmd, &b->sb);
}

void ns__broker_reply_error(ns_broker *b, int64_t rid, const char *code, const char *fmt, ...) {
    char msg[NS_ERRMSG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ns_proto_pack_error(&b->sb, rid, code, msg);
    ns__broker_reply(b, NS_CMD_ERROR);
}

void ns__broker_db_failed(ns_broker *b, ns_status st, const char *what) {
    if (st == NS_ERR_IO && b->db_up) {
        NS_LOGW("broker: database unavailable during %s: %s", what, ns_db_errmsg(b->db));
        b->db_up = false;
        b->db_retry_at = ns__broker_now();
    } else if (st != NS_ERR_IO) {
        NS_LOG_DEBUG_("broker: %s: %s", what, ns_db_errmsg(b->db));
    }
}

void ns__broker_reply_db_error(ns_broker *b, int64_t rid, ns_status st) {
    const char *code = NS_EC_INTERNAL;
    switch (st) {
    case NS_ERR_IO:
        code = NS_EC_UNAVAILABLE;
        break;
    case NS_ERR_NOT_FOUND:
        code = NS_EC_NOT_FOUND;
        break;
    case NS_ERR_STATE:
        code = NS_EC_INVALID_STATE;
        break;
    case NS_ERR_CONFLICT:
        code = NS_EC_DUPLICATE;
        break;
    case NS_ERR_CAPACITY:
        code = NS_EC_TOO_LARGE;
        break;
    case NS_ERR_FORMAT:
    case NS_ERR_INVALID_ARG:
    case NS_ERR_RANGE:
        code = NS_EC_BAD_REQUEST;
        break;
    default:
        break;
    }
    ns__broker_db_failed(b, st, "a request");
    ns__broker_reply_error(b, rid, code, "%s",
                           st == NS_ERR_IO ? "database unavailable, retry later" : ns_db_errmsg(b->db));
}

ns_status ns__body_find(const uint8_t *body, size_t len, const char *key, ns_mp_reader *val) {
    uint32_t n;
    ns_mp_reader_init(val, body, len);
    if (ns_mp_read_map(val, &n) != NS_OK) {
        return NS_ERR_FORMAT;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (ns_mp_read_str(val, &k, &kl) != NS_OK) {
            return NS_ERR_FORMAT;
        }
        if (ns_mp_str_eq(k, kl, key)) {
            return NS_OK;
        }
        if (ns_mp_skip(val) != NS_OK) {
            return NS_ERR_FORMAT;
        }
    }
    return NS_ERR_NOT_FOUND;
}

/* (Re)connect to PostgreSQL; on success renew leases first (they may be near
 * expiry after an outage), so the reaper does not take live workers' jobs. */
static void db_maintain(ns_broker *b, double now) {
    if (b->db_up || now < b->db_retry_at) {
        return;
    }
    if (ns_db_connect(b->db) != NS_OK) {
        NS_LOG_DEBUG_("broker: %s", ns_db_errmsg(b->db));
        b->db_retry_at = now + 1.0;
        return;
    }
    int ver = 0;
    if (ns_db_schema_version(b->db, &ver) != NS_OK || ver < ns_db_latest_version()) {
        NS_LOGE("broker: database schema version %d, need %d: run `nightshift migrate` or start with --migrate", ver,
                ns_db_latest_version());
        b->db_retry_at = now + 5.0;
        return;
    }
    NS_LOGI("broker: database connected (schema version %d)", ver);
    b->db_up = true;
    ns__broker_renew(b);
    b->next_renew = now + (double)b->cfg.lease_ms / 3000.0;
    b->dispatch_dirty = true;
}

static double min_d(double a, double b) {
    return a < b ? a : b;
}

ns_status ns__broker_run(ns_broker *b) {
    double now = ns__broker_now();
    b->next_hb = now + b->cfg.heartbeat_ms / 1000.0;
    b->next_reap = now + b->cfg.reap_ms / 1000.0;
    b->next_renew = now + (double)b->cfg.lease_ms / 3000.0;
    b->next_dispatch = now;
    b->next_watch = now;
    b->db_retry_at = now;
    if (b->cfg.migrate) {
        int from = 0, to = 0;
        ns_status st = ns_db_connect(b->db);
        if (st == NS_OK) {
            st = ns_db_migrate(b->db, &from, &to);
        }
        if (st != NS_OK) {
            NS_LOGE("broker: migration failed: %s", ns_db_errmsg(b->db));
            return st;
        }
        if (from != to) {
            NS_LOGI("broker: migrated schema from version %d to %d", from, to);
        }
    }
    db_maintain(b, now);
    NS_LOGI("broker: clients on %s, workers on %s", b->cfg.clients_ep, b->cfg.workers_ep);
    while (!*b->stop) {
        now = ns__broker_now();
        double wake = min_d(min_d(b->next_hb, b->next_reap), min_d(b->next_dispatch, b->next_watch));
        wake = min_d(wake, b->next_renew);
        if (!b->db_up) {
            wake = min_d(wake, b->db_retry_at);
        }
        long timeout = wake > now ? (long)((wake - now) * 1000.0) + 1 : 0;
        zmq_pollitem_t items[2] = {{b->clients, 0, ZMQ_POLLIN, 0}, {b->workers, 0, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, 2, b->dispatch_dirty ? 0 : timeout);
        if (rc < 0 && errno != EINTR) {
            NS_LOGE("broker: zmq_poll: %s", zmq_strerror(errno));
            return NS_ERR_IO;
        }
        /* Workers first: their DONE/CREDIT free capacity for the dispatch. */
        for (int i = 0; rc > 0 && (items[1].revents & ZMQ_POLLIN) && i < BATCH_PER_TURN; i++) {
            if (ns_proto_recv(b->workers, ZMQ_DONTWAIT, b->wrx) != NS_OK) {
                break;
            }
            ns__broker_on_worker(b);
        }
        for (int i = 0; rc > 0 && (items[0].revents & ZMQ_POLLIN) && i < BATCH_PER_TURN && !*b->stop; i++) {
            if (ns_proto_recv(b->clients, ZMQ_DONTWAIT, b->crx) != NS_OK) {
                break;
            }
            ns__broker_on_client(b);
        }
        now = ns__broker_now();
        db_maintain(b, now);
        if (now >= b->next_hb) {
            ns__broker_heartbeat(b, now);
            b->next_hb = now + b->cfg.heartbeat_ms / 1000.0;
        }
        if (b->db_up && now >= b->next_renew) {
            ns__broker_renew(b);
            b->next_renew = now + (double)b->cfg.lease_ms / 3000.0;
        }
        if (b->db_up && now >= b->next_reap) {
            int64_t n = 0;
            ns_status st = ns_queue_reap_expired(b->db, &n);
            if (st != NS_OK) {
                ns__broker_db_failed(b, st, "reaper");
            } else if (n > 0) {
                NS_LOGW("broker: reaper requeued %lld expired leases", (long long)n);
                b->dispatch_dirty = true;
            }
            b->next_reap = now + b->cfg.reap_ms / 1000.0;
        }
        if (b->db_up && (b->dispatch_dirty || now >= b->next_dispatch)) {
            b->dispatch_dirty = false;
            ns__broker_dispatch(b);
            b->next_dispatch = ns__broker_now() + b->cfg.dispatch_ms / 1000.0;
        }
        if (now >= b->next_watch) {
            ns__broker_watch_tick(b, now);
            b->next_watch = now + 0.1;
        }
        /* Keep reply buffers from holding on to a rare huge reply. */
        if (b->sb.alloc > (32u << 20)) {
            msgpack_sbuffer_destroy(&b->sb);
            msgpack_sbuffer_init(&b->sb);
        }
        if (b->sb2.alloc > (32u << 20)) {
            msgpack_sbuffer_destroy(&b->sb2);
            msgpack_sbuffer_init(&b->sb2);
        }
    }
    /* Drain: nothing is half-done (every request ran to its reply), so tell
     * workers and watchers we are leaving and let ZMQ_LINGER flush. Workers
     * keep their leased jobs, write results to PostgreSQL themselves and
     * re-announce in-flight jobs with READY to the next broker. */
    NS_LOGI("broker: shutting down (requests %llu, jobs enqueued %llu, dispatched %llu)",
            (unsigned long long)b->n_requests, (unsigned long long)b->n_jobs_enqueued,
            (unsigned long long)b->n_jobs_dispatched);
    ns__broker_workers_goodbye(b);
    ns__broker_watch_goodbye(b);
    return NS_OK;
}
