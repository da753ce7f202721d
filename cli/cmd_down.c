/*
 * cmd_down.c - `nightshift down`: stop what `nightshift up` started: the
 * supervisor (which stops the worker, letting it finish or return its jobs,
 * then the broker) and the private PostgreSQL cluster. Data is kept.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "ns_util.h"
#include "queue_client_util.h"
#include "up_common.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift down [--data DIR]\n"
               "\n"
               "Stop the worker (it finishes or returns its running jobs), the broker and the\n"
               "private PostgreSQL cluster started by `nightshift up`. The data directory is kept.\n");
}

int ns_cmd_down(int argc, char **argv) {
    const char *data_opt = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (i + 1 < argc && strcmp(argv[i], "--data") == 0) {
            data_opt = argv[++i];
        } else {
            usage(stderr);
            return 2;
        }
    }
    char dirbuf[UP_PATH_CAP];
    const char *dir = qc_data_dir(data_opt, dirbuf, sizeof dirbuf);
    int rc = 0;
    pid_t sup = up_supervisor_pid(dir);
    if (sup > 0) {
        fprintf(stderr, "stopping the worker and the broker (supervisor pid %ld)...\n", (long)sup);
        kill(sup, SIGTERM);
        double deadline = ns_time_s() + 90.0;
        while (up_alive(sup) && ns_time_s() < deadline) {
            struct timespec ts = {0, 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (up_alive(sup)) {
            fprintf(stderr, "nightshift down: the supervisor did not stop in 90 s; killing it\n");
            kill(sup, SIGKILL);
            rc = 1;
        }
    } else {
        fprintf(stderr, "no supervisor running for %s\n", dir);
    }
    char pg_dir[UP_PATH_CAP] = "";
    if (up_read_key(dir, "pg_dir", pg_dir, sizeof pg_dir) && pg_dir[0] != '\0') {
        char log[UP_PATH_CAP];
        up_join(log, sizeof log, pg_dir, "/postgres.log");
        if (up_pg_stop(pg_dir, log) != 0) {
            fprintf(stderr, "nightshift down: PostgreSQL did not stop cleanly; see %s\n", log);
            rc = 1;
        }
    }
    if (rc == 0) {
        printf("nightshift is down (data kept in %s)\n", dir);
    }
    return rc;
}
