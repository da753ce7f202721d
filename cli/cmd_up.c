/*
 * cmd_up.c - `nightshift up`: one command to run the whole job system on one
 * machine. It starts (or reuses) a private PostgreSQL cluster in the data
 * directory (unix socket only), migrates it, then forks a small supervisor
 * that runs nightshift-broker and one nightshift-worker and restarts either
 * with backoff when it dies. It waits until the worker has registered, prints
 * the endpoints and records them in DATA/endpoints (up_common.h), where the
 * other commands find the broker. `nightshift down` stops everything.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "ns_db.h"
#include "ns_mpack.h"
#include "ns_util.h"
#include "queue_client_util.h"
#include "up_common.h"

#define MAX_WORKER_ARGS 32

static void usage(FILE *f) {
    fprintf(f, "usage: nightshift up [-m MODEL.gguf] [--data DIR] [--pg CONNINFO] [options]\n"
               "\n"
               "Start PostgreSQL (a private cluster in DIR, unix socket only; or an existing one with --pg),\n"
               "migrate it, and run the broker and one worker under a supervisor that restarts them.\n"
               "Without -m, a tiny synthetic model is made and served (random weights: gibberish output).\n"
               "\n"
               "  -m, --model PATH     GGUF model the worker serves\n"
               "  --model-name NAME    name batches use for it (default: file name without .gguf)\n"
               "  --data DIR           data directory (default $NIGHTSHIFT_DATA or ~/.nightshift)\n"
               "  --pg CONNINFO        use this PostgreSQL instead of a private cluster\n"
               "  --port N             broker client port N, worker port N+1 (default 5555)\n"
               "  --bind HOST          address the broker listens on (default 127.0.0.1; * for all)\n"
               "  --backend B, -t N, --slots N, --ctx N, --vram-budget SIZE   passed to the worker\n"
               "  --worker-arg ARG     pass ARG to nightshift-worker (repeatable)\n"
               "\n"
               "Then: nightshift submit --model NAME jobs.jsonl; nightshift watch BATCH;\n"
               "      nightshift results BATCH -o out.jsonl; nightshift down\n");
}

/* ---- small helpers -------------------------------------------------------- */

static int mkdir_p(const char *path, mode_t mode) {
    char tmp[UP_PATH_CAP];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(tmp, mode) != 0 && errno != EEXIST) {
                return -1;
            }
            *p = '/';
        }
    }
    return (mkdir(tmp, mode) != 0 && errno != EEXIST) ? -1 : 0;
}

/* Directory of this executable (to find nightshift-broker/-worker beside it). */
static void self_dir(char *out, size_t cap) {
    char exe[UP_PATH_CAP];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(out, cap, ".");
        return;
    }
    exe[n] = '\0';
    snprintf(out, cap, "%s", dirname(exe));
}

static void find_prog(const char *name, char *out, size_t cap) {
    char dir[UP_PATH_CAP];
    self_dir(dir, sizeof dir);
    up_join(out, cap, dir, "/");
    up_join(out, cap, out, name);
    if (access(out, X_OK) == 0) {
        return;
    }
    const char *path = getenv("PATH");
    if (path != NULL) {
        char *copy = strdup(path), *save = NULL;
        for (char *p = strtok_r(copy, ":", &save); p != NULL; p = strtok_r(NULL, ":", &save)) {
            up_join(out, cap, p, "/");
            up_join(out, cap, out, name);
            if (access(out, X_OK) == 0) {
                free(copy);
                return;
            }
        }
        free(copy);
    }
    snprintf(out, cap, "%s", name);
}

/* Can the unprivileged PostgreSQL user reach `path` (search every parent)? */
static bool reachable_by_pg_user(const char *path) {
    if (geteuid() != 0) {
        return true;
    }
    struct passwd *pw = getpwnam("nobody");
    char tmp[UP_PATH_CAP];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (;;) {
        struct stat st;
        if (stat(tmp, &st) == 0) {
            bool ok = (st.st_mode & S_IXOTH) || (pw != NULL && st.st_uid == pw->pw_uid);
            if (!ok) {
                return false;
            }
        }
        char *slash = strrchr(tmp, '/');
        if (slash == NULL || slash == tmp) {
            break;
        }
        *slash = '\0';
    }
    return true;
}

static void chown_pg(const char *path) {
    if (geteuid() != 0) {
        return;
    }
    struct passwd *pw = getpwnam("nobody");
    if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) != 0) {
        fprintf(stderr, "nightshift up: chown %s: %s\n", path, strerror(errno));
    }
}

/* ---- PostgreSQL --------------------------------------------------------------- */

static int start_pg(const char *dir, char *pg_dir, size_t pg_cap, char *conninfo, size_t ci_cap) {
    char bin[UP_PATH_CAP];
    if (!up_pg_bindir(bin, sizeof bin)) {
        fprintf(stderr, "nightshift up: PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql\n"
                        "  or set NS_PG_BIN, or pass --pg CONNINFO for an existing server\n");
        return -1;
    }
    up_join(pg_dir, pg_cap, dir, "/pg");
    size_t sock_len = strlen(pg_dir) + strlen("/sock/.s.PGSQL.5432");
    if (!reachable_by_pg_user(dir) || sock_len >= 100) {
        /* e.g. root's home is 0700: keep the cluster where `nobody` can reach it. */
        uint64_t h = 1469598103934665603ull;
        for (const char *p = dir; *p; p++) {
            h = (h ^ (uint8_t)*p) * 1099511628211ull;
        }
        snprintf(pg_dir, pg_cap, "/var/tmp/nightshift-pg-%016" PRIx64, h);
    }
    char data[UP_PATH_CAP], sock[UP_PATH_CAP], log[UP_PATH_CAP], ver[UP_PATH_CAP], pidf[UP_PATH_CAP];
    up_join(data, sizeof data, pg_dir, "/data");
    up_join(sock, sizeof sock, pg_dir, "/sock");
    up_join(log, sizeof log, pg_dir, "/postgres.log");
    up_join(ver, sizeof ver, data, "/PG_VERSION");
    up_join(pidf, sizeof pidf, data, "/postmaster.pid");
    if (mkdir_p(sock, 0755) != 0) {
        fprintf(stderr, "nightshift up: cannot create %s: %s\n", sock, strerror(errno));
        return -1;
    }
    chmod(pg_dir, 0755);
    chown_pg(pg_dir);
    chown_pg(sock);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        close(fd);
    }
    chown_pg(log);
    const char *user = up_pg_user();
    if (access(ver, F_OK) != 0) {
        fprintf(stderr, "creating a PostgreSQL cluster in %s\n", data);
        char initdb[UP_PATH_CAP], u[128];
        up_join(initdb, sizeof initdb, bin, "/initdb");
        snprintf(u, sizeof u, "%s", user);
        char *argv[] = {initdb, "-D", data, "-A", "trust", "-U", u, "-E", "UTF8", "--locale=C", NULL};
        if (up_run(argv, true, log) != 0) {
            fprintf(stderr, "nightshift up: initdb failed; see %s\n", log);
            return -1;
        }
    }
    snprintf(conninfo, ci_cap, "host=%s port=5432 dbname=postgres user=%s connect_timeout=5", sock, user);
    if (access(pidf, F_OK) == 0) {
        /* Probably running already (a previous `up`); a stale pid file makes
         * pg_ctl start fail below, which we then report. */
        ns_db *db = NULL;
        if (ns_db_create(&db, conninfo) == NS_OK && ns_db_connect(db) == NS_OK) {
            ns_db_destroy(&db);
            return 0;
        }
        ns_db_destroy(&db);
    }
    char pg_ctl[UP_PATH_CAP], opts[UP_PATH_CAP + 128];
    up_join(pg_ctl, sizeof pg_ctl, bin, "/pg_ctl");
    snprintf(opts, sizeof opts, "-c listen_addresses='' -k %s -p 5432", sock);
    char *argv[] = {pg_ctl, "-D", data, "-l", log, "-w", "-t", "60", "-o", opts, "start", NULL};
    fprintf(stderr, "starting PostgreSQL (socket in %s)\n", sock);
    if (up_run(argv, true, log) != 0) {
        fprintf(stderr, "nightshift up: PostgreSQL did not start; see %s\n", log);
        return -1;
    }
    return 0;
}

static int migrate(const char *conninfo) {
    ns_db *db = NULL;
    int from = 0, to = 0;
    if (ns_db_create(&db, conninfo) != NS_OK) {
        return -1;
    }
    int rc = 0;
    if (ns_db_connect(db) != NS_OK || ns_db_migrate(db, &from, &to) != NS_OK) {
        fprintf(stderr, "nightshift up: migrate: %s\n", ns_db_errmsg(db));
        rc = -1;
    } else if (from != to) {
        fprintf(stderr, "schema migrated from version %d to %d\n", from, to);
    }
    ns_db_destroy(&db);
    return rc;
}

/* ---- the supervisor -------------------------------------------------------- */

typedef struct child {
    const char *name;
    char **argv;
    char log[UP_PATH_CAP];
    pid_t pid;
    double started;
    double next_start;
    double backoff;
} child;

static volatile sig_atomic_t g_sup_stop = 0;
static void sup_on_signal(int sig) {
    (void)sig;
    g_sup_stop = 1;
}

static void sup_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sup_log(const char *fmt, ...) {
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
    fprintf(stderr, "%s supervisor: ", ts);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

static void start_child(child *c) {
    pid_t pid = fork();
    if (pid < 0) {
        sup_log("fork for %s failed: %s", c->name, strerror(errno));
        c->next_start = ns_time_s() + 1.0;
        return;
    }
    if (pid == 0) {
        int fd = open(c->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        execv(c->argv[0], c->argv);
        fprintf(stderr, "exec %s: %s\n", c->argv[0], strerror(errno));
        _exit(127);
    }
    c->pid = pid;
    c->started = ns_time_s();
    sup_log("started %s (pid %ld)", c->name, (long)pid);
}

static void stop_child(child *c, double grace) {
    if (c->pid <= 0) {
        return;
    }
    kill(c->pid, SIGTERM);
    double deadline = ns_time_s() + grace;
    while (ns_time_s() < deadline) {
        int status;
        pid_t r = waitpid(c->pid, &status, WNOHANG);
        if (r == c->pid || (r < 0 && errno == ECHILD)) {
            sup_log("%s stopped", c->name);
            c->pid = 0;
            return;
        }
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    sup_log("%s did not stop within %.0f s: killed", c->name, grace);
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
    c->pid = 0;
}

static int supervise(const char *dir, child *kids, int n_kids) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sup_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    sup_log("supervising %d processes (pid %ld)", n_kids, (long)getpid());
    for (int i = 0; i < n_kids; i++) {
        kids[i].backoff = 0.5;
        start_child(&kids[i]);
        if (i == 0) {
            struct timespec ts = {0, 300 * 1000 * 1000}; /* let the broker bind first */
            nanosleep(&ts, NULL);
        }
    }
    while (!g_sup_stop) {
        int status;
        pid_t pid;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (int i = 0; i < n_kids; i++) {
                child *c = &kids[i];
                if (c->pid != pid) {
                    continue;
                }
                double up = ns_time_s() - c->started;
                c->pid = 0;
                if (up > 60.0) {
                    c->backoff = 0.5; /* it ran a good while: restart quickly */
                }
                c->next_start = ns_time_s() + c->backoff;
                if (WIFSIGNALED(status)) {
                    sup_log("%s (pid %ld) killed by signal %d after %.1f s; restarting in %.1f s", c->name, (long)pid,
                            WTERMSIG(status), up, c->backoff);
                } else {
                    sup_log("%s (pid %ld) exited with status %d after %.1f s; restarting in %.1f s", c->name, (long)pid,
                            WEXITSTATUS(status), up, c->backoff);
                }
                c->backoff = c->backoff * 2 > 30.0 ? 30.0 : c->backoff * 2;
            }
        }
        double now = ns_time_s();
        for (int i = 0; i < n_kids; i++) {
            if (kids[i].pid == 0 && now >= kids[i].next_start) {
                start_child(&kids[i]);
            }
        }
        struct timespec ts = {0, 200 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    sup_log("stopping");
    /* Worker first (it finishes or returns its jobs), then the broker. */
    for (int i = n_kids - 1; i >= 0; i--) {
        stop_child(&kids[i], i == 0 ? 20.0 : 45.0);
    }
    char pidf[UP_PATH_CAP];
    up_join(pidf, sizeof pidf, dir, "/supervisor.pid");
    unlink(pidf);
    sup_log("stopped");
    return 0;
}

/* ---- readiness -------------------------------------------------------------- */

static bool wait_ready(const char *endpoint, const char *worker_name, double timeout_s, pid_t sup) {
    double deadline = ns_time_s() + timeout_s;
    ns_client *c = NULL;
    if (ns_client_create(&c, endpoint, 1000) != NS_OK) {
        return false;
    }
    bool ok = false;
    while (ns_time_s() < deadline && up_alive(sup)) {
        (void)ns_client_begin(c, 1);
        ns_client_reply rep;
        if (ns_client_call(c, NS_CMD_WORKERS, NULL, 0, &rep) == NS_OK && rep.cmd == NS_CMD_OK) {
            json_t *j = qc_body_json(rep.body, rep.body_len);
            size_t i;
            json_t *w;
            json_array_foreach(json_object_get(j, "workers"), i, w) {
                ok |= strcmp(qc_str(w, "name"), worker_name) == 0;
            }
            json_decref(j);
            if (ok) {
                break;
            }
        }
        struct timespec ts = {0, 250 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ns_client_destroy(&c);
    return ok;
}

int ns_cmd_up(int argc, char **argv) {
    const char *model = NULL, *model_name = NULL, *data_opt = NULL, *pg_opt = NULL, *bind = "127.0.0.1";
    int port = 5555;
    char *wargs[MAX_WORKER_ARGS];
    int n_wargs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_v = i + 1 < argc;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (has_v && (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0)) {
            model = argv[++i];
        } else if (has_v && strcmp(a, "--model-name") == 0) {
            model_name = argv[++i];
        } else if (has_v && strcmp(a, "--data") == 0) {
            data_opt = argv[++i];
        } else if (has_v && strcmp(a, "--pg") == 0) {
            pg_opt = argv[++i];
        } else if (has_v && strcmp(a, "--bind") == 0) {
            bind = argv[++i];
        } else if (has_v && strcmp(a, "--port") == 0) {
            port = atoi(argv[++i]);
            if (port < 1 || port > 65534) {
                fprintf(stderr, "nightshift up: --port must be 1..65534\n");
                return 2;
            }
        } else if (has_v && (strcmp(a, "--backend") == 0 || strcmp(a, "-t") == 0 || strcmp(a, "--slots") == 0 ||
                             strcmp(a, "--ctx") == 0 || strcmp(a, "--vram-budget") == 0)) {
            if (n_wargs + 2 > MAX_WORKER_ARGS) {
                fprintf(stderr, "nightshift up: too many worker options\n");
                return 2;
            }
            wargs[n_wargs++] = argv[i];
            wargs[n_wargs++] = argv[++i];
        } else if (has_v && strcmp(a, "--worker-arg") == 0) {
            if (n_wargs + 1 > MAX_WORKER_ARGS) {
                fprintf(stderr, "nightshift up: too many worker options\n");
                return 2;
            }
            wargs[n_wargs++] = argv[++i];
        } else {
            fprintf(stderr, "nightshift up: unknown option or missing value: %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    char dirbuf[UP_PATH_CAP], dir[UP_PATH_CAP];
    const char *d0 = qc_data_dir(data_opt, dirbuf, sizeof dirbuf);
    if (mkdir_p(d0, 0755) != 0 || realpath(d0, dir) == NULL) {
        fprintf(stderr, "nightshift up: cannot create the data directory %s: %s\n", d0, strerror(errno));
        return 1;
    }
    char logs[UP_PATH_CAP], path[UP_PATH_CAP];
    up_join(logs, sizeof logs, dir, "/logs");
    mkdir_p(logs, 0755);
    pid_t running = up_supervisor_pid(dir);
    if (running > 0) {
        char ep[UP_PATH_CAP] = "?", m[UP_PATH_CAP] = "?";
        up_read_key(dir, "broker", ep, sizeof ep);
        up_read_key(dir, "model", m, sizeof m);
        printf("nightshift is already running (supervisor pid %ld): broker %s, model %s\n", (long)running, ep, m);
        return 0;
    }

    /* the model */
    char model_abs[UP_PATH_CAP];
    if (model == NULL) {
        char models[UP_PATH_CAP];
        up_join(models, sizeof models, dir, "/models");
        mkdir_p(models, 0755);
        up_join(path, sizeof path, models, "/tiny-synthetic.gguf");
        if (access(path, R_OK) != 0) {
            char self[UP_PATH_CAP];
            find_prog("nightshift", self, sizeof self);
            char *sargv[] = {self, "synth", "--shape", "tiny", "--ftype", "q4_k_m", "--seed", "1", "-o", path, NULL};
            if (up_run(sargv, false, NULL) != 0) {
                fprintf(stderr, "nightshift up: could not synthesize the tiny model\n");
                return 1;
            }
        }
        fprintf(stderr,
                "no model given (-m): serving a tiny synthetic model, %s\n"
                "  (random weights: its output is gibberish; pass -m MODEL.gguf for a real one)\n",
                path);
        model = path;
    }
    if (realpath(model, model_abs) == NULL) {
        fprintf(stderr, "nightshift up: %s: %s\n", model, strerror(errno));
        return 1;
    }
    char name_buf[300];
    if (model_name == NULL) {
        const char *base = strrchr(model_abs, '/');
        up_join(name_buf, sizeof name_buf, base != NULL ? base + 1 : model_abs, "");
        size_t n = strlen(name_buf);
        if (n > 5 && strcmp(name_buf + n - 5, ".gguf") == 0) {
            name_buf[n - 5] = '\0';
        }
        model_name = name_buf;
    }

    /* PostgreSQL */
    char pg_dir[UP_PATH_CAP] = "", conninfo[UP_PATH_CAP * 2];
    if (pg_opt != NULL) {
        snprintf(conninfo, sizeof conninfo, "%s", pg_opt);
    } else if (start_pg(dir, pg_dir, sizeof pg_dir, conninfo, sizeof conninfo) != 0) {
        return 1;
    }
    if (migrate(conninfo) != 0) {
        return 1;
    }

    /* endpoints */
    const char *connect_host = (strcmp(bind, "*") == 0 || strcmp(bind, "0.0.0.0") == 0) ? "127.0.0.1" : bind;
    char clients_bind[300], workers_bind[300], broker_ep[300], workers_ep[300], worker_name[64];
    snprintf(clients_bind, sizeof clients_bind, "tcp://%s:%d", bind, port);
    snprintf(workers_bind, sizeof workers_bind, "tcp://%s:%d", bind, port + 1);
    snprintf(broker_ep, sizeof broker_ep, "tcp://%s:%d", connect_host, port);
    snprintf(workers_ep, sizeof workers_ep, "tcp://%s:%d", connect_host, port + 1);
    snprintf(worker_name, sizeof worker_name, "up-worker-%d", port);
    up_join(path, sizeof path, dir, "/endpoints");
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "nightshift up: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "broker=%s\nworkers=%s\npg=%s\npg_dir=%s\nmodel=%s\nmodel_path=%s\nworker_name=%s\n", broker_ep,
            workers_ep, conninfo, pg_dir, model_name, model_abs, worker_name);
    fclose(f);

    /* programs */
    char broker_bin[UP_PATH_CAP], worker_bin[UP_PATH_CAP];
    find_prog("nightshift-broker", broker_bin, sizeof broker_bin);
    find_prog("nightshift-worker", worker_bin, sizeof worker_bin);
    char *bargv[] = {broker_bin, "--pg", conninfo, "--clients", clients_bind, "--workers", workers_bind, NULL};
    char *wargv[16 + MAX_WORKER_ARGS];
    int wn = 0;
    wargv[wn++] = worker_bin;
    wargv[wn++] = "-m";
    wargv[wn++] = model_abs;
    wargv[wn++] = "--broker";
    wargv[wn++] = workers_ep;
    wargv[wn++] = "--pg";
    wargv[wn++] = conninfo;
    wargv[wn++] = "--name";
    wargv[wn++] = worker_name;
    wargv[wn++] = "--model-name";
    wargv[wn++] = (char *)model_name;
    for (int i = 0; i < n_wargs; i++) {
        wargv[wn++] = wargs[i];
    }
    wargv[wn] = NULL;
    child kids[2] = {{.name = "broker", .argv = bargv}, {.name = "worker", .argv = wargv}};
    up_join(kids[0].log, sizeof kids[0].log, logs, "/broker.log");
    up_join(kids[1].log, sizeof kids[1].log, logs, "/worker.log");

    fflush(stdout);
    fflush(stderr);
    pid_t sup = fork();
    if (sup < 0) {
        fprintf(stderr, "nightshift up: fork: %s\n", strerror(errno));
        return 1;
    }
    if (sup == 0) {
        setsid();
        char slog[UP_PATH_CAP];
        up_join(slog, sizeof slog, logs, "/supervisor.log");
        int fd = open(slog, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int devnull = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
        }
        up_join(path, sizeof path, dir, "/supervisor.pid");
        FILE *pf = fopen(path, "w");
        if (pf != NULL) {
            fprintf(pf, "%ld\n", (long)getpid());
            fclose(pf);
        }
        _exit(supervise(dir, kids, 2));
    }
    /* The pid file is written by the child; wait for readiness here. */
    fprintf(stderr, "starting broker and worker (logs in %s)...\n", logs);
    if (!wait_ready(broker_ep, worker_name, 120.0, sup)) {
        fprintf(stderr,
                "nightshift up: the worker did not register within 120 s; see %s/*.log\n"
                "  (`nightshift down --data %s` stops what was started)\n",
                logs, dir);
        return 1;
    }
    printf("nightshift is up\n"
           "  broker (clients)  %s\n"
           "  broker (workers)  %s\n"
           "  postgresql        %s\n"
           "  model             %s  (%s)\n"
           "  data              %s  (logs in %s)\n"
           "next: nightshift submit --model %s jobs.jsonl\n",
           broker_ep, workers_ep, conninfo, model_name, model_abs, dir, logs, model_name);
    return 0;
}
