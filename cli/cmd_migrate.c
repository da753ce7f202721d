/*
 * cmd_migrate.c - `nightshift migrate --pg CONNINFO`: apply the queue schema
 * migrations (the schema/ SQL files, compiled in). Safe to run twice or concurrently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ns_db.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift migrate --pg CONNINFO [--status]\n"
               "\n"
               "Apply the job-queue schema migrations to PostgreSQL (idempotent; concurrent\n"
               "runs serialise on an advisory lock).\n"
               "  --pg CONNINFO   libpq connection string or URI (default: $NS_PG)\n"
               "  --status        only print the current and latest schema versions\n");
}

int ns_cmd_migrate(int argc, char **argv) {
    const char *conninfo = getenv("NS_PG");
    int status_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--pg") == 0 && i + 1 < argc) {
            conninfo = argv[++i];
        } else if (strcmp(argv[i], "--status") == 0) {
            status_only = 1;
        } else {
            fprintf(stderr, "nightshift migrate: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (conninfo == NULL) {
        fprintf(stderr, "nightshift migrate: --pg CONNINFO is required\n");
        usage(stderr);
        return 2;
    }
    ns_db *db = NULL;
    int rc = 1, from = 0, to = 0;
    if (ns_db_create(&db, conninfo) != NS_OK) {
        fprintf(stderr, "nightshift migrate: out of memory\n");
        return 1;
    }
    if (ns_db_connect(db) != NS_OK) {
        fprintf(stderr, "nightshift migrate: %s\n", ns_db_errmsg(db));
        goto done;
    }
    if (status_only) {
        if (ns_db_schema_version(db, &from) != NS_OK) {
            fprintf(stderr, "nightshift migrate: %s\n", ns_db_errmsg(db));
            goto done;
        }
        printf("schema version %d (latest %d)\n", from, ns_db_latest_version());
        rc = 0;
        goto done;
    }
    if (ns_db_migrate(db, &from, &to) != NS_OK) {
        fprintf(stderr, "nightshift migrate: %s\n", ns_db_errmsg(db));
        goto done;
    }
    if (from == to) {
        printf("schema is up to date (version %d)\n", to);
    } else {
        printf("migrated schema from version %d to %d\n", from, to);
    }
    rc = 0;
done:
    ns_db_destroy(&db);
    return rc;
}
