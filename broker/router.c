/*
 * router.c - client requests on the clients ROUTER socket.
 *
 * Every request is validated in three steps before anything trusts it:
 * framing (ns_proto_parse), msgpack structure (ns_mp_check, no allocation),
 * then fields (types, ranges, UTF-8). Anything wrong gets an ERROR reply
 * echoing the rid when one could be read; nothing is ever left unanswered
 * unless the framing is so broken that there is no routing id.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "broker.h"
#include "ns_log.h"
#include "ns_mpack.h"
#include "ns_util.h"

/* Body limits for client requests (jobs come as separate payload frames). */
static const ns_mp_limits BODY_LIMITS = {16, 1000000};
static const ns_mp_limits JOB_LIMITS = {8, 100000};

#define RESULTS_DEFAULT_LIMIT 100
#define RESULTS_MAX_LIMIT 1000
#define RESULTS_MAX_BYTES (8u << 20)

/* Read an optional/required field. Missing required fields and type errors
 * reply bad_request and return false. */
static bool get_i64(ns_broker *b, int64_t rid, const char *key, bool required, int64_t lo, int64_t hi, int64_t *out) {
    ns_mp_reader r;
    ns_status st = ns__body_find(b->crx->body, b->crx->body_len, key, &r);
    if (st == NS_ERR_NOT_FOUND && !required) {
        return true;
    }
    if (st != NS_OK || ns_mp_read_int(&r, out) != NS_OK) {
        ns__broker_reply_error(b, rid, NS_EC_BAD_REQUEST, "field '%s': %s", key,
                               st == NS_ERR_NOT_FOUND ? "required integer missing" : "expected an integer");
        return false;
    }
    if (*out < lo || *out > hi) {
        ns__broker_reply_error(b, rid, NS_EC_BAD_REQUEST,
                               "field '%s': %" PRId64 " out of range [%" PRId64 ", %" PRId64 "]", key, *out, lo, hi);
        return false;
    }
    return true;
}

/* A text field copied into out[cap] (NUL-terminated); absent leaves out as is. */
static bool get_text(ns_broker *b, int64_t rid, const char *key, bool required, char *out, size_t cap, bool *present) {
    ns_mp_reader r;
    const char *s;
    size_t n;
    if (present != NULL) {
        *present = false;
    }
    ns_status st = ns__body_find(b->crx->body, b->crx->body_len, key, &r);
    if (st == NS_ERR_NOT_FOUND && !required) {
        return true;
    }
    if (st == NS_OK && ns_mp_peek(&r) == NS_MP_NIL && !required) {
        return true;
    }
    if (st != NS_OK || ns_mp_read_str(&r, &s, &n) != NS_OK) {
        ns__broker_reply_error(b, rid, NS_EC_BAD_REQUEST, "field '%s': %s", key,
                               st == NS_ERR_NOT_FOUND ? "required string missing" : "expected a string");
        return false;
    }
    if (n >= cap) {
        ns__broker_reply_error(b, rid, NS_EC_TOO_LARGE, "field '%s': %zu bytes, limit %zu", key, n, cap - 1);
        return false;
    }
    if (!ns_mp_text_ok(s, n)) {
        ns__broker_reply_error(b, rid, NS_EC_BAD_REQUEST, "field '%s': not valid UTF-8 or contains NUL", key);
        return false;
    }
    memcpy(out, s, n);
    out[n] = 0;
    if (present != NULL) {
        *present = true;
    }
    return true;
}

static bool get_bool(ns_broker *b, int64_t rid, const char *key, bool *out) {
    ns_mp_reader r;
    ns_status st = ns__body_find(b->crx->body, b->crx->body_len, key, &r);
    if (st == NS_ERR_NOT_FOUND) {
        return true;
    }
    if (st != NS_OK || ns_mp_read_bool(&r, out) != NS_OK) {
        ns__broker_reply_error(b, rid, NS_EC_BAD_REQUEST, "field '%s': expected a boolean", key);
        return false;
    }
    return true;
}

static bool need_db(ns_broker *b, int64_t rid) {
    if (!b->db_up) {
        ns__broker_reply_error(b, rid, NS_EC_UNAVAILABLE, "database unavailable, retry later");
        return false;
    }
    return true;
}

static void on_create_batch(ns_broker *b, int64_t rid) {
    char name[NS_QUEUE_NAME_CAP] = "", model[NS_QUEUE_NAME_CAP] = "", key[NS_QUEUE_NAME_CAP] = "";
    int64_t priority = 0, max_attempts = 3;
    bool have_key = false, created = false;
    int64_t id = 0;
    ns_mp_reader r;
    if (!get_text(b, rid, "name", false, name, sizeof name, NULL) ||
        !get_text(b, rid, "model", true, model, sizeof model, NULL) ||
        !get_text(b, rid, "idempotency_key", false, key, sizeof key, &have_key) ||
        !get_i64(b, rid, "priority", false, -1000000, 1000000, &priority) ||
        !get_i64(b, rid, "max_attempts", false, 1, 100, &max_attempts)) {
        return;
    }
    if (model[0] == 0) {
        ns__broker_reply_error(b, rid, NS_EC_BAD_REQUEST, "field 'model': must not be empty");
        return;
    }
    ns_buf_reset(&b->json);
    bool have_meta = false;
    ns_status st = ns__body_find(b->crx->body, b->crx->body_len, "metadata", &r);
    if (st == NS_OK && ns_mp_peek(&r) != NS_MP_NIL) {
        ns_err err = {0};
        if (ns_mp_peek(&r) != NS_MP_MAP) {
            ns__broker_reply_error(b, rid, NS_EC_BAD_REQUEST, "field 'metadata': expected a map");
            return;
        }
        st = ns_mp_to_json(&r, &b->json, &err);
        if (st == NS_OK) {
            st = ns_buf_putc(&b->json, 0);
        }
        if (st != NS_OK) {
            ns__broker_reply_error(b, rid, st == NS_ERR_CAPACITY ? NS_EC_TOO_LARGE : NS_EC_BAD_REQUEST,
                                   "field 'metadata': %s", ns_err_msg(&err));
            return;
        }
        have_meta = true;
    }
    if (!need_db(b, rid)) {
        return;
    }
    ns_batch_spec spec = {name,
                          model,
                          (int32_t)priority,
                          (int32_t)max_attempts,
                          have_meta ? (const char *)b->json.data : NULL,
                          have_key ? key : NULL};
    st = ns_queue_create_batch(b->db, &spec, &id, &created);
    if (st != NS_OK) {
        ns__broker_reply_db_error(b, rid, st);
        return;
    }
    msgpack_packer pk;
    ns_proto_pack_begin(&b->sb, &pk, 3, rid);
    ns_mp_pack_kv_int(&pk, "batch_id", id);
    ns_mp_pack_kv_bool(&pk, "created", created);
    ns__broker_reply(b, NS_CMD_OK);
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    }
    return h;
}

/* Index of an earlier job with the same custom_id, or -1. */
static long dup_insert(ns_broker *b, uint32_t idx) {
    const ns_job_spec *s = &b->specs[idx];
    uint32_t mask = b->dup_cap - 1;
    uint32_t h = (uint32_t)hash_bytes(s->custom_id, s->custom_id_len) & mask;
    for (;;) {
        uint32_t v = b->dup_table[h];
        if (v == 0) {
            b->dup_table[h] = idx + 1;
            return -1;
        }
        const ns_job_spec *o = &b->specs[v - 1];
        if (o->custom_id_len == s->custom_id_len && memcmp(o->custom_id, s->custom_id, s->custom_id_len) == 0) {
            return (long)(v - 1);
        }
        h = (h + 1) & mask;
    }
}

static void on_enqueue(ns_broker *b, int64_t rid) {
    int64_t batch_id = 0, total = 0;
    uint32_t n = b->crx->n_payload;
    if (!get_i64(b, rid, "batch_id", true, 1, INT64_MAX, &batch_id)) {
        return;
    }
    if (n == 0) {
        ns__broker_reply_error(b, rid, NS_EC_BAD_REQUEST, "enqueue: no job frames (one msgpack map per frame)");
        return;
    }
    if (n > b->lim.max_jobs_per_msg) {
        ns__broker_reply_error(b, rid, NS_EC_TOO_LARGE, "enqueue: %u job frames, limit %u per message", n,
                               b->lim.max_jobs_per_msg);
        return;
    }
    memset(b->dup_table, 0, b->dup_cap * sizeof *b->dup_table);
    for (uint32_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *p = ns_proto_payload(b->crx, i, &len);
        ns_err err = {0};
        ns_status st = ns_mp_check(p, len, &JOB_LIMITS, &err);
        if (st == NS_OK) {
            st = ns_job_spec_decode(p, len, &b->lim, &b->specs[i], &err);
        }
        if (st != NS_OK) {
            b->n_bad++;
            ns__broker_reply_error(b, rid, st == NS_ERR_CAPACITY ? NS_EC_TOO_LARGE : NS_EC_BAD_REQUEST, "job %u: %s", i,
                                   ns_err_msg(&err));
            return;
        }
        long d = dup_insert(b, i);
        if (d >= 0) {
            const ns_job_spec *s = &b->specs[i];
            ns__broker_reply_error(b, rid, NS_EC_DUPLICATE, "job %u: custom_id '%.*s' repeats job %ld of this message",
                                   i, (int)(s->custom_id_len > 128 ? 128 : s->custom_id_len), s->custom_id, d);
            return;
        }
    }
    if (!need_db(b, rid)) {
        return;
    }
    ns_status st = ns_queue_enqueue(b->db, batch_id, b->specs, n, &total);
    if (st != NS_OK) {
        ns__broker_reply_db_error(b, rid, st);
        return;
    }
    b->n_jobs_enqueued += n;
    b->dispatch_dirty = true;
    msgpack_packer pk;
    ns_proto_pack_begin(&b->sb, &pk, 4, rid);
    ns_mp_pack_kv_int(&pk, "batch_id", batch_id);
    ns_mp_pack_kv_int(&pk, "accepted", n);
    ns_mp_pack_kv_int(&pk, "total", total);
    ns__broker_reply(b, NS_CMD_OK);
}

void ns__broker_pack_status(ns_broker *b, msgpack_packer *pk, int64_t rid, const ns_batch_info *in,
                            const ns_buf *metadata_json, uint32_t extra) {
    double end = in->finished_at > 0 ? in->finished_at : in->now;
    double elapsed = in->started_at > 0 ? end - in->started_at : 0.0;
    bool done = in->finished_at > 0;
    bool meta = metadata_json != NULL && metadata_json->len > 0;
    ns_proto_pack_begin(&b->sb, pk, 22 + extra + (meta ? 1 : 0), rid);
    ns_mp_pack_kv_int(pk, "batch_id", in->id);
    ns_mp_pack_kv_str(pk, "name", in->name);
    ns_mp_pack_kv_str(pk, "model", in->model);
    ns_mp_pack_kv_str(pk, "state", in->state);
    ns_mp_pack_kv_bool(pk, "done", done);
    ns_mp_pack_kv_int(pk, "priority", in->priority);
    ns_mp_pack_kv_int(pk, "max_attempts", in->max_attempts);
    ns_mp_pack_kv_int(pk, "total", in->total);
    ns_mp_pack_kv_int(pk, "queued", in->queued);
    ns_mp_pack_kv_int(pk, "running", in->running);
    ns_mp_pack_kv_int(pk, "succeeded", in->succeeded);
    ns_mp_pack_kv_int(pk, "failed", in->failed);
    ns_mp_pack_kv_int(pk, "cancelled", in->cancelled);
    ns_mp_pack_kv_int(pk, "prompt_tokens", in->prompt_tokens);
    ns_mp_pack_kv_int(pk, "completion_tokens", in->completion_tokens);
    ns_mp_pack_kv_double(pk, "created_at", in->created_at);
#define OPT_TIME(key, v) ((v) > 0 ? ns_mp_pack_kv_double(pk, key, v) : ns_mp_pack_kv_nil(pk, key))
    OPT_TIME("sealed_at", in->sealed_at);
    OPT_TIME("started_at", in->started_at);
    OPT_TIME("finished_at", in->finished_at);
#undef OPT_TIME
    ns_mp_pack_kv_double(pk, "elapsed_s", elapsed);
    ns_mp_pack_kv_double(pk, "tokens_per_s", elapsed > 0 ? (double)in->completion_tokens / elapsed : 0.0);
    if (meta) {
        ns_mp_pack_cstr(pk, "metadata");
        ns_json_to_mp((const char *)metadata_json->data, metadata_json->len, pk, NULL);
    }
}

static void on_status(ns_broker *b, int64_t rid) {
    int64_t batch_id = 0;
    ns_batch_info info;
    msgpack_packer pk;
    if (!get_i64(b, rid, "batch_id", true, 1, INT64_MAX, &batch_id) || !need_db(b, rid)) {
        return;
    }
    ns_buf_reset(&b->json);
    ns_status st = ns_queue_batch_info(b->db, batch_id, &info, &b->json);
    if (st != NS_OK) {
        ns__broker_reply_db_error(b, rid, st);
        return;
    }
    ns__broker_pack_status(b, &pk, rid, &info, &b->json, 0);
    ns__broker_reply(b, NS_CMD_OK);
}

static void on_seal(ns_broker *b, int64_t rid) {
    int64_t batch_id = 0;
    ns_batch_info info;
    if (!get_i64(b, rid, "batch_id", true, 1, INT64_MAX, &batch_id) || !need_db(b, rid)) {
        return;
    }
    ns_status st = ns_queue_seal(b->db, batch_id, &info);
    if (st != NS_OK) {
        ns__broker_reply_db_error(b, rid, st);
        return;
    }
    msgpack_packer pk;
    ns_proto_pack_begin(&b->sb, &pk, 4, rid);
    ns_mp_pack_kv_int(&pk, "batch_id", batch_id);
    ns_mp_pack_kv_str(&pk, "state", info.state);
    ns_mp_pack_kv_int(&pk, "total", info.total);
    ns__broker_reply(b, NS_CMD_OK);
}

static void on_watch(ns_broker *b, int64_t rid) {
    int64_t batch_id = 0, interval = 1000;
    if (!get_i64(b, rid, "batch_id", true, 1, INT64_MAX, &batch_id) ||
        !get_i64(b, rid, "interval_ms", false, 100, 60000, &interval) || !need_db(b, rid)) {
        return;
    }
    ns_status st = ns__broker_watch_add(b, rid, batch_id, (int)interval);
    if (st == NS_ERR_CAPACITY) {
        ns__broker_reply_error(b, rid, NS_EC_BUSY, "too many watchers (limit %d)", b->cfg.max_watchers);
    } else if (st != NS_OK) {
        ns__broker_reply_db_error(b, rid, st);
    }
}

typedef struct results_ctx {
    ns_broker *b;
    msgpack_packer pk; /* over b->sb2 */
    uint32_t n;
    bool errors;
} results_ctx;

static bool pack_result(void *user, const ns_result_row *row) {
    results_ctx *c = user;
    msgpack_packer *pk = &c->pk;
    if (c->n > 0 && c->b->sb2.size > RESULTS_MAX_BYTES) {
        return false;
    }
    if (c->errors) {
        msgpack_pack_map(pk, 5);
        ns_mp_pack_kv_int(pk, "job_id", row->job_id);
        ns_mp_pack_kv_str(pk, "custom_id", row->custom_id);
        ns_mp_pack_kv_str(pk, "state", row->state);
        ns_mp_pack_kv_double(pk, "finished_at", row->finished_at);
        ns_mp_pack_cstr(pk, "errors");
        ns_json_to_mp(row->errors_json, strlen(row->errors_json), pk, NULL);
    } else {
        msgpack_pack_map(pk, 15);
        ns_mp_pack_kv_int(pk, "job_id", row->job_id);
        ns_mp_pack_kv_str(pk, "custom_id", row->custom_id);
        ns_mp_pack_kv_str(pk, "state", row->state);
        ns_mp_pack_kv_int(pk, "attempt", row->attempt);
        ns_mp_pack_kv_str(pk, "worker", row->worker);
        ns_mp_pack_cstr(pk, "text");
        ns_mp_pack_strn(pk, row->text, row->text_len);
        ns_mp_pack_kv_str(pk, "finish_reason", row->finish_reason);
        ns_mp_pack_kv_int(pk, "prompt_tokens", row->prompt_tokens);
        ns_mp_pack_kv_int(pk, "completion_tokens", row->completion_tokens);
#define OPT_MS(key, v) ((v) >= 0 ? ns_mp_pack_kv_double(pk, key, v) : ns_mp_pack_kv_nil(pk, key))
        OPT_MS("queue_ms", row->queue_ms);
        OPT_MS("prefill_ms", row->prefill_ms);
        OPT_MS("decode_ms", row->decode_ms);
        OPT_MS("total_ms", row->total_ms);
#undef OPT_MS
        ns_mp_pack_kv_double(pk, "finished_at", row->finished_at);
        ns_mp_pack_kv_bool(pk, "chat", row->chat);
    }
    c->n++;
    return true;
}

static void on_results(ns_broker *b, int64_t rid) {
    int64_t batch_id = 0, after = 0, limit = RESULTS_DEFAULT_LIMIT, last = 0;
    bool errors = false, more = false;
    if (!get_i64(b, rid, "batch_id", true, 1, INT64_MAX, &batch_id) ||
        !get_i64(b, rid, "after", false, 0, INT64_MAX, &after) ||
        !get_i64(b, rid, "limit", false, 1, RESULTS_MAX_LIMIT, &limit) || !get_bool(b, rid, "errors", &errors) ||
        !need_db(b, rid)) {
        return;
    }
    ns_batch_info info;
    ns_status st = ns_queue_batch_info(b->db, batch_id, &info, NULL);
    results_ctx c = {.b = b, .n = 0, .errors = errors};
    msgpack_sbuffer_clear(&b->sb2);
    msgpack_packer_init(&c.pk, &b->sb2, msgpack_sbuffer_write);
    if (st == NS_OK) {
        st = ns_queue_results(b->db, batch_id, after, (int)limit, errors, pack_result, &c, &last, &more);
    }
    if (st != NS_OK) {
        ns__broker_reply_db_error(b, rid, st);
        return;
    }
    msgpack_packer pk;
    ns_proto_pack_begin(&b->sb, &pk, 5, rid);
    ns_mp_pack_kv_int(&pk, "batch_id", batch_id);
    ns_mp_pack_kv_int(&pk, "next", last);
    ns_mp_pack_kv_bool(&pk, "more", more);
    ns_mp_pack_cstr(&pk, "items");
    msgpack_pack_array(&pk, c.n);
    msgpack_sbuffer_write(&b->sb, b->sb2.data, b->sb2.size);
    ns__broker_reply(b, NS_CMD_OK);
}

static void on_cancel(ns_broker *b, int64_t rid) {
    int64_t batch_id = 0, n_cancelled = 0, n_running = 0;
    ns_mp_reader r;
    ns_status st;
    if (!get_i64(b, rid, "batch_id", true, 1, INT64_MAX, &batch_id)) {
        return;
    }
    st = ns__body_find(b->crx->body, b->crx->body_len, "custom_ids", &r);
    bool by_id = st == NS_OK && ns_mp_peek(&r) != NS_MP_NIL;
    uint32_t n = 0;
    if (by_id) {
        if (ns_mp_read_array(&r, &n) != NS_OK || n == 0 || n > b->lim.max_jobs_per_msg) {
            ns__broker_reply_error(b, rid, NS_EC_BAD_REQUEST, "field 'custom_ids': expected 1..%u strings",
                                   b->lim.max_jobs_per_msg);
            return;
        }
        /* Reuse the spec table for the borrowed strings. */
        for (uint32_t i = 0; i < n; i++) {
            ns_job_spec *s = &b->specs[i];
            if (ns_mp_read_str(&r, &s->custom_id, &s->custom_id_len) != NS_OK ||
                s->custom_id_len > b->lim.max_custom_id_bytes || !ns_mp_text_ok(s->custom_id, s->custom_id_len)) {
                ns__broker_reply_error(b, rid, NS_EC_BAD_REQUEST, "field 'custom_ids': element %u is not a valid id",
                                       i);
                return;
            }
        }
    }
    if (!need_db(b, rid)) {
        return;
    }
    if (by_id) {
        /* Cancel in chunks of 256 ids (parallel arrays on the stack). */
        const char *ids[256];
        size_t lens[256];
        for (uint32_t off = 0; off < n && st == NS_OK; off += 256) {
            uint32_t m = n - off < 256 ? n - off : 256;
            int64_t c1 = 0, r1 = 0;
            for (uint32_t i = 0; i < m; i++) {
                ids[i] = b->specs[off + i].custom_id;
                lens[i] = b->specs[off + i].custom_id_len;
            }
            st = ns_queue_cancel_jobs(b->db, batch_id, ids, lens, m, &c1, &r1, ns__broker_cancel_job, b);
            n_cancelled += c1;
            n_running += r1;
        }
    } else {
        st = ns_queue_cancel_batch(b->db, batch_id, &n_cancelled, &n_running, ns__broker_cancel_job, b);
    }
    if (st != NS_OK) {
        ns__broker_reply_db_error(b, rid, st);
        return;
    }
    msgpack_packer pk;
    ns_proto_pack_begin(&b->sb, &pk, 4, rid);
    ns_mp_pack_kv_int(&pk, "batch_id", batch_id);
    ns_mp_pack_kv_int(&pk, "cancelled", n_cancelled);
    ns_mp_pack_kv_int(&pk, "cancelling", n_running);
    ns__broker_reply(b, NS_CMD_OK);
}

static void on_retry(ns_broker *b, int64_t rid) {
    int64_t batch_id = 0, n = 0;
    if (!get_i64(b, rid, "batch_id", true, 1, INT64_MAX, &batch_id) || !need_db(b, rid)) {
        return;
    }
    ns_status st = ns_queue_retry_failed(b->db, batch_id, &n);
    if (st != NS_OK) {
        ns__broker_reply_db_error(b, rid, st);
        return;
    }
    b->dispatch_dirty = true;
    msgpack_packer pk;
    ns_proto_pack_begin(&b->sb, &pk, 3, rid);
    ns_mp_pack_kv_int(&pk, "batch_id", batch_id);
    ns_mp_pack_kv_int(&pk, "requeued", n);
    ns__broker_reply(b, NS_CMD_OK);
}

static void on_ping(ns_broker *b, int64_t rid) {
    msgpack_packer pk;
    ns_proto_pack_begin(&b->sb, &pk, 4, rid);
    ns_mp_pack_kv_str(&pk, "protocol", NS_PROTO_TAG);
    ns_mp_pack_kv_bool(&pk, "db", b->db_up);
    ns_mp_pack_kv_int(&pk, "schema_version", ns_db_latest_version());
    ns__broker_reply(b, NS_CMD_OK);
}

void ns__broker_on_client(ns_broker *b) {
    ns_err err = {0};
    ns_proto_rx *rx = b->crx;
    b->n_requests++;
    ns_status st = ns_proto_parse(rx, true, &err);
    if (st != NS_OK) {
        b->n_bad++;
        int64_t rid = -1;
        if (rx->body != NULL && ns_mp_check(rx->body, rx->body_len, &BODY_LIMITS, NULL) == NS_OK) {
            rid = ns_proto_body_rid(rx->body, rx->body_len); /* echo it when the body is sound */
        }
        if (rx->identity != NULL) {
            ns__broker_reply_error(b, rid, st == NS_ERR_CAPACITY ? NS_EC_TOO_LARGE : NS_EC_BAD_REQUEST, "%s",
                                   ns_err_msg(&err));
        }
        return;
    }
    if (ns_mp_check(rx->body, rx->body_len, &BODY_LIMITS, &err) != NS_OK) {
        b->n_bad++;
        ns__broker_reply_error(b, -1, NS_EC_BAD_REQUEST, "body: %s", ns_err_msg(&err));
        return;
    }
    ns_mp_reader r;
    uint32_t n;
    ns_mp_reader_init(&r, rx->body, rx->body_len);
    if (ns_mp_read_map(&r, &n) != NS_OK) {
        b->n_bad++;
        ns__broker_reply_error(b, -1, NS_EC_BAD_REQUEST, "body must be a msgpack map");
        return;
    }
    int64_t rid = ns_proto_body_rid(rx->body, rx->body_len);
    if (rid < 0) {
        b->n_bad++;
        ns__broker_reply_error(b, -1, NS_EC_BAD_REQUEST, "body needs a non-negative integer 'rid'");
        return;
    }
    if (*b->stop) {
        ns__broker_reply_error(b, rid, NS_EC_SHUTTING_DOWN, "broker is shutting down");
        return;
    }
    if (rx->cmd != NS_CMD_ENQUEUE && rx->n_payload > 0) {
        b->n_bad++;
        ns__broker_reply_error(b, rid, NS_EC_BAD_REQUEST, "%s takes no payload frames",
                               ns_cmd_name(rx->cmd) ? ns_cmd_name(rx->cmd) : "this command");
        return;
    }
    switch (rx->cmd) {
    case NS_CMD_CREATE_BATCH:
        on_create_batch(b, rid);
        break;
    case NS_CMD_ENQUEUE:
        on_enqueue(b, rid);
        break;
    case NS_CMD_SEAL:
        on_seal(b, rid);
        break;
    case NS_CMD_STATUS:
        on_status(b, rid);
        break;
    case NS_CMD_WATCH:
        on_watch(b, rid);
        break;
    case NS_CMD_RESULTS:
        on_results(b, rid);
        break;
    case NS_CMD_CANCEL:
        on_cancel(b, rid);
        break;
    case NS_CMD_RETRY:
        on_retry(b, rid);
        break;
    case NS_CMD_WORKERS:
        ns__broker_pack_workers(b, rid);
        ns__broker_reply(b, NS_CMD_OK);
        break;
    case NS_CMD_PING:
        on_ping(b, rid);
        break;
    default:
        b->n_bad++;
        ns__broker_reply_error(b, rid, NS_EC_UNKNOWN_COMMAND, "unknown client command 0x%02x", rx->cmd & 0xff);
        break;
    }
}
