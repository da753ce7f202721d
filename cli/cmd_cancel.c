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

#define MAX_IDS 4096

typedef struct cancel_ids {
    const char *ids[MAX_IDS];
    int n;
} cancel_ids;

/* The CUSTOM_IDs: every further argument after BATCH. */
static qc_extra take_id(void *user, const qc_args *a, int argc, char **argv, int *i) {
    cancel_ids *c = user;
    (void)argc;
    if (a->batch == NULL || c->n >= MAX_IDS) {
        return QC_EXTRA_NO;
    }
    c->ids[c->n++] = argv[*i];
    return QC_EXTRA_TAKEN;
}

int ns_cmd_cancel(int argc, char **argv) {
    qc_args a;
    cancel_ids ci = {.n = 0};
    int rc = qc_args_parse(&a, QC_ARG_BATCH, argc, argv, usage, take_id, &ci);
    if (rc >= 0) {
        return rc;
    }
    int64_t id = a.batch_id;
    const char *const *ids = ci.ids;
    int n_ids = ci.n;
    ns_client *c = qc_open(&a, 30000);
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
