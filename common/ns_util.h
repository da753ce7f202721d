/*
 * ns_util.h - small helpers shared by every module: overflow-checked size
 * arithmetic, byte-size parsing ("11.5GiB"), monotonic time, UTF-8 checks.
 * Thread safety: all functions are reentrant.
 */
#ifndef NS_UTIL_H
#define NS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ns_status.h"

/* *out = a * b; returns false on overflow (then *out is unspecified). */
static inline bool ns_mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool ns_add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool ns_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool ns_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}

/* Parse a byte size: a decimal number with an optional unit B, K/KB/KiB,
 * M/MB/MiB, G/GB/GiB, T/TB/TiB (case-insensitive; K, M, G, T alone are binary).
 * Returns NS_ERR_INVALID_ARG on a malformed or overflowing string. */
ns_status ns_parse_size(const char *s, uint64_t *out);

/* Format bytes as "11.50 GiB" into buf. Returns buf. */
const char *ns_format_size(uint64_t bytes, char *buf, size_t len);

/* Monotonic clock in seconds / nanoseconds. */
double ns_time_s(void);
uint64_t ns_time_ns(void);

/* True when buf[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool ns_utf8_valid(const char *buf, size_t len);

/* Number of bytes in the UTF-8 sequence starting with lead byte c (1..4), or
 * 0 for a continuation or invalid lead byte. */
int ns_utf8_len(unsigned char c);

#endif /* NS_UTIL_H */
