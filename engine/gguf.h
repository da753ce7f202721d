/*
 * gguf.h - bounds-checked GGUF (v2, v3) reader over an mmapped file.
 *
 * A GGUF file is untrusted input. ns_gguf_open validates the whole header
 * (magic, version, counts, every string length, every metadata value and
 * array, tensor names, dims, type ids, offsets, alignment, duplicates) before
 * returning, so every accessor below is safe to call on an open handle. Each
 * failure names the problem and its byte offset in the error message.
 *
 * Split models ("name-00001-of-00003.gguf") are opened by naming the first
 * file: the other parts are found beside it and their tensors are merged into
 * one table. Metadata comes from the first part.
 *
 * Ownership: the handle owns the mappings and all the tables. Strings and
 * tensor data returned by accessors are views that live as long as the
 * handle. Keys and tensor names are NUL-terminated copies; metadata string
 * values are (ptr, len) views into the file and are NOT NUL-terminated.
 * Thread safety: an open handle is immutable; concurrent reads are safe.
 */
#ifndef NS_GGUF_H
#define NS_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ns_status.h"
#include "ns_types.h"

#define NS_GGUF_MAGIC 0x46554747u /* "GGUF" little-endian */
#define NS_GGUF_DEFAULT_ALIGNMENT 32
#define NS_GGUF_MAX_DIMS 4

typedef enum ns_gguf_vtype {
    NS_GGUF_UINT8 = 0,
    NS_GGUF_INT8 = 1,
    NS_GGUF_UINT16 = 2,
    NS_GGUF_INT16 = 3,
    NS_GGUF_UINT32 = 4,
    NS_GGUF_INT32 = 5,
    NS_GGUF_FLOAT32 = 6,
    NS_GGUF_BOOL = 7,
    NS_GGUF_STRING = 8,
    NS_GGUF_ARRAY = 9,
    NS_GGUF_UINT64 = 10,
    NS_GGUF_INT64 = 11,
    NS_GGUF_FLOAT64 = 12,
    NS_GGUF_VTYPE_COUNT = 13
} ns_gguf_vtype;

/* A string view into the file; not NUL-terminated. */
typedef struct ns_gguf_str {
    const char *ptr;
    uint64_t len;
} ns_gguf_str;

/* One metadata key/value. For scalars `val` holds the value; for strings
 * `str`; for arrays `arr_type`/`arr_n` and `arr_data` (the raw little-endian
 * elements for numeric arrays, or the first string's length prefix for
 * string arrays: use ns_gguf_arr_str). */
typedef struct ns_gguf_kv {
    const char *key;    /* NUL-terminated copy */
    ns_gguf_vtype type; /* value type */
    union {
        uint64_t u64;
        int64_t i64;
        double f64;
        bool b;
    } val;                    /* numeric/bool scalars, widened */
    ns_gguf_str str;          /* NS_GGUF_STRING */
    ns_gguf_vtype arr_type;   /* NS_GGUF_ARRAY: element type (never ARRAY) */
    uint64_t arr_n;           /* NS_GGUF_ARRAY: element count */
    const uint8_t *arr_data;  /* NS_GGUF_ARRAY: first element in the file */
    const uint64_t *str_offs; /* string arrays: offset of each element's length prefix from arr_data */
    uint64_t file_offset;     /* byte offset of the key in the file */
} ns_gguf_kv;

typedef struct ns_gguf_tensor {
    const char *name;             /* NUL-terminated copy */
    uint32_t n_dims;              /* 1..4 */
    int64_t ne[NS_GGUF_MAX_DIMS]; /* elements per dim, ne[0] fastest; unused dims are 1 */
    ns_type type;                 /* ggml type id (may be unsupported) */
    uint64_t offset;              /* offset within its file's data section */
    uint64_t n_elements;          /* product of ne */
    uint64_t nbytes;              /* bytes of data */
    const uint8_t *data;          /* view into the mapping */
    uint32_t file_index;          /* which split part holds it (0 for single files) */
    uint64_t file_offset;         /* absolute byte offset of the data in its file */
} ns_gguf_tensor;

typedef struct ns_gguf ns_gguf;

/* Open and validate `path` (and its split siblings). On failure *out is NULL
 * and `err` (may be NULL) says what and where. */
ns_status ns_gguf_open(const char *path, ns_gguf **out, ns_err *err);

/* Parse a GGUF image already in memory (fuzzing, tests). `buf` must outlive
 * the handle; it is not copied. */
ns_status ns_gguf_open_memory(const void *buf, size_t len, ns_gguf **out, ns_err *err);

/* Unmap and free; sets *g to NULL. NULL-safe. */
void ns_gguf_close(ns_gguf **g);

uint32_t ns_gguf_version(const ns_gguf *g);
uint64_t ns_gguf_alignment(const ns_gguf *g);
uint32_t ns_gguf_n_files(const ns_gguf *g);
uint64_t ns_gguf_file_size(const ns_gguf *g, uint32_t file_index);
uint64_t ns_gguf_data_offset(const ns_gguf *g, uint32_t file_index); /* start of the data section */
/* Base address of a part's mapping (for pinning or registering it). */
const uint8_t *ns_gguf_file_base(const ns_gguf *g, uint32_t file_index);

/* Metadata. */
uint64_t ns_gguf_n_kv(const ns_gguf *g);
const ns_gguf_kv *ns_gguf_kv_at(const ns_gguf *g, uint64_t i);
const ns_gguf_kv *ns_gguf_find_kv(const ns_gguf *g, const char *key); /* NULL if absent */

/* Element i of a string array (bounds-checked; {NULL,0} when out of range). */
ns_gguf_str ns_gguf_arr_str(const ns_gguf_kv *kv, uint64_t i);
/* Element i of a numeric array, converted; false when out of range or not numeric. */
bool ns_gguf_arr_i64(const ns_gguf_kv *kv, uint64_t i, int64_t *out);
bool ns_gguf_arr_f64(const ns_gguf_kv *kv, uint64_t i, double *out);

/* Typed getters. Any integer type converts when the value fits; floats accept
 * any numeric type. Absent -> NS_ERR_NOT_FOUND; wrong type or out of range ->
 * NS_ERR_FORMAT. */
ns_status ns_gguf_get_u32(const ns_gguf *g, const char *key, uint32_t *out);
ns_status ns_gguf_get_i64(const ns_gguf *g, const char *key, int64_t *out);
ns_status ns_gguf_get_f32(const ns_gguf *g, const char *key, float *out);
ns_status ns_gguf_get_bool(const ns_gguf *g, const char *key, bool *out);
ns_status ns_gguf_get_str(const ns_gguf *g, const char *key, ns_gguf_str *out);

/* Copy a string value into buf as a NUL-terminated string (truncating).
 * Returns false when absent or not a string. */
bool ns_gguf_get_cstr(const ns_gguf *g, const char *key, char *buf, size_t len);

/* Tensors. */
uint64_t ns_gguf_n_tensors(const ns_gguf *g);
const ns_gguf_tensor *ns_gguf_tensor_at(const ns_gguf *g, uint64_t i);
const ns_gguf_tensor *ns_gguf_find_tensor(const ns_gguf *g, const char *name); /* NULL if absent */

/* Name of a metadata value type ("uint32", "array"...). */
const char *ns_gguf_vtype_name(uint32_t t);

#endif /* NS_GGUF_H */
