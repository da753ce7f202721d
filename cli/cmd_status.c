/*
 * cmd_status.c - `nightshift status BATCH [--json]`: a batch's counters,
 * state, timestamps and throughput.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "commands.h"
#include "queue_client_util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift status BATCH [--json] [--broker ENDPOINT] [--data DIR]\n"
               "\n"
               "Show a batch's state and counts. --json prints the broker's status map as JSON.\n"
               "Exit status: 0 ok, 1 error (unknown batch, broker down).\n");
}

static void print_time(const char *label, const json_t *st, const char *key) {
    double t = qc_num(st, key);
    if (t <= 0) {
        return;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    printf("  %-10s %s\n", label, buf);
}

int ns_cmd_status(int argc, char **argv) {
    qc_args a;
    int rc = qc_args_parse(&a, QC_ARG_BATCH | QC_ARG_JSON, argc, argv, usage, NULL, NULL);
    if (rc >= 0) {
        return rc;
    }
    int64_t id = a.batch_id;
    ns_client *c = qc_open(&a, 15000);
    if (c == NULL) {
        return 1;
    }
    json_t *st = qc_call_batch(c, "status", NS_CMD_STATUS, id);
    ns_client_destroy(&c);
    if (st == NULL) {
        return 1;
    }
    if (a.json) {
        json_object_del(st, "rid");
        char *s = json_dumps(st, JSON_SORT_KEYS | JSON_COMPACT);
        printf("%s\n", s);
        free(s);
    } else {
        int64_t total = qc_int(st, "total");
        int64_t done = qc_int(st, "succeeded") + qc_int(st, "failed") + qc_int(st, "cancelled");
        printf("batch %" PRId64 " \"%s\"  model %s  state %s%s\n", id, qc_str(st, "name"), qc_str(st, "model"),
               qc_str(st, "state"), json_is_true(json_object_get(st, "done")) ? " (done)" : "");
        printf("  total      %" PRId64 "  (%.1f%% finished)\n", total, total > 0 ? 100.0 * done / total : 0.0);
        printf("  queued     %" PRId64 "\n  running    %" PRId64 "\n  succeeded  %" PRId64 "\n  failed     %" PRId64
               "\n  cancelled  %" PRId64 "\n",
               qc_int(st, "queued"), qc_int(st, "running"), qc_int(st, "succeeded"), qc_int(st, "failed"),
               qc_int(st, "cancelled"));
        printf("  tokens     %" PRId64 " prompt, %" PRId64 " generated\n", qc_int(st, "prompt_tokens"),
               qc_int(st, "completion_tokens"));
        char dur[32];
        qc_duration(dur, sizeof dur, qc_num(st, "elapsed_s"));
        printf("  elapsed    %s  (%.1f generated tokens/s)\n", dur, qc_num(st, "tokens_per_s"));
        print_time("created", st, "created_at");
        print_time("started", st, "started_at");
        print_time("finished", st, "finished_at");
    }
    json_decref(st);
    return 0;
}
