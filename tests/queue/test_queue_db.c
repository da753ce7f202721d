/*
 * test_queue_db.c - the queue's transactions against a real, private
 * PostgreSQL: migrations (twice and concurrently), enqueue, duplicate
 * custom_id, claim, complete with fencing, fail/backoff/max_attempts, retry,
 * cancel, reaper, release, adopt, seal/done, and the batch counters checked
 * against the jobs table after every step.
 */
#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ns_db.h"
#include "ns_mpack.h"
#include "ns_queue.h"
#include "ns_test.h"
#include "ns_util.h"
#include "pg_env.h"

static ns_db *g_db;

/* A job spec built from msgpack and decoded through the real decoder. */
typedef struct tjob {
    msgpack_sbuffer sb;
    ns_job_spec spec;
} tjob;

static void tjob_make(tjob *t, const char *custom_id, const char *prompt, bool chat) {
    msgpack_packer pk;
    ns_err err = {0};
    msgpack_sbuffer_init(&t->sb);
    msgpack_packer_init(&pk, &t->sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, chat ? 5 : 4);
    ns_mp_pack_kv_str(&pk, "custom_id", custom_id);
    if (chat) {
        ns_mp_pack_cstr(&pk, "messages");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_map(&pk, 2);
        ns_mp_pack_kv_str(&pk, "role", "system");
        ns_mp_pack_kv_str(&pk, "content", "Be \"brief\"\n\tplease \\ ok");
        msgpack_pack_map(&pk, 2);
        ns_mp_pack_kv_str(&pk, "role", "user");
        ns_mp_pack_kv_str(&pk, "content", prompt);
        ns_mp_pack_cstr(&pk, "stop");
        msgpack_pack_array(&pk, 2);
        ns_mp_pack_cstr(&pk, "\n\n");
        ns_mp_pack_cstr(&pk, "END");
    } else {
        ns_mp_pack_kv_str(&pk, "prompt", prompt);
    }
    ns_mp_pack_kv_int(&pk, "max_tokens", 17);
    ns_mp_pack_kv_int(&pk, "seed", 42);
    ASSERT_OK(ns_mp_check((const uint8_t *)t->sb.data, t->sb.size, NULL, &err));
    ASSERT_OK(ns_job_spec_decode((const uint8_t *)t->sb.data, t->sb.size, NULL, &t->spec, &err));
}

static int64_t q1(const char *sql) {
    PGresult *r = PQexec(ns_db_pgconn(g_db), sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        NS_FAIL("query failed: %s: %s", sql, PQerrorMessage(ns_db_pgconn(g_db)));
    }
    int64_t v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

static const char *qs(const char *sql, char *buf, size_t n) {
    PGresult *r = PQexec(ns_db_pgconn(g_db), sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        NS_FAIL("query failed: %s", sql);
    }
    snprintf(buf, n, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return buf;
}

/* The counters must equal a GROUP BY over jobs (done here, in the test only). */
static void check_counters(void) {
    int64_t bad = q1("SELECT count(*) FROM batches b LEFT JOIN (SELECT batch_id,"
                     " count(*) FILTER (WHERE state='queued') q, count(*) FILTER (WHERE state='leased') r,"
                     " count(*) FILTER (WHERE state='succeeded') s, count(*) FILTER (WHERE state='failed') f,"
                     " count(*) FILTER (WHERE state='cancelled') c, count(*) t FROM jobs GROUP BY batch_id) x"
                     " ON x.batch_id = b.id WHERE b.total <> coalesce(x.t,0) OR b.queued <> coalesce(x.q,0)"
                     " OR b.running <> coalesce(x.r,0) OR b.succeeded <> coalesce(x.s,0)"
                     " OR b.failed <> coalesce(x.f,0) OR b.cancelled <> coalesce(x.c,0)");
    ASSERT_EQ(bad, 0);
}

typedef struct claimed {
    int n;
    int64_t ids[16];
    int32_t attempts[16];
    char prompt[16][128];
    char messages[16][256];
    char stop[16][64];
} claimed;

static void on_claim(void *user, const ns_claimed_job *j) {
    claimed *c = user;
    if (c->n >= 16) {
        NS_FAIL("too many claimed");
    }
    c->ids[c->n] = j->job_id;
    c->attempts[c->n] = j->attempt;
    snprintf(c->prompt[c->n], 128, "%s", j->prompt ? j->prompt : "");
    snprintf(c->messages[c->n], 256, "%s", j->messages_json ? j->messages_json : "");
    snprintf(c->stop[c->n], 64, "%s", j->stop_json ? j->stop_json : "");
    ASSERT_EQ(j->max_tokens, 17);
    ASSERT_TRUE(j->has_seed && j->seed == 42);
    c->n++;
}

static claimed claim(const char *model, const char *owner, int n, int64_t lease_ms) {
    claimed c;
    memset(&c, 0, sizeof c);
    int got = -1;
    ASSERT_OK(ns_queue_claim(g_db, model, owner, n, lease_ms, on_claim, &c, &got));
    ASSERT_EQ(got, c.n);
    return c;
}

static int64_t new_batch(const char *model, int max_attempts) {
    ns_batch_spec bs = {"t", model, 0, max_attempts, "{\"k\": [1, \"two\"]}", NULL};
    int64_t id;
    bool created;
    ASSERT_OK(ns_queue_create_batch(g_db, &bs, &id, &created));
    ASSERT_TRUE(created);
    return id;
}

static void enqueue_n(int64_t batch, const char *prefix, int n) {
    tjob t[16];
    ns_job_spec specs[16];
    char id[64];
    int64_t total;
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof id, "%s-%d", prefix, i);
        tjob_make(&t[i], id, "hello", i % 2 == 1);
        specs[i] = t[i].spec;
    }
    ASSERT_OK(ns_queue_enqueue(g_db, batch, specs, (size_t)n, &total));
    for (int i = 0; i < n; i++) {
        msgpack_sbuffer_destroy(&t[i].sb);
    }
}

static void test_migrations(const char *conninfo) {
    /* Three migrators at once on an empty database, then once more. */
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            ns_db *db;
            ns_db_create(&db, conninfo);
            int ok = ns_db_connect(db) == NS_OK && ns_db_migrate(db, NULL, NULL) == NS_OK;
            if (!ok) {
                fprintf(stderr, "child migrate: %s\n", ns_db_errmsg(db));
            }
            ns_db_destroy(&db);
            _exit(ok ? 0 : 1);
        }
    }
    for (int i = 0; i < 3; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    int from = -1, to = -1, v = -1;
    ASSERT_OK(ns_db_migrate(g_db, &from, &to));
    ASSERT_EQ(from, ns_db_latest_version());
    ASSERT_EQ(to, ns_db_latest_version());
    ASSERT_OK(ns_db_schema_version(g_db, &v));
    ASSERT_EQ(v, ns_db_latest_version());
    ASSERT_EQ(q1("SELECT count(*) FROM ns_schema_version"), ns_db_latest_version());
}

/* Each result row's custom_id and input kind. */
typedef struct row_kinds {
    int n;
    char custom[8][16];
    bool chat[8];
} row_kinds;

static bool on_kind(void *user, const ns_result_row *row) {
    row_kinds *k = user;
    if (k->n < 8) {
        snprintf(k->custom[k->n], sizeof k->custom[k->n], "%s", row->custom_id);
        k->chat[k->n] = row->chat;
    }
    k->n++;
    return true;
}

static void test_enqueue_dup_complete_fencing(void) {
    char buf[256];
    int64_t b = new_batch("m-a", 3), total = 0;
    enqueue_n(b, "j", 3);
    check_counters();
    /* Duplicate custom_id: rejected as a whole, counters unchanged. */
    tjob t[2];
    tjob_make(&t[0], "new-1", "x", false);
    tjob_make(&t[1], "j-1", "x", false);
    ns_job_spec specs[2] = {t[0].spec, t[1].spec};
    ASSERT_EQ(ns_queue_enqueue(g_db, b, specs, 2, &total), NS_ERR_CONFLICT);
    ASSERT_TRUE(strstr(ns_db_errmsg(g_db), "duplicate custom_id") != NULL);
    ASSERT_TRUE(strstr(ns_db_errmsg(g_db), "j-1") != NULL);
    snprintf(buf, sizeof buf, "SELECT total FROM batches WHERE id = %lld", (long long)b);
    ASSERT_EQ(q1(buf), 3);
    check_counters();
    /* Inputs went to jsonb intact (quotes, tabs, newlines, backslashes). */
    ASSERT_STREQ(qs("SELECT i.messages->0->>'content' FROM job_inputs i JOIN jobs j ON j.id = i.job_id"
                    " WHERE j.custom_id = 'j-1'",
                    buf, sizeof buf),
                 "Be \"brief\"\n\tplease \\ ok");

    /* Claims only see this model. */
    claimed none = claim("other-model", "w", 5, 30000);
    ASSERT_EQ(none.n, 0);
    claimed c = claim("m-a", "w1", 2, 30000);
    ASSERT_EQ(c.n, 2);
    ASSERT_EQ(c.attempts[0], 1);
    ASSERT_STREQ(c.prompt[0], "hello");
    ASSERT_TRUE(strstr(c.messages[1], "\"role\": \"user\"") != NULL);
    ASSERT_STREQ(c.stop[1], "[\"\\n\\n\", \"END\"]");
    check_counters();

    ns_job_result res = {"the answer", 10, "stop", 4, 2, 1.5, 2.5, 3.5, 7.5};
    ASSERT_OK(ns_queue_complete(g_db, c.ids[0], 1, "w1", &res));
    /* Completing again (same attempt, already succeeded) is fenced. */
    ASSERT_EQ(ns_queue_complete(g_db, c.ids[0], 1, "w1", &res), NS_ERR_CONFLICT);
    ASSERT_TRUE(strstr(ns_db_errmsg(g_db), "stale lease") != NULL);
    snprintf(buf, sizeof buf, "SELECT count(*) FROM results WHERE job_id = %lld", (long long)c.ids[0]);
    ASSERT_EQ(q1(buf), 1);

    /* Lose the second job's worker: requeued (charged), re-claimed as attempt 2. */
    int64_t n = 0;
    ASSERT_OK(ns_queue_requeue_owner(g_db, "w1", true, "worker_lost", "gone", NULL, NULL, 0, &n));
    ASSERT_EQ(n, 1);
    check_counters();
    claimed c2 = claim("m-a", "w2", 5, 30000);
    ASSERT_EQ(c2.n, 2); /* the requeued one and the third job */
    int64_t job = c.ids[1];
    int k = c2.ids[0] == job ? 0 : 1;
    ASSERT_EQ(c2.ids[k], job);
    ASSERT_EQ(c2.attempts[k], 2);
    /* The stale worker (attempt 1) cannot write; the current one can. */
    ns_job_result stale = {"stale", 5, "stop", 1, 1, -1, -1, -1, -1};
    ASSERT_EQ(ns_queue_complete(g_db, job, 1, "w1", &stale), NS_ERR_CONFLICT);
    char st[16];
    ASSERT_EQ(ns_queue_fail(g_db, job, 1, "w1", "x", "stale fail", true, st), NS_ERR_CONFLICT);
    ASSERT_EQ(ns_queue_release(g_db, job, 1), NS_ERR_CONFLICT);
    ASSERT_OK(ns_queue_complete(g_db, job, 2, "w2", &res));
    snprintf(buf, sizeof buf, "SELECT attempt || ':' || worker || ':' || text FROM results WHERE job_id = %lld",
             (long long)job);
    ASSERT_STREQ(qs(buf, buf, sizeof buf), "2:w2:the answer");
    snprintf(buf, sizeof buf, "SELECT count(*) FROM job_errors WHERE job_id = %lld AND kind = 'worker_lost'",
             (long long)job);
    ASSERT_EQ(q1(buf), 1);
    /* Result rows carry the input kind: j-0 is a raw prompt, j-1 chat messages. */
    row_kinds rk = {0};
    int64_t last = 0;
    bool more = false;
    ASSERT_OK(ns_queue_results(g_db, b, 0, 10, false, on_kind, &rk, &last, &more));
    ASSERT_EQ(rk.n, 2);
    ASSERT_STREQ(rk.custom[0], "j-0");
    ASSERT_TRUE(!rk.chat[0]);
    ASSERT_STREQ(rk.custom[1], "j-1");
    ASSERT_TRUE(rk.chat[1]);
    /* Release (uncharged) the third, then it is claimable again. */
    ASSERT_OK(ns_queue_release(g_db, c2.ids[1 - k], c2.attempts[1 - k]));
    snprintf(buf, sizeof buf, "SELECT failures FROM jobs WHERE id = %lld", (long long)c2.ids[1 - k]);
    ASSERT_EQ(q1(buf), 0);
    check_counters();
    /* Adopt: a worker re-announcing a job it still runs. */
    claimed c3 = claim("m-a", "w3", 1, 30000);
    ASSERT_EQ(c3.n, 1);
    bool adopted = false;
    ASSERT_OK(ns_queue_adopt(g_db, c3.ids[0], c3.attempts[0], "w3-new", 30000, &adopted));
    ASSERT_TRUE(adopted);
    ASSERT_OK(ns_queue_adopt(g_db, c3.ids[0], c3.attempts[0] - 1, "w3-new", 30000, &adopted));
    ASSERT_TRUE(!adopted);
    /* READY path: requeue w3-new except the adopted job: nothing moves. */
    ASSERT_OK(ns_queue_requeue_owner(g_db, "w3-new", true, "k", "m", &c3.ids[0], &c3.attempts[0], 1, &n));
    ASSERT_EQ(n, 0);
    /* Seal: stays sealed while a job runs, done after the last result. */
    ns_batch_info info;
    ASSERT_OK(ns_queue_seal(g_db, b, &info));
    ASSERT_STREQ(info.state, "sealed");
    ASSERT_OK(ns_queue_complete(g_db, c3.ids[0], c3.attempts[0], "w3-new", &res));
    ASSERT_OK(ns_queue_batch_info(g_db, b, &info, NULL));
    ASSERT_STREQ(info.state, "done");
    ASSERT_TRUE(info.finished_at > 0 && info.started_at > 0);
    ASSERT_EQ(info.succeeded, 3);
    ASSERT_EQ(info.completion_tokens, 6);
    check_counters();
    /* Enqueue into a sealed batch is refused. */
    ASSERT_EQ(ns_queue_enqueue(g_db, b, specs, 1, &total), NS_ERR_STATE);
    msgpack_sbuffer_destroy(&t[0].sb);
    msgpack_sbuffer_destroy(&t[1].sb);
}

static void test_fail_backoff_retry(void) {
    char buf[256];
    int64_t b = new_batch("m-f", 2);
    enqueue_n(b, "f", 1);
    ns_db_set_backoff(g_db, 400, 400);
    claimed c = claim("m-f", "w", 1, 30000);
    char st[16];
    ASSERT_OK(ns_queue_fail(g_db, c.ids[0], 1, "w", "oom", "prompt too long", true, st));
    ASSERT_STREQ(st, "queued");
    /* Backoff: not claimable at once, claimable after the delay (200..400 ms). */
    ASSERT_EQ(claim("m-f", "w", 1, 30000).n, 0);
    usleep(450000);
    claimed c2 = claim("m-f", "w", 1, 30000);
    ASSERT_EQ(c2.n, 1);
    ASSERT_EQ(c2.attempts[0], 2);
    ASSERT_OK(ns_queue_fail(g_db, c.ids[0], 2, "w", "oom", "prompt too long again", true, st));
    ASSERT_STREQ(st, "failed"); /* max_attempts = 2 */
    check_counters();
    snprintf(buf, sizeof buf, "SELECT count(*) FROM job_errors WHERE job_id = %lld", (long long)c.ids[0]);
    ASSERT_EQ(q1(buf), 2);
    ns_batch_info info;
    ASSERT_OK(ns_queue_seal(g_db, b, &info));
    ASSERT_STREQ(info.state, "done");
    /* Retry failed: back to sealed, job queued with a fresh budget. */
    int64_t n = 0;
    ASSERT_OK(ns_queue_retry_failed(g_db, b, &n));
    ASSERT_EQ(n, 1);
    ASSERT_OK(ns_queue_batch_info(g_db, b, &info, NULL));
    ASSERT_STREQ(info.state, "sealed");
    ASSERT_EQ(info.queued, 1);
    ASSERT_EQ(info.failed, 0);
    check_counters();
    claimed c3 = claim("m-f", "w", 1, 30000);
    ASSERT_EQ(c3.attempts[0], 3);
    /* Not retryable: fails at once even with budget left. */
    ASSERT_OK(ns_queue_fail(g_db, c3.ids[0], 3, "w", "bad", "invalid settings", false, st));
    ASSERT_STREQ(st, "failed");
    ASSERT_OK(ns_queue_batch_info(g_db, b, &info, NULL));
    ASSERT_STREQ(info.state, "done");
    ns_db_set_backoff(g_db, 1000, 300000);
    check_counters();
}

typedef struct cancel_seen {
    int n;
    int64_t job;
    int32_t attempt;
    char owner[64];
} cancel_seen;

static void on_cancel(void *user, int64_t job, int32_t attempt, const char *owner) {
    cancel_seen *s = user;
    s->n++;
    s->job = job;
    s->attempt = attempt;
    snprintf(s->owner, sizeof s->owner, "%s", owner);
}

static void test_cancel(void) {
    int64_t b = new_batch("m-c", 3), nc = 0, nr = 0, total = 0;
    enqueue_n(b, "c", 4);
    claimed c = claim("m-c", "wc", 1, 30000);
    /* Cancel two jobs by custom_id (one queued, one running). */
    char running_id[32];
    snprintf(running_id, sizeof running_id, "c-%lld", (long long)0); /* lowest id claimed first */
    const char *ids[] = {running_id, "c-1"};
    size_t lens[] = {strlen(running_id), 3};
    cancel_seen seen = {0};
    ASSERT_OK(ns_queue_cancel_jobs(g_db, b, ids, lens, 2, &nc, &nr, on_cancel, &seen));
    ASSERT_EQ(nc, 1);
    ASSERT_EQ(nr, 1);
    ASSERT_EQ(seen.n, 1);
    ASSERT_EQ(seen.job, c.ids[0]);
    ASSERT_STREQ(seen.owner, "wc");
    check_counters();
    /* A retryable failure of a cancel-requested job ends cancelled. */
    char st[16];
    ASSERT_OK(ns_queue_fail(g_db, c.ids[0], c.attempts[0], "wc", "x", "y", true, st));
    ASSERT_STREQ(st, "cancelled");
    /* Cancel the batch: remaining queued cancelled, the running one flagged. */
    claimed c2 = claim("m-c", "wc", 1, 30000);
    ASSERT_EQ(c2.n, 1);
    memset(&seen, 0, sizeof seen);
    ASSERT_OK(ns_queue_cancel_batch(g_db, b, &nc, &nr, on_cancel, &seen));
    ASSERT_EQ(nc, 1);
    ASSERT_EQ(nr, 1);
    ns_batch_info info;
    ASSERT_OK(ns_queue_batch_info(g_db, b, &info, NULL));
    ASSERT_STREQ(info.state, "cancelled");
    ASSERT_TRUE(info.finished_at == 0); /* one still running */
    ASSERT_EQ(claim("m-c", "wc", 5, 30000).n, 0);
    ASSERT_OK(ns_queue_ack_cancel(g_db, c2.ids[0], c2.attempts[0]));
    ASSERT_OK(ns_queue_batch_info(g_db, b, &info, NULL));
    ASSERT_EQ(info.cancelled, 4);
    ASSERT_TRUE(info.finished_at > 0);
    check_counters();
    /* No enqueue into a cancelled batch; no retry of it. */
    tjob t;
    tjob_make(&t, "late", "x", false);
    ASSERT_EQ(ns_queue_enqueue(g_db, b, &t.spec, 1, &total), NS_ERR_STATE);
    msgpack_sbuffer_destroy(&t.sb);
    int64_t n;
    ASSERT_EQ(ns_queue_retry_failed(g_db, b, &n), NS_ERR_STATE);
    ASSERT_EQ(ns_queue_cancel_batch(g_db, 999999, &nc, &nr, NULL, NULL), NS_ERR_NOT_FOUND);
}

static void test_reaper(void) {
    char buf[256];
    int64_t b = new_batch("m-r", 1), n = 0;
    enqueue_n(b, "r", 2);
    claimed c = claim("m-r", "wr", 2, 1000); /* 1 s leases */
    ASSERT_EQ(c.n, 2);
    ASSERT_OK(ns_queue_reap_expired(g_db, &n));
    ASSERT_EQ(n, 0);
    int64_t renewed = 0;
    ASSERT_OK(ns_queue_renew_leases(g_db, "wr", 1000, &renewed));
    ASSERT_EQ(renewed, 2);
    usleep(1200000);
    ASSERT_OK(ns_queue_reap_expired(g_db, &n));
    ASSERT_EQ(n, 2);
    /* max_attempts 1: the lost attempt was the last one. */
    snprintf(buf, sizeof buf, "SELECT count(*) FROM jobs WHERE batch_id = %lld AND state = 'failed'", (long long)b);
    ASSERT_EQ(q1(buf), 2);
    snprintf(buf, sizeof buf,
             "SELECT count(*) FROM job_errors e JOIN jobs j ON j.id = e.job_id WHERE j.batch_id = %lld"
             " AND e.kind = 'lease_expired' AND e.worker = 'wr'",
             (long long)b);
    ASSERT_EQ(q1(buf), 2);
    check_counters();
}

typedef struct page {
    int n;
    char first_custom[64];
    char errors[512];
} page;

static bool on_row(void *user, const ns_result_row *row) {
    page *p = user;
    if (p->n == 0) {
        snprintf(p->first_custom, sizeof p->first_custom, "%s", row->custom_id);
        snprintf(p->errors, sizeof p->errors, "%s", row->errors_json ? row->errors_json : "");
    }
    p->n++;
    return true;
}

static void test_results_pages(void) {
    int64_t b = new_batch("m-p", 1), last = 0;
    bool more = false;
    enqueue_n(b, "p", 5);
    claimed c = claim("m-p", "wp", 5, 30000);
    ns_job_result res = {"r", 1, "length", 1, 1, -1, -1, -1, -1};
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(ns_queue_complete(g_db, c.ids[i], c.attempts[i], "wp", &res));
    }
    char st[16];
    ASSERT_OK(
        ns_queue_fail(g_db, c.ids[4], c.attempts[4], "wp", "bad_job", "prompt longer than the context", false, st));
    page p = {0};
    ASSERT_OK(ns_queue_results(g_db, b, 0, 3, false, on_row, &p, &last, &more));
    ASSERT_EQ(p.n, 3);
    ASSERT_TRUE(more);
    ASSERT_STREQ(p.first_custom, "p-0");
    page p2 = {0};
    ASSERT_OK(ns_queue_results(g_db, b, last, 3, false, on_row, &p2, &last, &more));
    ASSERT_EQ(p2.n, 1);
    ASSERT_TRUE(!more);
    page pe = {0};
    ASSERT_OK(ns_queue_results(g_db, b, 0, 10, true, on_row, &pe, &last, &more));
    ASSERT_EQ(pe.n, 1);
    ASSERT_STREQ(pe.first_custom, "p-4");
    ASSERT_TRUE(strstr(pe.errors, "prompt longer than the context") != NULL);
}

static void test_idempotency(void) {
    ns_batch_spec bs = {"i", "m-i", 5, 2, NULL, "key-1"};
    int64_t a, b2;
    bool created;
    ASSERT_OK(ns_queue_create_batch(g_db, &bs, &a, &created));
    ASSERT_TRUE(created);
    ASSERT_OK(ns_queue_create_batch(g_db, &bs, &b2, &created));
    ASSERT_TRUE(!created);
    ASSERT_EQ(a, b2);
    ns_batch_info info;
    ASSERT_OK(ns_queue_seal(g_db, a, &info));
    ASSERT_STREQ(info.state, "done"); /* empty batch */
    ASSERT_EQ(ns_queue_batch_info(g_db, 424242, &info, NULL), NS_ERR_NOT_FOUND);
}

/* The server drops the connection while ns_queue_complete waits on a row
 * lock: NS_ERR_IO (ns_db.h: "the connection is gone"), not NS_ERR_DB; after a
 * reconnect the same write succeeds. */
static void test_connection_lost(const char *conninfo) {
    int64_t b = new_batch("m-lost", 3);
    enqueue_n(b, "l", 1);
    claimed c = claim("m-lost", "wl", 1, 30000);
    ASSERT_EQ(c.n, 1);
    char sql[160];
    PGconn *locker = PQconnectdb(conninfo);
    ASSERT_TRUE(PQstatus(locker) == CONNECTION_OK);
    snprintf(sql, sizeof sql, "BEGIN; SELECT 1 FROM jobs WHERE id = %lld FOR UPDATE", (long long)c.ids[0]);
    PGresult *r = PQexec(locker, sql);
    ASSERT_TRUE(PQresultStatus(r) == PGRES_TUPLES_OK);
    PQclear(r);
    int victim = PQbackendPID(ns_db_pgconn(g_db));
    pid_t pid = fork();
    ASSERT_TRUE(pid >= 0);
    if (pid == 0) {
        usleep(300 * 1000); /* let the parent block on the row lock */
        PGconn *k = PQconnectdb(conninfo);
        snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", victim);
        PGresult *kr = PQexec(k, sql);
        int ok = PQresultStatus(kr) == PGRES_TUPLES_OK && strcmp(PQgetvalue(kr, 0, 0), "t") == 0;
        PQclear(kr);
        PQfinish(k);
        _exit(ok ? 0 : 1);
    }
    ns_job_result res = {"x", 1, "stop", 1, 1, -1, -1, -1, -1};
    ns_status st = ns_queue_complete(g_db, c.ids[0], c.attempts[0], "wl", &res);
    int wst;
    waitpid(pid, &wst, 0);
    ASSERT_TRUE(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    ASSERT_EQ(st, NS_ERR_IO);
    ASSERT_TRUE(!ns_db_connected(g_db));
    r = PQexec(locker, "ROLLBACK");
    PQclear(r);
    PQfinish(locker);
    ASSERT_OK(ns_db_connect(g_db));
    ASSERT_OK(ns_queue_complete(g_db, c.ids[0], c.attempts[0], "wl", &res));
    check_counters();
}

int main(void) {
    ns_test_pg pg;
    ns_test_pg_start(&pg);
    ASSERT_OK(ns_db_create(&g_db, pg.conninfo));
    ASSERT_OK(ns_db_connect(g_db));
    test_migrations(pg.conninfo);
    test_enqueue_dup_complete_fencing();
    test_fail_backoff_retry();
    test_cancel();
    test_reaper();
    test_results_pages();
    test_idempotency();
    test_connection_lost(pg.conninfo);
    check_counters();
    ns_db_destroy(&g_db);
    ns_test_pg_stop(&pg);
    printf("test_queue_db: ok\n");
    return 0;
}
