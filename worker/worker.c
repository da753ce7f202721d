/*
 * worker.c - nightshift-worker's I/O loop (see worker.h and docs/worker.md).
 */
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "ns_db.h"
#include "ns_job.h"
#include "ns_log.h"
#include "ns_mpack.h"
#include "ns_proto.h"
#include "ns_queue.h"
#include "ns_util.h"

/* A job received from the broker and not yet reported DONE. */
typedef struct wk_held {
    int64_t job_id;
    int32_t attempt;
} wk_held;

struct wk_worker {
    wk_config cfg;
    wk_engine *eng;
    wk_prep_ctx prep;
    int32_t slots;
    volatile sig_atomic_t *stop;

    void *zctx;
    void *sock; /* DEALER to the broker's workers socket */
    ns_proto_rx *rx;
    msgpack_sbuffer sb;
    int64_t next_rid;

    /* connection state */
    bool registered;     /* READY answered with OK on this socket */
    int64_t ready_rid;   /* rid of the READY in flight */
    double ready_sent;   /* when it was sent (0: not sent) */
    double last_broker;  /* last message from the broker */
    double next_hb;      /* next HEARTBEAT to send */
    double reconnect_at; /* >0: reconnect at this time (after DISCONNECT / errors) */
    int hb_ms;

    /* database */
    ns_db *db;
    bool db_up;
    double db_retry_at;

    /* jobs */
    wk_held *held; /* [held_cap] jobs received and not yet DONE */
    int32_t n_held, held_cap;
    wk_job *pending, *pending_tail; /* finished, waiting for their write to commit */
    int32_t credit_owed;

    /* shutdown */
    bool draining, released, fatal;
    double drain_deadline;
    uint64_t n_ok, n_failed, n_cancelled, n_released, n_stale;
};

static double now_s(void) {
    return ns_time_s();
}

/* ---- held table --------------------------------------------------------- */

/* Index of (job_id, attempt) in the held table; attempt -1 matches any. */
static int32_t held_find(const wk_worker *w, int64_t job_id, int32_t attempt) {
    for (int32_t i = 0; i < w->n_held; i++) {
        if (w->held[i].job_id == job_id && (attempt < 0 || w->held[i].attempt == attempt)) {
            return i;
        }
    }
    return -1;
}

static void held_remove(wk_worker *w, int64_t job_id, int32_t attempt) {
    for (int32_t i = 0; i < w->n_held; i++) {
        if (w->held[i].job_id == job_id && w->held[i].attempt == attempt) {
            w->held[i] = w->held[--w->n_held];
            return;
        }
    }
}

/* ---- sending ------------------------------------------------------------- */

static void send_body(wk_worker *w, int cmd) {
    if (w->sock == NULL) {
        return;
    }
    if (ns_proto_send(w->sock, NULL, 0, false, cmd, w->sb.data, w->sb.size, NULL, 0, ZMQ_DONTWAIT) != NS_OK) {
        NS_LOG_DEBUG_("worker: send %s failed: %s", ns_cmd_name(cmd), zmq_strerror(errno));
    }
}

static void send_simple(wk_worker *w, int cmd) {
    msgpack_packer pk;
    ns_proto_pack_begin(&w->sb, &pk, 1, -1);
    send_body(w, cmd);
}

static void send_ready(wk_worker *w) {
    msgpack_packer pk;
    w->ready_rid = w->next_rid++;
    ns_proto_pack_begin(&w->sb, &pk, 5, w->ready_rid);
    ns_mp_pack_kv_str(&pk, "name", w->cfg.name);
    ns_mp_pack_kv_str(&pk, "model", w->cfg.model_name);
    ns_mp_pack_kv_int(&pk, "slots", w->slots);
    ns_mp_pack_cstr(&pk, "inflight");
    msgpack_pack_array(&pk, (uint32_t)w->n_held);
    for (int32_t i = 0; i < w->n_held; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_int64(&pk, w->held[i].job_id);
        msgpack_pack_int32(&pk, w->held[i].attempt);
    }
    send_body(w, NS_CMD_READY);
    w->ready_sent = now_s();
    w->credit_owed = 0; /* READY resets the broker's count: credit = slots - adopted */
    NS_LOGI("worker: READY sent to %s (%d slots, %d in flight)", w->cfg.broker, w->slots, w->n_held);
}

static void send_done(wk_worker *w, const wk_job *j, const char *state) {
    if (!w->registered) {
        return; /* the next READY tells the broker what we still hold */
    }
    msgpack_packer pk;
    ns_proto_pack_begin(&w->sb, &pk, 4, -1);
    ns_mp_pack_kv_int(&pk, "job_id", j->job_id);
    ns_mp_pack_kv_int(&pk, "attempt", j->attempt);
    ns_mp_pack_kv_str(&pk, "state", state);
    send_body(w, NS_CMD_DONE);
}

static void send_credit(wk_worker *w) {
    if (!w->registered || w->credit_owed <= 0 || w->draining) {
        return;
    }
    msgpack_packer pk;
    ns_proto_pack_begin(&w->sb, &pk, 2, -1);
    ns_mp_pack_kv_int(&pk, "credit", w->credit_owed);
    send_body(w, NS_CMD_CREDIT);
    w->credit_owed = 0;
}

/* ---- connection ---------------------------------------------------------- */

static void disconnect_sock(wk_worker *w) {
    if (w->sock != NULL) {
        zmq_close(w->sock);
        w->sock = NULL;
    }
    w->registered = false;
    w->ready_sent = 0;
}

static ns_status connect_sock(wk_worker *w) {
    disconnect_sock(w);
    w->sock = zmq_socket(w->zctx, ZMQ_DEALER);
    if (w->sock == NULL) {
        return NS_ERR_IO;
    }
    int linger = 500, ivl = 200, ivl_max = 2000;
    int64_t maxmsg = (int64_t)ns_proto_default_limits.max_frame_bytes;
    zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(w->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(w->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    if (zmq_connect(w->sock, w->cfg.broker) != 0) {
        NS_LOGE("worker: cannot connect to %s: %s", w->cfg.broker, zmq_strerror(errno));
        zmq_close(w->sock);
        w->sock = NULL;
        return NS_ERR_IO;
    }
    w->last_broker = now_s();
    w->next_hb = w->last_broker + w->hb_ms / 1000.0;
    w->reconnect_at = 0;
    send_ready(w);
    return NS_OK;
}

/* ---- database writes ----------------------------------------------------- */

static void db_down(wk_worker *w, const char *what) {
    if (w->db_up) {
        NS_LOGW("worker: PostgreSQL unavailable (%s: %s); keeping %s results in memory and retrying", what,
                ns_db_errmsg(w->db), "finished");
    }
    w->db_up = false;
    w->db_retry_at = now_s() + 1.0;
}

static void db_try_connect(wk_worker *w) {
    if (w->db_up || now_s() < w->db_retry_at) {
        return;
    }
    if (ns_db_connect(w->db) == NS_OK) {
        w->db_up = true;
        NS_LOGI("worker: connected to PostgreSQL");
    } else {
        w->db_retry_at = now_s() + 1.0;
    }
}

/* PostgreSQL text cannot hold NUL bytes; a model may still emit <0x00>. */
static void strip_nul(ns_buf *b) {
    size_t o = 0;
    for (size_t i = 0; i < b->len; i++) {
        if (b->data[i] != 0) {
            b->data[o++] = b->data[i];
        }
    }
    b->len = o;
}

/* Did the server refuse the row itself (bad data), as opposed to failing to
 * run the statement (connection lost mid-query, shutdown, recovery)? Only
 * the first is final; the second is retried like a lost connection. */
static bool db_rejected_row(ns_db *db) {
    const char *ss = ns_db_sqlstate(db);
    if (!ns_db_connected(db) || ss == NULL || strlen(ss) != 5) {
        return false;
    }
    return strncmp(ss, "22", 2) == 0 || strncmp(ss, "23", 2) == 0 || strncmp(ss, "42", 2) == 0;
}

static double ms_between(double a, double b) {
    return (a > 0 && b >= a) ? (b - a) * 1000.0 : -1.0;
}

/* Write one finished job's outcome. NS_OK: settled (committed or stale);
 * NS_ERR_IO: try again later. *state gets what to report in DONE. */
static ns_status write_outcome(wk_worker *w, wk_job *j, const char **state) {
    ns_status st;
    char new_state[16] = "";
    switch (j->outcome) {
    case WK_OUT_OK: {
        strip_nul(&j->text);
        ns_job_result res = {
            .text = j->text.len > 0 ? (const char *)j->text.data : "",
            .text_len = j->text.len,
            .finish_reason = j->finish_reason != NULL ? j->finish_reason : "stop",
            .prompt_tokens = j->n_prompt,
            .completion_tokens = j->n_generated,
            .queue_ms = ms_between(j->t_recv, j->t_admit),
            .prefill_ms = ms_between(j->t_admit, j->t_first),
            .decode_ms = ms_between(j->t_first, j->t_done),
            .total_ms = ms_between(j->t_recv, j->t_done),
        };
        st = ns_queue_complete(w->db, j->job_id, j->attempt, w->cfg.name, &res);
        *state = "succeeded";
        if (st == NS_ERR_DB && db_rejected_row(w->db)) {
            /* The server refused the row (it cannot be a transient failure):
             * record that as the job's error instead of retrying forever. */
            NS_LOGE("worker: job %" PRId64 ": result rejected: %s", j->job_id, ns_db_errmsg(w->db));
            wk_job_set_error(j, "result_rejected", false, "PostgreSQL rejected the result: %s", ns_db_errmsg(w->db));
            return write_outcome(w, j, state);
        }
        if (st == NS_OK) {
            w->n_ok++;
        }
        break;
    }
    case WK_OUT_FAILED:
        st = ns_queue_fail(w->db, j->job_id, j->attempt, w->cfg.name, j->err_kind, j->err_msg, j->retryable, new_state);
        *state = "failed";
        if (st == NS_OK) {
            w->n_failed++;
            NS_LOGW("worker: job %" PRId64 " (%s) failed: %s: %s -> %s", j->job_id, j->custom_id, j->err_kind,
                    j->err_msg, new_state);
        }
        break;
    case WK_OUT_CANCELLED:
        st = ns_queue_ack_cancel(w->db, j->job_id, j->attempt);
        *state = "cancelled";
        if (st == NS_OK) {
            w->n_cancelled++;
        }
        break;
    case WK_OUT_RELEASED:
    case WK_OUT_NONE:
    default:
        st = ns_queue_release(w->db, j->job_id, j->attempt);
        *state = "released";
        if (st == NS_OK) {
            w->n_released++;
        }
        break;
    }
    if (st == NS_ERR_CONFLICT) {
        /* Our lease is gone (the job was requeued or cancelled and maybe run
         * elsewhere): nothing was written, and nothing should be. */
        NS_LOGI("worker: job %" PRId64 " attempt %d: stale lease, outcome dropped", j->job_id, j->attempt);
        w->n_stale++;
        *state = "stale";
        return NS_OK;
    }
    if (st == NS_OK) {
        return NS_OK;
    }
    if (st == NS_ERR_IO) {
        return NS_ERR_IO;
    }
    /* Any other server error for fail/ack/release: keep the job pending and
     * retry, like a connection loss, but say so. */
    NS_LOGE("worker: job %" PRId64 ": write failed: %s", j->job_id, ns_db_errmsg(w->db));
    return NS_ERR_IO;
}

static void flush_pending(wk_worker *w) {
    db_try_connect(w);
    while (w->pending != NULL && w->db_up) {
        wk_job *j = w->pending;
        const char *state = "";
        if (write_outcome(w, j, &state) != NS_OK) {
            db_down(w, "result write");
            return;
        }
        w->pending = j->next;
        if (w->pending == NULL) {
            w->pending_tail = NULL;
        }
        send_done(w, j, state);
        held_remove(w, j->job_id, j->attempt);
        w->credit_owed++;
        wk_job_free(j);
    }
    send_credit(w);
}

static void push_pending(wk_worker *w, wk_job *j) {
    j->next = NULL;
    if (w->pending_tail != NULL) {
        w->pending_tail->next = j;
    } else {
        w->pending = j;
    }
    w->pending_tail = j;
}

/* ---- broker messages ----------------------------------------------------- */

static void on_job(wk_worker *w) {
    ns_job_msg m;
    ns_err err = {0};
    ns_status st = ns_job_msg_decode(w->rx->body, w->rx->body_len, NULL, &m, &err);
    if (st != NS_OK) {
        /* Without job_id and attempt we cannot even fail it: the lease
         * expires and the broker's reaper requeues it. */
        NS_LOGE("worker: undecodable JOB: %s", ns_err_msg(&err));
        int64_t id = -1, at = -1;
        ns_mp_reader r;
        uint32_t n;
        ns_mp_reader_init(&r, w->rx->body, w->rx->body_len);
        if (ns_mp_read_map(&r, &n) == NS_OK) {
            for (uint32_t i = 0; i < n; i++) {
                const char *k;
                size_t kl;
                if (ns_mp_read_str(&r, &k, &kl) != NS_OK) {
                    break;
                }
                if (ns_mp_str_eq(k, kl, "job_id")) {
                    (void)ns_mp_read_int(&r, &id);
                } else if (ns_mp_str_eq(k, kl, "attempt")) {
                    (void)ns_mp_read_int(&r, &at);
                } else if (ns_mp_skip(&r) != NS_OK) {
                    break;
                }
            }
        }
        if (id > 0 && at > 0 && at <= INT32_MAX) {
            wk_job *j = calloc(1, sizeof(*j));
            if (j != NULL && w->n_held < w->held_cap) {
                j->job_id = id;
                j->attempt = (int32_t)at;
                wk_job_set_error(j, "invalid_job", false, "%s", ns_err_msg(&err));
                w->held[w->n_held++] = (wk_held){id, (int32_t)at};
                push_pending(w, j);
            } else {
                free(j);
            }
        }
        return;
    }
    if (held_find(w, m.job_id, m.attempt) >= 0) {
        NS_LOGW("worker: job %" PRId64 " attempt %d sent twice; ignored", m.job_id, m.attempt);
        return;
    }
    int32_t older = held_find(w, m.job_id, -1);
    if (older >= 0) {
        /* A newer lease of a job we still run under an older one (the broker
         * requeued it while we were out of touch): the old attempt's outcome
         * would be stale, so stop it and run the new one. */
        NS_LOGI("worker: job %" PRId64 " came back as attempt %d; dropping attempt %d", m.job_id, m.attempt,
                w->held[older].attempt);
        wk_engine_cancel(w->eng, m.job_id, w->held[older].attempt);
    }
    wk_job *j = NULL;
    bool give_back = w->draining || w->n_held >= w->held_cap || !ns_mp_str_eq(m.model, m.model_len, w->cfg.model_name);
    if (give_back) {
        j = calloc(1, sizeof(*j));
        if (j == NULL) {
            return; /* the lease expires and it is requeued */
        }
        j->job_id = m.job_id;
        j->attempt = m.attempt;
        j->outcome = WK_OUT_RELEASED;
    } else if (wk_job_prepare(&m, &w->prep, &j, &err) != NS_OK) {
        NS_LOGE("worker: job %" PRId64 ": %s", m.job_id, ns_err_msg(&err));
        return; /* out of memory: the lease expires and it is requeued */
    }
    if (w->n_held >= w->held_cap) {
        /* More jobs than we announced: give it back without tracking it. */
        ns_status rs = w->db_up ? ns_queue_release(w->db, j->job_id, j->attempt) : NS_ERR_IO;
        if (rs == NS_ERR_IO) {
            db_down(w, "release");
        }
        wk_job_free(j);
        return;
    }
    w->held[w->n_held++] = (wk_held){m.job_id, m.attempt};
    if (j->outcome != WK_OUT_NONE) {
        push_pending(w, j); /* bad job or given back: write that now */
    } else {
        wk_engine_submit(w->eng, j);
    }
}

static void on_cancel(wk_worker *w) {
    ns_mp_reader r;
    uint32_t n;
    int64_t id = -1, at = -1;
    ns_mp_reader_init(&r, w->rx->body, w->rx->body_len);
    if (ns_mp_read_map(&r, &n) != NS_OK) {
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        if (ns_mp_read_str(&r, &k, &kl) != NS_OK) {
            return;
        }
        if (ns_mp_str_eq(k, kl, "job_id")) {
            (void)ns_mp_read_int(&r, &id);
        } else if (ns_mp_str_eq(k, kl, "attempt")) {
            (void)ns_mp_read_int(&r, &at);
        } else if (ns_mp_skip(&r) != NS_OK) {
            return;
        }
    }
    if (id <= 0) {
        return;
    }
    if (held_find(w, id, at > 0 && at <= INT32_MAX ? (int32_t)at : -1) >= 0) {
        /* comes back as CANCELLED (or finished first) */
        wk_engine_cancel(w->eng, id, at > 0 && at <= INT32_MAX ? (int32_t)at : -1);
    } else if (at > 0 && at <= INT32_MAX && w->db_up) {
        /* Not ours any more as far as we know; the fenced ack is harmless. */
        ns_status st = ns_queue_ack_cancel(w->db, id, (int32_t)at);
        if (st == NS_ERR_IO) {
            db_down(w, "cancel");
        }
    }
}

static void on_ready_ok(wk_worker *w, const uint8_t *body, size_t len) {
    w->registered = true;
    w->ready_sent = 0;
    ns_mp_reader r;
    uint32_t n;
    ns_mp_reader_init(&r, body, len);
    if (ns_mp_read_map(&r, &n) != NS_OK) {
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        size_t kl;
        int64_t v;
        if (ns_mp_read_str(&r, &k, &kl) != NS_OK) {
            return;
        }
        if (ns_mp_str_eq(k, kl, "heartbeat_ms") && ns_mp_read_int(&r, &v) == NS_OK) {
            if (v >= 50 && v <= 60000) {
                w->hb_ms = (int)v;
            }
        } else if (ns_mp_str_eq(k, kl, "dropped") && ns_mp_peek(&r) == NS_MP_ARRAY) {
            uint32_t m;
            (void)ns_mp_read_array(&r, &m);
            for (uint32_t q = 0; q < m; q++) {
                uint32_t two;
                int64_t id, at;
                if (ns_mp_read_array(&r, &two) != NS_OK || two != 2 || ns_mp_read_int(&r, &id) != NS_OK ||
                    ns_mp_read_int(&r, &at) != NS_OK) {
                    return;
                }
                /* The lease is lost: stop working on it (its write would be stale). */
                if (at > 0 && at <= INT32_MAX) {
                    wk_engine_cancel(w->eng, id, (int32_t)at);
                }
            }
        } else if (ns_mp_skip(&r) != NS_OK) {
            return;
        }
    }
    NS_LOGI("worker: registered with the broker (heartbeat %d ms)", w->hb_ms);
}

static void on_error(wk_worker *w, const uint8_t *body, size_t len) {
    ns_mp_reader r;
    uint32_t n;
    const char *code = "", *msg = "";
    size_t cl = 0, ml = 0;
    int64_t rid = -1;
    ns_mp_reader_init(&r, body, len);
    if (ns_mp_read_map(&r, &n) == NS_OK) {
        for (uint32_t i = 0; i < n; i++) {
            const char *k;
            size_t kl;
            if (ns_mp_read_str(&r, &k, &kl) != NS_OK) {
                break;
            }
            if (ns_mp_str_eq(k, kl, "code") && ns_mp_peek(&r) == NS_MP_STR) {
                (void)ns_mp_read_str(&r, &code, &cl);
            } else if (ns_mp_str_eq(k, kl, "message") && ns_mp_peek(&r) == NS_MP_STR) {
                (void)ns_mp_read_str(&r, &msg, &ml);
            } else if (ns_mp_str_eq(k, kl, "rid") && ns_mp_peek(&r) != NS_MP_NIL) {
                (void)ns_mp_read_int(&r, &rid);
            } else if (ns_mp_skip(&r) != NS_OK) {
                break;
            }
        }
    }
    NS_LOGW("worker: broker error %.*s: %.*s", (int)cl, code, (int)ml, msg);
    if (ns_mp_str_eq(code, cl, NS_EC_UNKNOWN_WORKER)) {
        /* The broker does not know us (it restarted, or dropped us). Every
         * message we sent meanwhile earns one of these: send READY once, not
         * once per error, since each READY makes the broker requeue what it
         * does not list. */
        if (w->registered || w->ready_sent == 0) {
            w->registered = false;
            send_ready(w);
        }
    } else if (rid == w->ready_rid || !w->registered) {
        /* READY refused (database down, broker draining, table full): again in a second. */
        w->registered = false;
        w->ready_sent = 0;
        w->reconnect_at = now_s() + 1.0;
    }
}

static void on_broker_msg(wk_worker *w) {
    ns_err err = {0};
    if (ns_proto_parse(w->rx, false, &err) != NS_OK || ns_mp_check(w->rx->body, w->rx->body_len, NULL, &err) != NS_OK) {
        NS_LOGW("worker: malformed message from the broker: %s", ns_err_msg(&err));
        return;
    }
    w->last_broker = now_s();
    switch (w->rx->cmd) {
    case NS_CMD_JOB:
        on_job(w);
        break;
    case NS_CMD_CANCEL_JOB:
        on_cancel(w);
        break;
    case NS_CMD_HEARTBEAT:
        break;
    case NS_CMD_OK:
        if (ns_proto_body_rid(w->rx->body, w->rx->body_len) == w->ready_rid) {
            on_ready_ok(w, w->rx->body, w->rx->body_len);
        }
        break;
    case NS_CMD_ERROR:
        on_error(w, w->rx->body, w->rx->body_len);
        break;
    case NS_CMD_DISCONNECT:
        NS_LOGW("worker: the broker is going away; reconnecting");
        disconnect_sock(w);
        w->reconnect_at = now_s() + 0.5;
        break;
    default:
        NS_LOGW("worker: unexpected command 0x%02x from the broker", w->rx->cmd);
        break;
    }
}

/* ---- the loop ------------------------------------------------------------ */

ns_status wk_worker_create(const wk_config *cfg, wk_engine *engine, volatile sig_atomic_t *stop, wk_worker **out,
                           ns_err *err) {
    *out = NULL;
    wk_worker *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        wk_engine_destroy(&engine);
        return ns__err_set(err, NS_ERR_NOMEM, "out of memory");
    }
    w->cfg = *cfg;
    w->eng = engine;
    w->stop = stop;
    w->slots = wk_engine_slots(engine);
    w->hb_ms = cfg->heartbeat_ms > 0 ? cfg->heartbeat_ms : 1000;
    if (w->cfg.liveness <= 0) {
        w->cfg.liveness = 3;
    }
    w->next_rid = 1;
    w->prep.tok = wk_engine_tokenizer(engine);
    w->prep.ctx = wk_engine_ctx(engine);
    bool fell_back = false;
    ns_status st =
        ns_chat_select(ns_model_gguf(wk_engine_model(engine)), cfg->chat_template, &w->prep.chat, &fell_back, err);
    if (st != NS_OK) {
        goto fail;
    }
    NS_LOGI("worker: chat template %s%s", ns_chat_name(w->prep.chat),
            fell_back ? " (the model names none nightshift knows: ChatML fallback)" : "");
    w->held_cap = 2 * w->slots + 16;
    w->held = calloc((size_t)w->held_cap, sizeof(*w->held));
    msgpack_sbuffer_init(&w->sb);
    st = ns_proto_rx_create(&w->rx, 0);
    if (st != NS_OK || w->held == NULL) {
        st = ns__err_set(err, NS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    st = ns_db_create(&w->db, cfg->conninfo);
    if (st != NS_OK) {
        ns__err_set(err, st, "database handle");
        goto fail;
    }
    w->zctx = zmq_ctx_new();
    if (w->zctx == NULL) {
        st = ns__err_set(err, NS_ERR_IO, "zmq_ctx_new failed");
        goto fail;
    }
    *out = w;
    return NS_OK;
fail:
    wk_worker_destroy(&w);
    return st;
}

void wk_worker_destroy(wk_worker **pw) {
    if (pw == NULL || *pw == NULL) {
        return;
    }
    wk_worker *w = *pw;
    disconnect_sock(w);
    if (w->zctx != NULL) {
        zmq_ctx_term(w->zctx);
    }
    wk_engine_destroy(&w->eng);
    while (w->pending != NULL) {
        wk_job *j = w->pending;
        w->pending = j->next;
        wk_job_free(j);
    }
    ns_proto_rx_destroy(&w->rx);
    msgpack_sbuffer_destroy(&w->sb);
    ns_db_destroy(&w->db);
    free(w->held);
    free(w);
    *pw = NULL;
}

ns_status wk_worker_run(wk_worker *w) {
    w->db_retry_at = 0;
    db_try_connect(w);
    if (!w->db_up) {
        NS_LOGW("worker: PostgreSQL not reachable yet (%s); retrying every second", ns_db_errmsg(w->db));
    }
    if (connect_sock(w) != NS_OK) {
        return NS_ERR_IO;
    }
    double give_up_at = 0;
    for (;;) {
        double now = now_s();
        /* shutdown and engine failures */
        char fmsg[NS_ERRMSG_LEN];
        if (!w->fatal && wk_engine_fatal(w->eng, fmsg, sizeof fmsg)) {
            NS_LOGE("worker: engine failure: %s; returning jobs and exiting", fmsg);
            w->fatal = true;
            w->draining = true;
            w->drain_deadline = now;
        }
        if (*w->stop > 0 && !w->draining) {
            w->draining = true;
            w->drain_deadline = now + w->cfg.drain_s;
            NS_LOGI("worker: stopping: finishing %d jobs (up to %.0f s), then exiting", w->n_held, w->cfg.drain_s);
        }
        if (w->draining && !w->released && (*w->stop > 1 || now >= w->drain_deadline)) {
            NS_LOGI("worker: returning %d unfinished jobs to the queue", wk_engine_n_inside(w->eng));
            wk_engine_release_all(w->eng);
            w->released = true;
            give_up_at = now + 30.0;
        }
        if (w->draining && w->n_held == 0) {
            break;
        }
        if (w->released && now >= give_up_at && w->pending != NULL) {
            NS_LOGE("worker: PostgreSQL still unavailable; exiting with %d unwritten outcomes (their leases expire "
                    "and the jobs run again)",
                    w->n_held);
            break;
        }

        /* connection upkeep */
        if (w->sock == NULL && now >= w->reconnect_at) {
            (void)connect_sock(w);
        } else if (w->sock != NULL && w->reconnect_at > 0 && now >= w->reconnect_at && !w->registered) {
            w->reconnect_at = 0;
            send_ready(w);
        } else if (w->sock != NULL) {
            double silent = now - w->last_broker;
            bool ready_stuck = !w->registered && w->ready_sent > 0 && now - w->ready_sent > 5.0;
            if (silent > w->cfg.liveness * w->hb_ms / 1000.0 || ready_stuck) {
                NS_LOGW("worker: no word from the broker for %.1f s; reconnecting", silent);
                (void)connect_sock(w);
            }
        }
        if (w->sock != NULL && now >= w->next_hb) {
            if (w->registered) {
                send_simple(w, NS_CMD_HEARTBEAT);
            }
            w->next_hb = now + w->hb_ms / 1000.0;
        }

        /* wait for the broker, the engine, or the next timer */
        zmq_pollitem_t items[2] = {
            {.socket = w->sock, .fd = -1, .events = ZMQ_POLLIN},
            {.socket = NULL, .fd = wk_engine_notify_fd(w->eng), .events = ZMQ_POLLIN},
        };
        int n_items = 2;
        if (w->sock == NULL) {
            items[0] = items[1];
            n_items = 1;
        }
        long timeout = w->pending != NULL ? 100 : 250;
        long to_hb = (long)((w->next_hb - now_s()) * 1000.0);
        if (to_hb < timeout) {
            timeout = to_hb > 0 ? to_hb : 0;
        }
        if (zmq_poll(items, n_items, timeout) < 0 && errno != EINTR) {
            NS_LOGE("worker: zmq_poll: %s", zmq_strerror(errno));
            break;
        }
        if (w->sock != NULL) {
            for (int k = 0; k < 256; k++) {
                ns_status st = ns_proto_recv(w->sock, ZMQ_DONTWAIT, w->rx);
                if (st != NS_OK) {
                    break;
                }
                on_broker_msg(w);
                if (w->sock == NULL) {
                    break;
                }
            }
        }
        wk_engine_drain_notify(w->eng);
        for (wk_job *j = wk_engine_take_finished(w->eng); j != NULL;) {
            wk_job *next = j->next;
            push_pending(w, j);
            j = next;
        }
        flush_pending(w);
    }
    if (w->sock != NULL && w->registered) {
        send_simple(w, NS_CMD_DISCONNECT);
    }
    NS_LOGI("worker: exiting: %" PRIu64 " succeeded, %" PRIu64 " failed, %" PRIu64 " cancelled, %" PRIu64
            " returned, %" PRIu64 " stale; %" PRIu64 " tokens generated",
            w->n_ok, w->n_failed, w->n_cancelled, w->n_released, w->n_stale, wk_engine_tokens(w->eng));
    return w->fatal ? NS_ERR_DEVICE : NS_OK;
}
