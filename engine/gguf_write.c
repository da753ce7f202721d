/*
 * gguf_write.c - streaming GGUF v3 writer; see gguf_write.h.
 *
 * Metadata values are serialized into an owned byte buffer as they are set
 * (a key set twice is replaced), so begin() only has to concatenate.
 */
#include "gguf_write.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ns_arena.h"
#include "ns_util.h"

typedef struct ns_gguf_wkv {
    char *key;
    uint8_t *val; /* serialized: type (u32) + payload */
    size_t val_len;
} ns_gguf_wkv;

typedef struct ns_gguf_wtensor {
    char *name;
    ns_type type;
    uint32_t n_dims;
    int64_t ne[NS_GGUF_MAX_DIMS];
    uint64_t nbytes;
    uint64_t offset; /* within the data section */
} ns_gguf_wtensor;

struct ns_gguf_writer {
    ns_gguf_wkv *kvs;
    size_t n_kv, cap_kv;
    ns_gguf_wtensor *tensors;
    size_t n_tensors, cap_tensors;
    uint64_t alignment;
    FILE *f;
    int began;
    size_t cur;           /* tensor being streamed */
    uint64_t cur_written; /* bytes of it written */
    uint64_t data_pos;    /* bytes written into the data section */
};

/* ---- a tiny growable byte buffer ----------------------------------------- */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
    int oom;
} wbuf;

static void wb_put(wbuf *b, const void *src, size_t n) {
    if (b->oom) {
        return;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        uint8_t *p;
        while (cap < b->len + n) {
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void wb_u32(wbuf *b, uint32_t v) {
    wb_put(b, &v, 4);
}
static void wb_u64(wbuf *b, uint64_t v) {
    wb_put(b, &v, 8);
}
static void wb_str(wbuf *b, const char *s, uint64_t len) {
    wb_u64(b, len);
    wb_put(b, s, (size_t)len);
}

/* ---- lifecycle ------------------------------------------------------------- */

ns_status ns_gguf_writer_new(ns_gguf_writer **out) {
    ns_gguf_writer *w = calloc(1, sizeof *w);
    NS_ASSERT(out != NULL);
    *out = NULL;
    if (w == NULL) {
        return NS_ERR_NOMEM;
    }
    w->alignment = NS_GGUF_DEFAULT_ALIGNMENT;
    *out = w;
    return NS_OK;
}

void ns_gguf_writer_free(ns_gguf_writer **pw) {
    ns_gguf_writer *w;
    if (pw == NULL || *pw == NULL) {
        return;
    }
    w = *pw;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kvs[i].key);
        free(w->kvs[i].val);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
    }
    free(w->kvs);
    free(w->tensors);
    if (w->f != NULL) {
        fclose(w->f);
    }
    free(w);
    *pw = NULL;
}

/* Take ownership of a serialized value for `key`. */
static ns_status put_kv(ns_gguf_writer *w, const char *key, wbuf *b) {
    ns_gguf_wkv *kv = NULL;
    if (b->oom || key == NULL || key[0] == '\0' || w->began) {
        free(b->p);
        return b->oom ? NS_ERR_NOMEM : NS_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kvs[i].key, key) == 0) {
            kv = &w->kvs[i];
            free(kv->val);
            break;
        }
    }
    if (kv == NULL) {
        if (w->n_kv == w->cap_kv) {
            size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
            ns_gguf_wkv *n = realloc(w->kvs, cap * sizeof *n);
            if (n == NULL) {
                free(b->p);
                return NS_ERR_NOMEM;
            }
            w->kvs = n;
            w->cap_kv = cap;
        }
        kv = &w->kvs[w->n_kv];
        kv->key = strdup(key);
        if (kv->key == NULL) {
            free(b->p);
            return NS_ERR_NOMEM;
        }
        w->n_kv++;
    }
    kv->val = b->p;
    kv->val_len = b->len;
    if (strcmp(key, "general.alignment") == 0 && b->len == 8) {
        uint32_t type, v;
        memcpy(&type, b->p, 4);
        memcpy(&v, b->p + 4, 4);
        if (type == NS_GGUF_UINT32 && v != 0 && (v & (v - 1)) == 0) {
            w->alignment = v;
        }
    }
    return NS_OK;
}

static ns_status set_scalar(ns_gguf_writer *w, const char *key, ns_gguf_vtype t, const void *v, size_t n) {
    wbuf b = {0};
    wb_u32(&b, (uint32_t)t);
    wb_put(&b, v, n);
    return put_kv(w, key, &b);
}

ns_status ns_gguf_writer_set_u8(ns_gguf_writer *w, const char *k, uint8_t v) {
    return set_scalar(w, k, NS_GGUF_UINT8, &v, 1);
}
ns_status ns_gguf_writer_set_i8(ns_gguf_writer *w, const char *k, int8_t v) {
    return set_scalar(w, k, NS_GGUF_INT8, &v, 1);
}
ns_status ns_gguf_writer_set_u16(ns_gguf_writer *w, const char *k, uint16_t v) {
    return set_scalar(w, k, NS_GGUF_UINT16, &v, 2);
}
ns_status ns_gguf_writer_set_i16(ns_gguf_writer *w, const char *k, int16_t v) {
    return set_scalar(w, k, NS_GGUF_INT16, &v, 2);
}
ns_status ns_gguf_writer_set_u32(ns_gguf_writer *w, const char *k, uint32_t v) {
    return set_scalar(w, k, NS_GGUF_UINT32, &v, 4);
}
ns_status ns_gguf_writer_set_i32(ns_gguf_writer *w, const char *k, int32_t v) {
    return set_scalar(w, k, NS_GGUF_INT32, &v, 4);
}
ns_status ns_gguf_writer_set_u64(ns_gguf_writer *w, const char *k, uint64_t v) {
    return set_scalar(w, k, NS_GGUF_UINT64, &v, 8);
}
ns_status ns_gguf_writer_set_i64(ns_gguf_writer *w, const char *k, int64_t v) {
    return set_scalar(w, k, NS_GGUF_INT64, &v, 8);
}
ns_status ns_gguf_writer_set_f32(ns_gguf_writer *w, const char *k, float v) {
    return set_scalar(w, k, NS_GGUF_FLOAT32, &v, 4);
}
ns_status ns_gguf_writer_set_f64(ns_gguf_writer *w, const char *k, double v) {
    return set_scalar(w, k, NS_GGUF_FLOAT64, &v, 8);
}
ns_status ns_gguf_writer_set_bool(ns_gguf_writer *w, const char *k, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, k, NS_GGUF_BOOL, &b, 1);
}

ns_status ns_gguf_writer_set_str(ns_gguf_writer *w, const char *key, const char *v, size_t len) {
    wbuf b = {0};
    wb_u32(&b, NS_GGUF_STRING);
    wb_str(&b, v, len);
    return put_kv(w, key, &b);
}

static size_t scalar_size(ns_gguf_vtype t) {
    switch (t) {
    case NS_GGUF_UINT8:
    case NS_GGUF_INT8:
    case NS_GGUF_BOOL:
        return 1;
    case NS_GGUF_UINT16:
    case NS_GGUF_INT16:
        return 2;
    case NS_GGUF_UINT32:
    case NS_GGUF_INT32:
    case NS_GGUF_FLOAT32:
        return 4;
    case NS_GGUF_UINT64:
    case NS_GGUF_INT64:
    case NS_GGUF_FLOAT64:
        return 8;
    default:
        return 0;
    }
}

ns_status ns_gguf_writer_set_arr(ns_gguf_writer *w, const char *key, ns_gguf_vtype et, const void *data, uint64_t n) {
    wbuf b = {0};
    size_t es = scalar_size(et);
    size_t bytes;
    if (es == 0 || !ns_mul_size((size_t)n, es, &bytes)) {
        return NS_ERR_INVALID_ARG;
    }
    wb_u32(&b, NS_GGUF_ARRAY);
    wb_u32(&b, (uint32_t)et);
    wb_u64(&b, n);
    wb_put(&b, data, bytes);
    return put_kv(w, key, &b);
}

ns_status ns_gguf_writer_set_arr_str(ns_gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens,
                                     uint64_t n) {
    wbuf b = {0};
    wb_u32(&b, NS_GGUF_ARRAY);
    wb_u32(&b, NS_GGUF_STRING);
    wb_u64(&b, n);
    for (uint64_t i = 0; i < n; i++) {
        wb_str(&b, strs[i], lens != NULL ? lens[i] : strlen(strs[i]));
    }
    return put_kv(w, key, &b);
}

ns_status ns_gguf_writer_copy_kv(ns_gguf_writer *w, const ns_gguf_kv *kv) {
    wbuf b = {0};
    wb_u32(&b, (uint32_t)kv->type);
    switch (kv->type) {
    case NS_GGUF_STRING:
        wb_str(&b, kv->str.ptr, kv->str.len);
        break;
    case NS_GGUF_ARRAY:
        wb_u32(&b, (uint32_t)kv->arr_type);
        wb_u64(&b, kv->arr_n);
        if (kv->arr_type == NS_GGUF_STRING) {
            for (uint64_t i = 0; i < kv->arr_n; i++) {
                ns_gguf_str s = ns_gguf_arr_str(kv, i);
                wb_str(&b, s.ptr, s.len);
            }
        } else {
            wb_put(&b, kv->arr_data, (size_t)(kv->arr_n * scalar_size(kv->arr_type)));
        }
        break;
    default: {
        size_t n = scalar_size(kv->type);
        uint8_t raw[8];
        if (kv->type == NS_GGUF_FLOAT32) {
            float f = (float)kv->val.f64;
            memcpy(raw, &f, 4);
        } else if (kv->type == NS_GGUF_FLOAT64) {
            memcpy(raw, &kv->val.f64, 8);
        } else if (kv->type == NS_GGUF_BOOL) {
            raw[0] = kv->val.b ? 1 : 0;
        } else {
            memcpy(raw, &kv->val.u64, 8); /* little-endian: the low n bytes are the value */
        }
        wb_put(&b, raw, n);
    }
    }
    return put_kv(w, kv->key, &b);
}

ns_status ns_gguf_writer_add_tensor(ns_gguf_writer *w, const char *name, ns_type type, uint32_t n_dims,
                                    const int64_t *ne) {
    const ns_type_traits *tr = ns_type_get((uint32_t)type);
    ns_gguf_wtensor *t;
    uint64_t n = 1;
    if (w->began || tr == NULL || name == NULL || name[0] == '\0' || strlen(name) > 255 || n_dims == 0 ||
        n_dims > NS_GGUF_MAX_DIMS || ne[0] % tr->blck_size != 0) {
        return NS_ERR_INVALID_ARG;
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        if (strcmp(w->tensors[i].name, name) == 0) {
            return NS_ERR_CONFLICT;
        }
    }
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 0 || !ns_mul_u64(n, (uint64_t)ne[d], &n)) {
            return NS_ERR_INVALID_ARG;
        }
    }
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        ns_gguf_wtensor *nt = realloc(w->tensors, cap * sizeof *nt);
        if (nt == NULL) {
            return NS_ERR_NOMEM;
        }
        w->tensors = nt;
        w->cap_tensors = cap;
    }
    t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (t->name == NULL) {
        return NS_ERR_NOMEM;
    }
    t->type = type;
    t->n_dims = n_dims;
    for (uint32_t d = 0; d < NS_GGUF_MAX_DIMS; d++) {
        t->ne[d] = d < n_dims ? ne[d] : 1;
    }
    t->nbytes = n / tr->blck_size * tr->type_size;
    w->n_tensors++;
    return NS_OK;
}

/* ---- streaming ------------------------------------------------------------- */

static ns_status write_all(ns_gguf_writer *w, const void *p, size_t n, ns_err *err) {
    if (n > 0 && fwrite(p, 1, n, w->f) != n) {
        return ns__err_set(err, NS_ERR_IO, "gguf write: %s", strerror(errno));
    }
    return NS_OK;
}

static ns_status write_zeros(ns_gguf_writer *w, uint64_t n, ns_err *err) {
    static const uint8_t zeros[256];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        NS_TRY(write_all(w, zeros, k, err));
        n -= k;
    }
    return NS_OK;
}

ns_status ns_gguf_writer_begin(ns_gguf_writer *w, const char *path, ns_err *err) {
    wbuf b = {0};
    uint64_t off = 0;
    ns_status st;
    if (w->began) {
        return ns__err_set(err, NS_ERR_STATE, "gguf write: begin called twice");
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        w->tensors[i].offset = off;
        off += ns_align_up((size_t)w->tensors[i].nbytes, (size_t)w->alignment);
    }
    wb_u32(&b, NS_GGUF_MAGIC);
    wb_u32(&b, 3);
    wb_u64(&b, w->n_tensors);
    wb_u64(&b, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        wb_str(&b, w->kvs[i].key, strlen(w->kvs[i].key));
        wb_put(&b, w->kvs[i].val, w->kvs[i].val_len);
    }
    for (size_t i = 0; i < w->n_tensors; i++) {
        const ns_gguf_wtensor *t = &w->tensors[i];
        wb_str(&b, t->name, strlen(t->name));
        wb_u32(&b, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) {
            wb_u64(&b, (uint64_t)t->ne[d]);
        }
        wb_u32(&b, (uint32_t)t->type);
        wb_u64(&b, t->offset);
    }
    if (b.oom) {
        free(b.p);
        return ns__err_set(err, NS_ERR_NOMEM, "gguf write: out of memory");
    }
    w->f = fopen(path, "wb");
    if (w->f == NULL) {
        free(b.p);
        return ns__err_set(err, NS_ERR_IO, "gguf write: cannot create %s: %s", path, strerror(errno));
    }
    st = write_all(w, b.p, b.len, err);
    if (st == NS_OK) {
        st = write_zeros(w, (w->alignment - b.len % w->alignment) % w->alignment, err);
    }
    free(b.p);
    w->began = 1;
    w->cur = 0;
    w->cur_written = 0;
    w->data_pos = 0;
    return st;
}

ns_status ns_gguf_writer_write_data(ns_gguf_writer *w, const void *buf, size_t n, ns_err *err) {
    const uint8_t *p = buf;
    if (!w->began || w->f == NULL) {
        return ns__err_set(err, NS_ERR_STATE, "gguf write: write_data before begin");
    }
    while (n > 0) {
        ns_gguf_wtensor *t;
        uint64_t room;
        size_t k;
        while (w->cur < w->n_tensors && w->cur_written == w->tensors[w->cur].nbytes) {
            w->cur++;
            w->cur_written = 0;
        }
        if (w->cur >= w->n_tensors) {
            return ns__err_set(err, NS_ERR_RANGE, "gguf write: more data than the declared tensors hold");
        }
        t = &w->tensors[w->cur];
        if (w->cur_written == 0 && w->data_pos < t->offset) {
            NS_TRY(write_zeros(w, t->offset - w->data_pos, err));
            w->data_pos = t->offset;
        }
        room = t->nbytes - w->cur_written;
        k = n < room ? n : (size_t)room;
        NS_TRY(write_all(w, p, k, err));
        p += k;
        n -= k;
        w->cur_written += k;
        w->data_pos += k;
    }
    return NS_OK;
}

ns_status ns_gguf_writer_finish(ns_gguf_writer *w, ns_err *err) {
    int rc;
    if (!w->began || w->f == NULL) {
        return ns__err_set(err, NS_ERR_STATE, "gguf write: finish before begin");
    }
    while (w->cur < w->n_tensors && w->cur_written == w->tensors[w->cur].nbytes) {
        w->cur++;
        w->cur_written = 0;
    }
    if (w->cur < w->n_tensors) {
        /* Zero-byte tensors at the end need nothing; anything else is missing. */
        for (size_t i = w->cur; i < w->n_tensors; i++) {
            if (w->tensors[i].nbytes != 0 && !(i == w->cur && w->cur_written == w->tensors[i].nbytes)) {
                return ns__err_set(err, NS_ERR_STATE, "gguf write: tensor '%s' is incomplete (%llu of %llu bytes)",
                                   w->tensors[i].name, (unsigned long long)(i == w->cur ? w->cur_written : 0),
                                   (unsigned long long)w->tensors[i].nbytes);
            }
        }
    }
    rc = fclose(w->f);
    w->f = NULL;
    if (rc != 0) {
        return ns__err_set(err, NS_ERR_IO, "gguf write: close failed: %s", strerror(errno));
    }
    return NS_OK;
}
