/*
 * ns_status.h - the one status/error convention for every nightshift module.
 *
 * Every fallible function returns an ns_status: 0 is NS_OK, errors are
 * negative. A handle that can fail keeps a detail message (see ns_err) so the
 * caller can print "what and where" (e.g. "gguf: tensor 'x' offset past end of
 * file at byte 1234"). ns_status_str() gives the static name of a code.
 *
 * The enum and its strings come from one X-macro, so they cannot drift apart.
 * Thread safety: everything here is reentrant.
 */
#ifndef NS_STATUS_H
#define NS_STATUS_H

#include <stdarg.h>
#include <stddef.h>

#define NS_STATUS_MAP(X)                                                                                               \
    X(OK, 0, "ok")                                                                                                     \
    X(ERR_NOMEM, -1, "out of memory")                                                                                  \
    X(ERR_IO, -2, "i/o error")                                                                                         \
    X(ERR_FORMAT, -3, "malformed input")                                                                               \
    X(ERR_UNSUPPORTED, -4, "unsupported")                                                                              \
    X(ERR_INVALID_ARG, -5, "invalid argument")                                                                         \
    X(ERR_NOT_FOUND, -6, "not found")                                                                                  \
    X(ERR_RANGE, -7, "value out of range")                                                                             \
    X(ERR_DEVICE, -8, "device error")                                                                                  \
    X(ERR_CAPACITY, -9, "capacity exceeded")                                                                           \
    X(ERR_DB, -10, "database error")                                                                                   \
    X(ERR_PROTOCOL, -11, "protocol error")                                                                             \
    X(ERR_STATE, -12, "invalid state")                                                                                 \
    X(ERR_TIMEOUT, -13, "timed out")                                                                                   \
    X(ERR_CANCELLED, -14, "cancelled")                                                                                 \
    X(ERR_CONFLICT, -15, "conflict")

typedef enum ns_status {
#define NS__STATUS_ENUM(name, value, str) NS_##name = value,
    NS_STATUS_MAP(NS__STATUS_ENUM)
#undef NS__STATUS_ENUM
} ns_status;

/* Static, never-NULL description of a status code ("unknown status" for
 * values outside the map). */
const char *ns_status_str(ns_status st);

/* Length of the detail message buffer carried by handles. */
#define NS_ERRMSG_LEN 256

/* An error slot embedded in handles: the code and a formatted detail message.
 * Owned by the handle; valid until the next call on that handle. */
typedef struct ns_err {
    ns_status status;
    char msg[NS_ERRMSG_LEN];
} ns_err;

/* Record an error on `err` (may be NULL) and return `st`. Every error in the
 * library passes through here, so a breakpoint on ns__err_set catches all. */
ns_status ns__err_set(ns_err *err, ns_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
ns_status ns__err_vset(ns_err *err, ns_status st, const char *fmt, va_list ap);

/* Clear an error slot to NS_OK with an empty message. */
void ns_err_clear(ns_err *err);

/* "status: message" view of an error slot; never NULL. */
const char *ns_err_msg(const ns_err *err);

/* Propagate a failing status from an expression. */
#define NS_TRY(expr)                                                                                                   \
    do {                                                                                                               \
        ns_status ns__st = (expr);                                                                                     \
        if (ns__st != NS_OK) {                                                                                         \
            return ns__st;                                                                                             \
        }                                                                                                              \
    } while (0)

/* Programmer-error check: always on, never used for input validation. */
#define NS_ASSERT(cond)                                                                                                \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            ns__assert_fail(#cond, __FILE__, __LINE__);                                                                \
        }                                                                                                              \
    } while (0)

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
void ns__assert_fail(const char *expr, const char *file, int line);

#endif /* NS_STATUS_H */
