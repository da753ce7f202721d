/*
 * gguf.c - bounds-checked GGUF reader; see gguf.h for the contract.
 *
 * Parsing is a single forward pass over each file with a cursor that checks
 * every read against the bytes left. Counts read from the file are checked
 * against the smallest encoding of what they count before anything is sized
 * from them, so a corrupt header cannot make us allocate more than a small
 * multiple of the file size. All size products go through ns_mul_u64.
 */
#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ns_util.h"

#define NS_GGUF_MAX_KEY_LEN 65535u
#define NS_GGUF_MAX_NAME_LEN 255u
#define NS_GGUF_MAX_SPLITS 1024u

typedef struct ns_gguf_file {
    const uint8_t *base; /* mapping (or caller memory) */
    uint64_t size;
    int mapped;           /* 1 when base must be munmap'd */
    uint64_t data_offset; /* start of the tensor data section */
} ns_gguf_file;

struct ns_gguf {
    uint32_t version;
    uint64_t alignment;
    ns_gguf_file *files; /* [n_files] */
    uint32_t n_files;
    ns_gguf_kv *kvs; /* [n_kv] */
    uint64_t n_kv;
    ns_gguf_tensor *tensors; /* [n_tensors] */
    uint64_t n_tensors;
    uint64_t cap_tensors;
    uint32_t *kv_index; /* open-addressing hash of kvs (index+1, 0 = empty) */
    uint32_t kv_index_cap;
    uint32_t *tensor_index; /* same for tensors */
    uint32_t tensor_index_cap;
    char **strings; /* owned NUL-terminated copies (keys, names) */
    uint64_t n_strings, cap_strings;
    uint64_t **offs_arrays; /* owned str_offs arrays */
    uint64_t n_offs, cap_offs;
};

/* Cursor over one file image. */
typedef struct ns_gguf_cursor {
    const uint8_t *base;
    uint64_t size;
    uint64_t off;
    const char *label; /* file name for messages */
    ns_err *err;
} ns_gguf_cursor;

static const size_t g_vtype_size[NS_GGUF_VTYPE_COUNT] = {
    [NS_GGUF_UINT8] = 1,  [NS_GGUF_INT8] = 1,    [NS_GGUF_UINT16] = 2,  [NS_GGUF_INT16] = 2,  [NS_GGUF_UINT32] = 4,
    [NS_GGUF_INT32] = 4,  [NS_GGUF_FLOAT32] = 4, [NS_GGUF_BOOL] = 1,    [NS_GGUF_STRING] = 8, /* minimum: the length
                                                                                                 prefix */
    [NS_GGUF_ARRAY] = 12, /* minimum: type + count */
    [NS_GGUF_UINT64] = 8, [NS_GGUF_INT64] = 8,   [NS_GGUF_FLOAT64] = 8,
};

const char *ns_gguf_vtype_name(uint32_t t) {
    static const char *const names[NS_GGUF_VTYPE_COUNT] = {"uint8",  "int8",    "uint16", "int16",  "uint32",
                                                           "int32",  "float32", "bool",   "string", "array",
                                                           "uint64", "int64",   "float64"};
    return t < NS_GGUF_VTYPE_COUNT ? names[t] : "invalid";
}

/* ---- cursor primitives --------------------------------------------------- */

static ns_status cur_fail(ns_gguf_cursor *c, uint64_t at, const char *what) {
    return ns__err_set(c->err, NS_ERR_FORMAT, "gguf: %s: %s at byte %llu", c->label, what, (unsigned long long)at);
}

static ns_status cur_need(ns_gguf_cursor *c, uint64_t n, const char *what) {
    if (n > c->size - c->off) {
        char msg[160];
        snprintf(msg, sizeof msg, "truncated file: %s needs %llu bytes, %llu left", what, (unsigned long long)n,
                 (unsigned long long)(c->size - c->off));
        return cur_fail(c, c->off, msg);
    }
    return NS_OK;
}

static ns_status cur_read(ns_gguf_cursor *c, void *dst, uint64_t n, const char *what) {
    NS_TRY(cur_need(c, n, what));
    memcpy(dst, c->base + c->off, (size_t)n);
    c->off += n;
    return NS_OK;
}

static ns_status cur_u32(ns_gguf_cursor *c, uint32_t *v, const char *what) {
    return cur_read(c, v, 4, what);
}
static ns_status cur_u64(ns_gguf_cursor *c, uint64_t *v, const char *what) {
    return cur_read(c, v, 8, what);
}

/* A length-prefixed string; returns a view and checks the length. */
static ns_status cur_str(ns_gguf_cursor *c, ns_gguf_str *s, uint64_t max_len, const char *what) {
    uint64_t start = c->off;
    uint64_t len;
    NS_TRY(cur_u64(c, &len, what));
    if (len > max_len) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s length %llu exceeds the limit of %llu", what, (unsigned long long)len,
                 (unsigned long long)max_len);
        return cur_fail(c, start, msg);
    }
    NS_TRY(cur_need(c, len, what));
    s->ptr = (const char *)(c->base + c->off);
    s->len = len;
    c->off += len;
    return NS_OK;
}

/* ---- ownership helpers ---------------------------------------------------- */

static char *own_string(ns_gguf *g, const char *p, uint64_t len) {
    char *s;
    if (g->n_strings == g->cap_strings) {
        uint64_t cap = g->cap_strings ? g->cap_strings * 2 : 64;
        char **n = realloc(g->strings, (size_t)cap * sizeof *n);
        if (n == NULL) {
            return NULL;
        }
        g->strings = n;
        g->cap_strings = cap;
    }
    s = malloc((size_t)len + 1);
    if (s == NULL) {
        return NULL;
    }
    memcpy(s, p, (size_t)len);
    s[len] = '\0';
    g->strings[g->n_strings++] = s;
    return s;
}

static uint64_t *own_offsets(ns_gguf *g, uint64_t n) {
    uint64_t *o;
    size_t bytes;
    if (!ns_mul_size((size_t)n, sizeof *o, &bytes)) {
        return NULL;
    }
    if (g->n_offs == g->cap_offs) {
        uint64_t cap = g->cap_offs ? g->cap_offs * 2 : 8;
        uint64_t **a = realloc(g->offs_arrays, (size_t)cap * sizeof *a);
        if (a == NULL) {
            return NULL;
        }
        g->offs_arrays = a;
        g->cap_offs = cap;
    }
    o = malloc(bytes ? bytes : 1);
    if (o == NULL) {
        return NULL;
    }
    g->offs_arrays[g->n_offs++] = o;
    return o;
}

/* ---- hash index ------------------------------------------------------------ */

static uint32_t hash_str(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    return h;
}

/* Build an index over n names; returns 0 and sets *dup to the first
 * duplicate's position when a name repeats. */
typedef const char *(*name_at_fn)(const ns_gguf *g, uint64_t i);

static const char *kv_name_at(const ns_gguf *g, uint64_t i) {
    return g->kvs[i].key;
}
static const char *tensor_name_at(const ns_gguf *g, uint64_t i) {
    return g->tensors[i].name;
}

static ns_status build_index(ns_gguf *g, uint64_t n, name_at_fn name_at, uint32_t **out, uint32_t *out_cap,
                             uint64_t *dup) {
    uint32_t cap = 16;
    uint32_t *idx;
    *dup = UINT64_MAX;
    while ((uint64_t)cap < n * 2) {
        cap *= 2;
    }
    idx = calloc(cap, sizeof *idx);
    if (idx == NULL) {
        return NS_ERR_NOMEM;
    }
    for (uint64_t i = 0; i < n; i++) {
        const char *name = name_at(g, i);
        uint32_t h = hash_str(name) & (cap - 1);
        while (idx[h] != 0) {
            if (strcmp(name_at(g, idx[h] - 1), name) == 0) {
                *dup = i;
                free(idx);
                return NS_ERR_FORMAT;
            }
            h = (h + 1) & (cap - 1);
        }
        idx[h] = (uint32_t)(i + 1);
    }
    free(*out);
    *out = idx;
    *out_cap = cap;
    return NS_OK;
}

static int64_t index_find(const ns_gguf *g, const uint32_t *idx, uint32_t cap, name_at_fn name_at, const char *name) {
    uint32_t h;
    if (idx == NULL || name == NULL) {
        return -1;
    }
    h = hash_str(name) & (cap - 1);
    while (idx[h] != 0) {
        if (strcmp(name_at(g, idx[h] - 1), name) == 0) {
            return (int64_t)idx[h] - 1;
        }
        h = (h + 1) & (cap - 1);
    }
    return -1;
}

/* ---- metadata -------------------------------------------------------------- */

static ns_status parse_scalar(ns_gguf_cursor *c, ns_gguf_vtype t, ns_gguf_kv *kv) {
    uint8_t b[8];
    uint64_t at = c->off;
    NS_TRY(cur_read(c, b, g_vtype_size[t], ns_gguf_vtype_name(t)));
    switch (t) {
    case NS_GGUF_UINT8:
        kv->val.u64 = b[0];
        break;
    case NS_GGUF_INT8:
        kv->val.i64 = (int8_t)b[0];
        break;
    case NS_GGUF_UINT16: {
        uint16_t v;
        memcpy(&v, b, 2);
        kv->val.u64 = v;
        break;
    }
    case NS_GGUF_INT16: {
        int16_t v;
        memcpy(&v, b, 2);
        kv->val.i64 = v;
        break;
    }
    case NS_GGUF_UINT32: {
        uint32_t v;
        memcpy(&v, b, 4);
        kv->val.u64 = v;
        break;
    }
    case NS_GGUF_INT32: {
        int32_t v;
        memcpy(&v, b, 4);
        kv->val.i64 = v;
        break;
    }
    case NS_GGUF_FLOAT32: {
        float v;
        memcpy(&v, b, 4);
        kv->val.f64 = v;
        break;
    }
    case NS_GGUF_BOOL:
        if (b[0] > 1) {
            return cur_fail(c, at, "bool value is neither 0 nor 1");
        }
        kv->val.b = b[0] != 0;
        break;
    case NS_GGUF_UINT64:
        memcpy(&kv->val.u64, b, 8);
        break;
    case NS_GGUF_INT64:
        memcpy(&kv->val.i64, b, 8);
        break;
    case NS_GGUF_FLOAT64:
        memcpy(&kv->val.f64, b, 8);
        break;
    default:
        return cur_fail(c, at, "internal: not a scalar type");
    }
    return NS_OK;
}

static ns_status parse_array(ns_gguf *g, ns_gguf_cursor *c, ns_gguf_kv *kv) {
    uint32_t et;
    uint64_t n;
    uint64_t at = c->off;
    NS_TRY(cur_u32(c, &et, "array element type"));
    if (et >= NS_GGUF_VTYPE_COUNT) {
        char msg[96];
        snprintf(msg, sizeof msg, "invalid array element type %u", et);
        return cur_fail(c, at, msg);
    }
    if (et == NS_GGUF_ARRAY) {
        return cur_fail(c, at, "nested arrays are not supported");
    }
    NS_TRY(cur_u64(c, &n, "array length"));
    kv->arr_type = (ns_gguf_vtype)et;
    kv->arr_n = n;
    kv->arr_data = c->base + c->off;
    /* Every element takes at least g_vtype_size[et] bytes: reject counts the
     * file cannot hold before sizing anything from them. */
    if (n > (c->size - c->off) / g_vtype_size[et]) {
        char msg[160];
        snprintf(msg, sizeof msg, "array of %llu %s elements does not fit in the %llu bytes left",
                 (unsigned long long)n, ns_gguf_vtype_name(et), (unsigned long long)(c->size - c->off));
        return cur_fail(c, at + 4, msg);
    }
    if (et == NS_GGUF_STRING) {
        uint64_t *offs = own_offsets(g, n);
        uint64_t base = c->off;
        if (offs == NULL) {
            return ns__err_set(c->err, NS_ERR_NOMEM, "gguf: out of memory for a %llu-string array",
                               (unsigned long long)n);
        }
        for (uint64_t i = 0; i < n; i++) {
            ns_gguf_str s;
            offs[i] = c->off - base;
            NS_TRY(cur_str(c, &s, UINT64_MAX, "array string"));
        }
        kv->str_offs = offs;
    } else {
        c->off += n * g_vtype_size[et];
    }
    return NS_OK;
}

static ns_status parse_kvs(ns_gguf *g, ns_gguf_cursor *c, uint64_t n_kv) {
    /* Smallest KV: empty key (8) + type (4) + one-byte value. */
    if (n_kv > (c->size - c->off) / 13) {
        char msg[128];
        snprintf(msg, sizeof msg, "metadata count %llu cannot fit in the file", (unsigned long long)n_kv);
        return cur_fail(c, 16, msg);
    }
    g->kvs = calloc((size_t)(n_kv ? n_kv : 1), sizeof *g->kvs);
    if (g->kvs == NULL) {
        return ns__err_set(c->err, NS_ERR_NOMEM, "gguf: out of memory for %llu metadata entries",
                           (unsigned long long)n_kv);
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        ns_gguf_kv *kv = &g->kvs[i];
        ns_gguf_str key;
        uint32_t t;
        uint64_t at = c->off;
        NS_TRY(cur_str(c, &key, NS_GGUF_MAX_KEY_LEN, "metadata key"));
        if (key.len == 0) {
            return cur_fail(c, at, "empty metadata key");
        }
        if (memchr(key.ptr, '\0', (size_t)key.len) != NULL) {
            return cur_fail(c, at, "metadata key contains a NUL byte");
        }
        kv->key = own_string(g, key.ptr, key.len);
        if (kv->key == NULL) {
            return ns__err_set(c->err, NS_ERR_NOMEM, "gguf: out of memory");
        }
        kv->file_offset = at;
        g->n_kv = i + 1;
        at = c->off;
        NS_TRY(cur_u32(c, &t, "metadata value type"));
        if (t >= NS_GGUF_VTYPE_COUNT) {
            char msg[160];
            snprintf(msg, sizeof msg, "invalid value type %u for key '%.64s'", t, kv->key);
            return cur_fail(c, at, msg);
        }
        kv->type = (ns_gguf_vtype)t;
        if (t == NS_GGUF_STRING) {
            NS_TRY(cur_str(c, &kv->str, UINT64_MAX, "metadata string"));
        } else if (t == NS_GGUF_ARRAY) {
            NS_TRY(parse_array(g, c, kv));
        } else {
            NS_TRY(parse_scalar(c, kv->type, kv));
        }
    }
    return NS_OK;
}

/* ---- tensors --------------------------------------------------------------- */

static ns_status grow_tensors(ns_gguf *g, uint64_t extra, ns_err *err) {
    uint64_t need;
    if (!ns_add_u64(g->n_tensors, extra, &need)) {
        return ns__err_set(err, NS_ERR_FORMAT, "gguf: tensor count overflows");
    }
    if (need > g->cap_tensors) {
        size_t bytes;
        ns_gguf_tensor *t;
        if (!ns_mul_size((size_t)need, sizeof *t, &bytes)) {
            return ns__err_set(err, NS_ERR_NOMEM, "gguf: tensor table too large");
        }
        t = realloc(g->tensors, bytes);
        if (t == NULL) {
            return ns__err_set(err, NS_ERR_NOMEM, "gguf: out of memory for %llu tensors", (unsigned long long)need);
        }
        g->tensors = t;
        g->cap_tensors = need;
    }
    return NS_OK;
}

static ns_status parse_tensor_infos(ns_gguf *g, ns_gguf_cursor *c, uint64_t n, uint32_t file_index, uint64_t first) {
    /* Smallest tensor info: name (8) + n_dims (4) + one dim (8) + type (4) + offset (8). */
    if (n > (c->size - c->off) / 32) {
        char msg[128];
        snprintf(msg, sizeof msg, "tensor count %llu cannot fit in the file", (unsigned long long)n);
        return cur_fail(c, 8, msg);
    }
    NS_TRY(grow_tensors(g, n, c->err));
    for (uint64_t i = 0; i < n; i++) {
        ns_gguf_tensor *t = &g->tensors[first + i];
        ns_gguf_str name;
        uint32_t n_dims, type;
        uint64_t at = c->off;
        const ns_type_traits *tr;
        char msg[256];
        memset(t, 0, sizeof *t);
        NS_TRY(cur_str(c, &name, NS_GGUF_MAX_NAME_LEN, "tensor name"));
        if (name.len == 0) {
            return cur_fail(c, at, "empty tensor name");
        }
        if (memchr(name.ptr, '\0', (size_t)name.len) != NULL) {
            return cur_fail(c, at, "tensor name contains a NUL byte");
        }
        t->name = own_string(g, name.ptr, name.len);
        if (t->name == NULL) {
            return ns__err_set(c->err, NS_ERR_NOMEM, "gguf: out of memory");
        }
        g->n_tensors = first + i + 1;
        at = c->off;
        NS_TRY(cur_u32(c, &n_dims, "tensor dimension count"));
        if (n_dims == 0 || n_dims > NS_GGUF_MAX_DIMS) {
            snprintf(msg, sizeof msg, "tensor '%s' has %u dimensions (1..%d allowed)", t->name, n_dims,
                     NS_GGUF_MAX_DIMS);
            return cur_fail(c, at, msg);
        }
        t->n_dims = n_dims;
        t->n_elements = 1;
        for (uint32_t d = 0; d < NS_GGUF_MAX_DIMS; d++) {
            t->ne[d] = 1;
        }
        for (uint32_t d = 0; d < n_dims; d++) {
            uint64_t ne;
            at = c->off;
            NS_TRY(cur_u64(c, &ne, "tensor dimension"));
            if (ne > (uint64_t)INT64_MAX || !ns_mul_u64(t->n_elements, ne, &t->n_elements) ||
                t->n_elements > (uint64_t)INT64_MAX) {
                snprintf(msg, sizeof msg, "tensor '%s' dimension %u (%llu) overflows the element count", t->name, d,
                         (unsigned long long)ne);
                return cur_fail(c, at, msg);
            }
            t->ne[d] = (int64_t)ne;
        }
        at = c->off;
        NS_TRY(cur_u32(c, &type, "tensor type"));
        tr = ns_type_get(type);
        if (tr == NULL) {
            snprintf(msg, sizeof msg, "tensor '%s' has unknown type id %u", t->name, type);
            return cur_fail(c, at, msg);
        }
        t->type = (ns_type)type;
        if (t->ne[0] % tr->blck_size != 0) {
            snprintf(msg, sizeof msg, "tensor '%s' row length %lld is not a multiple of the %s block size %u", t->name,
                     (long long)t->ne[0], tr->name, tr->blck_size);
            return cur_fail(c, at, msg);
        }
        if (!ns_mul_u64(t->n_elements / tr->blck_size, tr->type_size, &t->nbytes)) {
            snprintf(msg, sizeof msg, "tensor '%s' byte size overflows", t->name);
            return cur_fail(c, at, msg);
        }
        at = c->off;
        NS_TRY(cur_u64(c, &t->offset, "tensor data offset"));
        if (t->offset % g->alignment != 0) {
            snprintf(msg, sizeof msg, "tensor '%s' data offset %llu is not aligned to %llu", t->name,
                     (unsigned long long)t->offset, (unsigned long long)g->alignment);
            return cur_fail(c, at, msg);
        }
        t->file_index = file_index;
    }
    return NS_OK;
}

/* After the infos: place the data section and check every tensor lies in it. */
static ns_status place_tensor_data(ns_gguf *g, ns_gguf_cursor *c, ns_gguf_file *f, uint32_t file_index, uint64_t first,
                                   uint64_t n) {
    uint64_t data = c->off;
    uint64_t pad = (g->alignment - data % g->alignment) % g->alignment;
    if (!ns_add_u64(data, pad, &data)) {
        return cur_fail(c, c->off, "data section offset overflows");
    }
    if (n > 0 && data > c->size) {
        return cur_fail(c, c->off, "file ends before the tensor data section");
    }
    f->data_offset = data;
    for (uint64_t i = first; i < first + n; i++) {
        ns_gguf_tensor *t = &g->tensors[i];
        uint64_t start, end;
        if (!ns_add_u64(data, t->offset, &start) || !ns_add_u64(start, t->nbytes, &end) || end > c->size) {
            char msg[256];
            snprintf(msg, sizeof msg, "tensor '%s' data [%llu, +%llu) lies past the end of the file (%llu bytes)",
                     t->name, (unsigned long long)t->offset, (unsigned long long)t->nbytes,
                     (unsigned long long)c->size);
            return cur_fail(c, data, msg);
        }
        t->file_offset = start;
        t->data = f->base + start;
        (void)file_index;
    }
    return NS_OK;
}

/* Parse one file image: header, metadata (first file only keeps it), tensor
 * infos. `is_first` decides whether metadata is kept. */
static ns_status parse_file(ns_gguf *g, uint32_t file_index, const char *label, ns_err *err) {
    ns_gguf_file *f = &g->files[file_index];
    ns_gguf_cursor c = {f->base, f->size, 0, label, err};
    uint32_t magic, version;
    uint64_t n_tensors, n_kv;
    uint64_t first = g->n_tensors;

    NS_TRY(cur_u32(&c, &magic, "magic"));
    if (magic != NS_GGUF_MAGIC) {
        return cur_fail(&c, 0, "not a GGUF file (bad magic)");
    }
    NS_TRY(cur_u32(&c, &version, "version"));
    if (version == 1) {
        return cur_fail(&c, 4, "GGUF version 1 is not supported (re-convert the model)");
    }
    if (version != 2 && version != 3) {
        char msg[96];
        snprintf(msg, sizeof msg, "unsupported GGUF version %u", version);
        return cur_fail(&c, 4, msg);
    }
    NS_TRY(cur_u64(&c, &n_tensors, "tensor count"));
    NS_TRY(cur_u64(&c, &n_kv, "metadata count"));

    if (file_index == 0) {
        const ns_gguf_kv *al;
        g->version = version;
        NS_TRY(parse_kvs(g, &c, n_kv));
        {
            uint64_t dup;
            ns_status st = build_index(g, g->n_kv, kv_name_at, &g->kv_index, &g->kv_index_cap, &dup);
            if (st == NS_ERR_FORMAT) {
                char msg[160];
                snprintf(msg, sizeof msg, "duplicate metadata key '%.64s'", g->kvs[dup].key);
                return cur_fail(&c, g->kvs[dup].file_offset, msg);
            }
            if (st != NS_OK) {
                return ns__err_set(err, st, "gguf: out of memory");
            }
        }
        g->alignment = NS_GGUF_DEFAULT_ALIGNMENT;
        al = ns_gguf_find_kv(g, "general.alignment");
        if (al != NULL) {
            if (al->type != NS_GGUF_UINT32 || al->val.u64 == 0 || (al->val.u64 & (al->val.u64 - 1)) != 0) {
                return cur_fail(&c, al->file_offset, "general.alignment must be a uint32 power of two");
            }
            g->alignment = al->val.u64;
        }
    } else {
        /* Later split parts: metadata is validated and skipped. */
        ns_gguf tmp;
        ns_status st;
        memset(&tmp, 0, sizeof tmp);
        st = parse_kvs(&tmp, &c, n_kv);
        for (uint64_t i = 0; i < tmp.n_strings; i++) {
            free(tmp.strings[i]);
        }
        for (uint64_t i = 0; i < tmp.n_offs; i++) {
            free(tmp.offs_arrays[i]);
        }
        free(tmp.strings);
        free(tmp.offs_arrays);
        free(tmp.kvs);
        NS_TRY(st);
    }
    NS_TRY(parse_tensor_infos(g, &c, n_tensors, file_index, first));
    return place_tensor_data(g, &c, f, file_index, first, n_tensors);
}

/* ---- open / close ---------------------------------------------------------- */

static ns_status map_file(const char *path, ns_gguf_file *f, ns_err *err) {
    struct stat st;
    void *p;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return ns__err_set(err, NS_ERR_IO, "gguf: cannot open %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return ns__err_set(err, NS_ERR_IO, "gguf: cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return ns__err_set(err, NS_ERR_IO, "gguf: %s is not a regular file", path);
    }
    if (st.st_size < 24) {
        close(fd);
        return ns__err_set(err, NS_ERR_FORMAT, "gguf: %s: file is %lld bytes, too small for a GGUF header", path,
                           (long long)st.st_size);
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        return ns__err_set(err, NS_ERR_IO, "gguf: cannot map %s: %s", path, strerror(errno));
    }
    f->base = p;
    f->size = (uint64_t)st.st_size;
    f->mapped = 1;
    return NS_OK;
}

void ns_gguf_close(ns_gguf **pg) {
    ns_gguf *g;
    if (pg == NULL || *pg == NULL) {
        return;
    }
    g = *pg;
    for (uint32_t i = 0; i < g->n_files; i++) {
        if (g->files[i].mapped) {
            munmap((void *)g->files[i].base, (size_t)g->files[i].size);
        }
    }
    for (uint64_t i = 0; i < g->n_strings; i++) {
        free(g->strings[i]);
    }
    for (uint64_t i = 0; i < g->n_offs; i++) {
        free(g->offs_arrays[i]);
    }
    free(g->strings);
    free(g->offs_arrays);
    free(g->files);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_index);
    free(g->tensor_index);
    free(g);
    *pg = NULL;
}

static ns_status finish_tensor_index(ns_gguf *g, ns_err *err) {
    uint64_t dup;
    ns_status st = build_index(g, g->n_tensors, tensor_name_at, &g->tensor_index, &g->tensor_index_cap, &dup);
    if (st == NS_ERR_FORMAT) {
        return ns__err_set(err, NS_ERR_FORMAT, "gguf: duplicate tensor name '%s' (file part %u)", g->tensors[dup].name,
                           g->tensors[dup].file_index + 1);
    }
    if (st != NS_OK) {
        return ns__err_set(err, st, "gguf: out of memory");
    }
    return NS_OK;
}

ns_status ns_gguf_open_memory(const void *buf, size_t len, ns_gguf **out, ns_err *err) {
    ns_gguf *g;
    ns_status st;
    NS_ASSERT(out != NULL);
    *out = NULL;
    if (buf == NULL || len < 24) {
        return ns__err_set(err, NS_ERR_FORMAT, "gguf: <memory>: %zu bytes is too small for a GGUF header", len);
    }
    g = calloc(1, sizeof *g);
    if (g == NULL || (g->files = calloc(1, sizeof *g->files)) == NULL) {
        free(g);
        return ns__err_set(err, NS_ERR_NOMEM, "gguf: out of memory");
    }
    g->n_files = 1;
    g->files[0].base = buf;
    g->files[0].size = len;
    st = parse_file(g, 0, "<memory>", err);
    if (st == NS_OK) {
        st = finish_tensor_index(g, err);
    }
    if (st != NS_OK) {
        ns_gguf_close(&g);
        return st;
    }
    *out = g;
    return NS_OK;
}

/* "dir/name-00001-of-00003.gguf" -> prefix "dir/name", count 3. */
static bool split_name(const char *path, char *prefix, size_t cap, uint32_t *no, uint32_t *count) {
    size_t len = strlen(path);
    const char *tail;
    unsigned a, b;
    char suffix[8];
    if (len < 21) {
        return false;
    }
    tail = path + len - 21; /* "-00001-of-00003.gguf" is 20 chars, plus one for safety check below */
    tail++;
    if (sscanf(tail, "-%5u-of-%5u%5s", &a, &b, suffix) != 3 || strcmp(suffix, ".gguf") != 0) {
        return false;
    }
    if ((size_t)(tail - path) >= cap) {
        return false;
    }
    memcpy(prefix, path, (size_t)(tail - path));
    prefix[tail - path] = '\0';
    *no = a;
    *count = b;
    return true;
}

ns_status ns_gguf_open(const char *path, ns_gguf **out, ns_err *err) {
    ns_gguf *g = NULL;
    ns_status st;
    const ns_gguf_kv *kv;
    uint32_t n_split = 1;
    NS_ASSERT(out != NULL);
    *out = NULL;
    if (path == NULL) {
        return ns__err_set(err, NS_ERR_INVALID_ARG, "gguf: no path given");
    }
    g = calloc(1, sizeof *g);
    if (g == NULL || (g->files = calloc(1, sizeof *g->files)) == NULL) {
        free(g);
        return ns__err_set(err, NS_ERR_NOMEM, "gguf: out of memory");
    }
    st = map_file(path, &g->files[0], err);
    if (st != NS_OK) {
        goto fail;
    }
    g->n_files = 1;
    st = parse_file(g, 0, path, err);
    if (st != NS_OK) {
        goto fail;
    }
    kv = ns_gguf_find_kv(g, "split.count");
    if (kv != NULL) {
        int64_t v = kv->type == NS_GGUF_INT8 || kv->type == NS_GGUF_INT16 || kv->type == NS_GGUF_INT32 ||
                            kv->type == NS_GGUF_INT64
                        ? kv->val.i64
                        : (int64_t)kv->val.u64;
        if (kv->type == NS_GGUF_STRING || kv->type == NS_GGUF_ARRAY || kv->type == NS_GGUF_FLOAT32 ||
            kv->type == NS_GGUF_FLOAT64 || kv->type == NS_GGUF_BOOL || v < 1 || v > (int64_t)NS_GGUF_MAX_SPLITS) {
            st = ns__err_set(err, NS_ERR_FORMAT, "gguf: %s: invalid split.count", path);
            goto fail;
        }
        n_split = (uint32_t)v;
    }
    if (n_split > 1) {
        char prefix[4096];
        uint32_t no, count;
        ns_gguf_file *files;
        if (!split_name(path, prefix, sizeof prefix, &no, &count) || no != 1 || count != n_split) {
            st = ns__err_set(err, NS_ERR_INVALID_ARG,
                             "gguf: %s is part of a %u-file split model; open the first part "
                             "(NAME-00001-of-%05u.gguf)",
                             path, n_split, n_split);
            goto fail;
        }
        files = realloc(g->files, n_split * sizeof *files);
        if (files == NULL) {
            st = ns__err_set(err, NS_ERR_NOMEM, "gguf: out of memory");
            goto fail;
        }
        g->files = files;
        for (uint32_t i = 1; i < n_split; i++) {
            char part[4200];
            snprintf(part, sizeof part, "%s-%05u-of-%05u.gguf", prefix, i + 1, n_split);
            memset(&g->files[i], 0, sizeof g->files[i]);
            st = map_file(part, &g->files[i], err);
            if (st != NS_OK) {
                goto fail;
            }
            g->n_files = i + 1;
            st = parse_file(g, i, part, err);
            if (st != NS_OK) {
                goto fail;
            }
        }
    }
    st = finish_tensor_index(g, err);
    if (st != NS_OK) {
        goto fail;
    }
    *out = g;
    return NS_OK;
fail:
    ns_gguf_close(&g);
    return st;
}

/* ---- accessors ------------------------------------------------------------- */

uint32_t ns_gguf_version(const ns_gguf *g) {
    return g->version;
}
uint64_t ns_gguf_alignment(const ns_gguf *g) {
    return g->alignment;
}
uint32_t ns_gguf_n_files(const ns_gguf *g) {
    return g->n_files;
}
uint64_t ns_gguf_file_size(const ns_gguf *g, uint32_t i) {
    return i < g->n_files ? g->files[i].size : 0;
}
uint64_t ns_gguf_data_offset(const ns_gguf *g, uint32_t i) {
    return i < g->n_files ? g->files[i].data_offset : 0;
}
const uint8_t *ns_gguf_file_base(const ns_gguf *g, uint32_t i) {
    return i < g->n_files ? g->files[i].base : NULL;
}
uint64_t ns_gguf_n_kv(const ns_gguf *g) {
    return g->n_kv;
}
uint64_t ns_gguf_n_tensors(const ns_gguf *g) {
    return g->n_tensors;
}

const ns_gguf_kv *ns_gguf_kv_at(const ns_gguf *g, uint64_t i) {
    return i < g->n_kv ? &g->kvs[i] : NULL;
}

const ns_gguf_kv *ns_gguf_find_kv(const ns_gguf *g, const char *key) {
    int64_t i = index_find(g, g->kv_index, g->kv_index_cap, kv_name_at, key);
    return i >= 0 ? &g->kvs[i] : NULL;
}

const ns_gguf_tensor *ns_gguf_tensor_at(const ns_gguf *g, uint64_t i) {
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const ns_gguf_tensor *ns_gguf_find_tensor(const ns_gguf *g, const char *name) {
    int64_t i = index_find(g, g->tensor_index, g->tensor_index_cap, tensor_name_at, name);
    return i >= 0 ? &g->tensors[i] : NULL;
}

ns_gguf_str ns_gguf_arr_str(const ns_gguf_kv *kv, uint64_t i) {
    ns_gguf_str s = {NULL, 0};
    uint64_t len;
    const uint8_t *p;
    if (kv == NULL || kv->type != NS_GGUF_ARRAY || kv->arr_type != NS_GGUF_STRING || i >= kv->arr_n) {
        return s;
    }
    p = kv->arr_data + kv->str_offs[i];
    memcpy(&len, p, 8);
    s.ptr = (const char *)(p + 8);
    s.len = len;
    return s;
}

static bool arr_elem(const ns_gguf_kv *kv, uint64_t i, ns_gguf_kv *tmp) {
    ns_gguf_cursor c;
    if (kv == NULL || kv->type != NS_GGUF_ARRAY || kv->arr_type == NS_GGUF_STRING || i >= kv->arr_n) {
        return false;
    }
    c.base = kv->arr_data + i * g_vtype_size[kv->arr_type];
    c.size = g_vtype_size[kv->arr_type];
    c.off = 0;
    c.label = "array";
    c.err = NULL;
    memset(tmp, 0, sizeof *tmp);
    tmp->type = kv->arr_type;
    return parse_scalar(&c, kv->arr_type, tmp) == NS_OK;
}

static bool scalar_i64(const ns_gguf_kv *kv, int64_t *out) {
    switch (kv->type) {
    case NS_GGUF_UINT8:
    case NS_GGUF_UINT16:
    case NS_GGUF_UINT32:
    case NS_GGUF_UINT64:
        if (kv->val.u64 > (uint64_t)INT64_MAX) {
            return false;
        }
        *out = (int64_t)kv->val.u64;
        return true;
    case NS_GGUF_INT8:
    case NS_GGUF_INT16:
    case NS_GGUF_INT32:
    case NS_GGUF_INT64:
        *out = kv->val.i64;
        return true;
    case NS_GGUF_BOOL:
        *out = kv->val.b;
        return true;
    default:
        return false;
    }
}

static bool scalar_f64(const ns_gguf_kv *kv, double *out) {
    int64_t i;
    if (kv->type == NS_GGUF_FLOAT32 || kv->type == NS_GGUF_FLOAT64) {
        *out = kv->val.f64;
        return true;
    }
    if (kv->type == NS_GGUF_UINT64) {
        *out = (double)kv->val.u64;
        return true;
    }
    if (scalar_i64(kv, &i)) {
        *out = (double)i;
        return true;
    }
    return false;
}

bool ns_gguf_arr_i64(const ns_gguf_kv *kv, uint64_t i, int64_t *out) {
    ns_gguf_kv tmp;
    return arr_elem(kv, i, &tmp) && scalar_i64(&tmp, out);
}

bool ns_gguf_arr_f64(const ns_gguf_kv *kv, uint64_t i, double *out) {
    ns_gguf_kv tmp;
    return arr_elem(kv, i, &tmp) && scalar_f64(&tmp, out);
}

ns_status ns_gguf_get_i64(const ns_gguf *g, const char *key, int64_t *out) {
    const ns_gguf_kv *kv = ns_gguf_find_kv(g, key);
    if (kv == NULL) {
        return NS_ERR_NOT_FOUND;
    }
    return scalar_i64(kv, out) ? NS_OK : NS_ERR_FORMAT;
}

ns_status ns_gguf_get_u32(const ns_gguf *g, const char *key, uint32_t *out) {
    int64_t v;
    NS_TRY(ns_gguf_get_i64(g, key, &v));
    if (v < 0 || v > (int64_t)UINT32_MAX) {
        return NS_ERR_FORMAT;
    }
    *out = (uint32_t)v;
    return NS_OK;
}

ns_status ns_gguf_get_f32(const ns_gguf *g, const char *key, float *out) {
    const ns_gguf_kv *kv = ns_gguf_find_kv(g, key);
    double v;
    if (kv == NULL) {
        return NS_ERR_NOT_FOUND;
    }
    if (!scalar_f64(kv, &v)) {
        return NS_ERR_FORMAT;
    }
    *out = (float)v;
    return NS_OK;
}

ns_status ns_gguf_get_bool(const ns_gguf *g, const char *key, bool *out) {
    const ns_gguf_kv *kv = ns_gguf_find_kv(g, key);
    if (kv == NULL) {
        return NS_ERR_NOT_FOUND;
    }
    if (kv->type != NS_GGUF_BOOL) {
        return NS_ERR_FORMAT;
    }
    *out = kv->val.b;
    return NS_OK;
}

ns_status ns_gguf_get_str(const ns_gguf *g, const char *key, ns_gguf_str *out) {
    const ns_gguf_kv *kv = ns_gguf_find_kv(g, key);
    if (kv == NULL) {
        return NS_ERR_NOT_FOUND;
    }
    if (kv->type != NS_GGUF_STRING) {
        return NS_ERR_FORMAT;
    }
    *out = kv->str;
    return NS_OK;
}

bool ns_gguf_get_cstr(const ns_gguf *g, const char *key, char *buf, size_t len) {
    ns_gguf_str s;
    size_t n;
    if (len == 0 || ns_gguf_get_str(g, key, &s) != NS_OK) {
        return false;
    }
    n = s.len < len - 1 ? (size_t)s.len : len - 1;
    memcpy(buf, s.ptr, n);
    buf[n] = '\0';
    return true;
}
