/*
 * ns_db.h - a PostgreSQL connection for the queue, and schema migrations.
 *
 * An ns_db wraps one libpq connection (PGconn). It is created unconnected;
 * ns_db_connect() (re)connects, so a program can keep the handle across a
 * PostgreSQL restart and simply call ns_db_connect() again. Every failing
 * call records a message (ns_db_errmsg) and the SQLSTATE (ns_db_sqlstate).
 *
 * Status conventions for every function that talks to the database
 * (ns_db_* and ns_queue_*):
 *   NS_ERR_IO        the connection is gone (server down / restarted):
 *                    reconnect with ns_db_connect and retry; nothing from a
 *                    failed call was committed unless it says otherwise.
 *   NS_ERR_DB        the server rejected a statement.
 *   NS_ERR_CONFLICT  a unique key (duplicate custom_id) or a fenced write
 *                    whose lease is no longer current.
 *   NS_ERR_NOT_FOUND / NS_ERR_STATE: see each function.
 *
 * Migrations: the SQL files in schema/ (NNNN_name.sql) are compiled into the
 * library. ns_db_migrate applies the missing ones in order, in one
 * transaction that first takes a transaction-level advisory lock, and records
 * each in table ns_schema_version. Running it twice is a no-op; running it
 * concurrently serialises on the lock.
 *
 * Ownership: the handle owns its PGconn. Thread safety: one handle per thread.
 */
#ifndef NS_DB_H
#define NS_DB_H

#include <stdbool.h>
#include <stdint.h>

#include "ns_status.h"

typedef struct ns_db ns_db;

/* Advisory lock key used by migrations ("nightshift" in ASCII, truncated). */
#define NS_DB_MIGRATE_LOCK 0x6e69676874736869LL

/* A handle for `conninfo` (a libpq connection string or URI), not yet
 * connected. Copies conninfo. */
ns_status ns_db_create(ns_db **out, const char *conninfo);

/* Close the connection and free the handle; *db becomes NULL. NULL-safe. */
void ns_db_destroy(ns_db **db);

/* Connect, or reconnect when the connection is bad. NS_OK when connected
 * (a no-op if already healthy), NS_ERR_IO otherwise. */
ns_status ns_db_connect(ns_db *db);

/* True when the connection is up (as far as libpq knows). */
bool ns_db_connected(const ns_db *db);

/* Detail of the last error: "status: message"; never NULL. */
const char *ns_db_errmsg(const ns_db *db);

/* SQLSTATE of the last server error ("23505"), or "" when none. */
const char *ns_db_sqlstate(const ns_db *db);

/* Apply missing migrations. *from / *to (may be NULL) get the schema version
 * before and after. */
ns_status ns_db_migrate(ns_db *db, int *from, int *to);

/* Current schema version (0 when never migrated). */
ns_status ns_db_schema_version(ns_db *db, int *version);

/* Highest migration version compiled into this binary. */
int ns_db_latest_version(void);

/* Retry backoff for ns_queue_fail: delay = min(cap, base * 2^failures) scaled
 * by a random factor in [0.5, 1.0). Defaults: base 1000 ms, cap 300000 ms. */
void ns_db_set_backoff(ns_db *db, int64_t base_ms, int64_t cap_ms);

/* The underlying libpq connection (PGconn *), for tests and tools. */
void *ns_db_pgconn(ns_db *db);

#endif /* NS_DB_H */
