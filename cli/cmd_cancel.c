/*
 * cmd_cancel.c - `nightshift cancel BATCH [CUSTOM_ID...]`: cancel a batch (or
 * some of its jobs). Queued jobs are cancelled at once, running ones at their
 * worker's next step.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "ns_mpack.h"
#include "queue_client_util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift cancel BATCH [CUSTOM_ID...] [--broker ENDPOINT] [--data DIR]\n"
               "\n"
               "Cancel a whole batch, or only the jobs with the given custom_ids. Queued jobs are\n"
               "cancelled at once; running jobs stop at their worker's next step. Finished results stay.\n");
}

int ns_cmd_cancel(int argc, char **argv) {
    const char *broker = NULL, *data = NULL, *batch = NULL;
    const char *ids[4096];
    int n_ids = 0;
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
        } else if (batch != NULL && n_ids < 4096) {
            ids[n_ids++] = a;
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
    msgpack_packer *pk = ns_client_begin(c, n_ids > 0 ? 3 : 2);
    ns_mp_pack_kv_int(pk, "batch_id", id);
    if (n_ids > 0) {
        ns_mp_pack_cstr(pk, "custom_ids");
        msgpack_pack_array(pk, (uint32_t)n_ids);
        for (int i = 0; i < n_ids; i++) {
            ns_mp_pack_cstr(pk, ids[i]);
        }
    }
    json_t *r = qc_call(c, "cancel", NS_CMD_CANCEL, NULL, 0, NULL, 0);
    ns_client_destroy(&c);
    if (r == NULL) {
        return 1;
    }
    printf("batch %" PRId64 ": %" PRId64 " queued jobs cancelled, %" PRId64 " running jobs stopping\n", id,
           qc_int(r, "cancelled"), qc_int(r, "cancelling"));
    json_decref(r);
    return 0;
}
