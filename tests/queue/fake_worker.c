/*
 * fake_worker.c - a worker that speaks the real NSQ1 worker protocol and
 * writes real results to PostgreSQL, without a model: the "generated" text is
 * "echo: " + the prompt (or the last chat message). Used by the integration
 * tests, and a compact reference for writing a real worker:
 *
 *   READY {name, model, slots, inflight}  -> OK {heartbeat_ms, lease_ms, adopted, dropped}
 *   JOB   -> ns_queue_complete()/ns_queue_fail() (COMMIT) -> DONE -> CREDIT 1
 *   CANCEL_JOB -> ns_queue_ack_cancel() -> DONE
 *   HEARTBEAT every heartbeat_ms; broker silent 3 periods -> new socket + READY
 *   ERROR unknown_worker (broker restarted) -> READY with the in-flight list
 *   SIGTERM -> release in-flight jobs, DISCONNECT, exit 0
 *
 * usage: fake_worker --broker EP --pg CONNINFO --model M [--name N] [--slots S]
 *                    [--delay-ms D] [--crash-after N]
 * Jobs whose custom_id starts with "fail" fail (retryable); "fatal" fail for good.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "ns_db.h"
#include "ns_job.h"
#include "ns_mpack.h"
#include "ns_proto.h"
#include "ns_queue.h"
#include "ns_util.h"

#define MAX_SLOTS 64

typedef struct fw_job {
    bool used;
    int64_t job_id;
    int32_t attempt;
    char custom_id[300];
    char text[1024];
    double due; /* when it "finishes" */
    bool cancelled;
} fw_job;

static volatile sig_atomic_t g_stop = 0;
static void on_term(int s) {
    (void)s;
    g_stop = 1;
}

typedef struct fw {
    const char *ep, *name, *model;
    int slots, delay_ms, crash_after, done_count;
    void *ctx, *sock;
    ns_db *db;
    ns_proto_rx *rx;
    msgpack_sbuffer sb;
    int64_t rid;
    fw_job jobs[MAX_SLOTS];
    double last_broker, hb_s, next_hb;
    bool ready;
} fw;

static void fw_send(fw *w, int cmd) {
    ns_proto_send(w->sock, NULL, 0, false, cmd, w->sb.data, w->sb.size, NULL, 0, 0);
}

static void open_sock(fw *w) {
    int linger = 0;
    if (w->sock) {
        zmq_close(w->sock);
    }
    w->sock = zmq_socket(w->ctx, ZMQ_DEALER);
    zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_connect(w->sock, w->ep);
}

static void send_ready(fw *w) {
    msgpack_packer pk;
    int n = 0;
    for (int i = 0; i < MAX_SLOTS; i++) {
        n += w->jobs[i].used;
    }
    ns_proto_pack_begin(&w->sb, &pk, 5, ++w->rid);
    ns_mp_pack_kv_str(&pk, "name", w->name);
    ns_mp_pack_kv_str(&pk, "model", w->model);
    ns_mp_pack_kv_int(&pk, "slots", w->slots);
    ns_mp_pack_cstr(&pk, "inflight");
    msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (w->jobs[i].used) {
            msgpack_pack_array(&pk, 2);
            msgpack_pack_int64(&pk, w->jobs[i].job_id);
            msgpack_pack_int32(&pk, w->jobs[i].attempt);
        }
    }
    fw_send(w, NS_CMD_READY);
    w->ready = false;
}

static void send_simple(fw *w, int cmd, const char *key, int64_t v) {
    msgpack_packer pk;
    ns_proto_pack_begin(&w->sb, &pk, key ? 2 : 1, ++w->rid);
    if (key) {
        ns_mp_pack_kv_int(&pk, key, v);
    }
    fw_send(w, cmd);
}

static void send_done(fw *w, const fw_job *j, const char *status) {
    msgpack_packer pk;
    ns_proto_pack_begin(&w->sb, &pk, 4, ++w->rid);
    ns_mp_pack_kv_int(&pk, "job_id", j->job_id);
    ns_mp_pack_kv_int(&pk, "attempt", j->attempt);
    ns_mp_pack_kv_str(&pk, "status", status);
    fw_send(w, NS_CMD_DONE);
}

/* Retry a DB write across a PostgreSQL restart. */
static ns_status db_retry(fw *w, ns_status st) {
    if (st == NS_ERR_IO) {
        usleep(200000);
        ns_db_connect(w->db);
    }
    return st;
}

static void on_job(fw *w, const uint8_t *body, size_t len) {
    ns_job_msg m;
    ns_err err = {0};
    if (ns_mp_check(body, len, NULL, &err) != NS_OK || ns_job_msg_decode(body, len, NULL, &m, &err) != NS_OK) {
        fprintf(stderr, "fake_worker: bad JOB: %s\n", ns_err_msg(&err));
        return;
    }
    fw_job *j = NULL;
    for (int i = 0; i < MAX_SLOTS && !j; i++) {
        if (!w->jobs[i].used) {
            j = &w->jobs[i];
        }
    }
    if (j == NULL) {
        fprintf(stderr, "fake_worker: JOB beyond credit\n");
        return;
    }
    memset(j, 0, sizeof *j);
    j->used = true;
    j->job_id = m.job_id;
    j->attempt = m.attempt;
    snprintf(j->custom_id, sizeof j->custom_id, "%.*s", (int)m.spec.custom_id_len, m.spec.custom_id);
    const char *src = m.spec.prompt;
    size_t src_len = m.spec.prompt_len;
    if (src == NULL) {
        ns_chat_iter it;
        const char *role;
        size_t rl;
        ns_chat_iter_init(&it, &m.spec);
        while (ns_chat_iter_next(&it, &role, &rl, &src, &src_len)) {
        }
    }
    snprintf(j->text, sizeof j->text, "echo: %.*s", (int)(src_len > 900 ? 900 : src_len), src ? src : "");
    j->due = ns_time_s() + w->delay_ms / 1000.0;
}

static void finish_jobs(fw *w) {
    double now = ns_time_s();
    for (int i = 0; i < MAX_SLOTS; i++) {
        fw_job *j = &w->jobs[i];
        if (!j->used || now < j->due) {
            continue;
        }
        if (w->crash_after > 0 && w->done_count >= w->crash_after) {
            _exit(3); /* simulated crash while holding leases */
        }
        ns_status st;
        const char *status = "ok";
        if (strncmp(j->custom_id, "fail", 4) == 0 || strncmp(j->custom_id, "fatal", 5) == 0) {
            char state[16];
            bool retry = strncmp(j->custom_id, "fail", 4) == 0;
            while ((st = db_retry(w, ns_queue_fail(w->db, j->job_id, j->attempt, w->name, "test_error",
                                                   "this job always fails", retry, state))) == NS_ERR_IO) {
            }
            status = "failed";
        } else {
            ns_job_result res = {j->text, strlen(j->text), "stop", 3, 5, 1.0, 2.0, 3.0, 6.0};
            while ((st = db_retry(w, ns_queue_complete(w->db, j->job_id, j->attempt, w->name, &res))) == NS_ERR_IO) {
            }
        }
        if (st == NS_ERR_CONFLICT) {
            status = "stale"; /* lease moved on: our write was fenced out */
        } else if (st != NS_OK) {
            fprintf(stderr, "fake_worker: write failed: %s\n", ns_db_errmsg(w->db));
        }
        w->done_count++;
        send_done(w, j, status);
        j->used = false;
        send_simple(w, NS_CMD_CREDIT, "credit", 1);
    }
}

static void on_message(fw *w) {
    ns_err err = {0};
    if (ns_proto_parse(w->rx, false, &err) != NS_OK || ns_mp_check(w->rx->body, w->rx->body_len, NULL, &err) != NS_OK) {
        return;
    }
    w->last_broker = ns_time_s();
    ns_mp_reader r;
    switch (w->rx->cmd) {
    case NS_CMD_OK: {
        /* READY's reply: adopt the broker's heartbeat period. */
        uint32_t n;
        ns_mp_reader_init(&r, w->rx->body, w->rx->body_len);
        ns_mp_read_map(&r, &n);
        for (uint32_t i = 0; i < n; i++) {
            const char *k;
            size_t kl;
            int64_t v;
            ns_mp_read_str(&r, &k, &kl);
            if (ns_mp_str_eq(k, kl, "heartbeat_ms") && ns_mp_read_int(&r, &v) == NS_OK && v > 0) {
                w->hb_s = v / 1000.0;
                w->next_hb = ns_time_s(); /* heartbeat at the broker's period from now on */
            } else {
                ns_mp_skip(&r);
            }
        }
        w->ready = true;
        break;
    }
    case NS_CMD_JOB:
        on_job(w, w->rx->body, w->rx->body_len);
        break;
    case NS_CMD_CANCEL_JOB: {
        int64_t id = 0, at = 0;
        uint32_t n;
        ns_mp_reader_init(&r, w->rx->body, w->rx->body_len);
        ns_mp_read_map(&r, &n);
        for (uint32_t i = 0; i < n; i++) {
            const char *k;
            size_t kl;
            ns_mp_read_str(&r, &k, &kl);
            if (ns_mp_str_eq(k, kl, "job_id")) {
                ns_mp_read_int(&r, &id);
            } else if (ns_mp_str_eq(k, kl, "attempt")) {
                ns_mp_read_int(&r, &at);
            } else {
                ns_mp_skip(&r);
            }
        }
        for (int i = 0; i < MAX_SLOTS; i++) {
            fw_job *j = &w->jobs[i];
            if (j->used && j->job_id == id && j->attempt == at) {
                ns_queue_ack_cancel(w->db, id, (int32_t)at);
                send_done(w, j, "cancelled");
                j->used = false;
                send_simple(w, NS_CMD_CREDIT, "credit", 1);
            }
        }
        break;
    }
    case NS_CMD_ERROR: {
        const uint8_t *b = w->rx->body;
        size_t bl = w->rx->body_len;
        const char *code = NULL;
        size_t cl = 0;
        uint32_t n;
        ns_mp_reader_init(&r, b, bl);
        ns_mp_read_map(&r, &n);
        for (uint32_t i = 0; i < n; i++) {
            const char *k;
            size_t kl;
            ns_mp_read_str(&r, &k, &kl);
            if (ns_mp_str_eq(k, kl, "code")) {
                ns_mp_read_str(&r, &code, &cl);
            } else {
                ns_mp_skip(&r);
            }
        }
        if (code && (ns_mp_str_eq(code, cl, NS_EC_UNKNOWN_WORKER) || ns_mp_str_eq(code, cl, NS_EC_UNAVAILABLE))) {
            if (ns_mp_str_eq(code, cl, NS_EC_UNAVAILABLE)) {
                usleep(500000);
            }
            send_ready(w);
        }
        break;
    }
    default:
        break; /* HEARTBEAT, DISCONNECT: liveness only */
    }
}

int main(int argc, char **argv) {
    fw w;
    memset(&w, 0, sizeof w);
    const char *pg = NULL;
    w.name = "fake-worker";
    w.slots = 4;
    w.hb_s = 1.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--broker")) {
            w.ep = argv[i + 1];
        } else if (!strcmp(argv[i], "--pg")) {
            pg = argv[i + 1];
        } else if (!strcmp(argv[i], "--model")) {
            w.model = argv[i + 1];
        } else if (!strcmp(argv[i], "--name")) {
            w.name = argv[i + 1];
        } else if (!strcmp(argv[i], "--slots")) {
            w.slots = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--delay-ms")) {
            w.delay_ms = atoi(argv[i + 1]);
        } else if (!strcmp(argv[i], "--crash-after")) {
            w.crash_after = atoi(argv[i + 1]);
        }
    }
    if (!w.ep || !pg || !w.model || w.slots < 1 || w.slots > MAX_SLOTS) {
        fprintf(stderr, "usage: fake_worker --broker EP --pg CONNINFO --model M [--name N] [--slots 1..64]\n");
        return 2;
    }
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    ns_db_create(&w.db, pg);
    while (ns_db_connect(w.db) != NS_OK && !g_stop) {
        usleep(200000);
    }
    ns_proto_rx_create(&w.rx, 0);
    msgpack_sbuffer_init(&w.sb);
    w.ctx = zmq_ctx_new();
    open_sock(&w);
    send_ready(&w);
    w.last_broker = ns_time_s();
    w.next_hb = ns_time_s() + w.hb_s;
    while (!g_stop) {
        zmq_pollitem_t it = {w.sock, 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 20);
        while (ns_proto_recv(w.sock, ZMQ_DONTWAIT, w.rx) == NS_OK) {
            on_message(&w);
        }
        finish_jobs(&w);
        double now = ns_time_s();
        if (now >= w.next_hb) {
            send_simple(&w, NS_CMD_HEARTBEAT, NULL, 0);
            w.next_hb = now + w.hb_s;
        }
        if (now - w.last_broker > 3 * w.hb_s) {
            /* Broker silent: new socket, announce again with what we hold. */
            open_sock(&w);
            send_ready(&w);
            w.last_broker = now;
        }
    }
    for (int i = 0; i < MAX_SLOTS; i++) {
        if (w.jobs[i].used) {
            ns_queue_release(w.db, w.jobs[i].job_id, w.jobs[i].attempt);
            send_done(&w, &w.jobs[i], "released");
        }
    }
    send_simple(&w, NS_CMD_DISCONNECT, NULL, 0);
    usleep(100000);
    zmq_close(w.sock);
    zmq_ctx_term(w.ctx);
    ns_proto_rx_destroy(&w.rx);
    msgpack_sbuffer_destroy(&w.sb);
    ns_db_destroy(&w.db);
    return 0;
}
