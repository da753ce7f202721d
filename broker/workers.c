/*
 * workers.c - the worker side of the broker: registry, READY / CREDIT / DONE /
 * HEARTBEAT / DISCONNECT, credit-based dispatch, leases and cancels.
 *
 * A worker is known by its routing id (this connection) and its name (the
 * lease owner in PostgreSQL). The table has a fixed size (cfg.max_workers).
 * Liveness follows the Paranoid Pirate pattern: the broker sends HEARTBEAT
 * every heartbeat_ms, any message from a worker counts as a sign of life, and
 * a worker silent for liveness * heartbeat_ms is dropped at once: its leases
 * go back to the queue (charged as a failed attempt).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "broker.h"
#include "ns_log.h"
#include "ns_mpack.h"

#define MAX_SLOTS 4096
#define CLAIM_CHUNK 64

static const ns_mp_limits WORKER_LIMITS = {8, 100000};

static ns_broker_worker *find_by_id(ns_broker *b, const uint8_t *id, size_t len) {
    for (int i = 0; i < b->cfg.max_workers; i++) {
        ns_broker_worker *w = &b->wk[i];
        if (w->used && w->id_len == len && memcmp(w->id, id, len) == 0) {
            return w;
        }
    }
    return NULL;
}

static ns_broker_worker *find_by_name(ns_broker *b, const char *name) {
    for (int i = 0; i < b->cfg.max_workers; i++) {
        if (b->wk[i].used && strcmp(b->wk[i].name, name) == 0) {
            return &b->wk[i];
        }
    }
    return NULL;
}

static void send_worker(ns_broker *b, const ns_broker_worker *w, int cmd, const msgpack_sbuffer *sb) {
    if (ns_proto_send(b->workers, w->id, w->id_len, false, cmd, sb->data, sb->size, NULL, 0, ZMQ_DONTWAIT) != NS_OK) {
        NS_LOG_DEBUG_("broker: send %s to worker %s failed: %s", ns_cmd_name(cmd), w->name, zmq_strerror(errno));
    }
}

static void reply_worker_error(ns_broker *b, int64_t rid, const char *code, const char *msg) {
    ns_proto_pack_error(&b->sb, rid, code, msg);
    ns_proto_send(b->workers, b->wrx->identity, b->wrx->identity_len, b->wrx->empty_delim, NS_CMD_ERROR, b->sb.data,
                  b->sb.size, NULL, 0, ZMQ_DONTWAIT);
}

/* Remove a worker. `requeue`: return its leases to the queue (charged when
 * `charge`: it died holding them). */
static void drop_worker(ns_broker *b, ns_broker_worker *w, bool requeue, bool charge, const char *kind,
                        const char *why) {
    if (requeue && b->db_up) {
        int64_t n = 0;
        ns_status st = ns_queue_requeue_owner(b->db, w->name, charge, kind, why, NULL, NULL, 0, &n);
        if (st != NS_OK) {
            /* The reaper takes them once the leases expire (we stop renewing). */
            ns__broker_db_failed(b, st, "requeue of a lost worker's jobs");
        } else if (n > 0) {
            NS_LOGW("broker: worker %s: %lld jobs back to the queue (%s)", w->name, (long long)n, why);
            b->dispatch_dirty = true;
        }
    }
    NS_LOGI("broker: worker %s removed (%s)", w->name, why);
    memset(w, 0, sizeof *w);
}

/* READY {rid, name, model, slots, inflight: [[job_id, attempt], ...]} */
static void on_ready(ns_broker *b, int64_t rid) {
    const uint8_t *body = b->wrx->body;
    size_t blen = b->wrx->body_len;
    ns_mp_reader r;
    const char *s;
    size_t n;
    char name[NS_QUEUE_NAME_CAP], model[NS_QUEUE_NAME_CAP];
    int64_t slots = 0;
    char msg[160];

    if (ns__body_find(body, blen, "name", &r) != NS_OK || ns_mp_read_str(&r, &s, &n) != NS_OK || n == 0 ||
        n >= sizeof name || !ns_mp_text_ok(s, n)) {
        reply_worker_error(b, rid, NS_EC_BAD_REQUEST, "ready: 'name' must be a 1..256 byte UTF-8 string");
        return;
    }
    memcpy(name, s, n);
    name[n] = 0;
    if (ns__body_find(body, blen, "model", &r) != NS_OK || ns_mp_read_str(&r, &s, &n) != NS_OK || n == 0 ||
        n >= sizeof model || !ns_mp_text_ok(s, n)) {
        reply_worker_error(b, rid, NS_EC_BAD_REQUEST, "ready: 'model' must be a 1..256 byte UTF-8 string");
        return;
    }
    memcpy(model, s, n);
    model[n] = 0;
    if (ns__body_find(body, blen, "slots", &r) != NS_OK || ns_mp_read_int(&r, &slots) != NS_OK || slots < 1 ||
        slots > MAX_SLOTS) {
        reply_worker_error(b, rid, NS_EC_BAD_REQUEST, "ready: 'slots' must be an integer in 1..4096");
        return;
    }
    /* In-flight list: checked for shape first, adopted after. */
    ns_mp_reader inflight;
    uint32_t n_inflight = 0;
    bool have_inflight =
        ns__body_find(body, blen, "inflight", &inflight) == NS_OK && ns_mp_peek(&inflight) != NS_MP_NIL;
    if (have_inflight) {
        ns_mp_reader chk = inflight;
        if (ns_mp_read_array(&chk, &n_inflight) != NS_OK || n_inflight > MAX_SLOTS) {
            reply_worker_error(b, rid, NS_EC_BAD_REQUEST, "ready: 'inflight' must be an array of [job_id, attempt]");
            return;
        }
        for (uint32_t i = 0; i < n_inflight; i++) {
            uint32_t two;
            int64_t a, c;
            if (ns_mp_read_array(&chk, &two) != NS_OK || two != 2 || ns_mp_read_int(&chk, &a) != NS_OK ||
                ns_mp_read_int(&chk, &c) != NS_OK || a < 1 || c < 1 || c > INT32_MAX) {
                reply_worker_error(b, rid, NS_EC_BAD_REQUEST,
                                   "ready: 'inflight' must be an array of [job_id, attempt]");
                return;
            }
        }
        ns_mp_read_array(&inflight, &n_inflight);
    }
    if (!b->db_up) {
        reply_worker_error(b, rid, NS_EC_UNAVAILABLE, "database unavailable, send READY again later");
        return;
    }
    if (*b->stop) {
        reply_worker_error(b, rid, NS_EC_SHUTTING_DOWN, "broker is shutting down");
        return;
    }
    /* Same connection re-announcing, or the same name on a new connection
     * (worker restarted or reconnected): forget the old entry without
     * requeueing; the in-flight list below decides what it still holds. */
    ns_broker_worker *w = find_by_id(b, b->wrx->identity, b->wrx->identity_len);
    if (w != NULL) {
        memset(w, 0, sizeof *w);
    }
    w = find_by_name(b, name);
    if (w != NULL) {
        memset(w, 0, sizeof *w);
    }
    for (int i = 0; i < b->cfg.max_workers && w == NULL; i++) {
        if (!b->wk[i].used) {
            w = &b->wk[i];
        }
    }
    if (w == NULL) {
        reply_worker_error(b, rid, NS_EC_BUSY, "worker table full");
        return;
    }
    if (b->wrx->identity_len > sizeof w->id) {
        reply_worker_error(b, rid, NS_EC_BAD_REQUEST, "routing id too long");
        return;
    }
    /* Adopt what it still runs; everything else leased under its name is
     * requeued (charged: the previous incarnation lost it). */
    int64_t keep_ids[MAX_SLOTS];
    int32_t keep_at[MAX_SLOTS];
    int64_t drop_ids[MAX_SLOTS];
    int32_t drop_at[MAX_SLOTS];
    size_t n_keep = 0, n_drop = 0;
    ns_status st = NS_OK;
    for (uint32_t i = 0; i < n_inflight && st == NS_OK; i++) {
        uint32_t two;
        int64_t job, at;
        bool adopted = false;
        ns_mp_read_array(&inflight, &two);
        ns_mp_read_int(&inflight, &job);
        ns_mp_read_int(&inflight, &at);
        st = ns_queue_adopt(b->db, job, (int32_t)at, name, b->cfg.lease_ms, &adopted);
        if (adopted) {
            keep_ids[n_keep] = job;
            keep_at[n_keep++] = (int32_t)at;
        } else {
            drop_ids[n_drop] = job;
            drop_at[n_drop++] = (int32_t)at;
        }
    }
    int64_t n_requeued = 0;
    if (st == NS_OK) {
        st = ns_queue_requeue_owner(b->db, name, true, "worker_restarted",
                                    "the worker restarted or reconnected without this job", keep_ids, keep_at, n_keep,
                                    &n_requeued);
    }
    if (st != NS_OK) {
        ns__broker_db_failed(b, st, "ready");
        reply_worker_error(b, rid, st == NS_ERR_IO ? NS_EC_UNAVAILABLE : NS_EC_INTERNAL, ns_db_errmsg(b->db));
        return;
    }
    memset(w, 0, sizeof *w);
    w->used = true;
    memcpy(w->id, b->wrx->identity, b->wrx->identity_len);
    w->id_len = b->wrx->identity_len;
    snprintf(w->name, sizeof w->name, "%s", name);
    snprintf(w->model, sizeof w->model, "%s", model);
    w->slots = (int32_t)slots;
    w->inflight = (int32_t)n_keep;
    w->credit = w->slots - w->inflight;
    w->last_seen = w->ready_at = ns__broker_now();
    b->dispatch_dirty = true;
    snprintf(msg, sizeof msg, "%zu adopted, %zu dropped, %lld requeued", n_keep, n_drop, (long long)n_requeued);
    NS_LOGI("broker: worker %s ready (model %s, %d slots; %s)", w->name, w->model, w->slots, msg);

    msgpack_packer pk;
    ns_proto_pack_begin(&b->sb, &pk, 5, rid);
    ns_mp_pack_kv_int(&pk, "heartbeat_ms", b->cfg.heartbeat_ms);
    ns_mp_pack_kv_int(&pk, "lease_ms", b->cfg.lease_ms);
    ns_mp_pack_cstr(&pk, "adopted");
    msgpack_pack_array(&pk, n_keep);
    for (size_t i = 0; i < n_keep; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_int64(&pk, keep_ids[i]);
        msgpack_pack_int32(&pk, keep_at[i]);
    }
    ns_mp_pack_cstr(&pk, "dropped");
    msgpack_pack_array(&pk, n_drop);
    for (size_t i = 0; i < n_drop; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_int64(&pk, drop_ids[i]);
        msgpack_pack_int32(&pk, drop_at[i]);
    }
    send_worker(b, w, NS_CMD_OK, &b->sb);
}

void ns__broker_on_worker(ns_broker *b) {
    ns_err err = {0};
    ns_proto_rx *rx = b->wrx;
    ns_status st = ns_proto_parse(rx, true, &err);
    if (st != NS_OK) {
        b->n_bad++;
        if (rx->identity != NULL) {
            reply_worker_error(b, -1, NS_EC_BAD_REQUEST, ns_err_msg(&err));
        }
        return;
    }
    if (ns_mp_check(rx->body, rx->body_len, &WORKER_LIMITS, &err) != NS_OK) {
        b->n_bad++;
        reply_worker_error(b, -1, NS_EC_BAD_REQUEST, ns_err_msg(&err));
        return;
    }
    int64_t rid = ns_proto_body_rid(rx->body, rx->body_len);
    if (rx->n_payload > 0) {
        b->n_bad++;
        reply_worker_error(b, rid, NS_EC_BAD_REQUEST, "worker messages take no payload frames");
        return;
    }
    if (rx->cmd == NS_CMD_READY) {
        on_ready(b, rid);
        return;
    }
    ns_broker_worker *w = find_by_id(b, rx->identity, rx->identity_len);
    if (w == NULL) {
        if (rx->cmd != NS_CMD_DISCONNECT) {
            reply_worker_error(b, rid, NS_EC_UNKNOWN_WORKER, "unknown worker: send READY (with your in-flight jobs)");
        }
        return;
    }
    w->last_seen = ns__broker_now();
    ns_mp_reader r;
    int64_t v;
    switch (rx->cmd) {
    case NS_CMD_HEARTBEAT:
        break;
    case NS_CMD_CREDIT:
        if (ns__body_find(rx->body, rx->body_len, "credit", &r) != NS_OK || ns_mp_read_int(&r, &v) != NS_OK || v < 0 ||
            v > MAX_SLOTS) {
            reply_worker_error(b, rid, NS_EC_BAD_REQUEST, "credit: 'credit' must be an integer in 0..4096");
            return;
        }
        w->credit += (int32_t)v;
        if (w->credit > w->slots) {
            w->credit = w->slots; /* never more outstanding than announced */
        }
        if (v > 0) {
            b->dispatch_dirty = true;
        }
        break;
    case NS_CMD_DONE:
        if (w->inflight > 0) {
            w->inflight--;
        }
        w->jobs_done++;
        break;
    case NS_CMD_DISCONNECT:
        /* A graceful exit: whatever it still holds was not its fault. */
        drop_worker(b, w, true, false, "released", "worker disconnected");
        break;
    default:
        b->n_bad++;
        reply_worker_error(b, rid, NS_EC_UNKNOWN_COMMAND, "unknown worker command");
        break;
    }
}

typedef struct dispatch_ctx {
    ns_broker *b;
    ns_broker_worker *w;
    int sent;
} dispatch_ctx;

/* Send one claimed job; on failure give it back at once (uncharged). */
static void send_job(void *user, const ns_claimed_job *j) {
    dispatch_ctx *c = user;
    ns_broker *b = c->b;
    msgpack_packer pk;
    uint32_t n = 13 + (j->has_seed ? 1 : 0) + (j->stop_json ? 1 : 0);
    int rc;
    msgpack_sbuffer_clear(&b->sb);
    msgpack_packer_init(&pk, &b->sb, msgpack_sbuffer_write);
    rc = msgpack_pack_map(&pk, n);
    rc |= ns_mp_pack_kv_int(&pk, "job_id", j->job_id);
    rc |= ns_mp_pack_kv_int(&pk, "batch_id", j->batch_id);
    rc |= ns_mp_pack_kv_int(&pk, "attempt", j->attempt);
    rc |= ns_mp_pack_kv_int(&pk, "lease_ms", b->cfg.lease_ms);
    rc |= ns_mp_pack_kv_str(&pk, "model", c->w->model);
    rc |= ns_mp_pack_kv_str(&pk, "custom_id", j->custom_id);
    if (j->prompt != NULL) {
        rc |= ns_mp_pack_kv_str(&pk, "prompt", j->prompt);
    } else {
        rc |= ns_mp_pack_cstr(&pk, "messages");
        rc |= ns_json_to_mp(j->messages_json ? j->messages_json : "[]", j->messages_json ? strlen(j->messages_json) : 2,
                            &pk, NULL) != NS_OK;
    }
    rc |= ns_mp_pack_kv_int(&pk, "max_tokens", j->max_tokens);
    rc |= ns_mp_pack_kv_double(&pk, "temperature", j->temperature);
    rc |= ns_mp_pack_kv_int(&pk, "top_k", j->top_k);
    rc |= ns_mp_pack_kv_double(&pk, "top_p", j->top_p);
    rc |= ns_mp_pack_kv_double(&pk, "min_p", j->min_p);
    if (j->has_seed) {
        rc |= ns_mp_pack_kv_int(&pk, "seed", j->seed);
    }
    if (j->stop_json != NULL) {
        rc |= ns_mp_pack_cstr(&pk, "stop");
        rc |= ns_json_to_mp(j->stop_json, strlen(j->stop_json), &pk, NULL) != NS_OK;
    }
    rc |= ns_mp_pack_kv_str(&pk, "rid", NULL);
    if (rc == 0 && ns_proto_send(b->workers, c->w->id, c->w->id_len, false, NS_CMD_JOB, b->sb.data, b->sb.size, NULL, 0,
                                 ZMQ_DONTWAIT) == NS_OK) {
        c->sent++;
        return;
    }
    NS_LOGW("broker: could not send job %" PRId64 " to worker %s (%s): released", j->job_id, c->w->name,
            rc ? "encoding failed" : zmq_strerror(errno));
    ns_status st = ns_queue_release(b->db, j->job_id, j->attempt);
    if (st != NS_OK && st != NS_ERR_CONFLICT) {
        ns__broker_db_failed(b, st, "release of an unsendable job");
    }
}

void ns__broker_dispatch(ns_broker *b) {
    /* Models found empty in this round are not claimed again for other workers. */
    const char *empty[64];
    int n_empty = 0;
    if (*b->stop) {
        return;
    }
    for (int i = 0; i < b->cfg.max_workers && b->db_up; i++) {
        ns_broker_worker *w = &b->wk[i];
        if (!w->used || w->credit <= 0) {
            continue;
        }
        bool skip = false;
        for (int k = 0; k < n_empty && !skip; k++) {
            skip = strcmp(empty[k], w->model) == 0;
        }
        if (skip) {
            continue;
        }
        while (w->credit > 0) {
            dispatch_ctx c = {b, w, 0};
            int want = w->credit < CLAIM_CHUNK ? w->credit : CLAIM_CHUNK;
            int got = 0;
            ns_status st = ns_queue_claim(b->db, w->model, w->name, want, b->cfg.lease_ms, send_job, &c, &got);
            if (st != NS_OK) {
                ns__broker_db_failed(b, st, "claim");
                return;
            }
            w->credit -= c.sent;
            w->inflight += c.sent;
            b->n_jobs_dispatched += (uint64_t)c.sent;
            if (got < want || c.sent < got) {
                if (got < want && n_empty < 64) {
                    empty[n_empty++] = w->model;
                }
                break;
            }
        }
    }
}

void ns__broker_heartbeat(ns_broker *b, double now) {
    double limit = (double)b->cfg.heartbeat_ms * b->cfg.liveness / 1000.0;
    msgpack_packer pk;
    ns_proto_pack_begin(&b->sb, &pk, 1, -1);
    for (int i = 0; i < b->cfg.max_workers; i++) {
        ns_broker_worker *w = &b->wk[i];
        if (!w->used) {
            continue;
        }
        if (now - w->last_seen > limit) {
            char why[96];
            snprintf(why, sizeof why, "silent for %.1f s (worker lost)", now - w->last_seen);
            drop_worker(b, w, true, true, "worker_lost", why);
            ns_proto_pack_begin(&b->sb, &pk, 1, -1);
            continue;
        }
        send_worker(b, w, NS_CMD_HEARTBEAT, &b->sb);
    }
}

void ns__broker_renew(ns_broker *b) {
    for (int i = 0; i < b->cfg.max_workers && b->db_up; i++) {
        ns_broker_worker *w = &b->wk[i];
        if (!w->used) {
            continue;
        }
        ns_status st = ns_queue_renew_leases(b->db, w->name, b->cfg.lease_ms, NULL);
        if (st != NS_OK) {
            ns__broker_db_failed(b, st, "lease renewal");
        }
    }
}

void ns__broker_workers_goodbye(ns_broker *b) {
    msgpack_packer pk;
    ns_proto_pack_begin(&b->sb, &pk, 1, -1);
    for (int i = 0; i < b->cfg.max_workers; i++) {
        if (b->wk[i].used) {
            send_worker(b, &b->wk[i], NS_CMD_DISCONNECT, &b->sb);
        }
    }
}

void ns__broker_cancel_job(void *user, int64_t job_id, int32_t attempt, const char *owner) {
    ns_broker *b = user;
    ns_broker_worker *w = find_by_name(b, owner);
    if (w == NULL) {
        return; /* not ours (another broker) or gone: the reaper/READY path finishes it */
    }
    msgpack_packer pk;
    ns_proto_pack_begin(&b->sb2, &pk, 3, -1);
    ns_mp_pack_kv_int(&pk, "job_id", job_id);
    ns_mp_pack_kv_int(&pk, "attempt", attempt);
    send_worker(b, w, NS_CMD_CANCEL_JOB, &b->sb2);
}

void ns__broker_pack_workers(ns_broker *b, int64_t rid) {
    msgpack_packer pk;
    uint32_t n = 0;
    double now = ns__broker_now();
    for (int i = 0; i < b->cfg.max_workers; i++) {
        n += b->wk[i].used;
    }
    ns_proto_pack_begin(&b->sb, &pk, 2, rid);
    ns_mp_pack_cstr(&pk, "workers");
    msgpack_pack_array(&pk, n);
    for (int i = 0; i < b->cfg.max_workers; i++) {
        const ns_broker_worker *w = &b->wk[i];
        if (!w->used) {
            continue;
        }
        msgpack_pack_map(&pk, 8);
        ns_mp_pack_kv_str(&pk, "name", w->name);
        ns_mp_pack_kv_str(&pk, "model", w->model);
        ns_mp_pack_kv_int(&pk, "slots", w->slots);
        ns_mp_pack_kv_int(&pk, "credit", w->credit);
        ns_mp_pack_kv_int(&pk, "inflight", w->inflight);
        ns_mp_pack_kv_int(&pk, "jobs_done", w->jobs_done);
        ns_mp_pack_kv_double(&pk, "idle_ms", (now - w->last_seen) * 1000.0);
        ns_mp_pack_kv_double(&pk, "uptime_s", now - w->ready_at);
    }
}
