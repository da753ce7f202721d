/*
 * cmd_retry.c - `nightshift retry BATCH`: requeue every failed job of a batch
 * with a fresh attempt budget (their error history is kept).
 */
#include <inttypes.h>
#include <stdio.h>

#include "commands.h"
#include "queue_client_util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift retry BATCH [--broker ENDPOINT] [--data DIR]\n"
               "\n"
               "Requeue the batch's failed jobs with a fresh attempt budget. Succeeded and\n"
               "cancelled jobs are left alone; a cancelled batch cannot be retried.\n");
}

int ns_cmd_retry(int argc, char **argv) {
    qc_args a;
    int rc = qc_args_parse(&a, QC_ARG_BATCH, argc, argv, usage, NULL, NULL);
    if (rc >= 0) {
        return rc;
    }
    ns_client *c = qc_open(&a, 30000);
    if (c == NULL) {
        return 1;
    }
    json_t *r = qc_call_batch(c, "retry", NS_CMD_RETRY, a.batch_id);
    ns_client_destroy(&c);
    if (r == NULL) {
        return 1;
    }
    printf("batch %" PRId64 ": %" PRId64 " failed jobs requeued\n", a.batch_id, qc_int(r, "requeued"));
    json_decref(r);
    return 0;
}
