/*
 * cmd_retry.c - `nightshift retry BATCH`: requeue every failed job of a batch
 * with a fresh attempt budget (their error history is kept).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ns_mpack.h"
#include "queue_client_util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift retry BATCH [--broker ENDPOINT] [--data DIR]\n"
               "\n"
               "Requeue the batch's failed jobs with a fresh attempt budget. Succeeded and\n"
               "cancelled jobs are left alone; a cancelled batch cannot be retried.\n");
}

int ns_cmd_retry(int argc, char **argv) {
    const char *broker = NULL, *data = NULL, *batch = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (i + 1 < argc && strcmp(a, "--broker") == 0) {
            broker = argv[++i];
        } else if (i + 1 < argc && strcmp(a, "--data") == 0) {
            data = argv[++i];
        } else if (batch == NULL && a[0] != '-') {
            batch = a;
        } else {
            usage(stderr);
            return 2;
        }
    }
    int64_t id;
    if (batch == NULL) {
        usage(stderr);
        return 2;
    }
    if (!qc_parse_batch(batch, &id)) {
        return 2;
    }
    char epbuf[1024];
    ns_client *c = qc_connect(qc_broker_endpoint(broker, data, epbuf, sizeof epbuf), 30000);
    if (c == NULL) {
        return 1;
    }
    msgpack_packer *pk = ns_client_begin(c, 2);
    ns_mp_pack_kv_int(pk, "batch_id", id);
    json_t *r = qc_call(c, "retry", NS_CMD_RETRY, NULL, 0, NULL, 0);
    ns_client_destroy(&c);
    if (r == NULL) {
        return 1;
    }
    printf("batch %" PRId64 ": %" PRId64 " failed jobs requeued\n", id, qc_int(r, "requeued"));
    json_decref(r);
    return 0;
}
