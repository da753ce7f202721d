/*
 * cmd_workers.c - `nightshift workers [--json]`: the workers connected to the
 * broker, with their model, slots and load.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "commands.h"
#include "queue_client_util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift workers [--json] [--broker ENDPOINT] [--data DIR]\n"
               "\n"
               "List the workers connected to the broker: name, model, slots, jobs in flight,\n"
               "jobs done, uptime.\n");
}

int ns_cmd_workers(int argc, char **argv) {
    qc_args a;
    int rc = qc_args_parse(&a, QC_ARG_JSON, argc, argv, usage, NULL, NULL);
    if (rc >= 0) {
        return rc;
    }
    ns_client *c = qc_open(&a, 15000);
    if (c == NULL) {
        return 1;
    }
    (void)ns_client_begin(c, 1);
    json_t *r = qc_call(c, "workers", NS_CMD_WORKERS, NULL, 0, NULL, 0);
    ns_client_destroy(&c);
    if (r == NULL) {
        return 1;
    }
    json_t *ws = json_object_get(r, "workers");
    if (a.json) {
        char *s = json_dumps(ws ? ws : json_array(), JSON_COMPACT | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
    } else if (json_array_size(ws) == 0) {
        printf("no workers connected\n");
    } else {
        printf("%-28s %-24s %6s %9s %10s %9s\n", "NAME", "MODEL", "SLOTS", "INFLIGHT", "DONE", "UPTIME");
        size_t i;
        json_t *w;
        json_array_foreach(ws, i, w) {
            char up[32];
            qc_duration(up, sizeof up, qc_num(w, "uptime_s"));
            printf("%-28s %-24s %6" PRId64 " %9" PRId64 " %10" PRId64 " %9s\n", qc_str(w, "name"), qc_str(w, "model"),
                   qc_int(w, "slots"), qc_int(w, "inflight"), qc_int(w, "jobs_done"), up);
        }
    }
    json_decref(r);
    return 0;
}
