/*
 * up_common.h - what `nightshift up` and `nightshift down` share: the layout
 * of the data directory, the private PostgreSQL cluster's commands (run as an
 * unprivileged user when we are root), and small process helpers.
 *
 * Data directory (default ~/.nightshift, or --data / $NIGHTSHIFT_DATA):
 *   endpoints        key=value lines: broker, workers, pg, model, model_path,
 *                    pg_dir (when the cluster is ours), supervisor pid
 *   supervisor.pid   pid of the supervisor process
 *   logs/            supervisor.log, broker.log, worker.log, postgres.log
 *   pg/              the cluster (data/, sock/), unless that path cannot be
 *                    reached by the unprivileged user; then it lives in
 *                    /var/tmp/nightshift-pg-HASH and `pg_dir` says so
 *   models/          the synthesized tiny model when -m is not given
 *
 * Thread safety: none needed (CLI).
 */
#ifndef NS_CLI_UP_COMMON_H
#define NS_CLI_UP_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define UP_PATH_CAP 1024

/* out = a + b, truncated to cap - 1 bytes (paths longer than UP_PATH_CAP are
 * refused earlier by the callers' checks). */
void up_join(char *out, size_t cap, const char *a, const char *b);

/* Directory holding PostgreSQL's initdb/pg_ctl ($NS_PG_BIN, then
 * /usr/lib/postgresql/NN/bin, newest first). false when none is found. */
bool up_pg_bindir(char *out, size_t cap);

/* The user PostgreSQL runs as: "nobody" when we are root, else ourselves. */
const char *up_pg_user(void);

/* Run argv (argv[0] a full path) and wait. As root with `as_pg_user`, the
 * child drops to up_pg_user() first. stdout/stderr go to `log` (appended;
 * NULL keeps them). Returns the exit status, or -1 when it could not run. */
int up_run(char *const argv[], bool as_pg_user, const char *log);

/* key=value file helpers: read `key` from DIR/endpoints into out. */
bool up_read_key(const char *dir, const char *key, char *out, size_t cap);

/* True when pid is alive. */
bool up_alive(pid_t pid);

/* Read DIR/supervisor.pid; 0 when absent or stale. */
pid_t up_supervisor_pid(const char *dir);

/* Stop the private cluster in pg_dir (fast shutdown). */
int up_pg_stop(const char *pg_dir, const char *log);

#endif /* NS_CLI_UP_COMMON_H */
