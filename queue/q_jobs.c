/*
 * q_jobs.c - claims, leases and the fenced worker writes (see ns_queue.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "db_impl.h"
#include "ns_queue.h"
#include "q_sql.h"

/* ---- claim ------------------------------------------------------------------ */

/* Claim: the candidate rows are locked in a MATERIALIZED CTE with
 * FOR UPDATE SKIP LOCKED, so concurrent claimers (several brokers) never
 * block on or double-claim a row, and the planner cannot inline the LIMIT
 * subquery into the UPDATE. */
static const char *SQL_CLAIM =
    "WITH cand AS MATERIALIZED ("
    "  SELECT id FROM jobs"
    "  WHERE state = 'queued' AND run_at <= now()"
    "    AND batch_id IN (SELECT id FROM batches WHERE model = $1 AND state IN ('open', 'sealed'))"
    "  ORDER BY priority DESC, id LIMIT $2"
    "  FOR UPDATE SKIP LOCKED),"
    " j AS (UPDATE jobs SET state = 'leased', attempt = jobs.attempt + 1, lease_owner = $3,"
    "   lease_expires_at = now() + $4::bigint * interval '1 millisecond', leased_at = now()"
    "   FROM cand WHERE jobs.id = cand.id"
    "   RETURNING jobs.id, jobs.batch_id, jobs.custom_id, jobs.attempt),"
    " d AS (SELECT batch_id, -count(*) AS dq, count(*) AS dr, 0::bigint AS ds, 0::bigint AS df, 0::bigint AS dc,"
    "   0::bigint AS dpt, 0::bigint AS dct FROM j GROUP BY batch_id)," NS__SQL_BATCH_APPLY
    " SELECT j.id, j.batch_id, j.attempt, j.custom_id, i.prompt, i.messages::text, i.max_tokens, i.temperature,"
    "   i.top_k, i.top_p, i.min_p, i.seed, i.stop::text"
    " FROM j JOIN job_inputs i ON i.job_id = j.id ORDER BY j.id";

ns_status ns_queue_claim(ns_db *db, const char *model, const char *owner, int limit, int64_t lease_ms,
                         void (*cb)(void *user, const ns_claimed_job *job), void *user, int *n_claimed) {
    char lim[24], lease[24];
    PGresult *r;
    if (n_claimed != NULL) {
        *n_claimed = 0;
    }
    if (limit <= 0) {
        return NS_OK;
    }
    const char *p[] = {model, ns__i64(lim, limit), owner, ns__i64(lease, lease_ms)};
    NS_TRY(ns__db_exec(db, SQL_CLAIM, 4, p, &r));
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        ns_claimed_job job = {
            .job_id = ns__cell_i64(r, i, 0),
            .batch_id = ns__cell_i64(r, i, 1),
            .attempt = (int32_t)ns__cell_i64(r, i, 2),
            .custom_id = ns__cell_str(r, i, 3),
            .prompt = ns__cell_str(r, i, 4),
            .messages_json = ns__cell_str(r, i, 5),
            .max_tokens = (int32_t)ns__cell_i64(r, i, 6),
            .temperature = (float)ns__cell_f64(r, i, 7, 1.0),
            .top_k = (int32_t)ns__cell_i64(r, i, 8),
            .top_p = (float)ns__cell_f64(r, i, 9, 1.0),
            .min_p = (float)ns__cell_f64(r, i, 10, 0.0),
            .has_seed = !PQgetisnull(r, i, 11),
            .seed = ns__cell_i64(r, i, 11),
            .stop_json = ns__cell_str(r, i, 12),
        };
        if (cb != NULL) {
            cb(user, &job);
        }
    }
    PQclear(r);
    if (n_claimed != NULL) {
        *n_claimed = n;
    }
    return NS_OK;
}

ns_status ns_queue_renew_leases(ns_db *db, const char *owner, int64_t lease_ms, int64_t *n_renewed) {
    char lease[24];
    PGresult *r;
    const char *p[] = {owner, ns__i64(lease, lease_ms)};
    NS_TRY(ns__db_exec(db,
                       "UPDATE jobs SET lease_expires_at = now() + $2::bigint * interval '1 millisecond'"
                       " WHERE state = 'leased' AND lease_owner = $1",
                       2, p, &r));
    if (n_renewed != NULL) {
        *n_renewed = strtoll(PQcmdTuples(r), NULL, 10);
    }
    PQclear(r);
    return NS_OK;
}

ns_status ns_queue_adopt(ns_db *db, int64_t job_id, int32_t attempt, const char *owner, int64_t lease_ms,
                         bool *adopted) {
    char id[24], at[24], lease[24];
    PGresult *r;
    const char *p[] = {ns__i64(id, job_id), ns__i64(at, attempt), owner, ns__i64(lease, lease_ms)};
    *adopted = false;
    NS_TRY(
        ns__db_exec(db,
                    "UPDATE jobs SET lease_owner = $3, lease_expires_at = now() + $4::bigint * interval '1 millisecond'"
                    " WHERE id = $1 AND attempt = $2 AND state = 'leased'",
                    4, p, &r));
    *adopted = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    return NS_OK;
}

/* ---- requeue (lost worker, reaper, release) ------------------------------- */

/* Leased -> queued / failed / cancelled for every row matching the filter.
 * $1 charge (bool), $2 kind, $3 message, then filter params. */
#define SQL_REQUEUE_HEAD                                                                                               \
    "WITH j AS (UPDATE jobs SET"                                                                                       \
    "   state = " NS__SQL_NEXT_STATE(                                                                                  \
        "$1::boolean", "true") ","                                                                                     \
                               "   finished_at = CASE WHEN " NS__SQL_NEXT_STATE(                                       \
                                   "$1::boolean",                                                                      \
                                   "true") " IN ('failed', 'cancelled')"                                               \
                                           "     THEN now() ELSE NULL END,"                                            \
                                           "   failures = failures + CASE WHEN $1::boolean THEN 1 ELSE 0 END,"         \
                                           "   run_at = now(), lease_owner = NULL, lease_expires_at = NULL"            \
                                           " WHERE state = 'leased' AND "
#define SQL_REQUEUE_TAIL                                                                                               \
    " RETURNING id, batch_id, attempt, state),"                                                                        \
    " e AS (INSERT INTO job_errors (job_id, attempt, worker, kind, message)"                                           \
    "   SELECT j.id, j.attempt, $4, $2, $3 FROM j WHERE $1::boolean ON CONFLICT DO "                                   \
    "NOTHING)," NS__SQL_DELTA_FROM_LEASED "," NS__SQL_BATCH_APPLY " SELECT count(*) FROM j"

ns_status ns_queue_requeue_owner(ns_db *db, const char *owner, bool charge, const char *kind, const char *message,
                                 const int64_t *keep_job_ids, const int32_t *keep_attempts, size_t n_keep,
                                 int64_t *n_requeued) {
    static const char *sql = SQL_REQUEUE_HEAD
        "lease_owner = $4 AND NOT ((id, attempt) IN (SELECT * FROM unnest($5::bigint[], $6::int[])))" SQL_REQUEUE_TAIL;
    ns_buf ids, ats;
    PGresult *r = NULL;
    ns_status st;
    ns_buf_init(&ids, 64u << 20);
    ns_buf_init(&ats, 64u << 20);
    st = ns_buf_putc(&ids, '{');
    st = st ? st : ns_buf_putc(&ats, '{');
    for (size_t i = 0; i < n_keep && st == NS_OK; i++) {
        st = ns_buf_printf(&ids, "%s%" PRId64, i ? "," : "", keep_job_ids[i]);
        st = st ? st : ns_buf_printf(&ats, "%s%" PRId32, i ? "," : "", keep_attempts[i]);
    }
    st = st ? st : ns_buf_append(&ids, "}", 2);
    st = st ? st : ns_buf_append(&ats, "}", 2);
    if (st == NS_OK) {
        const char *p[] = {charge ? "true" : "false", kind ? kind : "released", message ? message : "", owner,
                           (const char *)ids.data,    (const char *)ats.data};
        st = ns__db_exec(db, sql, 6, p, &r);
    }
    if (st == NS_OK && n_requeued != NULL) {
        *n_requeued = ns__cell_i64(r, 0, 0);
    }
    PQclear(r);
    ns_buf_free(&ids);
    ns_buf_free(&ats);
    return st;
}

ns_status ns_queue_reap_expired(ns_db *db, int64_t *n_reaped) {
    /* $4 is the worker column of job_errors: the owner that lost the lease. */
    static const char *sql =
        "WITH j AS (UPDATE jobs SET"
        "   state = " NS__SQL_NEXT_STATE(
            "true",
            "true") ","
                    "   finished_at = CASE WHEN " NS__SQL_NEXT_STATE(
                        "true",
                        "true") " IN ('failed', 'cancelled')"
                                "     THEN now() ELSE NULL END,"
                                "   failures = failures + 1, run_at = now(), lease_owner = NULL, lease_expires_at = "
                                "NULL"
                                " FROM (SELECT id AS xid, lease_owner AS old_owner FROM jobs"
                                "       WHERE state = 'leased' AND lease_expires_at < now() FOR UPDATE SKIP LOCKED) x"
                                " WHERE jobs.id = x.xid AND jobs.state = 'leased'"
                                " RETURNING jobs.id, jobs.batch_id, jobs.attempt, jobs.state, x.old_owner),"
                                " e AS (INSERT INTO job_errors (job_id, attempt, worker, kind, message)"
                                "   SELECT j.id, j.attempt, j.old_owner, 'lease_expired', 'lease expired: the worker "
                                "stopped renewing it'"
                                "   FROM j ON CONFLICT DO NOTHING)," NS__SQL_DELTA_FROM_LEASED "," NS__SQL_BATCH_APPLY
                                " SELECT count(*) FROM j";
    PGresult *r;
    NS_TRY(ns__db_exec(db, sql, 0, NULL, &r));
    if (n_reaped != NULL) {
        *n_reaped = ns__cell_i64(r, 0, 0);
    }
    PQclear(r);
    return NS_OK;
}

/* ---- fenced worker writes ------------------------------------------------- */

static ns_status fenced_count(ns_db *db, PGresult *r, int64_t job_id, int32_t attempt) {
    int64_t n = ns__cell_i64(r, 0, 0);
    PQclear(r);
    if (n == 0) {
        return ns__err_set(&db->err, NS_ERR_CONFLICT,
                           "stale lease: job %" PRId64 " attempt %" PRId32 " is no longer leased with that attempt",
                           job_id, attempt);
    }
    return NS_OK;
}

static const char *opt_ms(char *buf, double v) {
    if (v < 0) {
        return NULL;
    }
    snprintf(buf, 32, "%.3f", v);
    return buf;
}

ns_status ns_queue_complete(ns_db *db, int64_t job_id, int32_t attempt, const char *worker, const ns_job_result *res) {
    static const char *sql =
        "WITH j AS (UPDATE jobs SET state = 'succeeded', finished_at = now(), lease_owner = NULL,"
        "   lease_expires_at = NULL"
        " WHERE id = $1 AND attempt = $2 AND state = 'leased' RETURNING id, batch_id, attempt, state),"
        " r AS (INSERT INTO results (job_id, batch_id, attempt, worker, text, finish_reason, prompt_tokens,"
        "   completion_tokens, queue_ms, prefill_ms, decode_ms, total_ms)"
        "   SELECT id, batch_id, attempt, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM j"
        "   ON CONFLICT (job_id) DO NOTHING),"
        " d AS (SELECT batch_id, 0::bigint AS dq, -1::bigint AS dr, 1::bigint AS ds, 0::bigint AS df,"
        "   0::bigint AS dc, $6::bigint AS dpt, $7::bigint AS dct FROM j)," NS__SQL_BATCH_APPLY
        " SELECT count(*) FROM j";
    char id[24], at[24], pt[24], ct[24], q[32], pf[32], dc[32], tt[32];
    PGresult *r;
    ns_buf *txt = &db->scratch;
    if (res->text_len > 0 && memchr(res->text, 0, res->text_len) != NULL) {
        return ns__err_set(&db->err, NS_ERR_INVALID_ARG, "result text contains a NUL byte");
    }
    ns_buf_reset(txt);
    if (ns_buf_append(txt, res->text, res->text_len) != NS_OK || ns_buf_putc(txt, 0) != NS_OK) {
        return ns__err_set(&db->err, NS_ERR_CAPACITY, "result text too large");
    }
    const char *p[] = {ns__i64(id, job_id),
                       ns__i64(at, attempt),
                       worker,
                       (const char *)txt->data,
                       res->finish_reason ? res->finish_reason : "stop",
                       ns__i64(pt, res->prompt_tokens),
                       ns__i64(ct, res->completion_tokens),
                       opt_ms(q, res->queue_ms),
                       opt_ms(pf, res->prefill_ms),
                       opt_ms(dc, res->decode_ms),
                       opt_ms(tt, res->total_ms)};
    NS_TRY(ns__db_exec(db, sql, 11, p, &r));
    return fenced_count(db, r, job_id, attempt);
}

ns_status ns_queue_fail(ns_db *db, int64_t job_id, int32_t attempt, const char *worker, const char *kind,
                        const char *message, bool retryable, char new_state[16]) {
    /* Backoff: min(cap, base * 2^failures) * [0.5, 1.0). */
    static const char *sql =
        "WITH j AS (UPDATE jobs SET"
        "   state = " NS__SQL_NEXT_STATE(
            "true",
            "$6::boolean") ","
                           "   finished_at = CASE WHEN " NS__SQL_NEXT_STATE(
                               "true",
                               "$6::boolean") " IN ('failed', 'cancelled')"
                                              "     THEN now() ELSE NULL END,"
                                              "   run_at = now() + least($8::float8, $7::float8 * power(2, "
                                              "least(failures, 30)))"
                                              "     * (0.5 + random() / 2) * interval '1 millisecond',"
                                              "   failures = failures + 1, lease_owner = NULL, lease_expires_at = NULL"
                                              " WHERE id = $1 AND attempt = $2 AND state = 'leased' RETURNING id, "
                                              "batch_id, attempt, state),"
                                              " e AS (INSERT INTO job_errors (job_id, attempt, worker, kind, message)"
                                              "   SELECT id, attempt, $3, $4, $5 FROM j ON CONFLICT DO "
                                              "NOTHING)," NS__SQL_DELTA_FROM_LEASED "," NS__SQL_BATCH_APPLY
                                              " SELECT count(*), max(state::text) FROM j";
    char id[24], at[24], base[24], cap[24];
    PGresult *r;
    const char *p[] = {ns__i64(id, job_id),
                       ns__i64(at, attempt),
                       worker,
                       kind ? kind : "error",
                       message ? message : "",
                       retryable ? "true" : "false",
                       ns__i64(base, db->backoff_base_ms),
                       ns__i64(cap, db->backoff_cap_ms)};
    NS_TRY(ns__db_exec(db, sql, 8, p, &r));
    if (new_state != NULL) {
        const char *s = ns__cell_str(r, 0, 1);
        snprintf(new_state, 16, "%s", s ? s : "");
    }
    return fenced_count(db, r, job_id, attempt);
}

/* Uncharged end of a lease for one job; `to_cancelled` forces cancelled. */
static ns_status end_lease(ns_db *db, int64_t job_id, int32_t attempt, bool to_cancelled) {
    static const char *sql = "WITH j AS (UPDATE jobs SET"
                             "   state = CASE WHEN cancel_requested OR $3::boolean THEN 'cancelled'::ns_job_state"
                             "     ELSE 'queued'::ns_job_state END,"
                             "   finished_at = CASE WHEN cancel_requested OR $3::boolean THEN now() ELSE NULL END,"
                             "   run_at = now(), lease_owner = NULL, lease_expires_at = NULL"
                             " WHERE id = $1 AND attempt = $2 AND state = 'leased' RETURNING id, batch_id, attempt, "
                             "state)," NS__SQL_DELTA_FROM_LEASED "," NS__SQL_BATCH_APPLY " SELECT count(*) FROM j";
    char id[24], at[24];
    PGresult *r;
    const char *p[] = {ns__i64(id, job_id), ns__i64(at, attempt), to_cancelled ? "true" : "false"};
    NS_TRY(ns__db_exec(db, sql, 3, p, &r));
    return fenced_count(db, r, job_id, attempt);
}

ns_status ns_queue_release(ns_db *db, int64_t job_id, int32_t attempt) {
    return end_lease(db, job_id, attempt, false);
}

ns_status ns_queue_ack_cancel(ns_db *db, int64_t job_id, int32_t attempt) {
    return end_lease(db, job_id, attempt, true);
}
