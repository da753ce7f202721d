/*
 * ns_mpack.h - safe msgpack handling for untrusted bytes.
 *
 * msgpack-c's unpacker trusts container counts: a 5-byte array header can make
 * it allocate gigabytes. nightshift therefore never hands untrusted bytes to
 * msgpack-c. Instead:
 *   1. ns_mp_check() walks the bytes once, without allocating, and rejects
 *      anything that is not exactly one well-formed object within limits:
 *      a container count larger than the bytes left, nesting deeper than
 *      max_depth, more than max_elems objects, ext types and the reserved
 *      0xc1 byte, and trailing bytes after the object.
 *   2. A zero-copy cursor (ns_mp_reader) then decodes the checked bytes field
 *      by field. It is bounds-checked too, so using it on unchecked bytes is
 *      safe (it just fails), but only checked bytes have bounded skip cost.
 * Encoding uses msgpack-c's packer (msgpack_packer over msgpack_sbuffer),
 * which is safe because we choose the sizes.
 *
 * Ownership: the reader borrows the caller's bytes; strings it returns point
 * into them. Thread safety: all functions are reentrant.
 */
#ifndef NS_MPACK_H
#define NS_MPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "ns_buf.h"
#include "ns_status.h"

/* Limits for ns_mp_check. */
typedef struct ns_mp_limits {
    uint32_t max_depth; /* containers nested deeper than this are rejected (<= NS_MP_DEPTH_CAP) */
    uint32_t max_elems; /* total objects (every key, value and element counts one) */
} ns_mp_limits;

#define NS_MP_DEPTH_CAP 64

/* Defaults used by the wire protocol: depth 16, 1,000,000 objects. */
extern const ns_mp_limits ns_mp_default_limits;

/* Check that buf[0..len) is exactly one msgpack object within `lim` (NULL:
 * defaults). Allocates nothing. Returns NS_OK or NS_ERR_FORMAT with a message
 * naming the byte offset in `err` (may be NULL). */
ns_status ns_mp_check(const uint8_t *buf, size_t len, const ns_mp_limits *lim, ns_err *err);

typedef enum ns_mp_type {
    NS_MP_INVALID = 0, /* truncated or unsupported byte */
    NS_MP_NIL,
    NS_MP_BOOL,
    NS_MP_UINT, /* non-negative integer */
    NS_MP_INT,  /* negative integer */
    NS_MP_FLOAT,
    NS_MP_STR,
    NS_MP_BIN,
    NS_MP_ARRAY,
    NS_MP_MAP,
} ns_mp_type;

/* A cursor over msgpack bytes. Reads advance `p`; a failed read leaves the
 * cursor unchanged and returns NS_ERR_FORMAT (wrong type or truncated). */
typedef struct ns_mp_reader {
    const uint8_t *p;   /* next byte to read */
    const uint8_t *end; /* one past the last byte */
} ns_mp_reader;

static inline void ns_mp_reader_init(ns_mp_reader *r, const void *buf, size_t len) {
    r->p = (const uint8_t *)buf;
    r->end = r->p + len;
}

/* Type of the next object without consuming it. */
ns_mp_type ns_mp_peek(const ns_mp_reader *r);

ns_status ns_mp_read_nil(ns_mp_reader *r);
ns_status ns_mp_read_bool(ns_mp_reader *r, bool *out);
/* Any integer that fits an int64_t. */
ns_status ns_mp_read_int(ns_mp_reader *r, int64_t *out);
/* A float32/float64, or any integer converted to double. */
ns_status ns_mp_read_double(ns_mp_reader *r, double *out);
/* A str: pointer into the buffer (not NUL-terminated) and its byte length. */
ns_status ns_mp_read_str(ns_mp_reader *r, const char **s, size_t *len);
ns_status ns_mp_read_bin(ns_mp_reader *r, const uint8_t **p, size_t *len);
/* Container headers: element count (a map's count is its number of pairs). */
ns_status ns_mp_read_array(ns_mp_reader *r, uint32_t *n);
ns_status ns_mp_read_map(ns_mp_reader *r, uint32_t *n);
/* Skip one whole object (iterative, no recursion). */
ns_status ns_mp_skip(ns_mp_reader *r);

/* True when s[0..len) equals the C string `lit`. */
bool ns_mp_str_eq(const char *s, size_t len, const char *lit);

/* Text check for strings bound for PostgreSQL: valid UTF-8, no NUL byte. */
bool ns_mp_text_ok(const char *s, size_t len);

/* Write the next object as JSON text to `out`, consuming it. Map keys must be
 * strings; strings must be valid UTF-8 without NUL (PostgreSQL jsonb rejects
 * \u0000); floats must be finite; bin is rejected. Depth is bounded by the
 * earlier ns_mp_check (at most NS_MP_DEPTH_CAP). */
ns_status ns_mp_to_json(ns_mp_reader *r, ns_buf *out, ns_err *err);

/* Pack JSON text (trusted: e.g. read back from PostgreSQL jsonb) as msgpack
 * with `pk`. Integers become ints, other numbers floats. */
ns_status ns_json_to_mp(const char *json, size_t len, msgpack_packer *pk, ns_err *err);

/* Packer helpers: a C string as str; key + value pairs for map bodies. */
int ns_mp_pack_cstr(msgpack_packer *pk, const char *s);
int ns_mp_pack_strn(msgpack_packer *pk, const char *s, size_t len);
int ns_mp_pack_kv_int(msgpack_packer *pk, const char *key, int64_t v);
int ns_mp_pack_kv_double(msgpack_packer *pk, const char *key, double v);
int ns_mp_pack_kv_str(msgpack_packer *pk, const char *key, const char *v); /* NULL packs nil */
int ns_mp_pack_kv_bool(msgpack_packer *pk, const char *key, bool v);
int ns_mp_pack_kv_nil(msgpack_packer *pk, const char *key);

#endif /* NS_MPACK_H */
