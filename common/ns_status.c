/* ns_status.c - status strings and the single error origin. */
#include "ns_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ns_status_str(ns_status st) {
    switch (st) {
#define NS__STATUS_CASE(name, value, str)                                                                              \
    case NS_##name:                                                                                                    \
        return str;
        NS_STATUS_MAP(NS__STATUS_CASE)
#undef NS__STATUS_CASE
    }
    return "unknown status";
}

ns_status ns__err_vset(ns_err *err, ns_status st, const char *fmt, va_list ap) {
    if (err == NULL) {
        return st;
    }
    err->status = st;
    if (fmt == NULL) {
        err->msg[0] = '\0';
    } else {
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return st;
}

ns_status ns__err_set(ns_err *err, ns_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    ns__err_vset(err, st, fmt, ap);
    va_end(ap);
    return st;
}

void ns_err_clear(ns_err *err) {
    if (err != NULL) {
        err->status = NS_OK;
        err->msg[0] = '\0';
    }
}

const char *ns_err_msg(const ns_err *err) {
    if (err == NULL || err->status == NS_OK) {
        return "ok";
    }
    return err->msg[0] != '\0' ? err->msg : ns_status_str(err->status);
}

void ns__assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "nightshift: internal assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
