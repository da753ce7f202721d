/*
 * q_batch.c - batches: create, read, seal, cancel, retry and result pages
 * (see ns_queue.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_impl.h"
#include "ns_queue.h"
#include "q_sql.h"

ns_status ns_queue_create_batch(ns_db *db, const ns_batch_spec *spec, int64_t *batch_id, bool *created) {
    char prio[24], att[24];
    PGresult *r;
    *batch_id = 0;
    *created = false;
    if (spec->model == NULL || spec->model[0] == 0) {
        return ns__err_set(&db->err, NS_ERR_INVALID_ARG, "batch: model is required");
    }
    int32_t max_attempts = spec->max_attempts > 0 ? spec->max_attempts : 3;
    const char *p[] = {spec->name ? spec->name : "", spec->model,         ns__i64(prio, spec->priority),
                       ns__i64(att, max_attempts),   spec->metadata_json, spec->idempotency_key};
    NS_TRY(ns__db_exec(db,
                       "INSERT INTO batches (name, model, priority, max_attempts, metadata, idempotency_key)"
                       " VALUES ($1, $2, $3, $4, $5::jsonb, $6)"
                       " ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING RETURNING id",
                       6, p, &r));
    if (PQntuples(r) == 1) {
        *batch_id = ns__cell_i64(r, 0, 0);
        *created = true;
        PQclear(r);
        return NS_OK;
    }
    PQclear(r);
    const char *k[] = {spec->idempotency_key};
    NS_TRY(ns__db_exec(db, "SELECT id FROM batches WHERE idempotency_key = $1", 1, k, &r));
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ns__err_set(&db->err, NS_ERR_DB, "batch: idempotency key conflict but no batch found");
    }
    *batch_id = ns__cell_i64(r, 0, 0);
    PQclear(r);
    return NS_OK;
}

#define SQL_INFO_COLS                                                                                                  \
    "id, name, model, state::text, priority, max_attempts, total, queued, running, succeeded, failed, cancelled,"      \
    " prompt_tokens, completion_tokens, extract(epoch from created_at), extract(epoch from sealed_at),"                \
    " extract(epoch from started_at), extract(epoch from finished_at), extract(epoch from now()), metadata::text"

static void info_from_row(const PGresult *r, int i, ns_batch_info *out) {
    memset(out, 0, sizeof *out);
    out->id = ns__cell_i64(r, i, 0);
    snprintf(out->name, sizeof out->name, "%s", PQgetvalue(r, i, 1));
    snprintf(out->model, sizeof out->model, "%s", PQgetvalue(r, i, 2));
    snprintf(out->state, sizeof out->state, "%s", PQgetvalue(r, i, 3));
    out->priority = (int32_t)ns__cell_i64(r, i, 4);
    out->max_attempts = (int32_t)ns__cell_i64(r, i, 5);
    out->total = ns__cell_i64(r, i, 6);
    out->queued = ns__cell_i64(r, i, 7);
    out->running = ns__cell_i64(r, i, 8);
    out->succeeded = ns__cell_i64(r, i, 9);
    out->failed = ns__cell_i64(r, i, 10);
    out->cancelled = ns__cell_i64(r, i, 11);
    out->prompt_tokens = ns__cell_i64(r, i, 12);
    out->completion_tokens = ns__cell_i64(r, i, 13);
    out->created_at = ns__cell_f64(r, i, 14, 0);
    out->sealed_at = ns__cell_f64(r, i, 15, 0);
    out->started_at = ns__cell_f64(r, i, 16, 0);
    out->finished_at = ns__cell_f64(r, i, 17, 0);
    out->now = ns__cell_f64(r, i, 18, 0);
}

ns_status ns_queue_batch_info(ns_db *db, int64_t batch_id, ns_batch_info *out, ns_buf *metadata_json) {
    char id[24];
    PGresult *r;
    const char *p[] = {ns__i64(id, batch_id)};
    NS_TRY(ns__db_exec(db, "SELECT " SQL_INFO_COLS " FROM batches WHERE id = $1", 1, p, &r));
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ns__err_set(&db->err, NS_ERR_NOT_FOUND, "batch %" PRId64 " not found", batch_id);
    }
    info_from_row(r, 0, out);
    ns_status st = NS_OK;
    if (metadata_json != NULL) {
        ns_buf_reset(metadata_json);
        const char *m = ns__cell_str(r, 0, 19);
        if (m != NULL) {
            st = ns_buf_puts(metadata_json, m);
        }
    }
    PQclear(r);
    return st;
}

ns_status ns_queue_batch_infos(ns_db *db, const int64_t *ids, size_t n,
                               void (*cb)(void *user, const ns_batch_info *info), void *user) {
    ns_buf *b = &db->scratch;
    PGresult *r;
    ns_batch_info info;
    ns_status st;
    if (n == 0) {
        return NS_OK;
    }
    ns_buf_reset(b);
    st = ns_buf_putc(b, '{');
    for (size_t i = 0; i < n && st == NS_OK; i++) {
        st = ns_buf_printf(b, "%s%" PRId64, i ? "," : "", ids[i]);
    }
    st = st ? st : ns_buf_append(b, "}", 2);
    if (st != NS_OK) {
        return ns__err_set(&db->err, st, "batch list too long");
    }
    const char *p[] = {(const char *)b->data};
    NS_TRY(ns__db_exec(db, "SELECT " SQL_INFO_COLS " FROM batches WHERE id = ANY($1::bigint[])", 1, p, &r));
    for (int i = 0; i < PQntuples(r); i++) {
        info_from_row(r, i, &info);
        cb(user, &info);
    }
    PQclear(r);
    return NS_OK;
}

ns_status ns_queue_seal(ns_db *db, int64_t batch_id, ns_batch_info *out) {
    char id[24];
    PGresult *r;
    const char *p[] = {ns__i64(id, batch_id)};
    NS_TRY(ns__db_exec(db,
                       "UPDATE batches SET sealed_at = now(),"
                       " state = CASE WHEN queued + running = 0 THEN 'done'::ns_batch_state"
                       "   ELSE 'sealed'::ns_batch_state END,"
                       " finished_at = CASE WHEN queued + running = 0 THEN now() ELSE NULL END"
                       " WHERE id = $1 AND state = 'open'",
                       1, p, &r));
    PQclear(r);
    NS_TRY(ns_queue_batch_info(db, batch_id, out, NULL));
    if (strcmp(out->state, "cancelled") == 0) {
        return ns__err_set(&db->err, NS_ERR_STATE, "batch %" PRId64 " is cancelled", batch_id);
    }
    return NS_OK;
}

/* Cancel jobs of one batch matching `filter` (SQL over jobs, may use $2):
 * queued ones at once, leased ones flagged and reported through cb. */
static ns_status cancel_where(ns_db *db, int64_t batch_id, const char *filter, const char *arg2, int64_t *n_cancelled,
                              int64_t *n_running, ns_queue_leased_fn cb, void *user) {
    char sql[4096], id[24];
    PGresult *r;
    ns_status st;
    const char *p[] = {ns__i64(id, batch_id), arg2};
    int np = arg2 ? 2 : 1;
    *n_cancelled = 0;
    *n_running = 0;
    PGresult *flagged = NULL;
    NS_TRY(ns__db_begin(db));
    /* Flag running jobs first, then cancel queued ones: a running job that
     * is requeued in between is caught by the second statement, and one
     * requeued after the flag becomes cancelled instead of queued. */
    snprintf(sql, sizeof sql,
             "UPDATE jobs SET cancel_requested = true WHERE batch_id = $1 AND state = 'leased' AND %s"
             " RETURNING id, attempt, lease_owner",
             filter);
    if ((st = ns__db_exec(db, sql, np, p, &flagged)) != NS_OK) {
        goto fail;
    }
    snprintf(sql, sizeof sql,
             "WITH j AS (UPDATE jobs SET state = 'cancelled', finished_at = now()"
             " WHERE batch_id = $1 AND state = 'queued' AND %s RETURNING id, batch_id),"
             " d AS (SELECT batch_id, -count(*) AS dq, 0::bigint AS dr, 0::bigint AS ds, 0::bigint AS df,"
             "   count(*) AS dc, 0::bigint AS dpt, 0::bigint AS dct FROM j GROUP BY batch_id)," NS__SQL_BATCH_APPLY
             " SELECT count(*) FROM j",
             filter);
    if ((st = ns__db_exec(db, sql, np, p, &r)) != NS_OK) {
        goto fail;
    }
    *n_cancelled = ns__cell_i64(r, 0, 0);
    PQclear(r);
    if ((st = ns__db_commit(db)) != NS_OK) {
        goto fail;
    }
    r = flagged;
    *n_running = PQntuples(r);
    for (int i = 0; cb != NULL && i < PQntuples(r); i++) {
        const char *owner = ns__cell_str(r, i, 2);
        cb(user, ns__cell_i64(r, i, 0), (int32_t)ns__cell_i64(r, i, 1), owner ? owner : "");
    }
    PQclear(r);
    return NS_OK;
fail:
    PQclear(flagged);
    ns__db_rollback(db);
    return st;
}

ns_status ns_queue_cancel_batch(ns_db *db, int64_t batch_id, int64_t *n_cancelled, int64_t *n_running,
                                ns_queue_leased_fn cb, void *user) {
    char id[24];
    PGresult *r;
    const char *p[] = {ns__i64(id, batch_id)};
    *n_cancelled = *n_running = 0;
    /* Mark the batch first so no new job is claimed or enqueued; a done batch
     * stays done. finished_at is set now when nothing is running. */
    NS_TRY(ns__db_exec(db,
                       "UPDATE batches SET state = CASE WHEN state = 'done' THEN state ELSE 'cancelled' END,"
                       " finished_at = CASE WHEN state = 'done' THEN finished_at"
                       "   WHEN running = 0 THEN coalesce(finished_at, now()) ELSE NULL END"
                       " WHERE id = $1 RETURNING state::text",
                       1, p, &r));
    if (PQntuples(r) != 1) {
        PQclear(r);
        return ns__err_set(&db->err, NS_ERR_NOT_FOUND, "batch %" PRId64 " not found", batch_id);
    }
    bool done = strcmp(PQgetvalue(r, 0, 0), "done") == 0;
    PQclear(r);
    if (done) {
        return NS_OK;
    }
    return cancel_where(db, batch_id, "true", NULL, n_cancelled, n_running, cb, user);
}

/* Append s as one element of a PostgreSQL array literal: "..." with \ and "
 * escaped. */
static ns_status array_elem(ns_buf *b, const char *s, size_t len) {
    NS_TRY(ns_buf_putc(b, '"'));
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            NS_TRY(ns_buf_putc(b, '\\'));
        }
        NS_TRY(ns_buf_putc(b, s[i]));
    }
    return ns_buf_putc(b, '"');
}

ns_status ns_queue_cancel_jobs(ns_db *db, int64_t batch_id, const char *const *custom_ids, const size_t *lens, size_t n,
                               int64_t *n_cancelled, int64_t *n_running, ns_queue_leased_fn cb, void *user) {
    ns_buf arr;
    ns_status st;
    *n_cancelled = *n_running = 0;
    ns_buf_init(&arr, 64u << 20);
    st = ns_buf_putc(&arr, '{');
    for (size_t i = 0; i < n && st == NS_OK; i++) {
        st = i ? ns_buf_putc(&arr, ',') : NS_OK;
        st = st ? st : array_elem(&arr, custom_ids[i], lens[i]);
    }
    st = st ? st : ns_buf_append(&arr, "}", 2);
    if (st != NS_OK) {
        ns_buf_free(&arr);
        return ns__err_set(&db->err, st, "cancel: custom_id list too long");
    }
    st = cancel_where(db, batch_id, "custom_id = ANY($2::text[])", (const char *)arr.data, n_cancelled, n_running, cb,
                      user);
    ns_buf_free(&arr);
    return st;
}

ns_status ns_queue_retry_failed(ns_db *db, int64_t batch_id, int64_t *n_requeued) {
    char id[24];
    PGresult *r;
    ns_batch_info info;
    *n_requeued = 0;
    NS_TRY(ns_queue_batch_info(db, batch_id, &info, NULL));
    if (strcmp(info.state, "cancelled") == 0) {
        return ns__err_set(&db->err, NS_ERR_STATE, "batch %" PRId64 " is cancelled", batch_id);
    }
    const char *p[] = {ns__i64(id, batch_id)};
    NS_TRY(ns__db_exec(db,
                       "WITH j AS (UPDATE jobs SET state = 'queued', failures = 0, run_at = now(), finished_at = NULL"
                       " WHERE batch_id = $1 AND state = 'failed' RETURNING id, batch_id),"
                       " n AS (SELECT count(*) AS c FROM j),"
                       " bu AS (UPDATE batches b SET queued = b.queued + n.c, failed = b.failed - n.c,"
                       "   state = CASE WHEN b.state = 'done' THEN 'sealed'::ns_batch_state ELSE b.state END,"
                       "   finished_at = NULL"
                       "   FROM n WHERE b.id = $1 AND n.c > 0 AND b.state <> 'cancelled')"
                       " SELECT c FROM n",
                       1, p, &r));
    *n_requeued = ns__cell_i64(r, 0, 0);
    PQclear(r);
    return NS_OK;
}

ns_status ns_queue_results(ns_db *db, int64_t batch_id, int64_t after_job_id, int limit, bool errors,
                           bool (*cb)(void *user, const ns_result_row *row), void *user, int64_t *last_job_id,
                           bool *more) {
    static const char *sql_ok =
        "SELECT r.job_id, j.custom_id, r.attempt, r.worker, r.text, r.finish_reason, r.prompt_tokens,"
        " r.completion_tokens, r.queue_ms, r.prefill_ms, r.decode_ms, r.total_ms, extract(epoch from r.created_at),"
        " i.messages IS NOT NULL"
        " FROM results r JOIN jobs j ON j.id = r.job_id JOIN job_inputs i ON i.job_id = r.job_id"
        " WHERE r.batch_id = $1 AND r.job_id > $2 ORDER BY r.job_id LIMIT $3";
    static const char *sql_err =
        "SELECT j.id, j.custom_id, j.state::text, extract(epoch from j.finished_at),"
        " coalesce((SELECT json_agg(json_build_object('attempt', e.attempt, 'worker', e.worker, 'kind', e.kind,"
        "   'message', e.message, 'at', extract(epoch from e.created_at)) ORDER BY e.attempt)"
        "   FROM job_errors e WHERE e.job_id = j.id)::text, '[]')"
        " FROM jobs j WHERE j.batch_id = $1 AND j.id > $2 AND j.state IN ('failed', 'cancelled')"
        " ORDER BY j.id LIMIT $3";
    char id[24], after[24], lim[24];
    PGresult *r;
    if (limit <= 0) {
        limit = 1;
    }
    const char *p[] = {ns__i64(id, batch_id), ns__i64(after, after_job_id), ns__i64(lim, limit)};
    *last_job_id = after_job_id;
    *more = false;
    NS_TRY(ns__db_exec(db, errors ? sql_err : sql_ok, 3, p, &r));
    int n = PQntuples(r);
    int i = 0;
    for (; i < n; i++) {
        ns_result_row row;
        memset(&row, 0, sizeof row);
        row.job_id = ns__cell_i64(r, i, 0);
        row.custom_id = PQgetvalue(r, i, 1);
        if (errors) {
            row.state = PQgetvalue(r, i, 2);
            row.finished_at = ns__cell_f64(r, i, 3, 0);
            row.errors_json = PQgetvalue(r, i, 4);
        } else {
            row.state = "succeeded";
            row.attempt = (int32_t)ns__cell_i64(r, i, 2);
            row.worker = PQgetvalue(r, i, 3);
            row.text = PQgetvalue(r, i, 4);
            row.text_len = (size_t)PQgetlength(r, i, 4);
            row.finish_reason = PQgetvalue(r, i, 5);
            row.prompt_tokens = (int32_t)ns__cell_i64(r, i, 6);
            row.completion_tokens = (int32_t)ns__cell_i64(r, i, 7);
            row.queue_ms = ns__cell_f64(r, i, 8, -1);
            row.prefill_ms = ns__cell_f64(r, i, 9, -1);
            row.decode_ms = ns__cell_f64(r, i, 10, -1);
            row.total_ms = ns__cell_f64(r, i, 11, -1);
            row.finished_at = ns__cell_f64(r, i, 12, 0);
            row.chat = strcmp(PQgetvalue(r, i, 13), "t") == 0;
        }
        if (!cb(user, &row)) {
            break;
        }
        *last_job_id = row.job_id;
    }
    *more = i < n || n == limit;
    PQclear(r);
    return NS_OK;
}
