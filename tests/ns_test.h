/*
 * ns_test.h - minimal assertion helpers for nightshift's test executables.
 *
 * Failed checks print both operands with file and line and exit(1); NS_SKIP
 * exits with 77, which CTest reports as "skipped". Header-only.
 */
#ifndef NS_TEST_H
#define NS_TEST_H

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NS_TEST_SKIP_CODE 77

#define NS_SKIP(...)                                                                                                   \
    do {                                                                                                               \
        fprintf(stderr, "SKIP: ");                                                                                     \
        fprintf(stderr, __VA_ARGS__);                                                                                  \
        fprintf(stderr, "\n");                                                                                         \
        exit(NS_TEST_SKIP_CODE);                                                                                       \
    } while (0)

#define NS_FAIL(...)                                                                                                   \
    do {                                                                                                               \
        fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);                                                          \
        fprintf(stderr, __VA_ARGS__);                                                                                  \
        fprintf(stderr, "\n");                                                                                         \
        exit(1);                                                                                                       \
    } while (0)

#define ASSERT_TRUE(c)                                                                                                 \
    do {                                                                                                               \
        if (!(c)) {                                                                                                    \
            NS_FAIL("expected true: %s", #c);                                                                          \
        }                                                                                                              \
    } while (0)

#define ASSERT_EQ(a, b)                                                                                                \
    do {                                                                                                               \
        long long ns__a = (long long)(a), ns__b = (long long)(b);                                                      \
        if (ns__a != ns__b) {                                                                                          \
            NS_FAIL("%s == %s: %lld != %lld", #a, #b, ns__a, ns__b);                                                   \
        }                                                                                                              \
    } while (0)

#define ASSERT_NE(a, b)                                                                                                \
    do {                                                                                                               \
        long long ns__a = (long long)(a), ns__b = (long long)(b);                                                      \
        if (ns__a == ns__b) {                                                                                          \
            NS_FAIL("%s != %s: both %lld", #a, #b, ns__a);                                                             \
        }                                                                                                              \
    } while (0)

#define ASSERT_STREQ(a, b)                                                                                             \
    do {                                                                                                               \
        const char *ns__a = (a), *ns__b = (b);                                                                         \
        if (ns__a == NULL || ns__b == NULL || strcmp(ns__a, ns__b) != 0) {                                             \
            NS_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, ns__a ? ns__a : "(null)", ns__b ? ns__b : "(null)");         \
        }                                                                                                              \
    } while (0)

#define ASSERT_NEAR(a, b, tol)                                                                                         \
    do {                                                                                                               \
        double ns__a = (double)(a), ns__b = (double)(b);                                                               \
        if (!(fabs(ns__a - ns__b) <= (tol))) {                                                                         \
            NS_FAIL("%s ~= %s: %.9g vs %.9g (tol %g)", #a, #b, ns__a, ns__b, (double)(tol));                           \
        }                                                                                                              \
    } while (0)

/* Assert an ns_status call returns NS_OK, printing the status name. */
#define ASSERT_OK(expr)                                                                                                \
    do {                                                                                                               \
        int ns__st = (int)(expr);                                                                                      \
        if (ns__st != 0) {                                                                                             \
            NS_FAIL("%s returned %d (%s)", #expr, ns__st, ns_status_str((ns_status)ns__st));                           \
        }                                                                                                              \
    } while (0)

/* Path of a reference file; skips the test when it is absent. */
static inline const char *ns_test_reference(const char *rel, char *buf, size_t len) {
    snprintf(buf, len, "%s/%s", NS_REFERENCE_DIR, rel);
    if (access(buf, R_OK) != 0) {
        NS_SKIP("reference file %s not found", buf);
    }
    return buf;
}

#endif /* NS_TEST_H */
