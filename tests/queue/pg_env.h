/*
 * pg_env.h - C side of tests/queue/pg_test_env.sh: start a private PostgreSQL
 * in a temp dir for one test executable, and stop/remove it at the end.
 * Header-only (tests only). Skips the test (exit 77) when PostgreSQL cannot
 * be started here.
 */
#ifndef NS_TEST_PG_ENV_H
#define NS_TEST_PG_ENV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "ns_test.h"

typedef struct ns_test_pg {
    char dir[256];
    char conninfo[512];
} ns_test_pg;

static inline int ns_test_pg_cmd(const ns_test_pg *pg, const char *verb) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash %s/tests/queue/pg_test_env.sh %s %s >/dev/null", NS_SOURCE_DIR, verb, pg->dir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}

static inline void ns_test_pg_start(ns_test_pg *pg) {
    char cmd[1024];
    snprintf(pg->dir, sizeof pg->dir, "/tmp/ns-test-pg-XXXXXX");
    if (mkdtemp(pg->dir) == NULL) {
        NS_FAIL("mkdtemp failed");
    }
    snprintf(cmd, sizeof cmd, "bash %s/tests/queue/pg_test_env.sh start %s", NS_SOURCE_DIR, pg->dir);
    FILE *f = popen(cmd, "r");
    if (f == NULL || fgets(pg->conninfo, sizeof pg->conninfo, f) == NULL) {
        int rc = f ? pclose(f) : -1;
        if (rc >= 0 && WIFEXITED(rc) && WEXITSTATUS(rc) == 77) {
            NS_SKIP("no PostgreSQL server available");
        }
        NS_FAIL("could not start PostgreSQL in %s", pg->dir);
    }
    int rc = pclose(f);
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0) {
        NS_FAIL("pg_test_env.sh start failed");
    }
    pg->conninfo[strcspn(pg->conninfo, "\n")] = 0;
}

static inline void ns_test_pg_stop(ns_test_pg *pg) {
    char cmd[512];
    ns_test_pg_cmd(pg, "stop");
    snprintf(cmd, sizeof cmd, "rm -rf %s", pg->dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "warning: could not remove %s\n", pg->dir);
    }
}

#endif /* NS_TEST_PG_ENV_H */
