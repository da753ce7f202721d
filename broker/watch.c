/*
 * watch.c - WATCH subscriptions: EVENT messages with a batch's status until it
 * is done.
 *
 * A watcher is a (client routing id, rid, batch) entry in a fixed table. Each
 * tick the broker reads every watched batch in one query, and sends an EVENT
 * when the counters changed (at most once per interval_ms) or at least every
 * 10 s as a keep-alive. The EVENT with done = true is the last one. A watcher
 * whose client is gone (EHOSTUNREACH under ZMQ_ROUTER_MANDATORY) is dropped.
 */
#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "broker.h"
#include "ns_log.h"
#include "ns_mpack.h"

#define KEEPALIVE_S 10.0

static int64_t signature(const ns_batch_info *in) {
    int64_t s = in->queued;
    s = s * 31 + in->running;
    s = s * 31 + in->succeeded;
    s = s * 31 + in->failed;
    s = s * 31 + in->cancelled;
    s = s * 31 + in->total;
    s = s * 31 + (int64_t)in->state[0] + (int64_t)in->state[1];
    return s;
}

/* Send an EVENT for `w`; returns false when the client is gone. */
static bool send_event(ns_broker *b, ns_broker_watch *w, const ns_batch_info *info, double now) {
    msgpack_packer pk;
    ns__broker_pack_status(b, &pk, w->rid, info, NULL, 0);
    w->sig = signature(info);
    w->last_sent = now;
    if (ns__broker_send_client(b, w->id, w->id_len, w->empty_delim, NS_CMD_EVENT, &b->sb) != NS_OK) {
        return errno != EHOSTUNREACH;
    }
    return true;
}

ns_status ns__broker_watch_add(ns_broker *b, int64_t rid, int64_t batch_id, int interval_ms) {
    ns_broker_watch *w = NULL;
    for (int i = 0; i < b->cfg.max_watchers && w == NULL; i++) {
        if (!b->watches[i].used) {
            w = &b->watches[i];
        }
    }
    if (w == NULL) {
        return NS_ERR_CAPACITY;
    }
    if (b->crx->identity_len > sizeof w->id) {
        return NS_ERR_INVALID_ARG;
    }
    ns_batch_info info;
    ns_status st = ns_queue_batch_info(b->db, batch_id, &info, NULL);
    if (st != NS_OK) {
        return st;
    }
    double now = ns__broker_now();
    memset(w, 0, sizeof *w);
    memcpy(w->id, b->crx->identity, b->crx->identity_len);
    w->id_len = b->crx->identity_len;
    w->empty_delim = b->crx->empty_delim;
    w->rid = rid;
    w->batch_id = batch_id;
    w->interval_ms = interval_ms;
    w->next_at = now + interval_ms / 1000.0;
    /* The first EVENT is the reply; a finished batch ends the watch at once. */
    if (send_event(b, w, &info, now) && info.finished_at <= 0) {
        w->used = true;
    }
    return NS_OK;
}

typedef struct tick_ctx {
    ns_broker *b;
    double now;
} tick_ctx;

static void on_info(void *user, const ns_batch_info *info) {
    tick_ctx *c = user;
    ns_broker *b = c->b;
    bool done = info->finished_at > 0;
    int64_t sig = signature(info);
    for (int i = 0; i < b->cfg.max_watchers; i++) {
        ns_broker_watch *w = &b->watches[i];
        if (!w->used || w->batch_id != info->id || c->now < w->next_at) {
            continue;
        }
        w->next_at = c->now + w->interval_ms / 1000.0;
        if (sig == w->sig && !done && c->now - w->last_sent < KEEPALIVE_S) {
            continue;
        }
        if (!send_event(b, w, info, c->now) || done) {
            w->used = false;
        }
    }
}

void ns__broker_watch_tick(ns_broker *b, double now) {
    int64_t ids[256];
    size_t n = 0;
    if (!b->db_up) {
        return;
    }
    /* Distinct batches due now, in chunks of 256. */
    for (int i = 0; i <= b->cfg.max_watchers; i++) {
        if (i < b->cfg.max_watchers) {
            ns_broker_watch *w = &b->watches[i];
            if (!w->used || now < w->next_at) {
                continue;
            }
            bool seen = false;
            for (size_t k = 0; k < n && !seen; k++) {
                seen = ids[k] == w->batch_id;
            }
            if (!seen) {
                ids[n++] = w->batch_id;
            }
        }
        if (n == 256 || (i == b->cfg.max_watchers && n > 0)) {
            tick_ctx c = {b, now};
            ns_status st = ns_queue_batch_infos(b->db, ids, n, on_info, &c);
            if (st != NS_OK) {
                ns__broker_db_failed(b, st, "watch");
                return;
            }
            n = 0;
        }
    }
}

void ns__broker_watch_goodbye(ns_broker *b) {
    for (int i = 0; i < b->cfg.max_watchers; i++) {
        ns_broker_watch *w = &b->watches[i];
        if (w->used) {
            ns_proto_pack_error(&b->sb, w->rid, NS_EC_SHUTTING_DOWN, "broker is shutting down: watch again");
            ns__broker_send_client(b, w->id, w->id_len, w->empty_delim, NS_CMD_ERROR, &b->sb);
            w->used = false;
        }
    }
}
