/*
 * db.c - PostgreSQL connection handling and migrations (see ns_db.h).
 */
#include "db_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ns_status ns_db_create(ns_db **out, const char *conninfo) {
    *out = NULL;
    ns_db *db = calloc(1, sizeof *db);
    if (db == NULL) {
        return NS_ERR_NOMEM;
    }
    db->conninfo = strdup(conninfo ? conninfo : "");
    if (db->conninfo == NULL) {
        free(db);
        return NS_ERR_NOMEM;
    }
    db->backoff_base_ms = 1000;
    db->backoff_cap_ms = 300000;
    ns_buf_init(&db->copy, 1u << 20);
    ns_buf_init(&db->scratch, 64u << 20);
    *out = db;
    return NS_OK;
}

void ns_db_destroy(ns_db **pdb) {
    if (pdb == NULL || *pdb == NULL) {
        return;
    }
    ns_db *db = *pdb;
    if (db->conn != NULL) {
        PQfinish(db->conn);
    }
    ns_buf_free(&db->copy);
    ns_buf_free(&db->scratch);
    free(db->conninfo);
    free(db);
    *pdb = NULL;
}

static void notice_quiet(void *arg, const char *msg) {
    (void)arg;
    (void)msg; /* the library never prints; NOTICEs (e.g. "already exists") are dropped */
}

ns_status ns_db_connect(ns_db *db) {
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK) {
        return NS_OK;
    }
    if (db->conn != NULL) {
        PQfinish(db->conn);
        db->conn = NULL;
    }
    db->conn = PQconnectdb(db->conninfo);
    if (db->conn == NULL) {
        return ns__err_set(&db->err, NS_ERR_NOMEM, "db: PQconnectdb returned NULL");
    }
    if (PQstatus(db->conn) != CONNECTION_OK) {
        char msg[NS_ERRMSG_LEN];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(db->conn));
        msg[strcspn(msg, "\n")] = 0;
        PQfinish(db->conn);
        db->conn = NULL;
        return ns__err_set(&db->err, NS_ERR_IO, "db: connect failed: %s", msg);
    }
    PQsetNoticeProcessor(db->conn, notice_quiet, NULL);
    return NS_OK;
}

bool ns_db_connected(const ns_db *db) {
    return db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK;
}

const char *ns_db_errmsg(const ns_db *db) {
    return ns_err_msg(&db->err);
}

const char *ns_db_sqlstate(const ns_db *db) {
    return db->sqlstate;
}

void ns_db_set_backoff(ns_db *db, int64_t base_ms, int64_t cap_ms) {
    db->backoff_base_ms = base_ms < 0 ? 0 : base_ms;
    db->backoff_cap_ms = cap_ms < db->backoff_base_ms ? db->backoff_base_ms : cap_ms;
}

void *ns_db_pgconn(ns_db *db) {
    return db->conn;
}

ns_status ns__db_fail(ns_db *db, PGresult *res, const char *what) {
    db->sqlstate[0] = 0;
    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
        return ns__err_set(&db->err, NS_ERR_IO, "db: %s: connection lost: %s", what,
                           db->conn ? PQerrorMessage(db->conn) : "not connected");
    }
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    if (state != NULL) {
        snprintf(db->sqlstate, sizeof db->sqlstate, "%s", state);
    }
    if (msg == NULL) {
        msg = PQerrorMessage(db->conn);
    }
    /* Class 08 (connection exception) and 57P (operator intervention: admin
     * shutdown, crash shutdown) mean the server went away. */
    ns_status st = NS_ERR_DB;
    if (state != NULL && (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)) {
        st = NS_ERR_IO;
    } else if (state != NULL && strcmp(state, "23505") == 0) {
        st = NS_ERR_CONFLICT;
    }
    return ns__err_set(&db->err, st, "db: %s: %s%s%s", what, msg, detail ? " " : "", detail ? detail : "");
}

ns_status ns__db_exec(ns_db *db, const char *sql, int n, const char *const *params, PGresult **out) {
    if (out != NULL) {
        *out = NULL;
    }
    if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK) {
        return ns__err_set(&db->err, NS_ERR_IO, "db: not connected");
    }
    /* A single statement outside a transaction that lost a deadlock (40P01)
     * or a serialization check (40001) changed nothing: run it again. */
    bool autocommit = PQtransactionStatus(db->conn) == PQTRANS_IDLE;
    PGresult *res = NULL;
    ExecStatusType s = PGRES_FATAL_ERROR;
    for (int tries = 0; tries < 5; tries++) {
        PQclear(res);
        res = n > 0 ? PQexecParams(db->conn, sql, n, NULL, params, NULL, NULL, 0) : PQexec(db->conn, sql);
        s = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK || !autocommit || state == NULL ||
            (strcmp(state, "40P01") != 0 && strcmp(state, "40001") != 0)) {
            break;
        }
    }
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        ns_status st = ns__db_fail(db, res, "query");
        PQclear(res);
        return st;
    }
    if (out != NULL) {
        *out = res;
    } else {
        PQclear(res);
    }
    return NS_OK;
}

ns_status ns__db_begin(ns_db *db) {
    return ns__db_exec(db, "BEGIN", 0, NULL, NULL);
}
ns_status ns__db_commit(ns_db *db) {
    return ns__db_exec(db, "COMMIT", 0, NULL, NULL);
}

void ns__db_rollback(ns_db *db) {
    if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK && PQtransactionStatus(db->conn) != PQTRANS_IDLE) {
        PQclear(PQexec(db->conn, "ROLLBACK"));
    }
}

const char *ns__i64(char *buf, int64_t v) {
    snprintf(buf, 24, "%" PRId64, v);
    return buf;
}

int64_t ns__cell_i64(const PGresult *r, int row, int col) {
    if (PQgetisnull(r, row, col)) {
        return 0;
    }
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

double ns__cell_f64(const PGresult *r, int row, int col, double if_null) {
    if (PQgetisnull(r, row, col)) {
        return if_null;
    }
    return strtod(PQgetvalue(r, row, col), NULL);
}

const char *ns__cell_str(const PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int ns_db_latest_version(void) {
    return ns__n_migrations > 0 ? ns__migrations[ns__n_migrations - 1].version : 0;
}

static const char *SQL_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS ns_schema_version ("
                                       " version integer PRIMARY KEY,"
                                       " name text NOT NULL,"
                                       " applied_at timestamptz NOT NULL DEFAULT now())";

ns_status ns_db_schema_version(ns_db *db, int *version) {
    PGresult *r;
    *version = 0;
    NS_TRY(ns__db_exec(db, "SELECT to_regclass('ns_schema_version') IS NOT NULL", 0, NULL, &r));
    bool exists = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    if (!exists) {
        return NS_OK;
    }
    NS_TRY(ns__db_exec(db, "SELECT coalesce(max(version), 0) FROM ns_schema_version", 0, NULL, &r));
    *version = (int)ns__cell_i64(r, 0, 0);
    PQclear(r);
    return NS_OK;
}

ns_status ns_db_migrate(ns_db *db, int *from, int *to) {
    char lock[24], ver[24];
    int cur = 0;
    ns_status st;
    ns__i64(lock, NS_DB_MIGRATE_LOCK);
    const char *p[] = {lock};
    NS_TRY(ns__db_begin(db));
    /* The lock comes first, so two migrators never race on CREATE TABLE. It
     * is released by COMMIT / ROLLBACK. */
    if ((st = ns__db_exec(db, "SELECT pg_advisory_xact_lock($1::bigint)", 1, p, NULL)) != NS_OK ||
        (st = ns__db_exec(db, SQL_VERSION_TABLE, 0, NULL, NULL)) != NS_OK ||
        (st = ns_db_schema_version(db, &cur)) != NS_OK) {
        goto fail;
    }
    if (from != NULL) {
        *from = cur;
    }
    for (int i = 0; i < ns__n_migrations; i++) {
        const ns__migration *m = &ns__migrations[i];
        if (m->version <= cur) {
            continue;
        }
        if ((st = ns__db_exec(db, m->sql, 0, NULL, NULL)) != NS_OK) {
            char msg[NS_ERRMSG_LEN];
            snprintf(msg, sizeof msg, "%s", ns_err_msg(&db->err));
            st = ns__err_set(&db->err, st, "migration %s: %s", m->name, msg);
            goto fail;
        }
        const char *vp[] = {ns__i64(ver, m->version), m->name};
        if ((st = ns__db_exec(db, "INSERT INTO ns_schema_version (version, name) VALUES ($1, $2)", 2, vp, NULL)) !=
            NS_OK) {
            goto fail;
        }
        cur = m->version;
    }
    if ((st = ns__db_commit(db)) != NS_OK) {
        goto fail;
    }
    if (to != NULL) {
        *to = cur;
    }
    return NS_OK;
fail:
    ns__db_rollback(db);
    return st;
}
