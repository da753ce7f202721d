/*
 * db_impl.h - internals shared by the queue's database files (db.c, q_*.c).
 * Not installed; not for callers outside queue/.
 */
#ifndef NS_DB_IMPL_H
#define NS_DB_IMPL_H

#include <libpq-fe.h>
#include <stdint.h>

#include "ns_buf.h"
#include "ns_db.h"

struct ns_db {
    PGconn *conn;     /* NULL until the first connect */
    char *conninfo;   /* owned copy */
    ns_err err;       /* last error */
    char sqlstate[6]; /* SQLSTATE of the last server error, "" when none */
    int64_t backoff_base_ms;
    int64_t backoff_cap_ms;
    ns_buf copy;    /* COPY stream staging buffer, reused by enqueue */
    ns_buf scratch; /* small reusable text buffer (array literals) */
};

/* A compiled-in migration (generated from schema/ by CMake). */
typedef struct ns__migration {
    int version;
    const char *name;
    const char *sql;
} ns__migration;

extern const ns__migration ns__migrations[];
extern const int ns__n_migrations;

/* Run `sql` with text params. On success *out (may be NULL: cleared) holds the
 * result, which the caller PQclear()s. Maps failures onto the status
 * conventions of ns_db.h and records the message on db. */
ns_status ns__db_exec(ns_db *db, const char *sql, int n, const char *const *params, PGresult **out);

/* Record an error from the connection / a result. */
ns_status ns__db_fail(ns_db *db, PGresult *res, const char *what);

/* BEGIN / COMMIT / ROLLBACK (rollback never fails: errors ignored). */
ns_status ns__db_begin(ns_db *db);
ns_status ns__db_commit(ns_db *db);
void ns__db_rollback(ns_db *db);

/* Format an int64 into buf (>= 24 bytes) and return buf. */
const char *ns__i64(char *buf, int64_t v);

/* Parse helpers for result cells (NULL-safe: NULL cell gives 0). */
int64_t ns__cell_i64(const PGresult *r, int row, int col);
double ns__cell_f64(const PGresult *r, int row, int col, double if_null);
const char *ns__cell_str(const PGresult *r, int row, int col); /* NULL when SQL NULL */

#endif /* NS_DB_IMPL_H */
