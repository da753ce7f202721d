/*
 * up_common.c - helpers shared by `nightshift up` and `down` (up_common.h).
 */
#include "up_common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

void up_join(char *out, size_t cap, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la >= cap) {
        la = cap - 1;
    }
    memmove(out, a, la);
    if (lb > cap - 1 - la) {
        lb = cap - 1 - la;
    }
    memcpy(out + la, b, lb);
    out[la + lb] = '\0';
}

bool up_pg_bindir(char *out, size_t cap) {
    const char *env = getenv("NS_PG_BIN");
    char path[UP_PATH_CAP];
    if (env != NULL && env[0] != '\0') {
        up_join(path, sizeof path, env, "/pg_ctl");
        if (access(path, X_OK) == 0) {
            snprintf(out, cap, "%s", env);
            return true;
        }
    }
    int best = 0;
    DIR *d = opendir("/usr/lib/postgresql");
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            int v = atoi(e->d_name);
            snprintf(path, sizeof path, "/usr/lib/postgresql/%s/bin/pg_ctl", e->d_name);
            if (v > best && access(path, X_OK) == 0) {
                best = v;
            }
        }
        closedir(d);
    }
    if (best > 0) {
        snprintf(out, cap, "/usr/lib/postgresql/%d/bin", best);
        return true;
    }
    /* Last resort: pg_ctl on PATH (Fedora, Homebrew). */
    const char *pathenv = getenv("PATH");
    if (pathenv != NULL) {
        char *copy = strdup(pathenv), *save = NULL;
        for (char *p = strtok_r(copy, ":", &save); p != NULL; p = strtok_r(NULL, ":", &save)) {
            up_join(path, sizeof path, p, "/pg_ctl");
            if (access(path, X_OK) == 0) {
                snprintf(out, cap, "%s", p);
                free(copy);
                return true;
            }
        }
        free(copy);
    }
    return false;
}

const char *up_pg_user(void) {
    if (geteuid() == 0) {
        return "nobody";
    }
    struct passwd *pw = getpwuid(geteuid());
    return pw != NULL ? pw->pw_name : "postgres";
}

int up_run(char *const argv[], bool as_pg_user, const char *log) {
    pid_t pid = fork();
    if (pid < 0) {
        return -1;
    }
    if (pid == 0) {
        if (log != NULL) {
            int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (fd >= 0) {
                dup2(fd, STDOUT_FILENO);
                dup2(fd, STDERR_FILENO);
            }
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, STDIN_FILENO);
        }
        if (as_pg_user && geteuid() == 0) {
            struct passwd *pw = getpwnam("nobody");
            if (pw == NULL || setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
                fprintf(stderr, "nightshift: cannot switch to user nobody to run PostgreSQL\n");
                _exit(126);
            }
        }
        execv(argv[0], argv);
        fprintf(stderr, "nightshift: exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            return -1;
        }
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

bool up_read_key(const char *dir, const char *key, char *out, size_t cap) {
    char path[UP_PATH_CAP];
    up_join(path, sizeof path, dir, "/endpoints");
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return false;
    }
    char line[UP_PATH_CAP * 2];
    size_t kl = strlen(key);
    bool found = false;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, kl) == 0 && line[kl] == '=') {
            line[strcspn(line, "\r\n")] = '\0';
            snprintf(out, cap, "%s", line + kl + 1);
            found = true;
            break;
        }
    }
    fclose(f);
    return found;
}

bool up_alive(pid_t pid) {
    return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

pid_t up_supervisor_pid(const char *dir) {
    char path[UP_PATH_CAP];
    up_join(path, sizeof path, dir, "/supervisor.pid");
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    long pid = 0;
    if (fscanf(f, "%ld", &pid) != 1) {
        pid = 0;
    }
    fclose(f);
    return up_alive((pid_t)pid) ? (pid_t)pid : 0;
}

int up_pg_stop(const char *pg_dir, const char *log) {
    char bin[UP_PATH_CAP], pg_ctl[UP_PATH_CAP], data[UP_PATH_CAP], pidfile[UP_PATH_CAP];
    up_join(data, sizeof data, pg_dir, "/data");
    up_join(pidfile, sizeof pidfile, data, "/postmaster.pid");
    if (access(pidfile, F_OK) != 0) {
        return 0; /* not running */
    }
    if (!up_pg_bindir(bin, sizeof bin)) {
        return -1;
    }
    up_join(pg_ctl, sizeof pg_ctl, bin, "/pg_ctl");
    char *argv[] = {pg_ctl, "-D", data, "-m", "fast", "-w", "-t", "60", "stop", NULL};
    return up_run(argv, true, log);
}
