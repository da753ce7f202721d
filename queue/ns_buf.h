/*
 * ns_buf.h - a growable byte buffer with a hard size cap.
 *
 * Used to build COPY streams, JSON text and other output whose size depends on
 * input. Every append checks the cap first, so a buffer can never grow past
 * `max` bytes whatever the input: appends fail with NS_ERR_CAPACITY instead.
 * Ownership: the buffer owns `data` (malloc'd); ns_buf_free releases it.
 * Thread safety: none; one buffer per owner.
 */
#ifndef NS_BUF_H
#define NS_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "ns_status.h"

typedef struct ns_buf {
    uint8_t *data; /* (cap) bytes, the first `len` in use; NULL until first append */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
    size_t max;    /* hard cap on len; appends past it fail with NS_ERR_CAPACITY */
} ns_buf;

/* An empty buffer that may grow to `max` bytes. Allocates nothing. */
void ns_buf_init(ns_buf *b, size_t max);

/* Release the storage; the buffer becomes empty (and may be reused). NULL-safe. */
void ns_buf_free(ns_buf *b);

/* Drop the contents, keep the storage. */
static inline void ns_buf_reset(ns_buf *b) {
    b->len = 0;
}

/* Make room for `extra` more bytes. NS_ERR_CAPACITY past `max`, NS_ERR_NOMEM. */
ns_status ns_buf_reserve(ns_buf *b, size_t extra);

/* Append bytes / a C string / one byte. Same errors as ns_buf_reserve; on
 * error the buffer is unchanged. */
ns_status ns_buf_append(ns_buf *b, const void *src, size_t n);
ns_status ns_buf_puts(ns_buf *b, const char *s);
ns_status ns_buf_putc(ns_buf *b, char c);

/* printf-style append (at most 512 bytes per call). */
ns_status ns_buf_printf(ns_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif /* NS_BUF_H */
