/*
 * mpack_check.c - the msgpack validator and zero-copy reader (see ns_mpack.h).
 *
 * The validator is a single forward pass with an explicit stack of remaining
 * element counts, so it needs no recursion and no allocation. Its key check is
 * the "pending" invariant: every object still owed by an open container needs
 * at least one byte, so a header announcing more children than there are
 * bytes left is rejected before anything trusts it.
 */
#include "ns_mpack.h"

#include <math.h>
#include <string.h>

#include "ns_util.h"

const ns_mp_limits ns_mp_default_limits = {16, 1000000};

static uint16_t rd16(const uint8_t *p) {
    return (uint16_t)((p[0] << 8) | p[1]);
}
static uint32_t rd32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}
static uint64_t rd64(const uint8_t *p) {
    return ((uint64_t)rd32(p) << 32) | rd32(p + 4);
}

/* One object header: its type, header size, payload bytes after the header
 * and number of child objects (a map of n pairs has 2n children). */
typedef struct mp_head {
    ns_mp_type type;
    size_t hdr;     /* bytes of the type byte plus length/value fields */
    uint64_t body;  /* payload bytes following the header (str/bin) */
    uint64_t kids;  /* child objects (array n, map 2n) */
    uint32_t count; /* element/pair count for containers */
    bool ext;       /* ext/fixext or the reserved 0xc1: never accepted */
} mp_head;

/* Decode the header at p (avail bytes). Returns false when truncated. */
static bool mp_head_parse(const uint8_t *p, size_t avail, mp_head *h) {
    memset(h, 0, sizeof *h);
    if (avail < 1) {
        return false;
    }
    uint8_t b = p[0];
    h->hdr = 1;
    if (b <= 0x7f) {
        h->type = NS_MP_UINT;
    } else if (b >= 0xe0) {
        h->type = NS_MP_INT;
    } else if (b >= 0x80 && b <= 0x8f) {
        h->type = NS_MP_MAP;
        h->count = b & 0x0f;
        h->kids = 2u * h->count;
    } else if (b >= 0x90 && b <= 0x9f) {
        h->type = NS_MP_ARRAY;
        h->count = b & 0x0f;
        h->kids = h->count;
    } else if (b >= 0xa0 && b <= 0xbf) {
        h->type = NS_MP_STR;
        h->body = b & 0x1f;
    } else {
        switch (b) {
        case 0xc0:
            h->type = NS_MP_NIL;
            break;
        case 0xc2:
        case 0xc3:
            h->type = NS_MP_BOOL;
            break;
        case 0xc4:
            h->type = NS_MP_BIN;
            h->hdr = 2;
            break;
        case 0xc5:
            h->type = NS_MP_BIN;
            h->hdr = 3;
            break;
        case 0xc6:
            h->type = NS_MP_BIN;
            h->hdr = 5;
            break;
        case 0xca:
            h->type = NS_MP_FLOAT;
            h->hdr = 5;
            break;
        case 0xcb:
            h->type = NS_MP_FLOAT;
            h->hdr = 9;
            break;
        case 0xcc:
            h->type = NS_MP_UINT;
            h->hdr = 2;
            break;
        case 0xcd:
            h->type = NS_MP_UINT;
            h->hdr = 3;
            break;
        case 0xce:
            h->type = NS_MP_UINT;
            h->hdr = 5;
            break;
        case 0xcf:
            h->type = NS_MP_UINT;
            h->hdr = 9;
            break;
        case 0xd0:
            h->type = NS_MP_INT;
            h->hdr = 2;
            break;
        case 0xd1:
            h->type = NS_MP_INT;
            h->hdr = 3;
            break;
        case 0xd2:
            h->type = NS_MP_INT;
            h->hdr = 5;
            break;
        case 0xd3:
            h->type = NS_MP_INT;
            h->hdr = 9;
            break;
        case 0xd9:
            h->type = NS_MP_STR;
            h->hdr = 2;
            break;
        case 0xda:
            h->type = NS_MP_STR;
            h->hdr = 3;
            break;
        case 0xdb:
            h->type = NS_MP_STR;
            h->hdr = 5;
            break;
        case 0xdc:
            h->type = NS_MP_ARRAY;
            h->hdr = 3;
            break;
        case 0xdd:
            h->type = NS_MP_ARRAY;
            h->hdr = 5;
            break;
        case 0xde:
            h->type = NS_MP_MAP;
            h->hdr = 3;
            break;
        case 0xdf:
            h->type = NS_MP_MAP;
            h->hdr = 5;
            break;
        default:
            h->type = NS_MP_INVALID;
            h->ext = true;
            return true; /* c1, c7-c9, d4-d8 */
        }
    }
    if (avail < h->hdr) {
        return false;
    }
    if (h->type == NS_MP_STR || h->type == NS_MP_BIN) {
        if (h->hdr == 2) {
            h->body = p[1];
        } else if (h->hdr == 3) {
            h->body = rd16(p + 1);
        } else if (h->hdr == 5) {
            h->body = rd32(p + 1);
        }
    } else if ((h->type == NS_MP_ARRAY || h->type == NS_MP_MAP) && h->hdr > 1) {
        h->count = h->hdr == 3 ? rd16(p + 1) : rd32(p + 1);
        h->kids = h->type == NS_MP_MAP ? 2u * (uint64_t)h->count : h->count;
    }
    return true;
}

ns_status ns_mp_check(const uint8_t *buf, size_t len, const ns_mp_limits *lim, ns_err *err) {
    if (lim == NULL) {
        lim = &ns_mp_default_limits;
    }
    uint32_t max_depth = lim->max_depth > NS_MP_DEPTH_CAP ? NS_MP_DEPTH_CAP : lim->max_depth;
    uint64_t remaining[NS_MP_DEPTH_CAP]; /* children still owed by each open container */
    uint32_t depth = 0;
    uint64_t pending = 1; /* objects still owed in total, each needs >= 1 byte */
    uint64_t elems = 0;
    size_t pos = 0;
    if (buf == NULL && len > 0) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "msgpack: NULL buffer");
    }
    while (pending > 0) {
        if (pos >= len) {
            return ns__err_set(err, NS_ERR_FORMAT, "msgpack: truncated at byte %zu", pos);
        }
        mp_head h;
        if (!mp_head_parse(buf + pos, len - pos, &h)) {
            return ns__err_set(err, NS_ERR_FORMAT, "msgpack: truncated header at byte %zu", pos);
        }
        if (h.ext) {
            return ns__err_set(err, NS_ERR_FORMAT, "msgpack: unsupported type byte 0x%02x at byte %zu", buf[pos], pos);
        }
        if (h.body > len - pos - h.hdr) {
            return ns__err_set(err, NS_ERR_FORMAT, "msgpack: %llu-byte payload past end at byte %zu",
                               (unsigned long long)h.body, pos);
        }
        pos += h.hdr + (size_t)h.body;
        if (++elems > lim->max_elems) {
            return ns__err_set(err, NS_ERR_FORMAT, "msgpack: more than %u objects", lim->max_elems);
        }
        pending--;
        if (depth > 0) {
            remaining[depth - 1]--;
        }
        if (h.kids > 0) {
            if (depth >= max_depth) {
                return ns__err_set(err, NS_ERR_FORMAT, "msgpack: nesting deeper than %u at byte %zu", max_depth,
                                   pos - h.hdr);
            }
            if (h.kids > len - pos || pending + h.kids > len - pos) {
                return ns__err_set(err, NS_ERR_FORMAT,
                                   "msgpack: container of %u entries larger than the %zu bytes left at byte %zu",
                                   h.count, len - pos, pos - h.hdr);
            }
            remaining[depth++] = h.kids;
            pending += h.kids;
        }
        while (depth > 0 && remaining[depth - 1] == 0) {
            depth--;
        }
    }
    if (pos != len) {
        return ns__err_set(err, NS_ERR_FORMAT, "msgpack: %zu trailing bytes after the object", len - pos);
    }
    return NS_OK;
}

/* ---- reader ------------------------------------------------------------- */

ns_mp_type ns_mp_peek(const ns_mp_reader *r) {
    mp_head h;
    if (!mp_head_parse(r->p, (size_t)(r->end - r->p), &h) || h.ext) {
        return NS_MP_INVALID;
    }
    return h.type;
}

/* Parse the header at the cursor and check the payload fits. */
static bool rd_head(const ns_mp_reader *r, mp_head *h) {
    size_t avail = (size_t)(r->end - r->p);
    return mp_head_parse(r->p, avail, h) && !h->ext && h->body <= avail - h->hdr;
}

ns_status ns_mp_read_nil(ns_mp_reader *r) {
    if (r->p < r->end && r->p[0] == 0xc0) {
        r->p++;
        return NS_OK;
    }
    return NS_ERR_FORMAT;
}

ns_status ns_mp_read_bool(ns_mp_reader *r, bool *out) {
    if (r->p < r->end && (r->p[0] == 0xc2 || r->p[0] == 0xc3)) {
        *out = r->p[0] == 0xc3;
        r->p++;
        return NS_OK;
    }
    return NS_ERR_FORMAT;
}

ns_status ns_mp_read_int(ns_mp_reader *r, int64_t *out) {
    mp_head h;
    if (!rd_head(r, &h) || (h.type != NS_MP_UINT && h.type != NS_MP_INT)) {
        return NS_ERR_FORMAT;
    }
    const uint8_t *p = r->p;
    uint8_t b = p[0];
    int64_t v;
    if (b <= 0x7f) {
        v = b;
    } else if (b >= 0xe0) {
        v = (int8_t)b;
    } else {
        switch (b) {
        case 0xcc:
            v = p[1];
            break;
        case 0xcd:
            v = rd16(p + 1);
            break;
        case 0xce:
            v = rd32(p + 1);
            break;
        case 0xcf: {
            uint64_t u = rd64(p + 1);
            if (u > (uint64_t)INT64_MAX) {
                return NS_ERR_FORMAT;
            }
            v = (int64_t)u;
            break;
        }
        case 0xd0:
            v = (int8_t)p[1];
            break;
        case 0xd1:
            v = (int16_t)rd16(p + 1);
            break;
        case 0xd2:
            v = (int32_t)rd32(p + 1);
            break;
        default:
            v = (int64_t)rd64(p + 1);
            break;
        }
    }
    *out = v;
    r->p += h.hdr;
    return NS_OK;
}

ns_status ns_mp_read_double(ns_mp_reader *r, double *out) {
    if (r->p < r->end && (r->p[0] == 0xca || r->p[0] == 0xcb)) {
        mp_head h;
        if (!rd_head(r, &h)) {
            return NS_ERR_FORMAT;
        }
        if (r->p[0] == 0xca) {
            uint32_t u = rd32(r->p + 1);
            float f;
            memcpy(&f, &u, sizeof f);
            *out = f;
        } else {
            uint64_t u = rd64(r->p + 1);
            memcpy(out, &u, sizeof *out);
        }
        r->p += h.hdr;
        return NS_OK;
    }
    int64_t i;
    NS_TRY(ns_mp_read_int(r, &i));
    *out = (double)i;
    return NS_OK;
}

static ns_status read_bytes(ns_mp_reader *r, ns_mp_type want, const uint8_t **p, size_t *len) {
    mp_head h;
    if (!rd_head(r, &h) || h.type != want) {
        return NS_ERR_FORMAT;
    }
    *p = r->p + h.hdr;
    *len = (size_t)h.body;
    r->p += h.hdr + (size_t)h.body;
    return NS_OK;
}

ns_status ns_mp_read_str(ns_mp_reader *r, const char **s, size_t *len) {
    const uint8_t *p;
    NS_TRY(read_bytes(r, NS_MP_STR, &p, len));
    *s = (const char *)p;
    return NS_OK;
}

ns_status ns_mp_read_bin(ns_mp_reader *r, const uint8_t **p, size_t *len) {
    return read_bytes(r, NS_MP_BIN, p, len);
}

static ns_status read_container(ns_mp_reader *r, ns_mp_type want, uint32_t *n) {
    mp_head h;
    if (!rd_head(r, &h) || h.type != want) {
        return NS_ERR_FORMAT;
    }
    /* Same invariant as the validator: each child needs at least one byte. */
    if (h.kids > (uint64_t)(r->end - r->p) - h.hdr) {
        return NS_ERR_FORMAT;
    }
    *n = h.count;
    r->p += h.hdr;
    return NS_OK;
}

ns_status ns_mp_read_array(ns_mp_reader *r, uint32_t *n) {
    return read_container(r, NS_MP_ARRAY, n);
}
ns_status ns_mp_read_map(ns_mp_reader *r, uint32_t *n) {
    return read_container(r, NS_MP_MAP, n);
}

ns_status ns_mp_skip(ns_mp_reader *r) {
    const uint8_t *start = r->p;
    uint64_t pending = 1;
    while (pending > 0) {
        mp_head h;
        if (!rd_head(r, &h) || h.kids > (uint64_t)(r->end - r->p) - h.hdr) {
            r->p = start;
            return NS_ERR_FORMAT;
        }
        r->p += h.hdr + (size_t)h.body;
        pending = pending - 1 + h.kids;
    }
    return NS_OK;
}

bool ns_mp_str_eq(const char *s, size_t len, const char *lit) {
    size_t n = strlen(lit);
    return n == len && memcmp(s, lit, n) == 0;
}

bool ns_mp_text_ok(const char *s, size_t len) {
    return memchr(s, 0, len) == NULL && ns_utf8_valid(s, len);
}
