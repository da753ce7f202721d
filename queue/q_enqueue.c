/*
 * q_enqueue.c - bulk enqueue with COPY (see ns_queue.h).
 *
 * One transaction: reserve n ids from the jobs sequence, COPY the narrow job
 * rows, COPY their inputs, bump the batch counters, COMMIT. COPY streams rows
 * in the text format from a reused staging buffer that is flushed every
 * 256 KiB, so memory does not grow with n.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_impl.h"
#include "ns_queue.h"

#define COPY_FLUSH_BYTES (256u << 10)

/* Append s as one COPY text-format field (escapes \, newline, CR, tab). */
static ns_status copy_field(ns_buf *b, const char *s, size_t len) {
    NS_TRY(ns_buf_reserve(b, len));
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        char e = c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : 0;
        if (e == 0) {
            continue;
        }
        NS_TRY(ns_buf_append(b, s + run, i - run));
        char esc[2] = {'\\', e};
        NS_TRY(ns_buf_append(b, esc, 2));
        run = i + 1;
    }
    return ns_buf_append(b, s + run, len - run);
}

static ns_status copy_flush(ns_db *db, bool force) {
    ns_buf *b = &db->copy;
    if (b->len == 0 || (!force && b->len < COPY_FLUSH_BYTES)) {
        return NS_OK;
    }
    if (PQputCopyData(db->conn, (const char *)b->data, (int)b->len) != 1) {
        return ns__db_fail(db, NULL, "COPY data");
    }
    ns_buf_reset(b);
    return NS_OK;
}

/* Finish a COPY started with PQexec("COPY ... FROM STDIN"). */
static ns_status copy_end(ns_db *db, ns_status st) {
    PGresult *res;
    if (st == NS_OK) {
        st = copy_flush(db, true);
    }
    ns_buf_reset(&db->copy);
    if (PQputCopyEnd(db->conn, st == NS_OK ? NULL : "nightshift: aborted") != 1) {
        return st != NS_OK ? st : ns__db_fail(db, NULL, "COPY end");
    }
    ns_status out = st;
    while ((res = PQgetResult(db->conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && out == NS_OK) {
            out = ns__db_fail(db, res, "COPY");
        }
        PQclear(res);
    }
    return out;
}

static ns_status copy_begin(ns_db *db, const char *sql) {
    PGresult *res = PQexec(db->conn, sql);
    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
        ns_status st = ns__db_fail(db, res, "COPY start");
        PQclear(res);
        return st;
    }
    PQclear(res);
    ns_buf_reset(&db->copy);
    return NS_OK;
}

/* One job_inputs row. Messages and stop go to jsonb as JSON text. */
static ns_status input_row(ns_db *db, int64_t id, const ns_job_spec *j) {
    ns_buf *b = &db->copy;
    ns_buf *json = &db->scratch;
    ns_mp_reader r;
    NS_TRY(ns_buf_printf(b, "%" PRId64 "\t", id));
    if (j->prompt != NULL) {
        NS_TRY(copy_field(b, j->prompt, j->prompt_len));
        NS_TRY(ns_buf_puts(b, "\t\\N\t"));
    } else {
        NS_TRY(ns_buf_puts(b, "\\N\t"));
        ns_buf_reset(json);
        ns_mp_reader_init(&r, j->messages, j->messages_len);
        NS_TRY(ns_mp_to_json(&r, json, &db->err));
        NS_TRY(copy_field(b, (const char *)json->data, json->len));
        NS_TRY(ns_buf_putc(b, '\t'));
    }
    NS_TRY(ns_buf_printf(b, "%" PRId32 "\t%.9g\t%" PRId32 "\t%.9g\t%.9g\t", j->max_tokens, (double)j->temperature,
                         j->top_k, (double)j->top_p, (double)j->min_p));
    if (j->has_seed) {
        NS_TRY(ns_buf_printf(b, "%" PRId64 "\t", j->seed));
    } else {
        NS_TRY(ns_buf_puts(b, "\\N\t"));
    }
    if (j->stop != NULL) {
        ns_buf_reset(json);
        ns_mp_reader_init(&r, j->stop, j->stop_len);
        NS_TRY(ns_mp_to_json(&r, json, &db->err));
        NS_TRY(copy_field(b, (const char *)json->data, json->len));
    } else {
        NS_TRY(ns_buf_puts(b, "\\N"));
    }
    return ns_buf_putc(b, '\n');
}

ns_status ns_queue_enqueue(ns_db *db, int64_t batch_id, const ns_job_spec *jobs, size_t n, int64_t *batch_total) {
    char bid[24], cnt[24];
    PGresult *r = NULL;
    int64_t *ids = NULL;
    ns_status st;
    int32_t priority, max_attempts;
    const char *p[] = {ns__i64(bid, batch_id), ns__i64(cnt, (int64_t)n)};
    *batch_total = 0;

    NS_TRY(ns__db_exec(db, "SELECT state::text, priority, max_attempts, total FROM batches WHERE id = $1", 1, p, &r));
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ns__err_set(&db->err, NS_ERR_NOT_FOUND, "batch %" PRId64 " not found", batch_id);
    }
    if (strcmp(PQgetvalue(r, 0, 0), "open") != 0) {
        st = ns__err_set(&db->err, NS_ERR_STATE, "batch %" PRId64 " is %s: it takes no more jobs", batch_id,
                         PQgetvalue(r, 0, 0));
        PQclear(r);
        return st;
    }
    priority = (int32_t)ns__cell_i64(r, 0, 1);
    max_attempts = (int32_t)ns__cell_i64(r, 0, 2);
    *batch_total = ns__cell_i64(r, 0, 3);
    PQclear(r);
    r = NULL;
    if (n == 0) {
        return NS_OK;
    }
    ids = malloc(n * sizeof *ids);
    if (ids == NULL) {
        return ns__err_set(&db->err, NS_ERR_NOMEM, "enqueue: out of memory");
    }
    /* The copy buffer must hold one whole row: the largest field escaped. */
    db->copy.max = 64u << 20;

    if ((st = ns__db_begin(db)) != NS_OK) {
        goto fail;
    }
    if ((st = ns__db_exec(db, "SELECT nextval('jobs_id_seq') FROM generate_series(1, $2::int) WHERE $1::bigint > 0", 2,
                          p, &r)) != NS_OK) {
        goto fail;
    }
    if ((size_t)PQntuples(r) != n) {
        st = ns__err_set(&db->err, NS_ERR_DB, "enqueue: sequence returned %d ids for %zu jobs", PQntuples(r), n);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        ids[i] = ns__cell_i64(r, (int)i, 0);
    }
    PQclear(r);
    r = NULL;

    if ((st = copy_begin(db, "COPY jobs (id, batch_id, custom_id, priority, max_attempts) FROM STDIN")) != NS_OK) {
        goto fail;
    }
    for (size_t i = 0; i < n && st == NS_OK; i++) {
        st = ns_buf_printf(&db->copy, "%" PRId64 "\t%" PRId64 "\t", ids[i], batch_id);
        st = st ? st : copy_field(&db->copy, jobs[i].custom_id, jobs[i].custom_id_len);
        st = st ? st : ns_buf_printf(&db->copy, "\t%" PRId32 "\t%" PRId32 "\n", priority, max_attempts);
        st = st ? st : copy_flush(db, false);
    }
    if ((st = copy_end(db, st)) != NS_OK) {
        goto fail;
    }
    if ((st = copy_begin(db, "COPY job_inputs (job_id, prompt, messages, max_tokens, temperature, top_k, top_p,"
                             " min_p, seed, stop) FROM STDIN")) != NS_OK) {
        goto fail;
    }
    for (size_t i = 0; i < n && st == NS_OK; i++) {
        st = input_row(db, ids[i], &jobs[i]);
        st = st ? st : copy_flush(db, false);
    }
    if ((st = copy_end(db, st)) != NS_OK) {
        goto fail;
    }
    if ((st = ns__db_exec(db,
                          "UPDATE batches SET total = total + $2, queued = queued + $2"
                          " WHERE id = $1 AND state = 'open' RETURNING total",
                          2, p, &r)) != NS_OK) {
        goto fail;
    }
    if (PQntuples(r) != 1) {
        st = ns__err_set(&db->err, NS_ERR_STATE, "batch %" PRId64 " was sealed or cancelled during the enqueue",
                         batch_id);
        goto fail;
    }
    *batch_total = ns__cell_i64(r, 0, 0);
    PQclear(r);
    r = NULL;
    if ((st = ns__db_commit(db)) != NS_OK) {
        goto fail;
    }
    free(ids);
    return NS_OK;
fail:
    if (st == NS_ERR_CONFLICT) {
        char msg[NS_ERRMSG_LEN];
        snprintf(msg, sizeof msg, "%s", ns_err_msg(&db->err));
        ns__err_set(&db->err, NS_ERR_CONFLICT, "duplicate custom_id in batch %" PRId64 ": %s", batch_id, msg);
    }
    PQclear(r);
    ns__db_rollback(db);
    free(ids);
    return st;
}
