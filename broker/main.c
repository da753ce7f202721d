/*
 * main.c - `nightshift-broker`: command line, signals, start-up.
 *
 *   nightshift-broker --pg CONNINFO [--clients EP] [--workers EP] [--migrate]
 *
 * SIGTERM / SIGINT drain: the current request finishes, workers get
 * DISCONNECT (they keep their jobs and re-announce them to the next broker),
 * watchers get a shutting_down error, then the broker exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "ns_log.h"

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift-broker --pg CONNINFO [options]\n"
               "\n"
               "Routes batch LLM jobs between clients and workers; PostgreSQL is the source of truth.\n"
               "  --pg CONNINFO        libpq connection string or URI (default: $NS_PG)\n"
               "  --clients ENDPOINT   ROUTER endpoint for clients (default tcp://*:5555)\n"
               "  --workers ENDPOINT   ROUTER endpoint for workers (default tcp://*:5556)\n"
               "  --migrate            apply schema migrations at start-up\n"
               "  --heartbeat-ms N     heartbeat period (default 1000); a worker silent for 3 periods is lost\n"
               "  --lease-ms N         job lease length (default 30000), renewed while the worker lives\n"
               "  --reap-ms N          lease-expiry reaper period (default 5000)\n"
               "  --backoff-ms BASE:CAP  retry backoff (default 1000:300000)\n"
               "  -v, --verbose        debug logging\n");
}

static int parse_int(const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end != 0 || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    ns_broker_config cfg;
    ns__broker_config_defaults(&cfg);
    cfg.conninfo = getenv("NS_PG");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--migrate") == 0) {
            cfg.migrate = true;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            ns_log_set_level(NS_LOG_DEBUG);
        } else if (v == NULL) {
            fprintf(stderr, "nightshift-broker: %s needs a value\n", a);
            return 2;
        } else if (strcmp(a, "--pg") == 0) {
            cfg.conninfo = argv[++i];
        } else if (strcmp(a, "--clients") == 0) {
            cfg.clients_ep = argv[++i];
        } else if (strcmp(a, "--workers") == 0) {
            cfg.workers_ep = argv[++i];
        } else if (strcmp(a, "--heartbeat-ms") == 0 && parse_int(v, 50, 600000, &n) == 0) {
            cfg.heartbeat_ms = (int)n;
            i++;
        } else if (strcmp(a, "--lease-ms") == 0 && parse_int(v, 1000, 86400000, &n) == 0) {
            cfg.lease_ms = n;
            i++;
        } else if (strcmp(a, "--reap-ms") == 0 && parse_int(v, 100, 3600000, &n) == 0) {
            cfg.reap_ms = (int)n;
            i++;
        } else if (strcmp(a, "--backoff-ms") == 0) {
            long long base, cap;
            if (sscanf(v, "%lld:%lld", &base, &cap) != 2 || base < 0 || cap < base) {
                fprintf(stderr, "nightshift-broker: --backoff-ms wants BASE:CAP in ms\n");
                return 2;
            }
            cfg.backoff_base_ms = base;
            cfg.backoff_cap_ms = cap;
            i++;
        } else {
            fprintf(stderr, "nightshift-broker: bad argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (cfg.conninfo == NULL) {
        fprintf(stderr, "nightshift-broker: --pg CONNINFO is required\n");
        usage(stderr);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    ns_broker *b = NULL;
    ns_status st = ns__broker_create(&b, &cfg, &g_stop);
    if (st != NS_OK) {
        fprintf(stderr, "nightshift-broker: start-up failed: %s\n", ns_status_str(st));
        return 1;
    }
    st = ns__broker_run(b);
    ns__broker_destroy(&b);
    return st == NS_OK ? 0 : 1;
}
