/*
 * cmd_watch.c - `nightshift watch BATCH`: a live progress line (bar, counts,
 * generated tokens/s, ETA) until the batch is done. Uses the broker's WATCH
 * stream; if the broker goes quiet (restart), it subscribes again.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "ns_mpack.h"
#include "ns_util.h"
#include "queue_client_util.h"

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift watch BATCH [--interval MS] [--broker ENDPOINT] [--data DIR]\n"
               "\n"
               "Follow a batch until it is done: progress bar, counts, generated tokens/s and ETA.\n"
               "On a terminal the line updates in place; otherwise a line is printed every few seconds.\n"
               "Exit status 0 when the batch is done, 1 on errors.\n");
}

/* Print one progress line; returns true when the batch is done. */
static bool render(const json_t *ev, bool tty, double *last_print, int64_t id) {
    int64_t total = qc_int(ev, "total");
    int64_t ok = qc_int(ev, "succeeded"), failed = qc_int(ev, "failed"), cancelled = qc_int(ev, "cancelled");
    int64_t finished = ok + failed + cancelled;
    bool done = json_is_true(json_object_get(ev, "done"));
    double elapsed = qc_num(ev, "elapsed_s");
    double rate = elapsed > 0 ? finished / elapsed : 0;
    char bar[64], eta[32], line[512];
    qc_bar(bar, sizeof bar, 24, total > 0 ? (double)finished / (double)total : 0);
    if (done) {
        qc_duration(eta, sizeof eta, elapsed);
    } else if (rate > 0) {
        qc_duration(eta, sizeof eta, (double)(total - finished) / rate);
    } else {
        snprintf(eta, sizeof eta, "?");
    }
    snprintf(line, sizeof line,
             "%s %" PRId64 "/%" PRId64 "  ok %" PRId64 "  failed %" PRId64 "  cancelled %" PRId64 "  running %" PRId64
             "  queued %" PRId64 "  %.1f tok/s  %s %s",
             bar, finished, total, ok, failed, cancelled, qc_int(ev, "running"), qc_int(ev, "queued"),
             qc_num(ev, "tokens_per_s"), done ? "took" : "ETA", eta);
    double now = ns_time_s();
    if (tty) {
        fprintf(stderr, "\r\033[K%s", line);
        if (done) {
            fputc('\n', stderr);
        }
        fflush(stderr);
    } else if (done || now - *last_print >= 5.0) {
        fprintf(stderr, "%s\n", line);
        *last_print = now;
    }
    if (done) {
        printf("batch %" PRId64 " %s: %" PRId64 " succeeded, %" PRId64 " failed, %" PRId64 " cancelled\n", id,
               qc_str(ev, "state"), ok, failed, cancelled);
    }
    return done;
}

/* --interval MS. */
static qc_extra take_interval(void *user, const qc_args *a, int argc, char **argv, int *i) {
    long *interval = user;
    (void)a;
    if (*i + 1 >= argc || strcmp(argv[*i], "--interval") != 0) {
        return QC_EXTRA_NO;
    }
    *interval = strtol(argv[++*i], NULL, 10);
    if (*interval < 100 || *interval > 60000) {
        fprintf(stderr, "nightshift watch: --interval must be 100..60000 ms\n");
        return QC_EXTRA_REJECTED;
    }
    return QC_EXTRA_TAKEN;
}

int ns_cmd_watch(int argc, char **argv) {
    qc_args a;
    long interval = 500;
    int rc = qc_args_parse(&a, QC_ARG_BATCH, argc, argv, usage, take_interval, &interval);
    if (rc >= 0) {
        return rc;
    }
    int64_t id = a.batch_id;
    ns_client *c = qc_open(&a, 15000);
    if (c == NULL) {
        return 1;
    }
    bool tty = qc_tty();
    double last_print = 0;
    int failures = 0;
    rc = 1;
    for (;;) {
        msgpack_packer *pk = ns_client_begin(c, 3);
        ns_mp_pack_kv_int(pk, "batch_id", id);
        ns_mp_pack_kv_int(pk, "interval_ms", interval);
        char code[32];
        json_t *ev = qc_call(c, "watch", NS_CMD_WATCH, NULL, 0, code, sizeof code);
        if (ev == NULL) {
            /* Broker down or restarting: keep trying for a while. Anything
             * else (unknown batch, bad request) is final. */
            if ((strcmp(code, "timeout") == 0 || strcmp(code, "unavailable") == 0 ||
                 strcmp(code, "shutting_down") == 0) &&
                ++failures < 20) {
                continue;
            }
            break;
        }
        failures = 0;
        bool done = render(ev, tty, &last_print, id);
        json_decref(ev);
        if (done) {
            rc = 0;
            break;
        }
        /* Events follow; the broker sends one at least every 10 s. */
        for (;;) {
            ns_client_reply rep;
            ns_status st = ns_client_next(c, 15000, &rep);
            if (st != NS_OK) {
                break; /* quiet broker: subscribe again */
            }
            if (rep.cmd == NS_CMD_ERROR) {
                fprintf(stderr, "\nnightshift watch: %s: %s\n", rep.code, rep.message);
                break;
            }
            json_t *e = qc_body_json(rep.body, rep.body_len);
            if (e == NULL) {
                continue;
            }
            done = render(e, tty, &last_print, id);
            json_decref(e);
            if (done) {
                break;
            }
        }
        if (done) {
            rc = 0;
            break;
        }
    }
    ns_client_destroy(&c);
    return rc;
}
