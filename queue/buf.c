/* buf.c - growable byte buffer with a hard cap (see ns_buf.h). */
#include "ns_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ns_buf_init(ns_buf *b, size_t max) {
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void ns_buf_free(ns_buf *b) {
    if (b == NULL) {
        return;
    }
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

ns_status ns_buf_reserve(ns_buf *b, size_t extra) {
    if (extra > b->max || b->len > b->max - extra) {
        return NS_ERR_CAPACITY;
    }
    size_t need = b->len + extra;
    if (need <= b->cap) {
        return NS_OK;
    }
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    }
    if (cap > b->max) {
        cap = b->max;
    }
    uint8_t *p = realloc(b->data, cap);
    if (p == NULL) {
        return NS_ERR_NOMEM;
    }
    b->data = p;
    b->cap = cap;
    return NS_OK;
}

ns_status ns_buf_append(ns_buf *b, const void *src, size_t n) {
    if (n == 0) {
        return NS_OK;
    }
    NS_TRY(ns_buf_reserve(b, n));
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return NS_OK;
}

ns_status ns_buf_puts(ns_buf *b, const char *s) {
    return ns_buf_append(b, s, strlen(s));
}

ns_status ns_buf_putc(ns_buf *b, char c) {
    return ns_buf_append(b, &c, 1);
}

ns_status ns_buf_printf(ns_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        return NS_ERR_RANGE;
    }
    return ns_buf_append(b, tmp, (size_t)n);
}
