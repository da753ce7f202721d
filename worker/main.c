/*
 * main.c - nightshift-worker: command line, logging, signals.
 *
 *   nightshift-worker -m MODEL.gguf --broker tcp://HOST:5556 --pg CONNINFO
 *                     [--name NAME] [--model-name NAME] [--backend cpu|cuda|auto]
 *                     [--vram-budget SIZE] [-t N] [--slots N] [--ctx N]
 *                     [--ubatch N] [--kv-mem SIZE] [--chat-template FAMILY]
 *                     [--drain-timeout S] [-v]
 *
 * docs/worker.md describes every option and the worker's behaviour.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ns_log.h"
#include "ns_util.h"
#include "wk_engine.h"
#include "worker.h"

static volatile sig_atomic_t g_stop = 0;

static void on_signal(int sig) {
    (void)sig;
    if (g_stop < 100) {
        g_stop++;
    }
}

static void log_cb(ns_log_level level, const char *msg, void *user) {
    (void)user;
    static const char *names[] = {"debug", "info", "warn", "error"};
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    localtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld %s %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
            names[level < 4 ? level : 3], msg);
}

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift-worker -m MODEL.gguf --broker tcp://HOST:5556 --pg CONNINFO [options]\n"
               "\n"
               "Serves one model: takes jobs from the broker, runs them with continuous batching,\n"
               "writes each result to PostgreSQL as soon as it finishes.\n"
               "\n"
               "  -m, --model PATH        GGUF model file (required)\n"
               "  --broker ENDPOINT       broker's worker socket (default tcp://127.0.0.1:5556, $NIGHTSHIFT_WORKERS)\n"
               "  --pg CONNINFO           PostgreSQL connection string (default $NIGHTSHIFT_PG)\n"
               "  --name NAME             worker name = lease owner; unique per worker (default HOST-PID)\n"
               "  --model-name NAME       the `model` batches ask for (default: file name without .gguf)\n"
               "  --backend cpu|cuda|auto compute backend (default auto)\n"
               "  --vram-budget SIZE      CUDA memory budget, e.g. 11.5GiB (the planner places layers and KV in it)\n"
               "  --resident-layers N     with --vram-budget: force N layers resident (default: the planner's choice)\n"
               "  --workload NAME         planner cost-model hint: summarize (default), label or single\n"
               "  -t, --threads N         CPU threads (default: all cores)\n"
               "  --slots N               concurrent sequences (default 32)\n"
               "  --ctx N                 tokens per sequence: prompt + output (default min(trained, 4096))\n"
               "  --ubatch N              tokens per forward pass (default 512)\n"
               "  --kv-mem SIZE           cap on KV cache memory for the CPU backend (default 1GiB)\n"
               "  --chat-template FAMILY  chat template for chat jobs (default: from the model)\n"
               "  --drain-timeout S       on SIGTERM, seconds to finish running jobs (default 30)\n"
               "  -v, --verbose           debug logs\n");
}

static int parse_int(const char *s, const char *what, int lo, int hi, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || end == s || v < lo || v > hi) {
        fprintf(stderr, "nightshift-worker: %s: expected an integer in %d..%d, got '%s'\n", what, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int main(int argc, char **argv) {
    wk_engine_params ep = {0};
    ep.resident_layers = -1;
    wk_config cfg = {0};
    cfg.broker = getenv("NIGHTSHIFT_WORKERS") ? getenv("NIGHTSHIFT_WORKERS") : "tcp://127.0.0.1:5556";
    cfg.conninfo = getenv("NIGHTSHIFT_PG");
    cfg.drain_s = 30.0;
    ep.backend = "auto";
    bool verbose = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                                                                   \
    do {                                                                                                               \
        if (v == NULL) {                                                                                               \
            fprintf(stderr, "nightshift-worker: %s needs a value\n", a);                                               \
            return 2;                                                                                                  \
        }                                                                                                              \
        i++;                                                                                                           \
    } while (0)
        int iv;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) {
            NEED_VALUE();
            ep.model_path = v;
        } else if (strcmp(a, "--broker") == 0) {
            NEED_VALUE();
            cfg.broker = v;
        } else if (strcmp(a, "--pg") == 0) {
            NEED_VALUE();
            cfg.conninfo = v;
        } else if (strcmp(a, "--name") == 0) {
            NEED_VALUE();
            cfg.name = v;
        } else if (strcmp(a, "--model-name") == 0) {
            NEED_VALUE();
            cfg.model_name = v;
        } else if (strcmp(a, "--backend") == 0) {
            NEED_VALUE();
            ep.backend = v;
        } else if (strcmp(a, "--chat-template") == 0) {
            NEED_VALUE();
            cfg.chat_template = v;
        } else if (strcmp(a, "--vram-budget") == 0 || strcmp(a, "--kv-mem") == 0) {
            NEED_VALUE();
            uint64_t sz;
            if (ns_parse_size(v, &sz) != NS_OK || sz == 0) {
                fprintf(stderr, "nightshift-worker: %s: bad size '%s' (e.g. 11.5GiB)\n", a, v);
                return 2;
            }
            if (strcmp(a, "--kv-mem") == 0) {
                ep.kv_mem = sz;
            } else {
                ep.vram_budget = sz;
            }
        } else if (strcmp(a, "--resident-layers") == 0) {
            NEED_VALUE();
            if (parse_int(v, a, 0, 1 << 16, &iv) != 0) {
                return 2;
            }
            ep.resident_layers = iv;
        } else if (strcmp(a, "--workload") == 0) {
            NEED_VALUE();
            if (strcmp(v, "summarize") != 0 && strcmp(v, "label") != 0 && strcmp(v, "single") != 0) {
                fprintf(stderr, "nightshift-worker: --workload: expected summarize, label or single\n");
                return 2;
            }
            ep.workload = v;
        } else if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) {
            NEED_VALUE();
            if (parse_int(v, a, 0, 1024, &iv) != 0) {
                return 2;
            }
            ep.n_threads = iv;
        } else if (strcmp(a, "--slots") == 0) {
            NEED_VALUE();
            if (parse_int(v, a, 1, 4096, &iv) != 0) {
                return 2;
            }
            ep.slots = iv;
        } else if (strcmp(a, "--ctx") == 0) {
            NEED_VALUE();
            if (parse_int(v, a, 16, 1 << 20, &iv) != 0) {
                return 2;
            }
            ep.ctx = iv;
        } else if (strcmp(a, "--ubatch") == 0) {
            NEED_VALUE();
            if (parse_int(v, a, 1, 65536, &iv) != 0) {
                return 2;
            }
            ep.ubatch = iv;
        } else if (strcmp(a, "--drain-timeout") == 0) {
            NEED_VALUE();
            if (parse_int(v, a, 0, 86400, &iv) != 0) {
                return 2;
            }
            cfg.drain_s = iv;
        } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            verbose = true;
        } else {
            fprintf(stderr, "nightshift-worker: unknown option '%s' (see --help)\n", a);
            return 2;
        }
#undef NEED_VALUE
    }
    if (ep.model_path == NULL) {
        fprintf(stderr, "nightshift-worker: -m MODEL.gguf is required\n");
        return 2;
    }
    if (cfg.conninfo == NULL) {
        fprintf(stderr, "nightshift-worker: --pg CONNINFO is required (or set NIGHTSHIFT_PG)\n");
        return 2;
    }
    if ((ep.vram_budget != 0 || ep.resident_layers >= 0) && ep.backend != NULL && strcmp(ep.backend, "cpu") == 0) {
        fprintf(stderr, "nightshift-worker: --vram-budget and --resident-layers place layers on a GPU; they do not "
                        "apply to --backend cpu\n");
        return 2;
    }
    if (ep.resident_layers >= 0 && ep.vram_budget == 0) {
        fprintf(stderr, "nightshift-worker: --resident-layers needs --vram-budget\n");
        return 2;
    }
    char name[300], model_name[300];
    if (cfg.name == NULL) {
        char host[256] = "host";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        snprintf(name, sizeof name, "%s-%ld", host, (long)getpid());
        cfg.name = name;
    }
    if (cfg.model_name == NULL) {
        const char *base = strrchr(ep.model_path, '/');
        base = base != NULL ? base + 1 : ep.model_path;
        snprintf(model_name, sizeof model_name, "%s", base);
        size_t n = strlen(model_name);
        if (n > 5 && strcmp(model_name + n - 5, ".gguf") == 0) {
            model_name[n - 5] = '\0';
        }
        cfg.model_name = model_name;
    }
    if (strlen(cfg.name) == 0 || strlen(cfg.name) > 256 || strlen(cfg.model_name) == 0 ||
        strlen(cfg.model_name) > 256) {
        fprintf(stderr, "nightshift-worker: --name and --model-name must be 1..256 bytes\n");
        return 2;
    }
    ns_log_set_callback(log_cb, NULL);
    ns_log_set_level(verbose ? NS_LOG_DEBUG : NS_LOG_INFO);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    ns_err err = {0};
    wk_engine *eng = NULL;
    double t0 = ns_time_s();
    if (wk_engine_create(&ep, &eng, &err) != NS_OK) {
        fprintf(stderr, "nightshift-worker: %s: %s\n", ep.model_path, ns_err_msg(&err));
        return 1;
    }
    NS_LOGI("worker %s: serving model '%s' (%s backend, %d slots), loaded in %.2f s", cfg.name, cfg.model_name,
            wk_engine_backend_name(eng), wk_engine_slots(eng), ns_time_s() - t0);
    wk_worker *w = NULL;
    if (wk_worker_create(&cfg, eng, &g_stop, &w, &err) != NS_OK) {
        fprintf(stderr, "nightshift-worker: %s\n", ns_err_msg(&err));
        return 1;
    }
    ns_status st = wk_worker_run(w);
    wk_worker_destroy(&w);
    return st == NS_OK ? 0 : 1;
}
