/* ns_log.c - the process-wide log callback. */
#include "ns_log.h"

#include <stdarg.h>
#include <stdio.h>

static void ns__log_default(ns_log_level level, const char *msg, void *user) {
    static const char *const names[] = {"debug", "info", "warn", "error"};
    (void)user;
    fprintf(stderr, "nightshift %s: %s\n", names[level & 3], msg);
}

static ns_log_fn g_log_fn = ns__log_default;
static void *g_log_user;
static ns_log_level g_log_level = NS_LOG_INFO;

void ns_log_set_callback(ns_log_fn fn, void *user) {
    g_log_fn = fn != NULL ? fn : ns__log_default;
    g_log_user = user;
}

void ns_log_set_level(ns_log_level level) {
    g_log_level = level;
}

ns_log_level ns_log_get_level(void) {
    return g_log_level;
}

void ns_log(ns_log_level level, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    if (level < g_log_level) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    g_log_fn(level, buf, g_log_user);
}
