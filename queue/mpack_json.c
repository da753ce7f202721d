/*
 * mpack_json.c - msgpack <-> JSON bridges and packer helpers (see ns_mpack.h).
 *
 * msgpack -> JSON is hand-written (a walk over checked bytes with an explicit
 * stack); JSON -> msgpack goes through jansson and is only used on JSON that
 * nightshift itself stored in PostgreSQL.
 */
#include "ns_mpack.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static ns_status json_str(ns_buf *out, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    NS_TRY(ns_buf_putc(out, '"'));
    size_t run = 0; /* start of the current run of bytes copied verbatim */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        NS_TRY(ns_buf_append(out, s + run, i - run));
        run = i + 1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
            break;
        }
        NS_TRY(ns_buf_append(out, esc, n));
    }
    NS_TRY(ns_buf_append(out, s + run, len - run));
    return ns_buf_putc(out, '"');
}

ns_status ns_mp_to_json(ns_mp_reader *r, ns_buf *out, ns_err *err) {
    /* Per open container: entries left and whether it is a map (keys at even
     * positions need a ':' after them, values a ',' before the next key). */
    uint64_t left[NS_MP_DEPTH_CAP + 1];
    uint64_t total[NS_MP_DEPTH_CAP + 1];
    bool is_map[NS_MP_DEPTH_CAP + 1];
    int depth = 0;
    ns_status st;
    do {
        if (depth > 0) {
            uint64_t idx = total[depth - 1] - left[depth - 1];
            if (idx > 0) {
                bool after_key = is_map[depth - 1] && (idx % 2 == 1);
                if ((st = ns_buf_putc(out, after_key ? ':' : ',')) != NS_OK) {
                    goto nomem;
                }
            }
            if (is_map[depth - 1] && idx % 2 == 0 && ns_mp_peek(r) != NS_MP_STR) {
                return ns__err_set(err, NS_ERR_FORMAT, "json: map keys must be strings");
            }
            left[depth - 1]--;
        }
        ns_mp_type t = ns_mp_peek(r);
        switch (t) {
        case NS_MP_NIL:
            ns_mp_read_nil(r);
            st = ns_buf_puts(out, "null");
            break;
        case NS_MP_BOOL: {
            bool b = false;
            ns_mp_read_bool(r, &b);
            st = ns_buf_puts(out, b ? "true" : "false");
            break;
        }
        case NS_MP_INT:
        case NS_MP_UINT: {
            if (r->p[0] == 0xcf) { /* uint64: may exceed INT64_MAX */
                uint64_t u = 0;
                for (int i = 1; i <= 8; i++) {
                    u = (u << 8) | r->p[i];
                }
                r->p += 9;
                st = ns_buf_printf(out, "%" PRIu64, u);
            } else {
                int64_t v = 0;
                ns_mp_read_int(r, &v);
                st = ns_buf_printf(out, "%" PRId64, v);
            }
            break;
        }
        case NS_MP_FLOAT: {
            double d = 0;
            ns_mp_read_double(r, &d);
            if (!isfinite(d)) {
                return ns__err_set(err, NS_ERR_FORMAT, "json: non-finite float");
            }
            st = ns_buf_printf(out, "%.17g", d);
            break;
        }
        case NS_MP_STR: {
            const char *s;
            size_t len;
            ns_mp_read_str(r, &s, &len);
            if (!ns_mp_text_ok(s, len)) {
                return ns__err_set(err, NS_ERR_FORMAT, "json: string is not valid UTF-8 or contains NUL");
            }
            st = json_str(out, s, len);
            break;
        }
        case NS_MP_ARRAY:
        case NS_MP_MAP: {
            uint32_t n;
            if (depth >= NS_MP_DEPTH_CAP) {
                return ns__err_set(err, NS_ERR_FORMAT, "json: nesting too deep");
            }
            bool map = t == NS_MP_MAP;
            if ((map ? ns_mp_read_map(r, &n) : ns_mp_read_array(r, &n)) != NS_OK) {
                return ns__err_set(err, NS_ERR_FORMAT, "json: truncated container");
            }
            st = ns_buf_putc(out, map ? '{' : '[');
            if (st == NS_OK && n > 0) {
                is_map[depth] = map;
                total[depth] = map ? 2ull * n : n;
                left[depth] = total[depth];
                depth++;
            } else if (st == NS_OK) {
                st = ns_buf_putc(out, map ? '}' : ']');
            }
            break;
        }
        default:
            return ns__err_set(err, NS_ERR_FORMAT, "json: unsupported or truncated msgpack object");
        }
        if (st != NS_OK) {
            goto nomem;
        }
        while (depth > 0 && left[depth - 1] == 0) {
            if ((st = ns_buf_putc(out, is_map[depth - 1] ? '}' : ']')) != NS_OK) {
                goto nomem;
            }
            depth--;
        }
    } while (depth > 0);
    return NS_OK;
nomem:
    return ns__err_set(err, st, "json: output exceeds %zu bytes", out->max);
}

static int pack_json(msgpack_packer *pk, const json_t *j, int depth) {
    if (depth > NS_MP_DEPTH_CAP) {
        return -1;
    }
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *val;
        if (msgpack_pack_map(pk, json_object_size(j)) != 0) {
            return -1;
        }
        json_object_foreach((json_t *)j, key, val) {
            if (ns_mp_pack_cstr(pk, key) != 0 || pack_json(pk, val, depth + 1) != 0) {
                return -1;
            }
        }
        return 0;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *val;
        if (msgpack_pack_array(pk, json_array_size(j)) != 0) {
            return -1;
        }
        json_array_foreach(j, i, val) {
            if (pack_json(pk, val, depth + 1) != 0) {
                return -1;
            }
        }
        return 0;
    }
    case JSON_STRING:
        return ns_mp_pack_strn(pk, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(j));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(j));
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    default:
        return msgpack_pack_nil(pk);
    }
}

ns_status ns_json_to_mp(const char *json, size_t len, msgpack_packer *pk, ns_err *err) {
    json_error_t jerr;
    json_t *j = json_loadb(json, len, JSON_DECODE_ANY, &jerr);
    if (j == NULL) {
        return ns__err_set(err, NS_ERR_FORMAT, "json: %s at line %d", jerr.text, jerr.line);
    }
    int rc = pack_json(pk, j, 0);
    json_decref(j);
    if (rc != 0) {
        return ns__err_set(err, NS_ERR_NOMEM, "json: msgpack packing failed");
    }
    return NS_OK;
}

int ns_mp_pack_strn(msgpack_packer *pk, const char *s, size_t len) {
    if (msgpack_pack_str(pk, len) != 0) {
        return -1;
    }
    return msgpack_pack_str_body(pk, s, len);
}

int ns_mp_pack_cstr(msgpack_packer *pk, const char *s) {
    return ns_mp_pack_strn(pk, s, strlen(s));
}

int ns_mp_pack_kv_int(msgpack_packer *pk, const char *key, int64_t v) {
    return ns_mp_pack_cstr(pk, key) | msgpack_pack_int64(pk, v);
}

int ns_mp_pack_kv_double(msgpack_packer *pk, const char *key, double v) {
    return ns_mp_pack_cstr(pk, key) | msgpack_pack_double(pk, v);
}

int ns_mp_pack_kv_str(msgpack_packer *pk, const char *key, const char *v) {
    return ns_mp_pack_cstr(pk, key) | (v ? ns_mp_pack_cstr(pk, v) : msgpack_pack_nil(pk));
}

int ns_mp_pack_kv_bool(msgpack_packer *pk, const char *key, bool v) {
    return ns_mp_pack_cstr(pk, key) | (v ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
}

int ns_mp_pack_kv_nil(msgpack_packer *pk, const char *key) {
    return ns_mp_pack_cstr(pk, key) | msgpack_pack_nil(pk);
}
