/*
 * q_sql.h - SQL fragments shared by the queue's statements (internal).
 *
 * Every statement that moves jobs between states ends with the same two CTEs:
 * `d` (per-batch counter deltas computed from the rows the statement itself
 * changed) and `bu` (apply them to batches, and close the batch when nothing
 * is left queued or running). The deltas come from RETURNING rows, never from
 * a scan of the jobs table.
 */
#ifndef NS_Q_SQL_H
#define NS_Q_SQL_H

/* Deltas for rows of CTE `j` (batch_id, state = new state) that were leased. */
#define NS__SQL_DELTA_FROM_LEASED                                                                                      \
    " d AS (SELECT batch_id, count(*) FILTER (WHERE state = 'queued') AS dq, -count(*) AS dr,"                         \
    " count(*) FILTER (WHERE state = 'succeeded') AS ds, count(*) FILTER (WHERE state = 'failed') AS df,"              \
    " count(*) FILTER (WHERE state = 'cancelled') AS dc, 0::bigint AS dpt, 0::bigint AS dct"                           \
    " FROM j GROUP BY batch_id)"

/* Apply `d` to batches. A sealed batch with nothing queued or running is done;
 * finished_at is set when a sealed/cancelled batch drains. */
#define NS__SQL_BATCH_APPLY                                                                                            \
    " bu AS (UPDATE batches b SET queued = b.queued + d.dq, running = b.running + d.dr,"                               \
    " succeeded = b.succeeded + d.ds, failed = b.failed + d.df, cancelled = b.cancelled + d.dc,"                       \
    " prompt_tokens = b.prompt_tokens + d.dpt, completion_tokens = b.completion_tokens + d.dct,"                       \
    " started_at = CASE WHEN d.dr > 0 THEN coalesce(b.started_at, now()) ELSE b.started_at END,"                       \
    " state = CASE WHEN b.state = 'sealed' AND b.queued + d.dq + b.running + d.dr = 0"                                 \
    "   THEN 'done'::ns_batch_state ELSE b.state END,"                                                                 \
    " finished_at = CASE WHEN b.state IN ('sealed', 'cancelled', 'done') AND b.queued + d.dq + b.running + d.dr = 0"   \
    "   THEN coalesce(b.finished_at, now()) ELSE NULL END"                                                             \
    " FROM d WHERE b.id = d.batch_id RETURNING b.id)"

/* The state a leased job moves to when an attempt ends without a result.
 * $charge (a boolean expression) says whether the attempt counts. */
#define NS__SQL_NEXT_STATE(charge, retryable)                                                                          \
    "CASE WHEN cancel_requested THEN 'cancelled'::ns_job_state"                                                        \
    " WHEN NOT (" charge ") THEN 'queued'::ns_job_state"                                                               \
    " WHEN (" retryable ") AND failures + 1 < max_attempts THEN 'queued'::ns_job_state"                                \
    " ELSE 'failed'::ns_job_state END"

#endif /* NS_Q_SQL_H */
